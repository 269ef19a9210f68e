/**
 * The router process killed with SIGKILL in the middle of streaming traffic through a real Envoy,
 * then started again. The router runs as `prefix-router serve` in its own process; Envoy
 * health-checks it over gRPC health (envoy.service.ext_proc.v3.ExternalProcessor).
 *
 *  - envoy.yaml (BUFFERED, failure_mode_allow): no client request fails — requests in flight keep
 *    streaming, new ones are placed by the cluster's fallback policy — and routing resumes after
 *    the restart.
 *  - envoy-full-duplex.yaml (fail-closed): requests that arrive while the router is down get 500;
 *    a response already streaming either finishes or is cut off (reset) — which one varies: always
 *    cut on 1.36.2 and 1.37.0, sometimes on 1.38.2, never seen on 1.39.3 and 1.40.0; routing
 *    resumes after the restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DEBUG_HEADERS } from "../src/extproc/decision-response";
import { chat, systemPrompt, type ChatResult } from "./support/chat-client";
import { locateEnvoy, startEnvoy, versionText, waitUntil, type RunningEnvoy } from "./support/envoy-process";
import { ReplicaSet } from "./support/envoy-stack";
import { freePort } from "./support/free-port";
import { QWEN3_TOKENIZER, REPO_ROOT } from "./support/router-fixture";

const { envoy: ENVOY, skip: SKIP } = locateEnvoy();
const TOKENS = 48;
/** Model speed 1: a 48-token stream lasts ~0.4 s, so requests are in flight when the router dies. */
const TIME_SCALE = 1;

interface Outcome {
  readonly start: number;
  /** When the response headers reached the client (null: they never did). */
  readonly headersAt: number | null;
  readonly end: number;
  readonly status: number;
  /** The stream ended with [DONE] and carried every token. */
  readonly complete: boolean;
  readonly routed: boolean;
  readonly error: string | null;
}

class RouterProcess {
  private proc: ChildProcess | null = null;
  output = "";
  constructor(private readonly configFile: string) {}

  start(): void {
    this.proc = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve", "--config", this.configFile], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const collect = (b: Buffer) => (this.output = (this.output + b.toString()).slice(-16_000));
    this.proc.stdout?.on("data", collect);
    this.proc.stderr?.on("data", collect);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill(signal);
    await exited;
  }
}

