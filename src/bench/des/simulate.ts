/**
 * The discrete-event run of one contender over one workload on a simulated cluster.
 *
 * Virtual clock, N real replica engines (src/sim/replica-engine.ts). The loop always takes the
 * earliest thing that happens next — an engine step or an event on the agenda (a request arriving,
 * a request finishing, a KV batch being cut or reaching the router) — so engine state at a decision
 * is exactly the state at that instant. For each arrival the contender decides with the real code
 * path (routing/decision-core.ts: load snapshot, index lookup, policy, ledger, speculative record),
 * timed with the wall clock; the request is then submitted to the chosen engine, where the claimed
 * hit is checked against the engine's cache (stale routes). Follow-up turns arrive a think time
 * after the previous turn completes.
 *
 * Load signals are what production has (contenders.ts): a cache-blind baseline (Envoy's own load
 * balancer) counts a request until its response ends; so does prefix-router's in-flight count and
 * ledger, because a real Envoy ends the ext_proc stream at the response's last byte, streaming or
 * not (measured on Envoy 1.40, docs/envoy.md). `streamEnd: "headers"` ends a streaming request's
 * stream at once instead (vLLM sends SSE headers before the prefill) — what the router would see
 * if Envoy ended the stream at the response headers; min-ttft must not depend on it. The load
 * board gets each replica's metrics every scrapeIntervalMs, delivered scrapeDelayMs after they were read.
 */
import type { WorkerAddress } from "../../routing/in-flight-tracker";
import { fitsReplica, SimReplicaEngine } from "../../sim/replica-engine";
import type { ReplicaConfig, ReplicaEngine, RequestTiming } from "../../sim/replica-model";
import type { BenchRequest, Workload } from "../workloads/workload";
import { createContender, type ContenderName, type ContenderOptions } from "./contenders";
import { EventQueue } from "./event-queue";
import type { WorkerSample } from "../../routing/load/load-board";
import { KvBatcher } from "./kv-batcher";

export interface ClusterConfig {
  readonly replicas: number;
  readonly replica: ReplicaConfig;
  /** KV batch window (vllm-patch pusher flush, 100 ms). */
  readonly kvBatchMs: number;
  /** From a batch's cut to its apply in the router's index (network + ingest), ms. */
  readonly kvDeliveryDelayMs: number;
  /** How often the router scrapes each replica's /metrics (production default 100 ms). */
  readonly scrapeIntervalMs: number;
  /** From reading a replica's metrics to the router having them (scrape round trip), ms. */
  readonly scrapeDelayMs: number;
}

/** The router's signal timing as production has it: KV batches every 100 ms (vllm-patch), /metrics scraped every 100 ms. */
export const PRODUCTION_SIGNALS = Object.freeze({ kvBatchMs: 100, kvDeliveryDelayMs: 5, scrapeIntervalMs: 100, scrapeDelayMs: 5 });

/** Requests arriving in [fromMs, untilMs) are measured; the rest warm up or drain the cluster. */
export interface MeasureWindow {
  readonly fromMs: number;
  readonly untilMs: number;
}

export interface RequestRecord {
  readonly id: string;
  readonly measured: boolean;
  readonly session: string;
  readonly worker: string;
  readonly arrivalMs: number;
  readonly firstTokenMs: number;
  readonly finishMs: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly outputTokens: number;
  /** Blocks the decision claimed the replica holds (0 for a miss or a cache-blind policy). */
  readonly claimedBlocks: number;
  /** The replica held fewer than claimedBlocks of the prompt's leading blocks at submit. */
  readonly stale: boolean;
  /** Stale, but every missing block was in the prompt of a request already running there. */
  readonly staleInFlight: boolean;
  readonly guardTripped: boolean;
  /** Wall-clock decision time (snapshot, lookup, policy, bookkeeping), microseconds. */
  readonly decisionUs: number;
}

export interface RunResult {
  readonly contender: ContenderName;
  readonly records: RequestRecord[];
  /** Requests that can never fit one replica's KV cache (never submitted; their follow-ups still come). */
  readonly skipped: number;
  /** Busy time per replica over the whole run, and within the measure window. */
  readonly busyMs: number[];
  readonly windowBusyMs: number[];
  readonly window: MeasureWindow;
  /** First arrival to last completion, ms. */
  readonly makespanMs: number;
  readonly wallMs: number;
}

type Event =
  | { readonly kind: "mark"; readonly edge: 0 | 1 }
  | { readonly kind: "finish"; readonly id: string }
  | { readonly kind: "deliver"; readonly worker: number; readonly events: ReturnType<KvBatcher["cut"]> }
  | { readonly kind: "cut"; readonly worker: number }
  | { readonly kind: "scrape" }
  | { readonly kind: "sample"; readonly worker: number; readonly sample: WorkerSample }
  | { readonly kind: "arrive"; readonly request: BenchRequest };

