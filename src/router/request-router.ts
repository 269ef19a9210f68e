/**
 * The request path, end to end, with no Envoy in sight: body → prompt → token ids → block keys →
 * cache lookup → policy (routing/decision-core.ts) → in-flight, load ledger and speculative record.
 * Everything that can go wrong on the way is a value (a Failure) and ends in the fallback policy
 * (least outstanding work among the eligible workers) with a reason; only "no eligible worker"
 * rejects. route() and explain() run the same plan(); explain() only skips the commit.
 *
 * One deadline per request (routing.decisionTimeoutMs) starts when route() is called and covers
 * parsing, rendering, tokenizing and the lookup (the lookup also has its own routing.lookupTimeoutMs).
 * A large body (the pool's parsesBodiesOver, 16 KiB) is parsed in a tokenizer thread, not here.
 * No decision waits for another: concurrent requests on a new prefix see each other's routes
 * through the speculation overlay (routing/speculation-overlay.ts), merged synchronously.
 */
import type { LimitsConfig, RouterConfig, WorkerConfig } from "../config/schema";
import { fail, UNKNOWN_MODEL, type Failure, type Outcome as Result } from "../failure";
import { chainFrom, isChainPrefix, keyChain, type BlockKey, type BlockKeyBytes, type KeyChain } from "../prefix/block-keys";
import type { Prompt } from "../request/prompt";
import { parseOpenAiBody } from "../request/parse-openai-body";
import { DecisionCore, type DecisionInput } from "../routing/decision-core";
import { InFlightTracker } from "../routing/in-flight-tracker";
import { LoadBoard } from "../routing/load/load-board";
import type { LoadGuard, PolicyDecision } from "../routing/policy";
import { createPolicy, type PolicySpec } from "../routing/policies/create-policy";
import { KeyPopularity } from "../routing/policies/key-popularity";
import { prefixMatch } from "../routing/policies/routing-policy";
import { SpeculationOverlay } from "../routing/speculation-overlay";
import { leastLoaded, outstanding, type WorkerLoad, type WorkerView } from "../routing/worker-view";
import type { CacheIndex } from "../state/cache-index";
import type { HeadProbe, KeyedHead, PromptKeys, PromptKeySource } from "../tokenize/prompt-keyer";
import { withDeadline } from "../common/deadline";
import { UNOBSERVED, type DecisionStages } from "./decision-stages";
import { ModelCatalog, type CatalogModel } from "./model-catalog";
import type { RouteReason, RouteRequest, RouteResult } from "./route-result";

export interface RequestRouterDeps {
  readonly config: Pick<RouterConfig, "blockSize" | "hashSeed" | "models" | "workers" | "routing" | "limits">;
  /** Only lookups and speculative records: the router never writes confirmed state. */
  readonly index: Pick<CacheIndex, "lookup" | "addSpeculative">;
  /** Renders, tokenizes and hashes prompts: a tokenizer pool (worker threads) or a PromptKeyer. */
  readonly tokenizers: PromptKeySource;
  readonly inFlight?: InFlightTracker;
  /** The workers' load view; the service feeds it with scraped /metrics. */
  readonly board?: LoadBoard;
  /** Uniform [0, 1): tie-breaks for requests without a prefix. Injected for tests. */
  readonly random?: () => number;
  /** Monotonic milliseconds (default performance.now). Injected for tests. */
  readonly now?: () => number;
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
  /** The keys cover only the prompt's head: no worker held all of it (prompt-keyer.ts HeadProbe). */
  readonly headOnly?: boolean;
  readonly runs: ReadonlyMap<string, number>;
  readonly decision: PolicyDecision | null;
  readonly policy: RouterConfig["routing"]["policy"];
  readonly guard?: LoadGuard;
}

const NO_RUNS: ReadonlyMap<string, number> = new Map();

