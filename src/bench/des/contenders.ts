/**
 * The policies the benchmark compares, each a production or baseline RoutingPolicy plus what feeds
 * it. Every contender sees the same frozen WorkerView snapshot and block keys; they differ only in
 * the policy and in what the policy may know about the replicas' caches:
 *
 *   round-robin, random, least-loaded   nothing (cache-blind)
 *   consistent-hash                     key popularity of the requests it routed (bounded loads, c = 1.25)
 *   approximate                         its own past decisions: one LRU per replica sized like the
 *                                       replica's cache, fed with each routed prompt (GIE / SGLang style)
 *   prefix-router                       the production MemoryCacheIndex fed with the replicas' KV events
 *                                       (batched, delayed) + speculative records with the production TTL,
 *                                       exactly as RequestRouter records them
 *   oracle                              the replicas' exact caches at the decision instant, plus the
 *                                       prompts already routed to a replica and still in flight (they
 *                                       will be cached before the new request runs)
 * All three cache-aware contenders run the production Sticky-Least-Loaded with the same load guard.
 */
import type { BlockKey } from "../../prefix/block-keys";
import type { LoadGuard, PrefixMatch } from "../../routing/policy";
import { createPolicy } from "../../routing/policies/create-policy";
import { KeyPopularity } from "../../routing/policies/key-popularity";
import { prefixMatch as matchOf, type RoutingPolicy, type TieSeed } from "../../routing/policies/routing-policy";
import { DEFAULT_LOAD_GUARD } from "../../routing/policies/sticky-least-loaded-policy";
import type { IndexOp, WorkerId } from "../../state/cache-index";
import { MemoryCacheIndex } from "../../state/memory-cache-index";
import type { EngineKvEvent, ReplicaEngine } from "../../sim/replica-model";
import { Rng } from "../workloads/rng";
import { LruSet } from "./lru-set";

export const CONTENDERS = ["round-robin", "random", "least-loaded", "consistent-hash", "approximate", "prefix-router", "oracle"] as const;
export type ContenderName = (typeof CONTENDERS)[number];

/** Production defaults (src/config/schema.ts): speculative TTL 10 s, index bound 4,000,000 keys. */
export const SPECULATIVE_TTL_MS = 10_000;
const INDEX_MAX_ENTRIES = 4_000_000;

export interface ClusterAccess {
  readonly workerIds: readonly WorkerId[];
  /** Blocks per replica (sizes the approximate router's LRUs). */
  readonly totalBlocks: number;
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
}

export interface Contender {
  readonly name: ContenderName;
  readonly policy: RoutingPolicy;
  /** Whether KV events must be delivered (only the event-fed index uses them). */
  readonly wantsKvEvents: boolean;
  /** The PrefixMatch the policy reads, or null for a cache-blind policy. */
  match(keys: readonly BlockKey[]): PrefixMatch | null;
  /** Bookkeeping right after a decision (speculative record, LRU insert, popularity). */
  routed(keys: readonly BlockKey[], worker: WorkerId): void;
  /** The request finished on `worker`. */
  completed(keys: readonly BlockKey[], worker: WorkerId): void;
  /** A batch of KV events from `worker` reached the router. */
  kvEvents(worker: WorkerId, events: readonly EngineKvEvent[]): void;
}

const noop = () => {};

function blind(name: ContenderName, policy: RoutingPolicy, routed: Contender["routed"] = noop): Contender {
  return { name, policy, wantsKvEvents: false, match: () => null, routed, completed: noop, kvEvents: noop };
}

export function toIndexOps(events: readonly EngineKvEvent[]): IndexOp[] {
  return events.map((e): IndexOp => (e.type === "stored" ? { op: "add", keys: e.keys } : e.type === "removed" ? { op: "remove", keys: e.keys } : { op: "clear" }));
}

export function createContender(name: ContenderName, cluster: ClusterAccess, options: ContenderOptions): Contender {
  const guard = options.loadGuard ?? DEFAULT_LOAD_GUARD;
  const sticky = () => createPolicy({ kind: "sticky-least-loaded", loadGuard: guard, minGainBlocks: options.minGainBlocks });
  const ids = cluster.workerIds;
  const prefixMatch = (keys: readonly BlockKey[], runs: ReadonlyMap<WorkerId, number>) => matchOf(keys, runs, options.tieSeed);
  switch (name) {
    case "round-robin":
      return blind(name, createPolicy({ kind: "round-robin" }));
    case "random": {
      const rng = new Rng(options.seed ^ 0x5eed);
      return blind(name, createPolicy({ kind: "random", random: () => rng.next() }));
    }
    case "least-loaded":
      return blind(name, createPolicy({ kind: "least-loaded" }));
    case "consistent-hash": {
      const popularity = new KeyPopularity();
      return blind(name, createPolicy({ kind: "consistent-hash", popularity }), (keys) => popularity.observe(keys));
    }
    case "approximate": {
      const lru = new Map(ids.map((w) => [w, new LruSet(cluster.totalBlocks)]));
      return {
        name,
        policy: sticky(),
        wantsKvEvents: false,
        match: (keys) => prefixMatch(keys, new Map(ids.map((w) => [w, lru.get(w)!.leadingRun(keys)]))),
        routed: (keys, worker) => lru.get(worker)!.touchChain(keys),
        completed: noop,
        kvEvents: noop,
      };
    }
    case "prefix-router": {
      const index = new MemoryCacheIndex({ maxEntries: INDEX_MAX_ENTRIES, now: () => cluster.now() });
      const ttl = options.speculativeTtlMs ?? SPECULATIVE_TTL_MS;
      return {
        name,
        policy: sticky(),
        wantsKvEvents: true,
        match: (keys) => prefixMatch(keys, index.lookupNow(keys, ids)),
        // RequestRouter.recordSpeculatively: the whole chain, fire and forget (the body is synchronous).
        routed: (keys, worker) => {
          if (ttl > 0 && keys.length > 0) void index.addSpeculative(worker, keys, ttl);
        },
        completed: noop,
        kvEvents: (worker, events) => void index.apply(worker, toIndexOps(events)),
      };
    }
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
        policy: sticky(),
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
