/**
 * `make bench-envoy`: what the ext_proc hop costs. The same real Envoy config (envoy/envoy.yaml)
 * twice — with the router's ext_proc filter, and without it (override_host then has no pick and
 * uses its least_request fallback) — in front of the same 4 simulated vLLM replicas; the router
 * is `prefix-router serve` and the replicas `prefix-router sim`, each in its own process.
 * Multi-turn chats of ~1k and ~8k prompt tokens at concurrency 1 and 32; the added latency per
 * request at p50 and p99. The replicas' model time is scaled to ~0 (time scale 0.001), so cache
 * hits do not pay back the hop: the difference is the hop.
 *
 * Arms alternate in rounds so drift on a shared machine hits both. Writes bench-results/envoy-hop.json.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { envoyYaml, shippedEnvoyConfig, withoutRouter } from "../../src/cli/envoy-bootstrap";
import { runEnvoy, waitUntil, type RunningEnvoy } from "../../src/cli/envoy-runner";
import { percentile } from "../../src/cli/load-run";
import { ChatWorkload, type ChatTurn } from "../../src/cli/load-workload";
import { locateEnvoy, versionText } from "../support/envoy-process";
import { freePort } from "../support/free-port";
import { QWEN3_TOKENIZER, REPO_ROOT } from "../support/router-fixture";

const QUICK = process.argv.includes("--quick");
const CELLS = [
  { concurrency: 1, size: "1k", requests: QUICK ? 40 : 200 },
  { concurrency: 32, size: "1k", requests: QUICK ? 160 : 800 },
  { concurrency: 1, size: "8k", requests: QUICK ? 40 : 200 },
  { concurrency: 32, size: "8k", requests: QUICK ? 160 : 800 },
] as const;
/** Document sentences per first turn for a prompt of about this many tokens (~14 tokens a sentence). */
const SIZES = { "1k": { system: 20, document: 48 }, "8k": { system: 40, document: 530 } } as const;
const ROUNDS = 4;
const TURNS = 4;
const REPLICAS = 4;

interface Sample {
  readonly ms: number;
  readonly promptTokens: number;
  readonly decision: string | null;
  readonly reason: string | null;
  /** The router's own decision time (x-prefix-router-decision-us), when it routed the request. */
  readonly decisionUs: number | null;
}

function node(args: string[]): ChildProcess {
  const p = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  p.stderr!.on("data", () => undefined);
  return p;
}

async function startSim(): Promise<{ proc: ChildProcess; config: Record<string, any> }> {
  const proc = node(["sim", "--model", "qwen3", "--tokenizer", QWEN3_TOKENIZER, "--replicas", String(REPLICAS), "--port", "0", "--time-scale", "0.001"]);
  let out = "";
  proc.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  await waitUntil("the simulated replicas", async () => /workers:[\s\S]*sim-4/.test(out) && out.trim().endsWith("- qwen3"), 60_000, () => out);
  return { proc, config: parse(out) as Record<string, any> };
}

/** The conversations of one cell: identical for both arms. */
function requestBodies(size: keyof typeof SIZES, count: number, seed: number): string[] {
  const workload = new ChatWorkload({ seed, systemPrompts: 4, systemSentences: SIZES[size].system, documentSentences: SIZES[size].document });
  const bodies: string[] = [];
  while (bodies.length < count) {
    const history: ChatTurn[] = workload.startConversation();
    for (let t = 0; t < TURNS && bodies.length < count; t++) {
      history.push(workload.userTurn(t));
      bodies.push(JSON.stringify({ model: "qwen3", messages: history, max_tokens: 1 }));
      history.push({ role: "assistant", content: "the" });
    }
  }
  return bodies;
}

async function send(url: string, body: string): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const json = (await res.json()) as { usage?: { prompt_tokens: number } };
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
  const us = res.headers.get("x-prefix-router-decision-us");
  return { ms, promptTokens: json.usage?.prompt_tokens ?? 0, decision: res.headers.get("x-prefix-router-decision"), reason: res.headers.get("x-prefix-router-reason"), decisionUs: us === null ? null : Number(us) };
}

async function runBlock(url: string, bodies: readonly string[], concurrency: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) samples.push(await send(url, bodies[next++]));
    }),
  );
  return samples;
}

/** The router's decision time alone, over the requests it answered in time. */
const decisionStats = (xs: readonly Sample[]) => {
  const ms = xs.map((s) => s.decisionUs).filter((u): u is number => u !== null).map((u) => u / 1000);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
};

const stats = (xs: readonly Sample[]) => {
  const ms = xs.map((s) => s.ms);
  return { p50: percentile(ms, 50)!, p99: percentile(ms, 99)!, mean: ms.reduce((a, b) => a + b, 0) / ms.length };
};

