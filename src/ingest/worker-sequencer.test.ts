import { describe, expect, it } from "vitest";
import { sequenceBatch, type WorkerSeqState } from "./worker-sequencer";

const at = (epoch: string, appliedSeq: number, needsResync = false): WorkerSeqState => ({ epoch, appliedSeq, needsResync });

describe("sequenceBatch", () => {
  it.each([
    { name: "first batch of a new worker", state: undefined, batch: { epoch: "e1", seq: 1 }, verdict: { kind: "apply", clearFirst: false }, next: at("e1", 1) },
    { name: "heartbeat before any batch", state: undefined, batch: { epoch: "e1", seq: 0 }, verdict: { kind: "duplicate" }, next: at("e1", 0) },
    { name: "the next batch", state: at("e1", 4), batch: { epoch: "e1", seq: 5 }, verdict: { kind: "apply", clearFirst: false }, next: at("e1", 5) },
    { name: "a retried batch", state: at("e1", 5), batch: { epoch: "e1", seq: 5 }, verdict: { kind: "duplicate" }, next: at("e1", 5) },
    { name: "an old replay", state: at("e1", 5), batch: { epoch: "e1", seq: 2 }, verdict: { kind: "duplicate" }, next: at("e1", 5) },
    {
      name: "a gap",
      state: at("e1", 5),
      batch: { epoch: "e1", seq: 7 },
      verdict: { kind: "resync-required", reason: "gap", clearFirst: false },
      next: at("e1", 5, true),
    },
    {
      name: "anything while a resync is pending",
      state: at("e1", 5, true),
      batch: { epoch: "e1", seq: 6 },
      verdict: { kind: "resync-required", reason: "pending-resync", clearFirst: false },
      next: at("e1", 5, true),
    },
    { name: "a heartbeat of a restarted engine", state: at("e1", 9), batch: { epoch: "e2", seq: 0 }, verdict: { kind: "apply", clearFirst: true }, next: at("e2", 0) },
    { name: "an engine restart", state: at("e1", 9), batch: { epoch: "e2", seq: 1 }, verdict: { kind: "apply", clearFirst: true }, next: at("e2", 1) },
    {
      name: "a restart whose start we missed",
      state: at("e1", 9),
      batch: { epoch: "e2", seq: 3 },
      verdict: { kind: "resync-required", reason: "unknown-history", clearFirst: true },
      next: at("e2", 0, true),
    },
    {
      name: "a worker mid-epoch after a router restart",
      state: undefined,
      batch: { epoch: "e1", seq: 40 },
      verdict: { kind: "resync-required", reason: "unknown-history", clearFirst: false },
      next: at("e1", 0, true),
    },
  ])("$name", ({ state, batch, verdict, next }) => {
    expect(sequenceBatch(state, batch)).toEqual({ verdict, next });
  });
});
