/**
 * The routers compared, each started as it is deployed — its own process(es), loopback only, its
 * defaults unless the setting says otherwise — in front of the run's simulated replicas:
 * - prefix-router: `node dist/cli.js serve` with the defaults (memory map, KV events pushed by the
 *   replicas to its ingest), reached through Envoy's ext_proc sequence run by the client
 *   (ExtProcFront: "prefix-router") or through a real Envoy running the shipped envoy/envoy.yaml
 *   ("prefix-router-envoy");
 * - Envoy round_robin / least_request: the shipped Envoy without ext_proc (envoy-configs.ts);
 * - sglang-router cache_aware, default thresholds and one tuned setting;
 * - vllm-router cache_aware and sticky_least_loaded, defaults.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../support/free-port";
import { envoyBinary, envoyConfig, type EnvoyMode } from "./envoy-configs";
import { ExtProcFront, HttpFront, type Front } from "./fronts";
import { startProcess, type RouterProcess } from "./router-process";

export const CONTENDER_NAMES = [
  "prefix-router",
  "prefix-router-envoy",
  "envoy-round-robin",
  "envoy-least-request",
  "sglang-cache-aware",
  "sglang-cache-aware-tuned",
  "vllm-router-cache-aware",
  "vllm-router-sticky-least-loaded",
  "vllm-router-sticky-least-loaded-no-session",
] as const;
export type ContenderName = (typeof CONTENDER_NAMES)[number];

/**
 * What `make bench-peers` runs: prefix-router behind the real Envoy as deployed, and every peer;
 * not the session-less variant nor the Envoy-sequence client front (its client shares the load
 * generator's event loop), which --contenders still runs.
 */
export const DEFAULT_CONTENDERS: readonly ContenderName[] = CONTENDER_NAMES.filter((n) => n !== "vllm-router-sticky-least-loaded-no-session" && n !== "prefix-router");

/** sglang-router's cache_aware with load balancing that engages at this benchmark's load (see SGLANG_TUNED). */
export const SGLANG_TUNED = { balanceAbsThreshold: 8, balanceRelThreshold: 1.5 } as const;

export interface ContenderContext {
  /** host:port of each replica. */
  readonly replicas: readonly string[];
  readonly ids: readonly string[];
  /** Ingest port the replicas push KV events to (used by prefix-router only). */
  readonly ingestPort: number;
  readonly ingestToken: (id: string) => string;
  /** Per-run folder for configs and logs. */
  readonly workDir: string;
  readonly repoRoot: string;
  readonly venvBin: string;
  readonly model: string;
  readonly tokenizer: string;
}

export interface RouterUnderTest {
  readonly front: Front;
  readonly processes: readonly RouterProcess[];
}

export interface Contender {
  readonly name: ContenderName;
  /** The router and its setting in one line (printed, and in the JSON). */
  readonly setting: string;
  /** Do the replicas push KV events to this router's ingest? */
  readonly hearsKvEvents: boolean;
  /** Does the client name the conversation in `x-session-id`? (Only sticky_least_loaded reads it.) */
  readonly sendsSessionId: boolean;
  start(ctx: ContenderContext): Promise<RouterUnderTest>;
}

const PREFIX_ROUTER_DEFAULTS = "defaults (sticky-least-loaded, memory map, KV events pushed to its ingest)";

export function contender(name: ContenderName): Contender {
  switch (name) {
    case "prefix-router":
      return { name, setting: `prefix-router ${PREFIX_ROUTER_DEFAULTS}, the client runs Envoy's ext_proc sequence`, hearsKvEvents: true, sendsSessionId: true, start: (ctx) => startPrefixRouter(ctx, "ext-proc-client") };
    case "prefix-router-envoy":
      return { name, setting: `prefix-router ${PREFIX_ROUTER_DEFAULTS}, behind Envoy (envoy/envoy.yaml as shipped)`, hearsKvEvents: true, sendsSessionId: true, start: (ctx) => startPrefixRouter(ctx, "envoy") };
    case "envoy-round-robin":
      return { name, setting: "Envoy round_robin (envoy/envoy.yaml without ext_proc)", hearsKvEvents: false, sendsSessionId: true, start: (ctx) => startEnvoyOnly(ctx, "round_robin") };
    case "envoy-least-request":
      return { name, setting: "Envoy least_request (envoy/envoy.yaml without ext_proc)", hearsKvEvents: false, sendsSessionId: true, start: (ctx) => startEnvoyOnly(ctx, "least_request") };
    case "sglang-cache-aware":
      return { name, setting: "sglang-router cache_aware, defaults (cache 0.3, balance abs 64 / rel 1.5)", hearsKvEvents: false, sendsSessionId: true, start: (ctx) => startSglang(ctx, []) };
    case "sglang-cache-aware-tuned":
      return {
        name,
        setting: `sglang-router cache_aware, balance abs ${SGLANG_TUNED.balanceAbsThreshold} / rel ${SGLANG_TUNED.balanceRelThreshold} (cache 0.3)`,
        hearsKvEvents: false,
        sendsSessionId: true,
        start: (ctx) => startSglang(ctx, ["--balance-abs-threshold", String(SGLANG_TUNED.balanceAbsThreshold), "--balance-rel-threshold", String(SGLANG_TUNED.balanceRelThreshold)]),
      };
    case "vllm-router-cache-aware":
      return { name, setting: "vllm-router cache_aware, defaults (cache 0.3, balance abs 64 / rel 1.5)", hearsKvEvents: false, sendsSessionId: true, start: (ctx) => startVllmRouter(ctx, "cache_aware") };
    case "vllm-router-sticky-least-loaded":
      return { name, setting: "vllm-router sticky_least_loaded, defaults (sessions from x-session-id)", hearsKvEvents: false, sendsSessionId: true, start: (ctx) => startVllmRouter(ctx, "sticky_least_loaded") };
    case "vllm-router-sticky-least-loaded-no-session":
      return { name, setting: "vllm-router sticky_least_loaded, defaults, clients send no session id", hearsKvEvents: false, sendsSessionId: false, start: (ctx) => startVllmRouter(ctx, "sticky_least_loaded") };
    default:
      return unknown(name);
  }
}