describe.skipIf(SKIP !== null)(`the router killed mid-traffic behind a real Envoy — ${SKIP ? `SKIPPED: ${SKIP}` : `Envoy ${versionText(ENVOY!.version)}`}`, () => {
  describe.each([
    ["envoy.yaml", true],
    ["envoy-full-duplex.yaml", false],
  ] as const)("envoy/%s", (file, failOpen) => {
    let replicas: ReplicaSet;
    let router: RouterProcess;
    let envoy: RunningEnvoy;
    const log = () => `--- envoy ---\n${envoy.output().slice(-4000)}\n--- router ---\n${router.output.slice(-2000)}`;
    const routerHealthy = async () => /prefix_router::[^\n]*::health_flags::healthy$/m.test(await (await fetch(`${envoy.admin}/clusters`)).text());

    /** When each response still streaming began (its headers arrived), by request number. */
    const streamingSince = new Map<number, number>();

    async function one(i: number): Promise<Outcome> {
      const start = Date.now();
      const onHeaders = (status: number) => status === 200 && streamingSince.set(i, Date.now());
      try {
        const r: ChatResult = await chat(envoy.url, replicas, { messages: [{ role: "system", content: systemPrompt(`crash ${i % 5}`) }, { role: "user", content: `turn ${i}` }], stream: true, maxTokens: TOKENS, onHeaders });
        const complete = r.status === 200 && r.done && r.events.filter((e) => e.choices[0]?.delta?.content).length === TOKENS;
        return { start, headersAt: r.headersAt, end: Date.now(), status: r.status, complete, routed: r.headers.get(DEBUG_HEADERS.decision) !== null, error: r.bodyError };
      } catch (err) {
        return { start, headersAt: null, end: Date.now(), status: 0, complete: false, routed: false, error: String((err as Error).cause ?? err) };
      } finally {
        streamingSince.delete(i);
      }
    }

    /** Whether some response has been streaming for `ms` (so the kill lands mid-stream, however slow the machine). */
    const streamingFor = (ms: number) => [...streamingSince.values()].some((t) => t <= Date.now() - ms);

    /**
     * `clients` closed loops of streaming chats; the router is SIGKILLed after `killAfter` ms, once a
     * response has been streaming for 50 ms; the loops go on for `afterKill` ms more.
     */
    async function traffic(clients: number, killAfter: number, afterKill: number): Promise<{ outcomes: Outcome[]; killedAt: number }> {
      const outcomes: Outcome[] = [];
      let until = Number.POSITIVE_INFINITY;
      let n = 0;
      let killedAt = 0;
      const killer = (async () => {
        await sleep(killAfter);
        const giveUp = Date.now() + 20_000;
        while (!streamingFor(50) && Date.now() < giveUp) await sleep(5);
        killedAt = Date.now();
        until = killedAt + afterKill;
        await router.kill();
      })();
      await Promise.all([
        killer,
        ...Array.from({ length: clients }, async () => {
          while (Date.now() < until) outcomes.push(await one(n++));
        }),
      ]);
      return { outcomes, killedAt };
    }

    beforeAll(async () => {
      replicas = await ReplicaSet.start(["w1", "w2", "w3"], TIME_SCALE);
      const dir = mkdtempSync(join(tmpdir(), "prefix-router-crash-"));
      const routerPort = await freePort();
      const configFile = join(dir, "router.yaml");
      writeFileSync(
        configFile,
        stringify({
          extProc: { listen: `127.0.0.1:${routerPort}` },
          models: [{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }],
          workers: replicas.replicas.map((r) => ({ id: r.id, address: r.server.address, models: ["qwen3"] })),
          log: { level: "warn" },
        }),
      );
      router = new RouterProcess(configFile);
      router.start();
      envoy = await startEnvoy({ envoy: ENVOY!, file, routerAddress: `127.0.0.1:${routerPort}`, replicas: replicas.addresses });
      await envoy.waitForHealthy("vllm", 3);
      await waitUntil("the router healthy in Envoy (gRPC health check)", routerHealthy, 30_000, log);
      // Warm the router's tokenizer and template through Envoy.
      await waitUntil("a routed request", async () => (await one(0)).routed, 20_000, log);
    });
    afterAll(async () => {
      await router?.kill();
      await envoy?.stop();
      await replicas?.close();
    });

    const title = failOpen
      ? "SIGKILL mid-traffic fails no client request (fail-open + fallback policy)"
      : "SIGKILL mid-traffic: new requests get 500 (fail-closed), streams already answered finish or are cut off";
    it(title, async () => {
      const { outcomes, killedAt } = await traffic(6, 1000, 1500);
      const inFlightAtKill = outcomes.filter((o) => o.start < killedAt && o.end > killedAt);
      // Streaming already: the router had answered the request and the response headers.
      const streamingAtKill = inFlightAtKill.filter((o) => o.headersAt !== null && o.headersAt < killedAt - 20);
      const afterKill = outcomes.filter((o) => o.start > killedAt + 100);
      const count = (xs: Outcome[]) => `${xs.length} (${xs.filter((o) => o.complete).length} complete, statuses ${[...new Set(xs.map((o) => o.status))].join("/")})`;
      console.log(`${file}: ${count(outcomes)} requests; in flight at the kill ${count(inFlightAtKill)}, of which streaming ${count(streamingAtKill)}; started after it ${count(afterKill)}`);
      expect(streamingAtKill.length, "requests were streaming when the router died").toBeGreaterThan(0);
      expect(afterKill.length).toBeGreaterThan(0);
      expect(outcomes.filter((o) => o.end < killedAt).every((o) => o.complete && o.routed), log()).toBe(true);
      if (failOpen) {
        const failed = outcomes.filter((o) => !o.complete);
        expect(failed, log()).toEqual([]);
        // Placed by the fallback policy: no decision header.
        expect(afterKill.every((o) => !o.routed)).toBe(true);
      } else {
        // The router had answered these before it died; their responses were already on the way:
        // each finishes or breaks off, never hangs or turns into an error status. (A request still
        // waiting for an answer — its request or response headers — gets a 500.)
        expect(streamingAtKill.every((o) => o.status === 200 && (o.complete || o.error !== null)), JSON.stringify(inFlightAtKill)).toBe(true);
        expect(afterKill.every((o) => o.status === 500), JSON.stringify(afterKill)).toBe(true);
      }
      // Envoy's gRPC health check noticed.
      await waitUntil("the router marked unhealthy", async () => !(await routerHealthy()), 15_000, log);
    });

    it("routes again once the router is back", async () => {
      router.start();
      await waitUntil("the router healthy again", routerHealthy, 30_000, log);
      await waitUntil("a routed request after the restart", async () => (await one(1000)).routed, 20_000, log);
      const again = await one(1001);
      expect(again.complete && again.routed, log()).toBe(true);
    });
  });
});
