/** Plain counters of the ingest path; telemetry/ turns them into metrics. */
import type { DomainBatch } from "./ingest-batch";

export type RejectionCode = "unauthenticated" | "permission-denied" | "invalid-argument" | "resource-exhausted";

export class IngestCounters {
  batches = 0;
  events = 0;
  keys = 0;
  duplicates = 0;
  gaps = 0;
  resyncRequests = 0;
  resyncs = 0;
  resyncKeys = 0;
  epochChanges = 0;
  stalePurges = 0;
  readonly rejections: Record<RejectionCode, number> = { unauthenticated: 0, "permission-denied": 0, "invalid-argument": 0, "resource-exhausted": 0 };
  /** Worker clock → router clock lag of the last applied batch, ms (null when unknown). */
  lastLagMs: number | null = null;

  recordApplied(batch: DomainBatch, now: number): void {
    this.batches++;
    this.events += batch.events;
    this.keys += batch.keys;
    if (batch.sentAtMs !== null) this.lastLagMs = now - batch.sentAtMs;
  }

  reject(code: RejectionCode): void {
    this.rejections[code]++;
  }
}
