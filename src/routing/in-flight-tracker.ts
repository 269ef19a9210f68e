/**
 * In flight = requests this router sent to a worker whose Envoy stream has not ended (with the
 * shipped configs: until the response's last byte). A metric and the cache-blind policies' load;
 * min-ttft's load is the load board (load/load-board.ts). acquire() hands back a release function
 * that is safe to call more than once (stream end, cancel and error may all fire for one stream).
 */
import type { WorkerId } from "../state/cache-index";
import type { WorkerView } from "./worker-view";

export interface WorkerAddress {
  readonly id: WorkerId;
  readonly address: string;
}

export class InFlightTracker {
  private readonly counts = new Map<WorkerId, number>();

  acquire(worker: WorkerId): () => void {
    this.counts.set(worker, (this.counts.get(worker) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(worker) ?? 1) - 1;
      if (left > 0) this.counts.set(worker, left);
      else this.counts.delete(worker);
    };
  }

  inFlight(worker: WorkerId): number {
    return this.counts.get(worker) ?? 0;
  }

  /** A frozen view of `workers` with their current load, for the decision core. */
  snapshot(workers: readonly WorkerAddress[]): readonly WorkerView[] {
    return Object.freeze(workers.map((w) => Object.freeze({ id: w.id, address: w.address, inFlight: this.inFlight(w.id) })));
  }
}
