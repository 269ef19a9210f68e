/**
 * `make fuzz` / `npm run fuzz [-- --seed S] [-- --cases N]`: about 1M cases by default (the make
 * test version runs about 100k); figures printed and written to bench-results/fuzz.json.
 * `--only B:I` replays ext_proc case I of batch B (in-process part) alone, as a failure prints it.
 */
import { FuzzFailure, fuzzStreams } from "./fuzz/stream-fuzz";
import { fuzzPlan, runFuzz } from "./fuzz/fuzz-run";
import { startTestRouter, testConfig } from "../support/router-fixture";
import { writeResults } from "./support/figures";

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const seed = Number(arg("--seed") ?? 1);
  const only = arg("--only");
  if (only) {
    const [batch, index] = only.split(":").map(Number);
    const r = await startTestRouter(testConfig({ routing: { decisionTimeoutMs: 150, load: { scrapeMetrics: false, expectedOutputTokens: 10_000_000 } } }));
    const held = async () => ({ inFlight: r.service.config.workers.reduce((n, w) => n + r.service.router.inFlight.inFlight(w.id), 0), running: 0 });
    try {
      console.log(await fuzzStreams({ extProc: r.service.extProc.address, held, alive: () => true }, { seed, cases: 1, batchSize: 32, only: { batch, index } }));
    } finally {
      await r.stop();
    }
    return;
  }
  const total = Number(arg("--cases") ?? 1_000_000);
  const report = await runFuzz({ seed, ...fuzzPlan(total), log: (line) => console.log(line) }, `npm run fuzz -- --seed ${seed} --cases ${total}`);
  console.log(`${report.totalCases} cases, no failure; written to ${writeResults("fuzz", report)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof FuzzFailure ? `FUZZ FAILURE (seed ${arg("--seed") ?? 1}): ${err.message}` : err);
  process.exit(1);
});