/** routing config → policy spec: the one place the server's policies are built. */
function policySpec(config: RequestRouterDeps["config"], random: () => number, popularity: KeyPopularity): PolicySpec {
  const routing = config.routing;
  switch (routing.policy) {
    case "min-ttft":
      return { kind: "min-ttft", cost: routing.costModel, blockSize: config.blockSize, popularity };
    case "sticky-least-loaded":
      return { kind: "sticky-least-loaded", loadGuard: routing.loadGuard, minGainBlocks: routing.minGainBlocks, popularity };
    case "round-robin":
      return { kind: "round-robin" };
    case "random":
      return { kind: "random", random };
    case "least-loaded":
      return { kind: "least-loaded" };
    case "consistent-hash":
      return { kind: "consistent-hash", popularity, ...routing.consistentHash };
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

interface DecidedPlan {
  readonly kind: "decide";
  /** Null when the body was parsed in a tokenizer thread. */
  readonly prompt: Prompt | null;
  readonly stream: boolean;
  readonly model: CatalogModel;
  readonly input: DecisionInput;
  readonly views: readonly WorkerView[];
  readonly runs: ReadonlyMap<string, number>;
  readonly decision: PolicyDecision;
  readonly text: string | null;
  /** The keys cover only the prompt's head: no worker held all of it (prompt-keyer.ts HeadProbe). */
  readonly headOnly: boolean;
  /** When headOnly: the whole prompt's keys once keyed (PromptKeys.rest). */
  readonly rest?: Promise<BlockKeyBytes | null>;
  /** route(): what the commit answered. */
  readonly result?: RouteResult;
}

type RejectPlan = { readonly kind: "reject"; readonly detail: string; readonly model: string | null };
type FallbackPlan = { readonly kind: "fallback"; readonly prompt: Prompt | null; readonly eligible: readonly WorkerConfig[]; readonly failure: Failure; readonly model: string | null; readonly keys: readonly string[]; readonly text: string | null };
type Plan = RejectPlan | FallbackPlan | DecidedPlan;

/** The index's answer for a chain: when it was asked (performance.now() and the router's clock) and what it said. */
interface ChainLookup {
  readonly chain: readonly BlockKey[];
  readonly runs: ReadonlyMap<string, number>;
  /** The router's clock (deps.now), for the overlay. */
  readonly startedAt: number;
  /** performance.now(), for the lookup stage. */
  readonly span: readonly [number, number];
}

/**
 * A lookup of a prompt's first blocks made before its keys came back (HeadProbe.prefix: the cached
 * prefix, looked up while the thread encodes the rest; or the last head the probe looked up).
 */
interface PrefixLookup {
  readonly chain: KeyChain;
  /** The workers it asked about. */
  readonly workers: readonly string[];
  /** Null when it failed: the decision looks the whole chain up itself. */
  readonly runs: Promise<ReadonlyMap<string, number> | null>;
  /** The router's clock (deps.now), for the overlay. */
  readonly startedAt: number;
}

/** What a request's probe looked up before its keys came back. */
interface Probed {
  /** The last head (a head decision's keys are that head's). */
  head: ChainLookup | null;
  /** The latest lookup of a prefix of the prompt, head or cached prefix. */
  prefix: PrefixLookup | null;
}

/** A prompt's keys, and what its probe looked up meanwhile. */
interface KeyedPrompt {
  readonly tokens: number;
  readonly chain: KeyChain;
  readonly complete: boolean;
  readonly probed: Probed;
  readonly rest?: Promise<BlockKeyBytes | null>;
}

/** Before the keys: no eligible worker (reject), or the eligible ones and how to fall back among them. */
type Front =
  | RejectPlan
  | { readonly kind: "front"; readonly eligible: readonly WorkerConfig[]; fallback(failure: Failure, keys?: readonly string[], text?: string | null): FallbackPlan };

export class RequestRouter {
  readonly inFlight: InFlightTracker;
  readonly board: LoadBoard;
  private readonly core: DecisionCore;
  private readonly catalog: ModelCatalog;
  private readonly overlay = new SpeculationOverlay();
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly limits: LimitsConfig;

  constructor(private readonly deps: RequestRouterDeps) {
    const { config } = deps;
    this.catalog = new ModelCatalog(config.models, config.workers, config.hashSeed);
    this.inFlight = deps.inFlight ?? new InFlightTracker();
    this.board = deps.board ?? new LoadBoard({ staleAfterMs: config.routing.load.staleAfterMs });
    this.random = deps.random ?? Math.random;
    this.now = deps.now ?? (() => performance.now());
    this.limits = config.limits;
    const popularity = new KeyPopularity();
    this.core = new DecisionCore({
      policy: createPolicy(policySpec(config, this.random, popularity)),
      inFlight: this.inFlight,
      board: this.board,
      popularity,
      cost: config.routing.costModel,
      blockSize: config.blockSize,
      expectedOutputTokens: config.routing.load.expectedOutputTokens,
    });
  }

  /** Each worker's load as the policy sees it now. */
  loads(): ReadonlyMap<string, WorkerLoad> {
    const views = this.core.snapshot(this.deps.config.workers, this.now());
    return new Map(views.map((v) => [v.id, v.load!]));
  }

  async route(request: RouteRequest, stages: DecisionStages = UNOBSERVED): Promise<RouteResult> {
    const started = this.now();
    const micros = () => Math.round((this.now() - started) * 1000);
    // The commit runs inside plan(), in the same synchronous stretch as the policy: a decision
    // that resumes later cannot decide between another's pick and its bookkeeping.
    const plan = await this.plan(request, stages, started + this.deps.config.routing.decisionTimeoutMs, undefined, (decided) => this.commit(decided, micros));
    switch (plan.kind) {
      case "reject":
        return { kind: "reject", status: 503, reason: "no-eligible-worker", detail: plan.detail, model: plan.model, decisionMicros: micros() };
      case "fallback":
        return this.fallback(plan.eligible, plan.failure, plan.model, micros, plan.keys.length);
      case "decide":
        return plan.result!;
    }
  }

  /**
   * The same path as route(), without side effects (no in-flight count, no ledger entry, no
   * speculative record): what `prefix-router explain` prints. `loads` replaces the workers' load
   * view (e.g. a running router's, read from its admin port).
   */
  async explain(request: RouteRequest, loads?: ReadonlyMap<string, WorkerLoad>): Promise<Explanation> {
    const plan = await this.plan(request, UNOBSERVED, Infinity, loads);
    const routing = this.deps.config.routing;
    const base = { policy: routing.policy, guard: routing.loadGuard };
    switch (plan.kind) {
      case "reject":
        return { ...base, prompt: null, model: plan.model, workers: [], failure: null, tokens: null, keys: [], runs: NO_RUNS, decision: { kind: "reject", reason: "no-candidates" } };
      case "fallback":
        return {
          ...base, prompt: plan.prompt, model: plan.model, workers: this.core.snapshot(plan.eligible, this.now()), failure: plan.failure,
          text: plan.text, tokens: null, keys: plan.keys, runs: NO_RUNS, decision: null,
        };
      case "decide":
        return {
          ...base, prompt: plan.prompt, model: plan.model.name, workers: plan.views, failure: null, text: plan.text,
          tokens: plan.input.keys.length * this.deps.config.blockSize, keys: plan.input.keys, headOnly: plan.headOnly, runs: plan.runs, decision: plan.decision,
        };
    }
  }

  private async plan(
    request: RouteRequest,
    stages: DecisionStages,
    deadline: number,
    loads?: ReadonlyMap<string, WorkerLoad>,
    commit?: (plan: DecidedPlan) => RouteResult,
  ): Promise<Plan> {
    // A large body is parsed in a tokenizer thread, not here (explain keeps the parsed prompt).
    const threadBody = commit !== undefined ? this.bodyForThread(request) : null;
    if (threadBody !== null) return this.planFromBody(request, threadBody, stages, deadline, commit!);
    const prompt = stages.run("parse", () => this.understand(request));
    const model = prompt.ok ? this.catalog.resolve(prompt.value.model) : undefined;
    const front = this.front(model, request, prompt.ok ? prompt.value : null);
    if (front.kind === "reject") return front;
    if (!prompt.ok) return front.fallback(prompt.failure);
    if (!model) return front.fallback(UNKNOWN_MODEL);

    const probed: Probed = { head: null, prefix: null };
    const probe = this.headProbe(() => front.eligible, deadline, probed);
    const tokenized = await withDeadline(this.keysFor(model, prompt.value, stages, deadline, commit === undefined, probe, probed), Math.max(0, deadline - this.now()));
    if (!tokenized.done) return front.fallback(tokenized.error ? { code: "tokenize-error", detail: String(tokenized.error) } : this.timeout());
    if (!tokenized.value.ok) return front.fallback(tokenized.value.failure);
    const { tokens, chain, text, complete, rest } = tokenized.value.value;
    return this.decideOn(model, front, { prompt: prompt.value, stream: prompt.value.stream === true }, { tokens, chain, complete, probed, rest }, text, stages, deadline, loads, commit);
  }

  /**
   * The body's bytes go to a tokenizer thread, which parses them, resolves the model they name and
   * keys the prompt; the event loop never decodes or parses them. The workers eligible for that
   * model are known only from the answer.
   */
  private async planFromBody(request: RouteRequest, body: Buffer, stages: DecisionStages, deadline: number, commit: (plan: DecidedPlan) => RouteResult): Promise<Plan> {
    const spec = { blockSize: this.deps.config.blockSize, withText: false, budgetMs: Math.max(0, deadline - this.now()) };
    // The thread names the model only now: the probe finds the eligible workers from it.
    const probed: Probed = { head: null, prefix: null };
    const probe = this.headProbe((name) => this.eligibleWorkers(this.catalog.resolve(name), request.subset), deadline, probed);
    const keyed = await withDeadline(this.deps.tokenizers.keysOfBody!(pathOnly(request.path), body, spec, probe), Math.max(0, deadline - this.now()));
    const parsed = keyed.done ? keyed.value.parsed : null;
    const model = parsed ? this.catalog.resolve(parsed.model) : undefined;
    const front = this.front(model, request, null);
    if (front.kind === "reject") return front;
    if (!keyed.done) return front.fallback(keyed.error ? { code: "tokenize-error", detail: String(keyed.error) } : this.timeout());
    const result = keyed.value.result;
    if (!result.ok) return front.fallback(result.failure);
    if (!model || !parsed) return front.fallback(UNKNOWN_MODEL); // the thread resolved it from the same config
    recordStages(stages, result.value.stages);
    const keyedPrompt = { tokens: result.value.tokens, chain: keyChain(result.value.keys, probed.prefix?.chain), complete: result.value.complete, probed, rest: result.value.rest };
    return this.decideOn(model, front, { prompt: null, stream: parsed.stream }, keyedPrompt, null, stages, deadline, undefined, commit);
  }

  /** A body to parse in a tokenizer thread: a large one, on a parsed path, within the size limit. */
  private bodyForThread(request: RouteRequest): Buffer | null {
    const { body } = request;
    const over = this.deps.tokenizers.parsesBodiesOver;
    if (body === null || request.bodyUnavailable || over === undefined || !this.deps.tokenizers.keysOfBody) return null;
    if (body.length < over || body.length > this.limits.maxBodyBytes || !PARSED_PATHS.has(pathOnly(request.path))) return null;
    return body;
  }

  /** The eligible workers for the model (all of them when it is unknown), or the reject when none is. */
  private front(model: CatalogModel | undefined, request: RouteRequest, prompt: Prompt | null): Front {
    const modelName = model?.name ?? null;
    const eligible = this.eligibleWorkers(model, request.subset);
    if (eligible.length === 0) {
      return { kind: "reject", model: modelName, detail: request.subset ? "no worker of the subset hint serves this request" : "no worker serves the requested model" };
    }
    return {
      kind: "front",
      eligible,
      fallback: (failure, keys = [], text = null) => ({ kind: "fallback", prompt, eligible, failure, model: modelName, keys, text }),
    };
  }

  private timeout(): Failure {
    return { code: "decision-timeout", detail: `the decision took over ${this.deps.config.routing.decisionTimeoutMs} ms` };
  }

  /**
   * The runs of `chain`, continuing a lookup of its first blocks: only the workers that hold all of
   * them are asked about the rest (a warm 32k prompt: 1 block instead of 2,048 after the answer).
   */
  private async lookupPast(ahead: PrefixLookup, chain: KeyChain, workers: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const head = await ahead.runs;
    if (head === null) return this.deps.index.lookup(chain, workers);
    const at = ahead.chain.length;
    const runs = new Map<string, number>();
    const whole: string[] = [];
    for (const w of workers) {
      const run = head.get(w) ?? 0;
      runs.set(w, run);
      if (run === at) whole.push(w);
    }
    if (whole.length === 0 || chain.length === at) return runs;
    for (const [w, run] of await this.deps.index.lookup(chainFrom(chain, at), whole, chain[at - 1])) runs.set(w, at + run);
    return runs;
  }

  /** Lookup, overlay and pick: the part of a decision that no longer depends on where the keys came from. */
  private async decideOn(
    model: CatalogModel,
    front: Extract<Front, { kind: "front" }>,
    asked: { readonly prompt: Prompt | null; readonly stream: boolean },
    { tokens, chain, complete, probed, rest }: KeyedPrompt,
    text: string | null,
    stages: DecisionStages,
    deadline: number,
    loads: ReadonlyMap<string, WorkerLoad> | undefined,
    commit: ((plan: DecidedPlan) => RouteResult) | undefined,
  ): Promise<Plan> {
    const { eligible, fallback } = front;
    let runs: ReadonlyMap<string, number> = NO_RUNS;
    let lookupStartedAt = this.now();
    // A head decision's keys are the head the probe just looked up: its answer is the lookup.
    const known = !complete && probed.head !== null && sameChain(probed.head.chain, chain) ? probed.head : null;
    if (known !== null) {
      runs = known.runs;
      lookupStartedAt = known.startedAt;
      stages.record?.("lookup", known.span[0], known.span[1]);
    } else if (this.core.policy.usesMatch) {
      const budget = Math.min(this.deps.config.routing.lookupTimeoutMs, deadline - this.now());
      if (budget <= 0) return fallback(this.timeout(), chain, text);
      const workers = eligible.map((w) => w.id);
      const ahead = probed.prefix !== null && continuesLookup(probed.prefix, chain, workers) ? probed.prefix : null;
      if (ahead !== null) lookupStartedAt = ahead.startedAt;
      const lookup = await stages.run("lookup", () => withDeadline(ahead ? this.lookupPast(ahead, chain, workers) : this.deps.index.lookup(chain, workers), budget));
      if (!lookup.done) {
        const detail = lookup.error ? `cache lookup failed: ${String(lookup.error)}` : "cache lookup timed out";
        return fallback({ code: "store-error", detail }, chain, text);
      }
      runs = lookup.value;
    }
    // From here on everything is synchronous: no other decision runs in between.
    const nowMs = this.now();
    runs = this.overlay.merge(chain, runs, nowMs, lookupStartedAt);
    const match = chain.length ? prefixMatch(chain, runs) : { totalBlocks: 0, runs, seed: this.randomSeed() };
    const input: DecisionInput = { workers: eligible, keys: chain, promptTokens: tokens, match, nowMs };
    const views = loads ? eligible.map((w) => ({ id: w.id, address: w.address, inFlight: 0, load: loads.get(w.id) })) : this.core.snapshot(eligible, nowMs);
    const decision = stages.run("pick", () => this.core.decide(input, views));
    const decided: DecidedPlan = { kind: "decide", prompt: asked.prompt, stream: asked.stream, model, input, views, runs, decision, text, headOnly: !complete, rest };
    return commit ? { ...decided, result: commit(decided) } : decided;
  }

  private commit(plan: DecidedPlan, micros: () => number): RouteResult {
    const { decision, model, input } = plan;
    if (decision.kind === "reject") {
      return { kind: "reject", status: 503, reason: "no-eligible-worker", detail: "no candidates", model: model.name, decisionMicros: micros() };
    }
    const { release, estimate } = this.core.commit(decision, input, plan.stream);
    if (this.core.policy.usesMatch) {
      this.recordSpeculatively(decision.worker.id, input.keys);
      // The worker computes the whole prompt, not only the head that decided: once the rest is
      // keyed, the route covers all of it (a follow-up must find it there before the KV events do).
      const worker = decision.worker.id;
      plan.rest?.then((keys) => keys && this.recordSpeculatively(worker, keyChain(keys)), () => undefined);
    }
    const sticky = this.deps.config.routing.policy === "sticky-least-loaded";
    const reason: RouteReason | null = sticky && decision.guardTripped ? "load-guard" : decision.gainDeclined ? "min-gain" : null;
    return {
      kind: "route",
      worker: decision.worker,
      outcome: decision.outcome,
      reason,
      detail: reason === "load-guard" ? "longer match only on overloaded workers" : reason === "min-gain" ? "the longer match led the least-loaded worker's by too few blocks" : null,
      model: model.name,
      matchedBlocks: decision.matchedBlocks,
      totalBlocks: decision.totalBlocks,
      candidates: decision.candidates,
      decisionMicros: micros(),
      release,
      decidedBy: decision.decidedBy ?? null,
      estimateMs: estimate.ttftMs,
      headOnly: plan.headOnly,
      fallbacks: decision.estimates ? decision.estimates.slice(1).map((e) => e.worker) : this.fallbacksAfter(plan.views, decision.worker.id),
    };
  }

  private understand(request: RouteRequest): Result<Prompt> {
    if (request.bodyUnavailable) return fail(request.bodyUnavailable, "request body not available in this processing mode");
    if (request.body === null) return fail("no-body", `${request.method} request carries no body`);
    const path = pathOnly(request.path);
    if (!PARSED_PATHS.has(path)) return fail("unsupported-path", "not a completions or chat completions path");
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

  /**
   * Template, tokenize and hash run off the event loop (the tokenizer pool); their times come back
   * as stages. The keys come back as bytes and become the index's hex strings here, at the boundary.
   */
  private async keysFor(
    model: CatalogModel,
    prompt: Prompt,
    stages: DecisionStages,
    deadline: number,
    withText: boolean,
    probe: HeadProbe | undefined,
    probed: Probed,
  ): Promise<Result<{ tokens: number; chain: KeyChain; complete: boolean; text: string | null; rest?: Promise<BlockKeyBytes | null> }>> {
    const spec = { blockSize: this.deps.config.blockSize, root: model.root, withText, budgetMs: Math.max(0, deadline - this.now()) };
    const keyed = await this.deps.tokenizers.keys(model.name, prompt, spec, probe);
    if (!keyed.ok) return keyed;
    recordStages(stages, keyed.value.stages);
    return { ok: true, value: { tokens: keyed.value.tokens, chain: keyChain(keyed.value.keys, probed.prefix?.chain), complete: keyed.value.complete, text: keyed.value.text, rest: keyed.value.rest } };
  }

  /**
   * Whether some eligible worker holds every block of a prompt's head (index, then overlay): while
   * one does, the keyer keys on; once none does, no match can reach past the head and the head's
   * keys decide. Policies that read no match need no probe (they key the whole prompt). A lookup
   * that fails or runs out of time cannot tell: keying goes on, and the request asks no more
   * (a store that failed once would cost each later head its timeout). A cached prefix the keyer
   * announces (HeadProbe.prefix) is looked up at once, unanswered; the decision continues from it.
   * What was looked up goes to `probed`.
   */
  private headProbe(eligibleFor: (model: string) => readonly WorkerConfig[], deadline: number, probed: Probed): HeadProbe | undefined {
    if (!this.core.policy.usesMatch) return undefined;
    let blind = false;
    const head = async ({ model, keys }: KeyedHead) => {
      const chain = keyChain(keys, probed.prefix?.chain);
      const budget = Math.min(this.deps.config.routing.lookupTimeoutMs, deadline - this.now());
      if (blind || chain.length === 0 || budget <= 0) return true;
      const startedAt = this.now();
      const spanStart = performance.now();
      const workers = eligibleFor(model).map((w) => w.id);
      const lookup = await withDeadline(this.deps.index.lookup(chain, workers), budget);
      if (!lookup.done) {
        blind = true;
        return true;
      }
      probed.head = { chain, runs: lookup.value, startedAt, span: [spanStart, performance.now()] };
      probed.prefix = { chain, workers, runs: Promise.resolve(lookup.value), startedAt };
      const runs = this.overlay.merge(chain, lookup.value, this.now(), startedAt);
      for (const run of runs.values()) if (run >= chain.length) return true;
      return false;
    };
    const prefix = ({ model, keys }: KeyedHead) => {
      const workers = eligibleFor(model).map((w) => w.id);
      if (blind || keys.length === 0 || workers.length === 0) return;
      const chain = keyChain(keys);
      const startedAt = this.now();
      probed.prefix = { chain, workers, startedAt, runs: this.deps.index.lookup(chain, workers).catch(() => null) };
    };
    return Object.assign(head, { prefix });
  }

  private recordSpeculatively(worker: string, chain: readonly string[]): void {
    const ttl = this.deps.config.routing.speculativeTtlMs;
    if (ttl <= 0 || chain.length === 0) return;
    const pending = this.overlay.add(worker, chain);
    const settle = () => this.overlay.settle(pending, this.now(), this.deps.config.routing.lookupTimeoutMs);
    // The write waits for the next turn of the event loop, after the answer is sent: the overlay
    // already shows the record to every later decision until the write has settled.
    setImmediate(() =>
      this.deps.index.addSpeculative(worker, chain, ttl).then(settle, (err: unknown) => {
        settle();
        this.deps.onBackgroundError?.(err);
      }),
    );
  }

  private fallback(eligible: readonly WorkerConfig[], failure: Failure, model: string | null, micros: () => number, totalBlocks = 0): RouteResult {
    const nowMs = this.now();
    const views = this.core.snapshot(eligible, nowMs);
    const worker = leastLoaded(views, this.randomSeed());
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
      release: this.core.commitFallback(worker.id, nowMs),
      decidedBy: null,
      estimateMs: null,
      fallbacks: this.fallbacksAfter(views, worker.id),
    };
  }

  /** The candidates other than the pick, least outstanding work first (Envoy's retry order). */
  private fallbacksAfter(views: readonly WorkerView[], picked: string): readonly WorkerView[] {
    return views.filter((w) => w.id !== picked).sort((a, b) => outstanding(a) - outstanding(b));
  }

  private randomSeed(): number {
    return Math.floor(this.random() * 0x1_0000_0000) >>> 0;
  }
}

/** Stage times measured in a tokenizer thread, replayed on the decision's stages. */
function recordStages(stages: DecisionStages, times: PromptKeys["stages"]): void {
  if (!stages.record) return;
  const local = (epochMs: number) => epochMs - performance.timeOrigin;
  if (times.template) stages.record("template", local(times.template[0]), local(times.template[1]));
  stages.record("tokenize", local(times.tokenize[0]), local(times.tokenize[1]));
  stages.record("hash", local(times.hash[0]), local(times.hash[1]));
}

/** Whether a decision may continue `ahead`: it is a beginning of `chain` and asked about every worker the decision asks about. */
function continuesLookup(ahead: PrefixLookup, chain: readonly BlockKey[], workers: readonly string[]): boolean {
  return ahead.chain.length > 0 && isChainPrefix(ahead.chain, chain) && workers.every((w) => ahead.workers.includes(w));
}

/** Whether two chains are the same keys (a head's chain and the keys a decision came back with). */
function sameChain(a: readonly BlockKey[], b: readonly BlockKey[]): boolean {
  return a.length === b.length && isChainPrefix(a, b);
}
