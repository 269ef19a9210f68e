/**
 * The request path, end to end, with no Envoy in sight: body → prompt → token ids → block keys →
 * cache lookup → Sticky-Least-Loaded → in-flight accounting and speculative record.
 * Everything that can go wrong on the way is a value (a Failure) and ends in the fallback policy
 * (least-loaded among the eligible workers) with a reason; only "no eligible worker" rejects.
 */
import type { LimitsConfig, RouterConfig, WorkerConfig } from "../config/schema";
import { fail, type Failure, type Outcome as Result } from "../failure";
import { blockKeys } from "../prefix/block-keys";
import type { ChatPrompt, Prompt } from "../request/prompt";
import { parseOpenAiBody } from "../request/parse-openai-body";
import { InFlightTracker } from "../routing/in-flight-tracker";
import type { LoadGuard, PolicyDecision } from "../routing/policy";
import { createPolicy, type PolicySpec } from "../routing/policies/create-policy";
import { KeyPopularity } from "../routing/policies/key-popularity";
import { prefixMatch, type RoutingPolicy } from "../routing/policies/routing-policy";
import { leastLoaded, type WorkerView } from "../routing/worker-view";
import type { CacheIndex } from "../state/cache-index";
import { withDeadline } from "../common/deadline";
import { KeyedSerializer } from "../common/keyed-serializer";
import { UNOBSERVED, type DecisionStages } from "./decision-stages";
import { ModelCatalog, type CatalogModel } from "./model-catalog";
import type { RouteReason, RouteRequest, RouteResult } from "./route-result";

export interface PromptTokenizer {
  render(prompt: ChatPrompt): Result<string>;
  encode(text: string, addSpecialTokens: boolean): Promise<Result<Uint32Array>>;
  checkIds(ids: readonly number[]): Result<Uint32Array>;
}

export interface TokenizerSource {
  get(model: string): PromptTokenizer | undefined;
}

export interface RequestRouterDeps {
  readonly config: Pick<RouterConfig, "blockSize" | "hashSeed" | "models" | "workers" | "routing" | "limits">;
  /** Only lookups and speculative records: the router never writes confirmed state. */
  readonly index: Pick<CacheIndex, "lookup" | "addSpeculative">;
  readonly tokenizers: TokenizerSource;
  readonly inFlight?: InFlightTracker;
  /** Uniform [0, 1): tie-breaks for requests without a prefix. Injected for tests. */
  readonly random?: () => number;
  /** Called when a speculative record fails (the decision itself is unaffected). */
  readonly onBackgroundError?: (error: unknown) => void;
  /** Workers that stopped reporting KV events (liveness timeout): not candidates while others are. */
  readonly staleWorkers?: () => ReadonlySet<string>;
}

export interface Explanation {
  readonly prompt: Prompt | null;
  readonly model: string | null;
  readonly workers: readonly WorkerView[];
  /** Why the request would be routed by the fallback policy, if it would. */
  readonly failure: Failure | null;
  /** The rendered chat text (chat prompts). */
  readonly text?: string | null;
  /** Tokens covered by full blocks. */
  readonly tokens: number | null;
  readonly keys: readonly string[];
  readonly runs: ReadonlyMap<string, number>;
  readonly decision: PolicyDecision | null;
  readonly guard?: LoadGuard;
}

const NO_RUNS: ReadonlyMap<string, number> = new Map();

/** routing config → policy spec: the one place the server's policies are built. */
function policySpec(routing: RouterConfig["routing"], guard: LoadGuard, random: () => number, popularity: KeyPopularity | null): PolicySpec {
  switch (routing.policy) {
    case "sticky-least-loaded":
      return { kind: "sticky-least-loaded", loadGuard: guard, minGainBlocks: routing.minGainBlocks };
    case "round-robin":
      return { kind: "round-robin" };
    case "random":
      return { kind: "random", random };
    case "least-loaded":
      return { kind: "least-loaded" };
    case "consistent-hash":
      return { kind: "consistent-hash", popularity: popularity!, ...routing.consistentHash };
    default: {
      const unknown: never = routing.policy;
      throw new Error(`unknown routing policy ${String(unknown)}`);
    }
  }
}

const PARSED_PATHS = new Set(["/v1/completions", "/v1/chat/completions"]);

function pathOnly(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.slice(0, q);
}

export class RequestRouter {
  readonly inFlight: InFlightTracker;
  private readonly catalog: ModelCatalog;
  private readonly serializer = new KeyedSerializer();
  private readonly random: () => number;
  private readonly limits: LimitsConfig;
  private readonly guard: LoadGuard;
  private readonly policy: RoutingPolicy;
  /** Block popularity of routed requests (only consistent-hash reads it). */
  private readonly popularity: KeyPopularity | null;
  private sequence = 0;

