/**
 * Per-worker ordering of pushed batches, as a pure function of (state, batch) → (verdict, state).
 *
 * - A new epoch (engine restart) drops the worker's old entries; its batches start at seq 1.
 * - seq ≤ applied → DUPLICATE (a retry or a heartbeat): nothing changes, idempotent.
 * - seq = applied + 1 → APPLY.
 * - seq > applied + 1 → a gap: the router missed something, so it stops applying and asks for a
 *   resync; every push answers RESYNC_REQUIRED until the resync arrives.
 * - A worker the router knows nothing about (router restart) that is not at the start of its epoch
 *   must resync too.
 */

export interface WorkerSeqState {
  readonly epoch: string;
  /** Last applied seq in this epoch (0 = none yet). */
  readonly appliedSeq: number;
  /** Set by a gap, an unknown history, or a liveness timeout; cleared by a resync. */
  readonly needsResync: boolean;
}

export interface BatchHeader {
  readonly epoch: string;
  readonly seq: number;
}

export type Verdict =
  | { readonly kind: "apply"; readonly clearFirst: boolean }
  | { readonly kind: "duplicate" }
  | { readonly kind: "resync-required"; readonly reason: "gap" | "unknown-history" | "pending-resync"; readonly clearFirst: boolean };

export function sequenceBatch(state: WorkerSeqState | undefined, batch: BatchHeader): { verdict: Verdict; next: WorkerSeqState } {
  const newEpoch = state === undefined || state.epoch !== batch.epoch;
  // A changed epoch means the engine restarted: whatever it held before is gone.
  const clearFirst = state !== undefined && state.epoch !== batch.epoch;
  if (newEpoch) {
    if (batch.seq <= 1) {
      const next = { epoch: batch.epoch, appliedSeq: batch.seq, needsResync: false };
      // A seq-0 heartbeat of a new epoch still has to drop the old epoch's entries.
      return { verdict: batch.seq === 1 || clearFirst ? { kind: "apply", clearFirst } : { kind: "duplicate" }, next };
    }
    return {
      verdict: { kind: "resync-required", reason: "unknown-history", clearFirst },
      next: { epoch: batch.epoch, appliedSeq: 0, needsResync: true },
    };
  }
  if (state.needsResync) return { verdict: { kind: "resync-required", reason: "pending-resync", clearFirst: false }, next: state };
  if (batch.seq <= state.appliedSeq) return { verdict: { kind: "duplicate" }, next: state };
  if (batch.seq === state.appliedSeq + 1) return { verdict: { kind: "apply", clearFirst: false }, next: { ...state, appliedSeq: batch.seq } };
  return { verdict: { kind: "resync-required", reason: "gap", clearFirst: false }, next: { ...state, needsResync: true } };
}