function unknown(name: never): never {
  throw new Error(`unknown contender ${String(name)}`);
}

const httpUrl = (address: string) => `http://${address}`;

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

async function startPrefixRouter(ctx: ContenderContext, front: "ext-proc-client" | "envoy"): Promise<RouterUnderTest> {
  const [extProcPort, adminPort] = [await freePort(), await freePort()];
  const config = {
    extProc: { listen: `127.0.0.1:${extProcPort}` },
    admin: { listen: `127.0.0.1:${adminPort}` },
    models: [{ name: ctx.model, tokenizer: ctx.tokenizer }],
    workers: ctx.replicas.map((address, i) => ({ id: ctx.ids[i], address, models: [ctx.model], ingestToken: ctx.ingestToken(ctx.ids[i]) })),
    ingest: { listen: `127.0.0.1:${ctx.ingestPort}` },
  };
  const configFile = join(ctx.workDir, "prefix-router.json");
  writeFileSync(configFile, JSON.stringify(config, null, 1));
  const admin = `http://127.0.0.1:${adminPort}`;
  const router = await startProcess({
    role: "router",
    command: process.execPath,
    args: [join(ctx.repoRoot, "dist", "cli.js"), "serve", "--config", configFile],
    logFile: join(ctx.workDir, "prefix-router.log"),
    // Ready when every replica has reached the ingest (its first batch or heartbeat).
    ready: async () => ((await getJson(`${admin}/debug/workers`)) as { workers: { reporting: unknown }[] }).workers.every((w) => w.reporting !== null),
  });
  if (front === "ext-proc-client") return { front: new ExtProcFront(`127.0.0.1:${extProcPort}`, ctx.replicas), processes: [router] };
  try {
    const envoy = await startEnvoy(ctx, "with-router", `127.0.0.1:${extProcPort}`);
    return { front: envoy.front, processes: [router, ...envoy.processes] };
  } catch (err) {
    await router.stop();
    throw err;
  }
}

async function startEnvoy(ctx: ContenderContext, mode: EnvoyMode, routerAddress: string): Promise<RouterUnderTest> {
  const [listenPort, adminPort] = [await freePort(), await freePort()];
  const configFile = join(ctx.workDir, `envoy-${mode}.yaml`);
  writeFileSync(configFile, envoyConfig(mode, { listenAddress: "127.0.0.1", listenPort, adminPort, routerAddress, replicas: ctx.replicas }));
  const admin = `http://127.0.0.1:${adminPort}`;
  const envoy = await startProcess({
    role: "envoy",
    command: envoyBinary(ctx.venvBin),
    args: ["-c", configFile, "--log-level", "warn", "--disable-hot-restart", "--concurrency", "2"],
    logFile: join(ctx.workDir, `envoy-${mode}.log`),
    ready: async () => {
      if ((await fetch(`${admin}/ready`)).status !== 200) return false;
      const clusters = await (await fetch(`${admin}/clusters`)).text();
      return (clusters.match(/^vllm::[^:]+:\d+::health_flags::healthy$/gm) ?? []).length === ctx.replicas.length;
    },
  });
  return { front: new HttpFront(`127.0.0.1:${listenPort}`), processes: [envoy] };
}

function startEnvoyOnly(ctx: ContenderContext, mode: Exclude<EnvoyMode, "with-router">): Promise<RouterUnderTest> {
  return startEnvoy(ctx, mode, "127.0.0.1:1"); // no router: its cluster is removed
}

/** Both Rust routers serve /readiness with their healthy worker count. */
const allWorkersReady = (port: number, workers: number) => async () => ((await getJson(`http://127.0.0.1:${port}/readiness`)) as { healthy_workers?: number }).healthy_workers === workers;

async function startSglang(ctx: ContenderContext, extra: readonly string[]): Promise<RouterUnderTest> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const router = await startProcess({
    role: "router",
    command: join(ctx.venvBin, "python"),
    args: [
      "-m", "sglang_router.launch_router",
      "--host", "127.0.0.1", "--port", String(port),
      "--prometheus-host", "127.0.0.1", "--prometheus-port", String(metricsPort),
      "--worker-urls", ...ctx.replicas.map(httpUrl),
      "--policy", "cache_aware",
      ...extra,
    ],
    logFile: join(ctx.workDir, "sglang-router.log"),
    ready: allWorkersReady(port, ctx.replicas.length),
  });
  return { front: new HttpFront(`127.0.0.1:${port}`), processes: [router] };
}

async function startVllmRouter(ctx: ContenderContext, policy: "cache_aware" | "sticky_least_loaded"): Promise<RouterUnderTest> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const router = await startProcess({
    role: "router",
    command: join(ctx.venvBin, "vllm-router"),
    args: [
      "--host", "127.0.0.1", "--port", String(port),
      "--prometheus-host", "127.0.0.1", "--prometheus-port", String(metricsPort),
      "--worker-urls", ...ctx.replicas.map(httpUrl),
      "--policy", policy,
    ],
    logFile: join(ctx.workDir, "vllm-router.log"),
    ready: allWorkersReady(port, ctx.replicas.length),
  });
  return { front: new HttpFront(`127.0.0.1:${port}`), processes: [router] };
}