async function main(): Promise<void> {
  const { envoy: bin, skip } = locateEnvoy();
  if (!bin) throw new Error(skip);
  const started: ChildProcess[] = [];
  const envoys: RunningEnvoy[] = [];
  try {
    const sim = await startSim();
    started.push(sim.proc);
    const replicas = (sim.config.workers as { address: string }[]).map((w) => w.address);
    const routerPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "prefix-router-bench-envoy-"));
    const routerConfig = join(dir, "router.yaml");
    writeFileSync(routerConfig, stringify({ ...sim.config, extProc: { listen: `127.0.0.1:${routerPort}` }, log: { level: "warn" } }));
    started.push(node(["serve", "--config", routerConfig]));

    const site = async () => ({ listenAddress: "127.0.0.1", listenPort: await freePort(), adminPort: await freePort(), routerAddress: `127.0.0.1:${routerPort}`, replicas });
    const withSite = await site();
    const withoutSite = await site();
    const arms = {
      with: await runEnvoy({ bin: bin.path, config: envoyYaml(shippedEnvoyConfig("envoy.yaml", withSite)), listenPort: withSite.listenPort, adminPort: withSite.adminPort, name: "with.yaml" }),
      without: await runEnvoy({ bin: bin.path, config: envoyYaml(withoutRouter(shippedEnvoyConfig("envoy.yaml", withoutSite), "as-shipped")), listenPort: withoutSite.listenPort, adminPort: withoutSite.adminPort, name: "without.yaml" }),
    };
    envoys.push(arms.with, arms.without);
    for (const e of envoys) await e.waitForHealthy("vllm", REPLICAS);
    await arms.with.waitForHealthy("prefix_router", 1);

    const results = [];
    for (const [i, cell] of CELLS.entries()) {
      const bodies = requestBodies(cell.size, cell.requests, 100 + i);
      // Warm both arms (tokenizer segment caches on the router and the replicas, connections).
      const warm = bodies.slice(0, Math.min(2 * cell.concurrency, 40));
      await runBlock(arms.without.url, warm, cell.concurrency);
      await runBlock(arms.with.url, warm, cell.concurrency);
      const samples: Record<"with" | "without", Sample[]> = { with: [], without: [] };
      const before = { allowed: await arms.with.stat("http.llm.ext_proc.prefix_router.failure_mode_allowed"), timeouts: await arms.with.stat("http.llm.ext_proc.prefix_router.message_timeouts") };
      const per = Math.ceil(bodies.length / ROUNDS);
      for (let r = 0; r < ROUNDS; r++) {
        const block = bodies.slice(r * per, (r + 1) * per);
        const order = r % 2 === 0 ? (["without", "with"] as const) : (["with", "without"] as const);
        for (const arm of order) samples[arm].push(...(await runBlock(arms[arm].url, block, cell.concurrency)));
      }
      const w = stats(samples.with);
      const wo = stats(samples.without);
      const fallbacks = samples.with.filter((s) => s.decision !== "hit" && s.decision !== "miss");
      const row = {
        ...cell,
        promptTokensMean: Math.round(samples.with.reduce((n, s) => n + s.promptTokens, 0) / samples.with.length),
        withoutRouter: wo,
        withRouter: w,
        addedP50Ms: w.p50 - wo.p50,
        addedP99Ms: w.p99 - wo.p99,
        decisionMs: decisionStats(samples.with),
        routerFallbacks: fallbacks.length,
        fallbackReasons: [...new Set(fallbacks.map((s) => s.reason ?? "none"))],
        envoyFailOpen: (await arms.with.stat("http.llm.ext_proc.prefix_router.failure_mode_allowed")) - before.allowed,
        envoyMessageTimeouts: (await arms.with.stat("http.llm.ext_proc.prefix_router.message_timeouts")) - before.timeouts,
      };
      results.push(row);
      process.stdout.write(
        `c=${String(cell.concurrency).padStart(2)} ${cell.size} (${row.promptTokensMean} prompt tokens, ${cell.requests} req/arm): ` +
          `without p50 ${wo.p50.toFixed(1)} p99 ${wo.p99.toFixed(1)} ms | with p50 ${w.p50.toFixed(1)} p99 ${w.p99.toFixed(1)} ms | ` +
          `added p50 ${row.addedP50Ms.toFixed(1)} p99 ${row.addedP99Ms.toFixed(1)} ms | decision p50 ${row.decisionMs.p50?.toFixed(1)} p99 ${row.decisionMs.p99?.toFixed(1)} ms | router fallbacks ${row.routerFallbacks} ${row.fallbackReasons.join(",")} | Envoy fail-open ${row.envoyFailOpen}\n`,
      );
    }
    const out = {
      bench: "envoy-hop",
      command: `make bench-envoy${QUICK ? " (--quick)" : ""}`,
      envoy: versionText(bin.version),
      node: process.version,
      cpus: cpus().length,
      loadavg: loadavg(),
      replicas: REPLICAS,
      replicaTimeScale: 0.001,
      rounds: ROUNDS,
      results,
    };
    mkdirSync(join(REPO_ROOT, "bench-results"), { recursive: true });
    const file = join(REPO_ROOT, "bench-results", "envoy-hop.json");
    writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
    process.stdout.write(`\n| concurrency | prompt | requests/arm | without router p50 / p99 ms | with router p50 / p99 ms | added p50 / p99 ms | of which the router's decision p50 / p99 ms | not routed (fail-open or fallback) |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n`);
    for (const r of results)
      process.stdout.write(
        `| ${r.concurrency} | ${r.size} (${r.promptTokensMean} tok) | ${r.requests} | ${r.withoutRouter.p50.toFixed(1)} / ${r.withoutRouter.p99.toFixed(1)} | ${r.withRouter.p50.toFixed(1)} / ${r.withRouter.p99.toFixed(1)} | **${r.addedP50Ms.toFixed(1)} / ${r.addedP99Ms.toFixed(1)}** | ${r.decisionMs.p50?.toFixed(1)} / ${r.decisionMs.p99?.toFixed(1)} | ${r.routerFallbacks}${r.routerFallbacks ? ` (${r.fallbackReasons.join(", ")})` : ""} |\n`,
      );
    process.stdout.write(`\nwrote ${file} (Envoy ${out.envoy}, ${out.cpus} CPUs, load average ${out.loadavg.map((x) => x.toFixed(1)).join(" ")})\n`);
  } finally {
    await Promise.all(envoys.map((e) => e.stop()));
    for (const p of started) if (p.exitCode === null) p.kill("SIGTERM");
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-envoy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
