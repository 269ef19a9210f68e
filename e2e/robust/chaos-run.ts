/**
 * The chaos run: the chat mix (≥ 16 users in flight) through a real router process on the Redis map,
 * with simulated replicas pushing KV events, while faults hit it one after another:
 *
 *   redis-pause     Redis SIGSTOPped for 5 s (hung: accepts, never answers), then SIGCONT
 *   redis-restart   Redis SIGKILLed and started again empty on the same port
 *   router-restart  the router SIGKILLed and started again (same config, same ports)
 *   worker-restart  one replica closed and replaced by a fresh one (empty cache, new epoch)
 *   batch-faults    KV-event batches lost, duplicated, reordered and replayed by the ingest proxy
 *
 * After each fault, load goes on for an observation window; after those that disturb the map, the
 * load stops and the map in Redis is compared with the replicas' own caches until equal.
 * Figures per phase: answers within Envoy's message_timeout, late answers, failed streams (router
 * down: Envoy fails open), decisions and fallbacks by reason (client headers, and the routers'
 * /metrics summed over restarts), time to recover follow-up hits, and map convergence.
 */
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { ChatTraffic, SHIPPED_MESSAGE_TIMEOUT_MS, type RequestRecord } from "./support/chat-traffic";
import { addCounts, cachedTokenShare, countBy, decisionCounts, followUpHitShare, hitRecoveryMs, machine, percentile, round, sleep, type RequestOutcomes, type RunHeader } from "./support/figures";
import type { MapComparison } from "./support/map-truth";
import { scrapeAdmin } from "./support/router-child";
import { startRobustStack, type RobustStack } from "./support/robust-stack";
import type { SimHostStats } from "./support/sim-host";


export interface ChaosOptions {
  readonly seed: number;
  readonly concurrency: number;
  readonly replicas: number;
  readonly warmupMs: number;
  /** Load after each fault (ends early, but not before minObserveMs, once hits recovered). */
  readonly observeMs: number;
  readonly minObserveMs: number;
  readonly redisPauseMs: number;
  readonly redisDownMs: number;
  readonly routerDownMs: number;
  readonly workerDownMs: number;
  readonly batchFaultMs: number;
  readonly batchFaultRate: number;
  /** How long the map may take to equal the replicas' caches once the load stopped. */
  readonly mapTimeoutMs: number;
  readonly log: (line: string) => void;
}

export const SHORT_CHAOS: Omit<ChaosOptions, "log"> = {
  seed: 11, concurrency: 16, replicas: 4, warmupMs: 5_000, observeMs: 5_000, minObserveMs: 1_500,
  redisPauseMs: 5_000, redisDownMs: 1_000, routerDownMs: 500, workerDownMs: 1_000, batchFaultMs: 4_000, batchFaultRate: 0.08, mapTimeoutMs: 8_000,
};

export const FULL_CHAOS: Omit<ChaosOptions, "log"> = {
  seed: 11, concurrency: 24, replicas: 4, warmupMs: 15_000, observeMs: 20_000, minObserveMs: 10_000,
  redisPauseMs: 5_000, redisDownMs: 3_000, routerDownMs: 2_000, workerDownMs: 3_000, batchFaultMs: 30_000, batchFaultRate: 0.1, mapTimeoutMs: 15_000,
};

export interface MapCheck {
  readonly equal: boolean;
  /** From the moment the load stopped and every reporter was idle to the map equal to the caches. */
  readonly convergedMs: number | null;
  /** After that, every replica asked to resync: from the last resync's completion to map equality. */
  readonly afterResyncMs: number | null;
  readonly last: MapComparison;
}

export interface PhaseFigures extends RequestOutcomes {
  readonly name: string;
  readonly faultMs: number;
  readonly latencyP50Ms: number | null;
  readonly latencyP99Ms: number | null;
  readonly latencyMaxMs: number | null;
  readonly decisions: Record<string, number>;
  readonly fallbacks: Record<string, number>;
  readonly baselineHitShare: number | null;
  readonly hitShareAfter: number | null;
  readonly cachedTokenShare: number | null;
  /** From the fault's end (Redis answering, router ready, replica back, proxy clean) to hits back. */
  readonly hitRecoveryMs: number | null;
  readonly map: MapCheck | null;
}