  constructor(private readonly deps: RequestRouterDeps) {
    const { config } = deps;
    this.catalog = new ModelCatalog(config.models, config.workers, config.hashSeed);
    this.inFlight = deps.inFlight ?? new InFlightTracker();
    this.random = deps.random ?? Math.random;
    this.limits = config.limits;
    this.guard = { ...config.routing.loadGuard };
    const routing = config.routing;
    this.popularity = routing.policy === "consistent-hash" ? new KeyPopularity({ window: routing.consistentHash.window }) : null;
    this.policy = createPolicy(policySpec(routing, this.guard, this.random, this.popularity));
  }

  async route(request: RouteRequest, stages: DecisionStages = UNOBSERVED): Promise<RouteResult> {
    const started = process.hrtime.bigint();
    const micros = () => Number((process.hrtime.bigint() - started) / 1000n);

    const prompt = stages.run("parse", () => this.understand(request));
    const model = prompt.ok ? this.catalog.resolve(prompt.value.model) : undefined;
    const modelName = prompt.ok ? prompt.value.model : null;
    const eligible = this.eligibleWorkers(model, request.subset);
    if (eligible.length === 0) {
      const why = request.subset ? "no worker of the subset hint serves this request" : `no worker serves model ${modelName}`;
      return { kind: "reject", status: 503, reason: "no-eligible-worker", detail: why, model: modelName, decisionMicros: micros() };
    }
    if (!prompt.ok) return this.fallback(eligible, prompt.failure, modelName, micros);
    if (!model) return this.fallback(eligible, { code: "unknown-model", detail: `model ${JSON.stringify(modelName)} is not configured` }, modelName, micros);

    const keys = await withDeadline(this.keysFor(model, prompt.value, stages), this.deps.config.routing.decisionTimeoutMs);
    if (!keys.done) {
      const failure: Failure = keys.error
        ? { code: "tokenize-error", detail: String(keys.error) }
        : { code: "decision-timeout", detail: `tokenizing took over ${this.deps.config.routing.decisionTimeoutMs} ms` };
      return this.fallback(eligible, failure, model.name, micros);
    }
    if (!keys.value.ok) return this.fallback(eligible, keys.value.failure, model.name, micros);
    const chain = keys.value.value;

    // Same first block → same queue, so a burst on one new prefix sees its own speculative entries.
    return this.serializer.run(chain[0] ?? `nochain:${this.random()}`, () => this.decide(model, eligible, chain, micros, stages));
  }

  /**
   * The same path as route(), without side effects (no in-flight count, no speculative record):
   * what `prefix-router explain` prints. `loads` overrides the in-flight counts (e.g. a running
   * router's, read from its admin port).
   */
  async explain(request: RouteRequest, loads?: ReadonlyMap<string, number>): Promise<Explanation> {
    const prompt = this.understand(request);
    const model = prompt.ok ? this.catalog.resolve(prompt.value.model) : undefined;
    const eligible = this.eligibleWorkers(model, request.subset);
    const views = eligible.map((w) => ({ id: w.id, address: w.address, inFlight: loads?.get(w.id) ?? this.inFlight.inFlight(w.id) }));
    const base = { prompt: prompt.ok ? prompt.value : null, model: model?.name ?? null, workers: views };
    if (!prompt.ok) return { ...base, failure: prompt.failure, tokens: null, keys: [], runs: new Map(), decision: null };
    if (!model) return { ...base, failure: { code: "unknown-model", detail: `model ${JSON.stringify(prompt.value.model)} is not configured` }, tokens: null, keys: [], runs: new Map(), decision: null };
    const tokenizer = this.deps.tokenizers.get(model.name);
    const text = prompt.value.kind === "chat" && tokenizer ? tokenizer.render(prompt.value) : null;
    const keys = await this.keysFor(model, prompt.value, UNOBSERVED);
    if (!keys.ok) return { ...base, failure: keys.failure, tokens: null, text: text?.ok ? text.value : null, keys: [], runs: new Map(), decision: null };
    const runs = this.policy.usesMatch ? await this.deps.index.lookup(keys.value, views.map((w) => w.id)) : NO_RUNS;
    const match = prefixMatch(keys.value, runs);
    const decision = this.policy.decide({ workers: views, keys: keys.value, match: this.policy.usesMatch ? match : null, sequence: this.sequence });
    return { ...base, failure: null, text: text?.ok ? text.value : null, tokens: keys.value.length * this.deps.config.blockSize, keys: keys.value, runs, decision, guard: this.guard };
  }

  private understand(request: RouteRequest): Result<Prompt> {
    if (request.bodyUnavailable) return fail(request.bodyUnavailable, "request body not available in this processing mode");
    if (request.body === null) return fail("no-body", `${request.method} ${request.path} carries no body`);
    const path = pathOnly(request.path);
    if (!PARSED_PATHS.has(path)) return fail("unsupported-path", `${path} is not a completions or chat completions path`);
    return parseOpenAiBody(path, request.body, this.limits);
  }

