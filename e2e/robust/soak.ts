/**
 * `make soak` / `npm run soak [-- --requests N] [--cache-mib M]`: 200k requests by default; figures
 * printed and written to bench-results/soak.json. `--cache-mib` sets tokenizerCache.maxBytes (the
 * default 256 MiB takes longer than 200k requests to fill, so the heap still grows toward it).
 */
import { describeSoak, runSoak } from "./soak-run";
import { writeResults } from "./support/figures";

function option(name: string): number | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : undefined;
}

async function main(): Promise<void> {
  const requests = option("--requests") ?? 200_000;
  const cacheMiB = option("--cache-mib");
  const command = `npm run soak -- --requests ${requests}${cacheMiB !== undefined ? ` --cache-mib ${cacheMiB}` : ""}`;
  const report = await runSoak(
    { requests, samples: 40, concurrency: 16, seed: 3, maxGrowth: 0.1, log: (line) => console.log(line), ...(cacheMiB !== undefined ? { cacheBytes: cacheMiB * 2 ** 20 } : {}) },
    command,
  );
  console.log(describeSoak(report));
  console.log(`written to ${writeResults("soak", report)}`);
  if (!report.flat) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
