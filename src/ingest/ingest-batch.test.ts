import { describe, expect, it } from "vitest";
import { BatchValidator } from "./ingest-batch";

const validator = new BatchValidator(
  { workers: [{ id: "w1", models: ["m"] }], models: [{ name: "m", aliases: [] }], blockSize: 16 } as unknown as ConstructorParameters<typeof BatchValidator>[0],
  { maxEventsPerBatch: 100, maxKeysPerBatch: 1000 },
);
const key = (n: number) => Buffer.from(n.toString(16).padStart(16, "0"), "hex");
const header = { worker_id: "w1", model: "m", epoch: "e", seq: "1", block_size: 16 };

describe("BatchValidator", () => {
  it("carries a stored run's parent key into the add (empty parent: the run starts a chain)", () => {
    const r = validator.batch({
      ...header,
      events: [
        { kind: "stored", stored: { keys: Buffer.concat([key(2), key(3)]), parent: key(1) } },
        { kind: "stored", stored: { keys: key(9), parent: Buffer.alloc(0) } },
      ],
    });
    expect(r.ok && r.value.ops).toEqual([
      { op: "add", keys: [key(2).toString("hex"), key(3).toString("hex")], parent: key(1).toString("hex") },
      { op: "add", keys: [key(9).toString("hex")] },
    ]);
  });

  it("rejects a parent that is neither empty nor 8 bytes", () => {
    const r = validator.batch({ ...header, events: [{ kind: "stored", stored: { keys: key(2), parent: Buffer.alloc(3) } }] });
    expect(r).toEqual({ ok: false, message: expect.stringMatching(/parent must be 0 or 8 bytes/) });
  });
});