  private eligibleWorkers(model: CatalogModel | undefined, subset: readonly string[] | null): readonly WorkerConfig[] {
    let base = model ? model.workers : this.catalog.allWorkers;
    if (subset !== null) {
      const allowed = new Set(subset);
      base = base.filter((w) => allowed.has(w.address));
    }
    const stale = this.deps.staleWorkers?.();
    if (!stale || stale.size === 0) return base;
    // Never take traffic down: when every eligible worker looks stale, the event path is what broke.
    const live = base.filter((w) => !stale.has(w.id));
    return live.length > 0 ? live : base;
  }

  private async keysFor(model: CatalogModel, prompt: Prompt, stages: DecisionStages): Promise<Result<string[]>> {
    const tokenizer = this.deps.tokenizers.get(model.name);
    if (!tokenizer) return fail("unknown-model", `no tokenizer loaded for ${model.name}`);
    let ids: Result<Uint32Array>;
    if (prompt.kind === "completion-ids") {
      ids = stages.run("tokenize", () => tokenizer.checkIds(prompt.ids));
    } else {
      const text = prompt.kind === "chat" ? stages.run("template", () => tokenizer.render(prompt)) : { ok: true as const, value: prompt.text };
      if (!text.ok) return text;
      ids = await stages.run("tokenize", () => tokenizer.encode(text.value, prompt.addSpecialTokens));
    }
    if (!ids.ok) return ids;
    const tokens = ids.value;
    return stages.run("hash", () => ({ ok: true as const, value: blockKeys(tokens, this.deps.config.blockSize, model.root) }));
  }

  private async decide(model: CatalogModel, eligible: readonly WorkerConfig[], chain: string[], micros: () => number, stages: DecisionStages): Promise<RouteResult> {
    const ids = eligible.map((w) => w.id);
    let runs: ReadonlyMap<string, number> = NO_RUNS;
    if (this.policy.usesMatch) {
      const lookup = await stages.run("lookup", () => withDeadline(this.deps.index.lookup(chain, ids), this.deps.config.routing.lookupTimeoutMs));
      if (!lookup.done) {
        const detail = lookup.error ? `cache lookup failed: ${String(lookup.error)}` : "cache lookup timed out";
        return this.fallback(eligible, { code: "store-error", detail }, model.name, micros, chain.length);
      }
      runs = lookup.value;
    }
    const match = chain.length ? prefixMatch(chain, runs) : { totalBlocks: 0, runs, seed: this.randomSeed() };
    const decision = stages.run("pick", () =>
      this.policy.decide({ workers: this.inFlight.snapshot(eligible), keys: chain, match: this.policy.usesMatch ? match : null, sequence: this.sequence++ }),
    );
    if (decision.kind === "reject") {
      return { kind: "reject", status: 503, reason: "no-eligible-worker", detail: "no candidates", model: model.name, decisionMicros: micros() };
    }
    const release = this.inFlight.acquire(decision.worker.id);
    this.popularity?.observe(chain);
    if (this.policy.usesMatch) this.recordSpeculatively(decision.worker.id, chain);
    const reason: RouteReason | null = decision.guardTripped ? "load-guard" : decision.gainDeclined ? "min-gain" : null;
    return {
      kind: "route",
      worker: decision.worker,
      outcome: decision.outcome,
      reason,
      detail: decision.guardTripped ? "longer match only on overloaded workers" : decision.gainDeclined ? "the longer match led the least-loaded worker's by too few blocks" : null,
      model: model.name,
      matchedBlocks: decision.matchedBlocks,
      totalBlocks: decision.totalBlocks,
      candidates: decision.candidates,
      decisionMicros: micros(),
      release,
      fallbacks: this.fallbacksAfter(eligible, decision.worker.id),
    };
  }

  private recordSpeculatively(worker: string, chain: readonly string[]): void {
    const ttl = this.deps.config.routing.speculativeTtlMs;
    if (ttl <= 0 || chain.length === 0) return;
    this.deps.index.addSpeculative(worker, chain, ttl).catch((err: unknown) => this.deps.onBackgroundError?.(err));
  }

  private fallback(eligible: readonly WorkerConfig[], failure: Failure, model: string | null, micros: () => number, totalBlocks = 0): RouteResult {
    const worker = leastLoaded(this.inFlight.snapshot(eligible), this.randomSeed());
    if (!worker) return { kind: "reject", status: 503, reason: "no-eligible-worker", detail: "no candidates", model, decisionMicros: micros() };
    return {
      kind: "route",
      worker,
      outcome: "fallback",
      reason: failure.code,
      detail: failure.detail,
      model,
      matchedBlocks: 0,
      totalBlocks,
      candidates: eligible.length,
      decisionMicros: micros(),
      release: this.inFlight.acquire(worker.id),
      fallbacks: this.fallbacksAfter(eligible, worker.id),
    };
  }

  /** The eligible workers other than the pick, least-loaded first (Envoy's retry order). */
  private fallbacksAfter(eligible: readonly WorkerConfig[], picked: string): readonly WorkerView[] {
    return [...this.inFlight.snapshot(eligible.filter((w) => w.id !== picked))].sort((a, b) => a.inFlight - b.inFlight);
  }

  private randomSeed(): number {
    return Math.floor(this.random() * 0x1_0000_0000) >>> 0;
  }
}