const PRIORITY = { mark: 0, finish: 1, deliver: 2, sample: 2, cut: 3, scrape: 3, arrive: 4 } as const;

export type ProgressFn = (done: number, total: number) => void;

/** When the router's Envoy stream ends (see the header). */
export type StreamEnd = "completion" | "headers";

export function simulate(
  workload: Workload,
  name: ContenderName,
  cluster: ClusterConfig,
  options: ContenderOptions & { readonly window?: MeasureWindow; readonly streamEnd?: StreamEnd },
  progress?: ProgressFn,
): RunResult {
  const started = performance.now();
  const workers: WorkerAddress[] = Array.from({ length: cluster.replicas }, (_, i) => ({ id: `r${i}`, address: `10.0.${i >> 8}.${i & 255}:8000` }));
  const engines: ReplicaEngine[] = workers.map(() => new SimReplicaEngine(cluster.replica));
  const slot = new Map(workers.map((w, i) => [w.id, i]));
  let now = 0;
  const contender = createContender(name, {
    workerIds: workers.map((w) => w.id),
    totalBlocks: cluster.replica.totalBlocks,
    blockSize: cluster.replica.blockSize,
    now: () => now,
    engine: (id) => engines[slot.get(id)!],
  }, options);
  const core = contender.core;
  const board = core.board;

  const agenda = new EventQueue<Event>();
  const batcher = new KvBatcher();
  const followUps = new Map<string, BenchRequest[]>();
  const window = options.window ?? { fromMs: -Infinity, untilMs: Infinity };
  const marks: (number[] | undefined)[] = [undefined, undefined];
  ([window.fromMs, window.untilMs] as const).forEach((at, edge) => {
    if (Number.isFinite(at)) agenda.push(at, PRIORITY.mark, { kind: "mark", edge: edge as 0 | 1 });
  });
  for (const r of workload.requests) {
    if (r.arrivalMs !== null) agenda.push(r.arrivalMs, PRIORITY.arrive, { kind: "arrive", request: r });
    else if (r.after) (followUps.get(r.after.id) ?? followUps.set(r.after.id, []).get(r.after.id)!).push(r);
  }
  if (contender.signals === "router") agenda.push(0, PRIORITY.scrape, { kind: "scrape" });
  const running = new Map<string, { request: BenchRequest; worker: number; release: () => void; claimed: number; stale: boolean; staleInFlight: boolean; guard: boolean; us: number }>();
  const inFlightKeys = engines.map(() => new Map<string, number>());
  const records: RequestRecord[] = [];
  let skipped = 0;
  let done = 0;
  const total = workload.requests.length;

  const scheduleFollowUps = (id: string, atMs: number) => {
    for (const next of followUps.get(id) ?? []) agenda.push(atMs + next.after!.thinkMs, PRIORITY.arrive, { kind: "arrive", request: next });
  };

  const arrive = (r: BenchRequest) => {
    if (r.promptTokens === 0 || !fitsReplica(cluster.replica, r.promptTokens, r.maxTokens)) {
      skipped++;
      done++;
      scheduleFollowUps(r.id, now);
      return;
    }
    const t0 = process.hrtime.bigint();
    const match = core.policy.usesMatch ? contender.match(r.keys) : null;
    const input = { workers, keys: r.keys, promptTokens: r.promptTokens, match, nowMs: now };
    const decision = core.decide(input);
    if (decision.kind !== "route") throw new Error(`no worker for ${r.id}: ${decision.reason}`);
    const { release: releaseStream } = core.commit(decision, input, r.stream);
    contender.routed(r.keys, decision.worker.id);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (contender.signals === "router" && r.stream && options.streamEnd === "headers") releaseStream();
    const w = slot.get(decision.worker.id)!;
    const claimed = decision.outcome === "hit" ? decision.matchedBlocks : 0;
    const held = claimed > 0 ? engines[w].cachedPrefix(r.keys) : 0;
    const stale = held < claimed;
    let staleInFlight = stale;
    for (let i = held; staleInFlight && i < claimed; i++) staleInFlight = inFlightKeys[w].has(r.keys[i]);
    for (const k of r.keys) inFlightKeys[w].set(k, (inFlightKeys[w].get(k) ?? 0) + 1);
    running.set(r.id, { request: r, worker: w, release: releaseStream, claimed, stale, staleInFlight, guard: decision.guardTripped, us });
    engines[w].submit({ id: r.id, prompt: r.prompt(), promptKeys: r.keys, maxTokens: r.maxTokens, root: workload.root, outputTokens: r.outputTokens() }, now);
  };

  const timings = new Map<string, RequestTiming>();
  const afterStep = (w: number) => {
    const engine = engines[w];
    for (const t of engine.takeCompleted()) {
      timings.set(t.id, t);
      agenda.push(t.finishMs, PRIORITY.finish, { kind: "finish", id: t.id });
    }
    const events = engine.takeKvEvents();
    if (contender.wantsKvEvents && batcher.add(workers[w].id, events)) agenda.push(now + cluster.kvBatchMs, PRIORITY.cut, { kind: "cut", worker: w });
  };

  const finish = (id: string) => {
    const run = running.get(id)!;
    running.delete(id);
    run.release();
    contender.completed(run.request.keys, workers[run.worker].id);
    const keysInFlight = inFlightKeys[run.worker];
    for (const k of run.request.keys) {
      const left = keysInFlight.get(k)! - 1;
      if (left > 0) keysInFlight.set(k, left);
      else keysInFlight.delete(k);
    }
    const t = timings.get(id)!;
    timings.delete(id);
    records.push({
      id, measured: t.arrivalMs >= window.fromMs && t.arrivalMs < window.untilMs, session: run.request.session, worker: workers[run.worker].id, arrivalMs: t.arrivalMs, firstTokenMs: t.firstTokenMs, finishMs: t.finishMs,
      promptTokens: run.request.promptTokens, cachedTokens: t.cachedTokens, outputTokens: t.outputTokens,
      claimedBlocks: run.claimed, stale: run.stale, staleInFlight: run.staleInFlight, guardTripped: run.guard, decisionUs: run.us,
    });
    done++;
    if (progress && (done & 63) === 0) progress(done, total);
    scheduleFollowUps(id, now);
  };

  for (;;) {
    let stepAt = Infinity;
    let stepper = -1;
    for (let w = 0; w < engines.length; w++) {
      const at = engines[w].nextStepMs();
      if (at !== undefined && at < stepAt) {
        stepAt = at;
        stepper = w;
      }
    }
    const eventAt = agenda.peekTime();
    if (stepper < 0 && eventAt === Infinity) break;
    if (stepAt <= eventAt) {
      // A step starting at the same instant as an event runs first: vLLM's scheduler does not wait.
      now = Math.max(now, stepAt);
      engines[stepper].advanceTo(stepAt);
      afterStep(stepper);
      continue;
    }
    const next = agenda.pop()!;
    now = next.atMs;
    const e = next.event;
    switch (e.kind) {
      case "mark":
        marks[e.edge] = engines.map((en) => en.metrics().busyMs);
        break;
      case "arrive":
        arrive(e.request);
        break;
      case "finish":
        finish(e.id);
        break;
      case "cut": {
        const events = batcher.cut(workers[e.worker].id);
        if (events.length > 0) agenda.push(now + cluster.kvDeliveryDelayMs, PRIORITY.deliver, { kind: "deliver", worker: e.worker, events });
        break;
      }
      case "deliver":
        contender.kvEvents(workers[e.worker].id, e.events);
        break;
      case "scrape":
        engines.forEach((engine, w) => {
          const m = engine.metrics();
          const sample: WorkerSample = {
            requestedAtMs: now, running: m.running, waiting: m.waiting, kvUsage: m.kvUsage,
            kvCapacityTokens: cluster.replica.totalBlocks * cluster.replica.blockSize,
          };
          agenda.push(now + cluster.scrapeDelayMs, PRIORITY.sample, { kind: "sample", worker: w, sample });
        });
        if (done < total) agenda.push(now + cluster.scrapeIntervalMs, PRIORITY.scrape, { kind: "scrape" });
        break;
      case "sample":
        board.setSample(workers[e.worker].id, e.sample);
        break;
    }
  }
  if (running.size > 0) throw new Error(`${running.size} requests never completed`);
  progress?.(total, total);
  const first = records.reduce((m, r) => Math.min(m, r.arrivalMs), Infinity);
  const last = records.reduce((m, r) => Math.max(m, r.finishMs), 0);
  const busyMs = engines.map((e) => e.metrics().busyMs);
  const [atFrom, atUntil] = [marks[0] ?? busyMs.map(() => 0), marks[1] ?? busyMs];
  return {
    contender: name,
    records: records.sort((a, b) => a.arrivalMs - b.arrivalMs),
    skipped,
    busyMs,
    windowBusyMs: busyMs.map((_, i) => atUntil[i] - atFrom[i]),
    window: { fromMs: Number.isFinite(window.fromMs) ? window.fromMs : first, untilMs: Number.isFinite(window.untilMs) ? window.untilMs : last },
    makespanMs: Math.max(0, last - first),
    wallMs: performance.now() - started,
  };
}
