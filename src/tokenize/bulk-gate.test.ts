/** BulkGate: a permit shared across threads; a thread waiting for one stays alive until it gets it. */
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { BULK_CHARS, BulkGate } from "./bulk-gate";

/** A thread whose only work is one bulk batch through the gate: it reports when the batch ran. */
function threadThroughGate(share: ReturnType<typeof BulkGate.share>): Worker {
  const tsx = JSON.stringify(require.resolve("tsx/cjs/api"));
  const gate = JSON.stringify(join(__dirname, "bulk-gate.ts"));
  const code = `require(${tsx}).register();
    const { parentPort, workerData } = require("node:worker_threads");
    const { BulkGate, BULK_CHARS } = require(${gate});
    parentPort.postMessage("waiting");
    new BulkGate(workerData).run(BULK_CHARS, async () => parentPort.postMessage("ran"));`;
  return new Worker(code, { eval: true, workerData: share });
}

describe("BulkGate", () => {
  it("lets a bulk batch through once a permit is free, and small ones at once", async () => {
    const share = BulkGate.share(1);
    const gate = new BulkGate(share);
    let release!: () => void;
    const held = gate.run(BULK_CHARS, () => new Promise<void>((resolve) => (release = resolve)));
    const order: string[] = [];
    const small = gate.run(BULK_CHARS - 1, async () => order.push("small"));
    const bulk = gate.run(BULK_CHARS, async () => order.push("bulk"));
    await small;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(order).toEqual(["small"]);
    release();
    await Promise.all([held, bulk]);
    expect(order).toEqual(["small", "bulk"]);
  });

  it("keeps a thread with nothing else to do alive while it waits for a permit (it used to exit with code 0)", async () => {
    const share = BulkGate.share(1);
    let release!: () => void;
    const held = new BulkGate(share).run(BULK_CHARS, () => new Promise<void>((resolve) => (release = resolve)));
    const worker = threadThroughGate(share);
    const messages: string[] = [];
    const outcome = new Promise<string>((resolve) => {
      worker.on("message", (m) => (messages.push(String(m)), m === "ran" && resolve("ran")));
      worker.once("exit", (code) => resolve(`exited with code ${code}`));
      worker.once("error", (err) => resolve(`error: ${err.message}`));
    });
    await new Promise<void>((resolve) => worker.once("message", () => resolve()));
    // The thread is at the gate, whose one permit is still held.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(messages).toEqual(["waiting"]);
    release();
    await held;
    expect(await outcome).toBe("ran");
    await worker.terminate();
  }, 20_000);
});
