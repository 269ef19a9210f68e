/**
 * The policies the benchmark compares. Each runs the production DecisionCore (routing/decision-core.ts)
 * with a production or baseline RoutingPolicy; they differ in the policy, in what the policy may
 * know of the replicas' caches, and in which load signal they get — the one they would get in
 * production, never more:
 *
 *   round-robin, random,        Envoy's own load balancers, cache-blind. Load = requests whose
 *   least-loaded,               response has not ended (what Envoy's least_request counts);
 *   consistent-hash             consistent-hash (bounded loads) also counts block popularity.
 *
 *   prefix-router               the production default (min-ttft) on the production MemoryCacheIndex
 *                               fed with the replicas' KV events (batched, delayed) + speculative
 *                               records, as RequestRouter records them. Load = what the router has in
 *                               production: its ledger and each replica's /metrics scraped every
 *                               scrapeIntervalMs and delivered scrapeDelayMs later (simulate.ts says
 *                               when its Envoy stream ends).
 *   sticky-least-loaded         the original policy (fixed min-gain rule) on the same index and signals.
 *   approximate                 min-ttft on its own past decisions: one LRU per replica sized like the
 *                               replica's cache, fed with each routed prompt (GIE / SGLang style).
 *   oracle                      min-ttft on the replicas' exact caches at the decision instant, plus
 *                               the prompts already routed to a replica and still in flight.
 */
import type { BlockKey } from "../../prefix/block-keys";
import { DEFAULT_COST_MODEL, type CostModel } from "../../routing/cost-model";
import { DecisionCore, DEFAULT_EXPECTED_OUTPUT_TOKENS } from "../../routing/decision-core";
import { InFlightTracker } from "../../routing/in-flight-tracker";
import { LoadBoard } from "../../routing/load/load-board";
import type { LoadGuard, PrefixMatch } from "../../routing/policy";
import { createPolicy, type PolicySpec } from "../../routing/policies/create-policy";
import { KeyPopularity } from "../../routing/policies/key-popularity";
import { prefixMatch as matchOf, type TieSeed } from "../../routing/policies/routing-policy";
import { DEFAULT_LOAD_GUARD } from "../../routing/policies/sticky-least-loaded-policy";
import type { IndexOp, WorkerId } from "../../state/cache-index";
import { MemoryCacheIndex } from "../../state/memory-cache-index";
import type { EngineKvEvent, ReplicaEngine } from "../../sim/replica-model";
import { Rng } from "../workloads/rng";
import { LruSet } from "./lru-set";

export const CONTENDERS = ["round-robin", "random", "least-loaded", "consistent-hash", "approximate", "sticky-least-loaded", "prefix-router", "oracle"] as const;
export type ContenderName = (typeof CONTENDERS)[number];

/** The cache-blind baselines, which production would run as Envoy's own load balancers. */
export const CACHE_BLIND: readonly ContenderName[] = ["round-robin", "random", "least-loaded", "consistent-hash"];

/** Production defaults (src/config/schema.ts): speculative TTL 10 s, index bound 4,000,000 keys. */
export const SPECULATIVE_TTL_MS = 10_000;
const INDEX_MAX_ENTRIES = 4_000_000;

export interface ClusterAccess {
  readonly workerIds: readonly WorkerId[];
  /** Blocks per replica (sizes the approximate router's LRUs). */
  readonly totalBlocks: number;
  readonly blockSize: number;
  /** The virtual clock. */
  now(): number;
  /** The replica's engine (read only by the oracle). */
  engine(worker: WorkerId): ReplicaEngine;
}

export interface ContenderOptions {
  readonly seed: number;
  readonly loadGuard?: LoadGuard;
  /** Minimum gain of sticky-least-loaded (default: the production 16 blocks). */
  readonly minGainBlocks?: number;
  /** Which block seeds tie-breaks (default: the production "last"). */
  readonly tieSeed?: TieSeed;
  readonly speculativeTtlMs?: number;
  /** What the router believes the replicas cost (default: DESIGN §7, the simulator's own model). */
  readonly cost?: CostModel;
}

/** Which load signal a contender gets (see the header). */
export type LoadSignals = "envoy-lb" | "router";

export interface Contender {
  readonly name: ContenderName;
  readonly core: DecisionCore;
  readonly signals: LoadSignals;
  /** Whether KV events must be delivered (only the event-fed index uses them). */
  readonly wantsKvEvents: boolean;
  /** The PrefixMatch the policy reads, or null for a cache-blind policy. */
  match(keys: readonly BlockKey[]): PrefixMatch | null;
  /** Bookkeeping right after a decision (speculative record, LRU insert). */
  routed(keys: readonly BlockKey[], worker: WorkerId): void;
  /** The request finished on `worker`. */
  completed(keys: readonly BlockKey[], worker: WorkerId): void;
  /** A batch of KV events from `worker` reached the router. */
  kvEvents(worker: WorkerId, events: readonly EngineKvEvent[]): void;
}

