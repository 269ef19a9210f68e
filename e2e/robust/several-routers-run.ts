/**
 * Several routers: 3 router processes sharing one Redis, one chat load spread over them so that
 * every follow-up turn is decided by a different router than the turn before it (turn t of
 * conversation c goes to router (c + t) mod 3). The replicas report KV events to the routers in
 * turn (replica i → router i mod 3) and every router scrapes every replica's /metrics.
 * Figures: how often a follow-up went to the replica that served the conversation's previous turn
 * (stickiness across routers), follow-up hit decisions, cached-token share from the replicas'
 * usage, and requests per replica (balance: max / mean, min / mean).
 */
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { ChatTraffic, type RequestRecord } from "./support/chat-traffic";
import { cachedTokenShare, countBy, followUpHitShare, machine, percentile, round, type RequestOutcomes, type RunHeader } from "./support/figures";
import { startRobustStack } from "./support/robust-stack";

export interface SeveralRoutersOptions {
  readonly routers: number;
  readonly replicas: number;
  readonly requests: number;
  readonly concurrency: number;
  readonly seed: number;
}

export const SHORT_SEVERAL: SeveralRoutersOptions = { routers: 3, replicas: 4, requests: 500, concurrency: 16, seed: 5 };

export interface SeveralRoutersReport extends RunHeader<SeveralRoutersOptions>, RequestOutcomes {
  readonly latencyP99Ms: number | null;
  /** Follow-ups (decided by another router than their previous turn) served by the previous turn's replica. */
  readonly followUps: number;
  readonly stickyShare: number | null;
  readonly followUpHitShare: number | null;
  readonly cachedTokenShare: number | null;
  readonly perReplica: Record<string, number>;
  readonly perRouter: Record<string, number>;
  readonly balanceMaxOverMean: number;
  readonly balanceMinOverMean: number;
  readonly decisions: Record<string, number>;
}

export async function runSeveralRouters(o: SeveralRoutersOptions, command: string): Promise<SeveralRoutersReport> {
  const stack = await startRobustStack({
    routers: o.routers,
    replicas: o.replicas,
    totalBlocks: 4_000,
    timeScale: 0.05,
    seed: o.seed,
    // One tokenizer thread each: three routers share two cores.
    routerConfig: { tokenizerCache: { threads: 1 } },
  });
  const clients = stack.endpoints.map((e) => new EnvoyExtProcClient(e.extProc));
  const records: RequestRecord[] = [];
  try {
    const traffic = new ChatTraffic({
      clients: () => clients,
      replicas: stack.addresses,
      concurrency: o.concurrency,
      seed: o.seed,
      requests: o.requests,
      routerFor: (conversation, turn, _i, n) => (conversation + turn) % n,
      onRecord: (r) => records.push(r),
    });
    traffic.start();
    await traffic.done();
    const answered = records.filter((r) => r.outcome === "answered");
    const follow = answered.filter((r) => r.turn >= 1 && r.previousServedBy !== null && r.servedBy !== null);
    const perReplica = countBy(records, (r) => r.servedBy);
    const counts = stack.ids.map((id) => perReplica[id] ?? 0);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    return {
      command,
      machine: machine(),
      options: o,
      requests: records.length,
      answered: answered.length,
      late: records.filter((r) => r.outcome === "late").length,
      failed: records.filter((r) => r.outcome === "failed").length,
      latencyP99Ms: round(percentile(answered.map((r) => r.latencyMs), 99)),
      followUps: follow.length,
      stickyShare: follow.length === 0 ? null : round(follow.filter((r) => r.servedBy === r.previousServedBy).length / follow.length, 3),
      followUpHitShare: round(followUpHitShare(records), 3),
      cachedTokenShare: round(cachedTokenShare(records), 3),
      perReplica,
      perRouter: countBy(records, (r) => `router-${r.router + 1}`),
      balanceMaxOverMean: round(Math.max(...counts) / mean, 2)!,
      balanceMinOverMean: round(Math.min(...counts) / mean, 2)!,
      decisions: countBy(answered, (r) => (r.decision === "fallback" ? `fallback/${r.reason}` : r.decision)),
    };
  } finally {
    for (const c of clients) c.close();
    await stack.close();
  }
}

export function describeSeveral(r: SeveralRoutersReport): string {
  return [
    `${r.options.routers} routers, ${r.options.replicas} replicas, ${r.requests} requests (${r.answered} answered, ${r.late} late, ${r.failed} failed; p99 ${r.latencyP99Ms} ms)`,
    `follow-ups decided by another router: ${r.followUps}, served by their previous turn's replica: ${r.stickyShare}; hit decisions ${r.followUpHitShare}; cached tokens ${r.cachedTokenShare}`,
    `requests per replica ${JSON.stringify(r.perReplica)} (max/mean ${r.balanceMaxOverMean}, min/mean ${r.balanceMinOverMean}); per router ${JSON.stringify(r.perRouter)}`,
    `decisions ${JSON.stringify(r.decisions)}`,
  ].join("\n");
}
