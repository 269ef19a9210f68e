/** `make soak` / `npm run soak [-- --requests N]`: 200k requests by default; figures printed and written to bench-results/soak.json. */
import { describeSoak, runSoak } from "./soak-run";
import { writeResults } from "./support/figures";

async function main(): Promise<void> {
  const at = process.argv.indexOf("--requests");
  const requests = at > 0 ? Number(process.argv[at + 1]) : 200_000;
  const report = await runSoak({ requests, samples: 40, concurrency: 16, seed: 3, maxGrowth: 0.1, log: (line) => console.log(line) }, `npm run soak -- --requests ${requests}`);
  console.log(describeSoak(report));
  console.log(`written to ${writeResults("soak", report)}`);
  if (!report.flat) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