const noop = () => {};

export function toIndexOps(events: readonly EngineKvEvent[]): IndexOp[] {
  return events.map((e): IndexOp => (e.type === "stored" ? { op: "add", keys: e.keys } : e.type === "removed" ? { op: "remove", keys: e.keys } : { op: "clear" }));
}

export function createContender(name: ContenderName, cluster: ClusterAccess, options: ContenderOptions): Contender {
  const ids = cluster.workerIds;
  const popularity = new KeyPopularity();
  const cost = options.cost ?? DEFAULT_COST_MODEL;
  const core = (spec: PolicySpec) =>
    new DecisionCore({
      policy: createPolicy(spec),
      inFlight: new InFlightTracker(),
      board: new LoadBoard(),
      popularity,
      cost,
      blockSize: cluster.blockSize,
      expectedOutputTokens: DEFAULT_EXPECTED_OUTPUT_TOKENS,
    });
  const defaultPolicy = (): PolicySpec => ({ kind: "min-ttft", cost, blockSize: cluster.blockSize, popularity });
  const prefixMatch = (keys: readonly BlockKey[], runs: ReadonlyMap<WorkerId, number>) => matchOf(keys, runs, options.tieSeed);
  const blind = (spec: PolicySpec): Contender => ({ name, core: core(spec), signals: "envoy-lb", wantsKvEvents: false, match: () => null, routed: noop, completed: noop, kvEvents: noop });
  const eventFed = (spec: PolicySpec): Contender => {
    const index = new MemoryCacheIndex({ maxEntries: INDEX_MAX_ENTRIES, now: () => cluster.now() });
    const ttl = options.speculativeTtlMs ?? SPECULATIVE_TTL_MS;
    return {
      name,
      core: core(spec),
      signals: "router",
      wantsKvEvents: true,
      match: (keys) => prefixMatch(keys, index.lookupNow(keys, ids)),
      // RequestRouter.recordSpeculatively: the whole chain, fire and forget (the body is synchronous).
      routed: (keys, worker) => {
        if (ttl > 0 && keys.length > 0) void index.addSpeculative(worker, keys, ttl);
      },
      completed: noop,
      kvEvents: (worker, events) => void index.apply(worker, toIndexOps(events)),
    };
  };
  switch (name) {
    case "round-robin":
      return blind({ kind: "round-robin" });
    case "random": {
      const rng = new Rng(options.seed ^ 0x5eed);
      return blind({ kind: "random", random: () => rng.next() });
    }
    case "least-loaded":
      return blind({ kind: "least-loaded" });
    case "consistent-hash":
      return blind({ kind: "consistent-hash", popularity });
    case "approximate": {
      const lru = new Map(ids.map((w) => [w, new LruSet(cluster.totalBlocks)]));
      return {
        name,
        core: core(defaultPolicy()),
        signals: "router",
        wantsKvEvents: false,
        match: (keys) => prefixMatch(keys, new Map(ids.map((w) => [w, lru.get(w)!.leadingRun(keys)]))),
        routed: (keys, worker) => lru.get(worker)!.touchChain(keys),
        completed: noop,
        kvEvents: noop,
      };
    }
    case "prefix-router":
      return eventFed(defaultPolicy());
    case "sticky-least-loaded":
      return eventFed({ kind: "sticky-least-loaded", loadGuard: options.loadGuard ?? DEFAULT_LOAD_GUARD, minGainBlocks: options.minGainBlocks, popularity });
    case "oracle": {
      const pending = new Map(ids.map((w) => [w, new Map<BlockKey, number>()]));
      const runOf = (w: WorkerId, keys: readonly BlockKey[]) => {
        const engine = cluster.engine(w);
        const inFlight = pending.get(w)!;
        let n = 0;
        while (n < keys.length && (inFlight.has(keys[n]) || engine.holds(keys[n]))) n++;
        return n;
      };
      return {
        name,
        core: core(defaultPolicy()),
        signals: "router",
        wantsKvEvents: false,
        match: (keys) => prefixMatch(keys, new Map(ids.map((w) => [w, runOf(w, keys)]))),
        routed: (keys, worker) => {
          const m = pending.get(worker)!;
          for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
        },
        completed: (keys, worker) => {
          const m = pending.get(worker)!;
          for (const k of keys) {
            const left = (m.get(k) ?? 1) - 1;
            if (left > 0) m.set(k, left);
            else m.delete(k);
          }
        },
        kvEvents: noop,
      };
    }
    default:
      return unknown(name);
  }
}

function unknown(name: never): never {
  throw new Error(`unknown contender ${JSON.stringify(name)}`);
}