export interface ChaosReport extends RunHeader<Omit<ChaosOptions, "log">> {
  readonly messageTimeoutMs: number;
  readonly phases: readonly PhaseFigures[];
  readonly totals: { requests: number; answered: number; late: number; lateOutsideRouterRestart: number; failed: number; failedOutsideRouterDown: number; latencyP99Ms: number | null; latencyMaxMs: number | null };
  /** prefix_router_decisions_total summed over the router's lives, "outcome/reason" → count. */
  readonly routerDecisions: Record<string, number>;
  readonly proxy: SimHostStats["proxies"][number];
  readonly reporters: SimHostStats["reporters"];
}

export async function runChaos(o: ChaosOptions, command: string): Promise<ChaosReport> {
  const stack = await startRobustStack({ routers: 1, replicas: o.replicas, totalBlocks: 1_500, timeScale: 0.02, seed: o.seed });
  const records: RequestRecord[] = [];
  const client = () => new EnvoyExtProcClient(stack.endpoints[0].extProc, { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 250 });
  let clients = [client()];
  const traffic = new ChatTraffic({
    clients: () => clients,
    replicas: stack.addresses,
    concurrency: o.concurrency,
    seed: o.seed,
    onRecord: (r) => records.push(r),
  });
  const routerDecisions: Record<string, number> = {};
  const phases: PhaseFigures[] = [];
  try {
    traffic.start();
    await sleep(o.warmupMs);
    let mark = traffic.now();
    phases.push(phaseFigures("warmup", records, 0, mark - o.warmupMs, mark, 0, null, null, null));

    const fault = async (name: string, inject: () => Promise<void>, opts: { checkMap: boolean }) => {
      const before = records.filter((r) => r.atMs >= mark - 5_000);
      const baseline = followUpHitShare(before) ?? followUpHitShare(records);
      const start = traffic.now();
      await inject();
      const end = traffic.now();
      // Observe until hits are back (not before minObserveMs), at most observeMs.
      const deadline = end + o.observeMs;
      let recovery: number | null = null;
      while (traffic.now() < deadline) {
        await sleep(250);
        recovery = baseline === null ? null : hitRecoveryMs(records, end, traffic.now(), baseline);
        if (recovery !== null && traffic.now() >= end + Math.max(o.minObserveMs, recovery + 1_000)) break;
      }
      const stop = traffic.now();
      const map = opts.checkMap ? await checkMap(stack, traffic, o) : null;
      if (opts.checkMap) traffic.start();
      const figures = phaseFigures(name, records, end - start, start, stop, end, baseline, recovery, map);
      phases.push(figures);
      o.log(describe(figures));
      mark = traffic.now();
    };

    await fault("redis-pause", async () => {
      stack.redis.pause();
      await sleep(o.redisPauseMs);
      stack.redis.resume();
    }, { checkMap: false });

    await fault("redis-restart", async () => {
      stack.redis.kill();
      await sleep(o.redisDownMs);
      await stack.redis.restart();
    }, { checkMap: true });

    await fault("router-restart", async () => {
      addCounts(routerDecisions, decisionCounts(await scrapeAdmin(stack.routers[0].adminUrl)));
      await stack.routers[0].kill();
      await sleep(o.routerDownMs);
      await stack.routers[0].restart();
    }, { checkMap: true });

    await fault("worker-restart", () => stack.sims.restartReplica(0, o.workerDownMs), { checkMap: true });

    await fault("batch-faults", async () => {
      const p = o.batchFaultRate;
      await stack.sims.setFaults(0, { lose: p, duplicate: p, reorder: p, replay: p });
      await sleep(o.batchFaultMs);
      await stack.sims.setFaults(0, {});
    }, { checkMap: true });

    await traffic.stop();
    addCounts(routerDecisions, decisionCounts(await scrapeAdmin(stack.routers[0].adminUrl)));
    const all = phaseFigures("all", records, 0, 0, traffic.now(), 0, null, null, null);
    const sims = await stack.sims.stats();
    const others = phases.filter((p) => p.name !== "router-restart");
    const outsideRouterDown = others.reduce((n, p) => n + p.failed, 0);
    return {
      command,
      machine: machine(),
      options: strip(o),
      messageTimeoutMs: SHIPPED_MESSAGE_TIMEOUT_MS,
      phases,
      totals: { requests: all.requests, answered: all.answered, late: all.late, lateOutsideRouterRestart: others.reduce((n, p) => n + p.late, 0), failed: all.failed, failedOutsideRouterDown: outsideRouterDown, latencyP99Ms: all.latencyP99Ms, latencyMaxMs: all.latencyMaxMs },
      routerDecisions,
      proxy: sims.proxies[0],
      reporters: sims.reporters,
    };
  } finally {
    await traffic.stop().catch(() => undefined);
    for (const c of clients) c.close();
    clients = [];
    await stack.close();
  }
}

