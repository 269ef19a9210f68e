/**
 * `make chaos` / `npm run chaos`: the full chaos run (a few minutes on 2 cores), figures printed
 * and written to bench-results/chaos.json. `--short` runs the `make test` version.
 */
import { FULL_CHAOS, runChaos, SHORT_CHAOS } from "./chaos-run";
import { writeResults } from "./support/figures";

async function main(): Promise<void> {
  const short = process.argv.includes("--short");
  const command = `npm run chaos${short ? " -- --short" : ""}`;
  const report = await runChaos({ ...(short ? SHORT_CHAOS : FULL_CHAOS), log: (line) => console.log(line) }, command);
  const t = report.totals;
  console.log(`\nall: ${t.requests} requests, ${t.answered} answered within ${report.messageTimeoutMs} ms, ${t.late} late, ${t.failed} failed (${t.failedOutsideRouterDown} outside the router's restart); p99 ${t.latencyP99Ms} ms, max ${t.latencyMaxMs} ms`);
  console.log(`router decisions (its /metrics, summed over restarts): ${JSON.stringify(report.routerDecisions)}`);
  console.log(`ingest proxy: ${JSON.stringify(report.proxy)}`);
  console.log(`written to ${writeResults("chaos", report)}`);
  const failedMaps = report.phases.filter((p) => p.map && !p.map.equal);
  const unrecovered = report.phases.filter((p) => p.name !== "warmup" && p.hitRecoveryMs === null);
  if (t.lateOutsideRouterRestart > 0 || t.failedOutsideRouterDown > 0 || failedMaps.length > 0 || unrecovered.length > 0) {
    console.log(`FAILED: late outside the router's restart ${t.lateOutsideRouterRestart}, failed outside the router's restart ${t.failedOutsideRouterDown}, maps not equal: ${failedMaps.map((p) => p.name).join(", ") || "none"}, hits not recovered: ${unrecovered.map((p) => p.name).join(", ") || "none"}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
