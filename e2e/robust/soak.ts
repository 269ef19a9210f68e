/**
 * `make soak` / `npm run soak [-- --requests N] [--cache-mib M]`: 200k requests; figures printed and
 * written to bench-results/soak.json.
 *
 * The tokenizer caches get 32 MiB unless --cache-mib says otherwise: full after ≈ 15k distinct
 * conversations, so the last half measures what stays once every bounded structure is full. At the
 * default 256 MiB they would still be filling at 200k requests (≈ 1M are needed) and heap after GC
 * would grow toward that bound without a leak; the curve "heap outside the tokenizer caches" (heap
 * after GC less what the caches account for) is judged too, so a run at any cache size shows a leak
 * — the one the leak issue found was invisible to the caches' own byte count.
 */
import { describeSoak, runSoak } from "./soak-run";
import { writeResults } from "./support/figures";

function option(name: string): number | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : undefined;
}

async function main(): Promise<void> {
  const requests = option("--requests") ?? 200_000;
  const cacheMiB = option("--cache-mib") ?? 32;
  const command = `npm run soak -- --requests ${requests} --cache-mib ${cacheMiB}`;
  const report = await runSoak(
    { requests, samples: 40, concurrency: 16, seed: 3, maxGrowth: 0.1, log: (line) => console.log(line), cacheBytes: cacheMiB * 2 ** 20 },
    command,
  );
  console.log(describeSoak(report));
  console.log(`written to ${writeResults("soak", report)}`);
  if (!report.flat || !report.flatOutsideCaches) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
