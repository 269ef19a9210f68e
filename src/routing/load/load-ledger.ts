/**
 * The work this router sent to each worker and believes is still there — half of the router's load
 * view (the other half is the workers' own /metrics, see load-board.ts). Pure: the clock is an
 * argument of every call.
 *
 * Each routed request adds, at the decision:
 *   - prefill work: its uncached tokens and their compute (ms), queued until its predicted first
 *     token (decision time + the estimated TTFT on that worker);
 *   - a running sequence holding its prompt's KV tokens, until its predicted completion (first
 *     token + expected output tokens × the decode step it was expected to see).
 * The end of the request's Envoy stream (end()) retires the entry early, because the response is
 * over — with one guard that keeps the rule independent of when Envoy ends the stream: a streaming
 * response's prefill stays queued until its predicted first token even if the stream ends first
 * (Envoy 1.40 ends it at the response's last byte, measured — docs/envoy.md — but a stream that
 * ended at the response headers, which vLLM sends before the prefill, would otherwise erase
 * queued work). A prediction that is too short drops work early; the workers' scraped queues put
 * it back (load-board.ts).
 */
import type { WorkerId } from "../../state/cache-index";

export interface RoutedWork {
  readonly worker: WorkerId;
  readonly promptTokens: number;
  /** Prompt tokens the worker is expected to compute (not cached there). */
  readonly uncachedTokens: number;
  /** Compute of that prefill (cost-model.ts prefillComputeMs), ms. */
  readonly prefillMs: number;
  readonly firstTokenAtMs: number;
  readonly doneAtMs: number;
}

export interface LedgerTotals {
  /** Prompt tokens waiting to be prefilled. */
  readonly queuedTokens: number;
  /** Their compute, ms. */
  readonly queuedMs: number;
  /** Sequences on the worker (queued or decoding). */
  readonly running: number;
  /** KV tokens those sequences hold. */
  readonly kvTokens: number;
}

export const NO_LOAD: LedgerTotals = Object.freeze({ queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0 });

interface Entry {
  readonly id: number;
  readonly work: RoutedWork;
  readonly routedAtMs: number;
  queued: boolean;
  alive: boolean;
  /** The stream ended while the prefill was predicted to be queued: retire when it is prefilled. */
  endAfterPrefill: boolean;
}

interface Sums {
  queuedTokens: number;
  queuedMs: number;
  running: number;
  kvTokens: number;
}

/** Min-heap of (time, entry) retirement events; stale events (entry already retired) are skipped. */
class RetirementHeap {
  private readonly times: number[] = [];
  private readonly entries: Entry[] = [];
  private readonly phases: ("prefilled" | "done")[] = [];

  get size(): number {
    return this.times.length;
  }

  push(at: number, entry: Entry, phase: "prefilled" | "done"): void {
    this.times.push(at);
    this.entries.push(entry);
    this.phases.push(phase);
    let i = this.times.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent] <= this.times[i]) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekTime(): number {
    return this.times.length > 0 ? this.times[0] : Infinity;
  }

  pop(): [Entry, "prefilled" | "done"] {
    const top: [Entry, "prefilled" | "done"] = [this.entries[0], this.phases[0]];
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.entries.pop();
    this.phases.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.times.length && this.times[l] < this.times[m]) m = l;
      if (r < this.times.length && this.times[r] < this.times[m]) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b], this.times[a]];
    [this.entries[a], this.entries[b]] = [this.entries[b], this.entries[a]];
    [this.phases[a], this.phases[b]] = [this.phases[b], this.phases[a]];
  }
}

export class LoadLedger {
  private readonly sums = new Map<WorkerId, Sums>();
  /** Live and recently retired entries per worker, in routing order (for since()). */
  private readonly recent = new Map<WorkerId, Entry[]>();
  private readonly heap = new RetirementHeap();
  private readonly byId = new Map<number, Entry>();
  private nextId = 1;

  /** Records routed work; returns its id for finish(). */
  add(work: RoutedWork, nowMs: number): number {
    this.advance(nowMs);
    const entry: Entry = { id: this.nextId++, work, routedAtMs: nowMs, queued: true, alive: true, endAfterPrefill: false };
    const s = this.sumsOf(work.worker);
    s.queuedTokens += work.uncachedTokens;
    s.queuedMs += work.prefillMs;
    s.running += 1;
    s.kvTokens += work.promptTokens;
    this.byId.set(entry.id, entry);
    let list = this.recent.get(work.worker);
    if (!list) this.recent.set(work.worker, (list = []));
    list.push(entry);
    this.heap.push(Math.max(nowMs, work.firstTokenAtMs), entry, "prefilled");
    this.heap.push(Math.max(nowMs, work.doneAtMs, work.firstTokenAtMs), entry, "done");
    return entry.id;
  }

  /**
   * The request's Envoy stream ended: the work is gone — but a streaming request whose prefill is
   * still predicted to be queued keeps it until then (see the header). Idempotent.
   */
  end(id: number, streaming: boolean): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    if (streaming && entry.queued) entry.endAfterPrefill = true;
    else this.retire(entry);
  }

  totals(worker: WorkerId, nowMs: number): LedgerTotals {
    this.advance(nowMs);
    const s = this.sums.get(worker);
    return s ? { ...s } : NO_LOAD;
  }

  /** The part of totals() routed at or after `sinceMs` (work a metrics sample taken then cannot show). */
  since(worker: WorkerId, sinceMs: number, nowMs: number): LedgerTotals {
    this.advance(nowMs);
    const list = this.recent.get(worker);
    if (!list) return NO_LOAD;
    const out: Sums = { queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0 };
    for (let i = list.length - 1; i >= 0 && list[i].routedAtMs >= sinceMs; i--) {
      const e = list[i];
      if (!e.alive) continue;
      if (e.queued) {
        out.queuedTokens += e.work.uncachedTokens;
        out.queuedMs += e.work.prefillMs;
      }
      out.running += 1;
      out.kvTokens += e.work.promptTokens;
    }
    return out;
  }

  /** Live entries (for tests and metrics). */
  get size(): number {
    return this.byId.size;
  }

  private advance(nowMs: number): void {
    while (this.heap.size > 0 && this.heap.peekTime() <= nowMs) {
      const [entry, phase] = this.heap.pop();
      if (!entry.alive) continue;
      if (phase === "prefilled" && !entry.endAfterPrefill) this.unqueue(entry);
      else this.retire(entry);
    }
  }

  private unqueue(entry: Entry): void {
    if (!entry.queued) return;
    entry.queued = false;
    const s = this.sumsOf(entry.work.worker);
    s.queuedTokens -= entry.work.uncachedTokens;
    s.queuedMs -= entry.work.prefillMs;
  }

  private retire(entry: Entry): void {
    if (!entry.alive) return;
    this.unqueue(entry);
    entry.alive = false;
    this.byId.delete(entry.id);
    const worker = entry.work.worker;
    const s = this.sumsOf(worker);
    s.running -= 1;
    s.kvTokens -= entry.work.promptTokens;
    if (s.running === 0) this.sums.delete(worker); // no float drift carried into an idle worker
    const list = this.recent.get(worker)!;
    let dead = 0;
    while (dead < list.length && !list[dead].alive) dead++;
    if (dead > 0) list.splice(0, dead);
    if (list.length === 0) this.recent.delete(worker);
  }

  private sumsOf(worker: WorkerId): Sums {
    let s = this.sums.get(worker);
    if (!s) this.sums.set(worker, (s = { queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0 }));
    return s;
  }
}
