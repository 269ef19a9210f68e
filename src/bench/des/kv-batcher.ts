/**
 * Per-replica KV event batching as the vllm-patch pusher does it (src/sim/ingest-reporter.ts): a
 * batch opens with its first event and is cut `batchMs` (100) later; the router applies it
 * `deliveryDelayMs` after the cut (network + ingest). The caller schedules the cut and the delivery.
 */
import type { EngineKvEvent } from "../../sim/replica-model";
import type { WorkerId } from "../../state/cache-index";

export class KvBatcher {
  private readonly open = new Map<WorkerId, EngineKvEvent[]>();

  /** Adds events; true when they opened a new batch (schedule its cut). */
  add(worker: WorkerId, events: readonly EngineKvEvent[]): boolean {
    if (events.length === 0) return false;
    const batch = this.open.get(worker);
    if (batch) {
      for (const e of events) batch.push(e);
      return false;
    }
    this.open.set(worker, [...events]);
    return true;
  }

  /** Cuts the open batch of `worker` (empty when none). */
  cut(worker: WorkerId): EngineKvEvent[] {
    const batch = this.open.get(worker) ?? [];
    this.open.delete(worker);
    return batch;
  }
}
