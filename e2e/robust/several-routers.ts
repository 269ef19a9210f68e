/** `npm run several-routers [-- --requests N]`: the several-routers run, printed and written to bench-results/several-routers.json. */
import { describeSeveral, runSeveralRouters, SHORT_SEVERAL } from "./several-routers-run";
import { writeResults } from "./support/figures";

async function main(): Promise<void> {
  const at = process.argv.indexOf("--requests");
  const requests = at > 0 ? Number(process.argv[at + 1]) : 3_000;
  const report = await runSeveralRouters({ ...SHORT_SEVERAL, requests }, `npm run several-routers -- --requests ${requests}`);
  console.log(describeSeveral(report));
  console.log(`written to ${writeResults("several-routers", report)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