/**
 * Stops the load and waits for the reporters to go idle; then (1) polls until the map equals the
 * replicas' caches, and (2) has every replica resync and times the map's equality from the moment
 * the last resync completed.
 */
async function checkMap(stack: RobustStack, traffic: ChatTraffic, o: ChaosOptions): Promise<MapCheck> {
  await traffic.stop();
  await stack.sims.flush(o.mapTimeoutMs);
  const untilEqual = async (since: number): Promise<{ last: MapComparison; ms: number | null }> => {
    let last: MapComparison = { equal: false, workers: [] };
    while (Date.now() - since < o.mapTimeoutMs) {
      last = await stack.map.compare(await stack.sims.truth());
      if (last.equal) return { last, ms: Date.now() - since };
      await sleep(20);
    }
    return { last, ms: null };
  };
  const settled = await untilEqual(Date.now());
  const resyncDone = await stack.sims.resync(o.mapTimeoutMs);
  const afterResync = resyncDone === null ? { last: settled.last, ms: null } : await untilEqual(resyncDone);
  return {
    equal: settled.ms !== null && afterResync.ms !== null,
    convergedMs: settled.ms,
    afterResyncMs: afterResync.ms,
    last: settled.ms === null ? settled.last : afterResync.last,
  };
}

function phaseFigures(name: string, all: readonly RequestRecord[], faultMs: number, fromMs: number, toMs: number, faultEndMs: number, baseline: number | null, recovery: number | null, map: MapCheck | null): PhaseFigures {
  const rs = all.filter((r) => r.atMs >= fromMs && r.atMs < toMs);
  const answered = rs.filter((r) => r.outcome === "answered");
  const latencies = answered.map((r) => r.latencyMs);
  const after = recovery === null ? [] : rs.filter((r) => r.atMs >= faultEndMs + recovery);
  return {
    name,
    faultMs: Math.round(faultMs),
    requests: rs.length,
    answered: answered.length,
    late: rs.filter((r) => r.outcome === "late").length,
    failed: rs.filter((r) => r.outcome === "failed").length,
    latencyP50Ms: round(percentile(latencies, 50)),
    latencyP99Ms: round(percentile(latencies, 99)),
    latencyMaxMs: round(percentile(latencies, 100)),
    decisions: countBy(answered, (r) => r.decision),
    fallbacks: countBy(answered, (r) => (r.decision === "fallback" ? (r.reason ?? "?") : null)),
    baselineHitShare: round(baseline, 3),
    hitShareAfter: round(followUpHitShare(after), 3),
    cachedTokenShare: round(cachedTokenShare(rs), 3),
    hitRecoveryMs: recovery === null ? null : Math.round(recovery),
    map,
  };
}

export function describe(p: PhaseFigures): string {
  const map = p.map ? ` | map ${p.map.equal ? `equal after ${p.map.convergedMs} ms once idle, ${p.map.afterResyncMs} ms after a resync)` : `NOT equal ${JSON.stringify(p.map.last.workers)}`}` : "";
  const fallbacks = Object.entries(p.fallbacks).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  return (
    `${p.name.padEnd(15)} fault ${String(p.faultMs).padStart(5)} ms | ${p.requests} req: ${p.answered} answered, ${p.late} late, ${p.failed} failed | ` +
    `p50 ${p.latencyP50Ms} p99 ${p.latencyP99Ms} max ${p.latencyMaxMs} ms | fallbacks ${fallbacks} | hits ${p.baselineHitShare ?? "-"} → recovered in ${p.hitRecoveryMs ?? "never"} ms${map}`
  );
}

function strip(o: ChaosOptions): Omit<ChaosOptions, "log"> {
  const { log: _log, ...rest } = o;
  return rest;
}
