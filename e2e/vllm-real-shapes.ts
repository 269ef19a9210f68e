/**
 * Compares what two OpenAI-compatible servers answer — the simulated replica (src/sim) and a real
 * vLLM — as the router, Envoy and load-aware peers read it: /metrics sample names, types and
 * labels; response and usage fields; the order of SSE events; error bodies. Each difference is one
 * line of text, so a test can hold the known ones in a list.
 */

export type Fetcher = (path: string, init?: { method?: string; body?: string }) => Promise<{ status: number; headers: Headers; text: string }>;

export function httpFetcher(address: string): Fetcher {
  return async (path, init) => {
    const res = await fetch(`http://${address}${path}`, {
      method: init?.method ?? (init?.body ? "POST" : "GET"),
      headers: init?.body ? { "content-type": "application/json" } : {},
      body: init?.body,
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
}

interface MetricSample {
  readonly type: string | undefined;
  readonly labels: ReadonlySet<string>;
}

/** Sample name → its family's TYPE (as declared for that exact name or its histogram base) and label names. */
export function metricSamples(text: string): Map<string, MetricSample> {
  const types = new Map<string, string>();
  const out = new Map<string, { type: string | undefined; labels: Set<string> }>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([^{\s]+)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    const name = m[1];
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const entry = out.get(name) ?? { type: types.get(name) ?? types.get(base), labels: new Set<string>() };
    for (const label of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) entry.labels.add(label[1]);
    out.set(name, entry);
  }
  return out;
}

/** What a scraper of `sim` would read differently on `real`: missing samples, other types, other labels. */
export function metricDifferences(sim: string, real: string, prefix = "vllm:"): string[] {
  const a = metricSamples(sim);
  const b = metricSamples(real);
  const out: string[] = [];
  for (const [name, s] of a) {
    if (!name.startsWith(prefix)) continue;
    const r = b.get(name);
    if (!r) {
      out.push(`metrics: ${name} is not exported by vLLM`);
      continue;
    }
    if (s.type !== r.type) out.push(`metrics: ${name} ${s.type ? `typed ${s.type}` : "has no TYPE line of its own"} (vLLM: ${r.type ?? "untyped"})`);
    const labels = (x: ReadonlySet<string>) => [...x].sort().join(",");
    if (labels(s.labels) !== labels(r.labels)) out.push(`metrics: ${name} labels {${labels(s.labels)}} (vLLM: {${labels(r.labels)}})`);
  }
  for (const name of b.keys()) if (name.startsWith(prefix) && !a.has(name) && ROUTING_METRICS.has(name)) out.push(`metrics: ${name} missing (vLLM exports it)`);
  return out;
}

/** vLLM metrics a load- or cache-aware router reads; the simulator should have them all. */
const ROUTING_METRICS = new Set([
  "vllm:num_requests_running",
  "vllm:num_requests_waiting",
  "vllm:kv_cache_usage_perc",
  "vllm:prefix_cache_queries_total",
  "vllm:prefix_cache_hits_total",
  "vllm:cache_config_info",
  "vllm:num_preemptions_total",
  "vllm:time_to_first_token_seconds_bucket",
]);

/** Field names of an object (one level), sorted. */
const keys = (o: unknown) => (o && typeof o === "object" ? Object.keys(o).sort() : []);

/** One line when `sim` has fields `real` lacks, or lacks one of `required` that `real` sends. */
export function fieldDifferences(where: string, sim: unknown, real: unknown, required: readonly string[] = []): string[] {
  const r = new Set(keys(real));
  const s = new Set(keys(sim));
  const extra = [...s].filter((k) => !r.has(k));
  const missing = required.filter((k) => r.has(k) && !s.has(k));
  if (extra.length === 0 && missing.length === 0) return [];
  return [`${where}: {${[...s].join(",")}} (vLLM: {${[...r].join(",")}})`];
}

/** The SSE events of a streamed answer, each reduced to its kind. */
export function sseKinds(body: string): string[] {
  const kinds: string[] = [];
  for (const event of body.split("\n\n")) {
    if (!event.trim()) continue;
    if (!event.startsWith("data: ")) {
      kinds.push(`not-data(${JSON.stringify(event.slice(0, 20))})`);
      continue;
    }
    const data = event.slice(6);
    if (data === "[DONE]") {
      kinds.push("done");
      continue;
    }
    const chunk = JSON.parse(data) as { choices: { delta?: { role?: string; content?: string }; text?: string; finish_reason: string | null }[]; usage?: unknown };
    const c = chunk.choices[0];
    if (!c) {
      kinds.push(chunk.usage ? "usage" : "empty");
      continue;
    }
    const content = (c.delta?.content ?? c.text ?? "") !== "";
    const kind = c.delta?.role ? "role" : content ? "token" : "no-token";
    kinds.push(c.finish_reason ? `${kind}+finish` : kind);
  }
  return kinds;
}

/** The framing of a stream: what comes first, which event carries finish_reason, how it ends. */
export function sseFraming(body: string): { first: string; finish: string; end: string } {
  const kinds = sseKinds(body);
  return { first: kinds[0], finish: kinds.find((k) => k.endsWith("+finish")) ?? "none", end: kinds.slice(-2).join(",") };
}
