/**
 * A CacheIndex wrapper that times every call and counts failures, so backends hold no telemetry
 * (house style 7). Errors are re-thrown unchanged: the router decides what a failure means.
 */
import type { Counter, Histogram } from "prom-client";
import type { CacheIndex, IndexOp, IndexStats, WorkerId } from "../state/cache-index";

type Op = "add" | "add_speculative" | "remove" | "clear_worker" | "apply" | "replace_worker" | "lookup" | "stats";

export class InstrumentedCacheIndex implements CacheIndex {
  constructor(
    readonly inner: CacheIndex,
    private readonly duration: Histogram<"op">,
    private readonly errors: Counter<"op">,
  ) {}

  private async timed<T>(op: Op, work: () => Promise<T>): Promise<T> {
    const end = this.duration.startTimer({ op });
    try {
      return await work();
    } catch (err) {
      this.errors.inc({ op });
      throw err;
    } finally {
      end();
    }
  }

  add(worker: WorkerId, keys: readonly string[]): Promise<void> {
    return this.timed("add", () => this.inner.add(worker, keys));
  }
  addSpeculative(worker: WorkerId, keys: readonly string[], ttlMs: number): Promise<void> {
    return this.timed("add_speculative", () => this.inner.addSpeculative(worker, keys, ttlMs));
  }
  remove(worker: WorkerId, keys: readonly string[]): Promise<void> {
    return this.timed("remove", () => this.inner.remove(worker, keys));
  }
  clearWorker(worker: WorkerId): Promise<void> {
    return this.timed("clear_worker", () => this.inner.clearWorker(worker));
  }
  apply(worker: WorkerId, ops: readonly IndexOp[]): Promise<void> {
    return this.timed("apply", () => this.inner.apply(worker, ops));
  }
  replaceWorker(worker: WorkerId, keys: readonly string[]): Promise<void> {
    return this.timed("replace_worker", () => this.inner.replaceWorker(worker, keys));
  }
  lookup(keys: readonly string[], workers: readonly WorkerId[], parent?: string): Promise<ReadonlyMap<WorkerId, number>> {
    return this.timed("lookup", () => this.inner.lookup(keys, workers, parent));
  }
  stats(): Promise<IndexStats> {
    return this.timed("stats", () => this.inner.stats());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
