/**
 * About 100k fuzz cases (e2e/robust/fuzz/fuzz-run.ts): the bulk in process on the body parser and
 * the ingest validator, then ext_proc sequences and ingest batches over real gRPC to a router
 * service in this process and to a router process — zero crashes, every well-formed request
 * answered, every stream closed and its counts released, malformed batches refused with a status,
 * memory bounded. A failure names the seed and the case (`npm run fuzz -- --seed S --only B:I`).
 */
import { expect, it } from "vitest";
import { fuzzPlan, runFuzz } from "./fuzz/fuzz-run";

it("survives 100k fuzz cases", { timeout: 300_000 }, async () => {
  const r = await runFuzz({ seed: Number(process.env.FUZZ_SEED ?? 20261130), ...fuzzPlan(100_000), log: () => undefined }, "vitest e2e/robust/fuzz.test.ts");
  console.log(JSON.stringify({ total: r.totalCases, parsers: r.parsers, inProcess: r.inProcess, process: r.process }));
  expect(r.totalCases).toBeGreaterThanOrEqual(100_000);
  expect(r.inProcess.streams.answered).toBeGreaterThan(0);
  expect(r.inProcess.ingest.refused).not.toEqual({});
  // Memory: the router process holds no more after the cases than a bounded cache's worth.
  expect(r.process.memory.after.heapAfterGcMiB - r.process.memory.before.heapAfterGcMiB).toBeLessThan(64);
  expect(r.process.memory.after.rssMiB).toBeLessThan(r.process.memory.before.rssMiB + 512);
});
