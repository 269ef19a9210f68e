/**
 * prefix-router behind a real Envoy, running the shipped configs (envoy/*.yaml) with only the
 * site values filled in (e2e/support/envoy-config/render.ts): three tiny replicas that answer
 * /health and echo which replica served and the x-prefix-router-* headers they received.
 *
 * Needs an `envoy` binary on PATH (or ENVOY_BIN=/path/to/envoy). Envoy cannot be installed on our
 * CI machines, so there the whole suite is skipped — and says so. Each config runs only on an
 * Envoy new enough for it (the version its header names).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEBUG_HEADERS, DESTINATION_HEADER } from "../src/extproc/decision-response";
import { renderEnvoyConfig } from "./support/envoy-config/render";
import { chatBody, REPO_ROOT, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";
import { freePort } from "./support/free-port";

function findEnvoy(): string | null {
  const candidates = [process.env.ENVOY_BIN, ...(process.env.PATH ?? "").split(delimiter).map((d) => join(d, "envoy"))];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there
    }
  }
  return null;
}

/** [major, minor, patch] from `envoy --version` ("envoy  version: <sha>/1.35.0/Clean/RELEASE/BoringSSL"). */
function envoyVersion(bin: string): [number, number, number] | null {
  const out = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 });
  const m = /\/(\d+)\.(\d+)\.(\d+)\//.exec(`${out.stdout}${out.stderr}`);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

const ENVOY = findEnvoy();
const VERSION = ENVOY ? envoyVersion(ENVOY) : null;
const SKIP_REASON = !ENVOY
  ? "no `envoy` binary on PATH (Envoy is not installable on this machine; put one on PATH or set ENVOY_BIN to run this suite)"
  : !VERSION
    ? `cannot read the version of ${ENVOY} (envoy --version)`
    : null;
if (SKIP_REASON) console.warn(`[envoy-real.test] SKIPPED: ${SKIP_REASON}`);

const VARIANTS = [
  { file: "envoy.yaml", minMinor: 35, failOpen: true },
  { file: "envoy-full-duplex.yaml", minMinor: 35, failOpen: false },
  { file: "envoy-original-dst.yaml", minMinor: 27, failOpen: true },
];

interface Replica {
  readonly id: string;
  readonly address: string;
  readonly server: Server;
}

interface Echo {
  readonly status: number;
  readonly replica: string | null;
  /** x-prefix-router-* and x-gateway-destination-endpoint as the replica received them. */
  readonly seen: Record<string, string>;
  readonly bodySha256: string | null;
  readonly responseHeaders: Headers;
}

const ROUTER_HEADERS = [DESTINATION_HEADER, ...Object.values(DEBUG_HEADERS)];

function startReplica(id: string): Promise<Replica> {
  const server = createServer((req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const seen = Object.fromEntries(ROUTER_HEADERS.filter((h) => req.headers[h] !== undefined).map((h) => [h, String(req.headers[h])]));
      const bodySha256 = createHash("sha256").update(Buffer.concat(chunks)).digest("hex");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ replica: id, seen, bodySha256 }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ id, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, server })));
}


async function waitFor(what: string, check: () => Promise<boolean>, ms: number, log: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n--- envoy output ---\n${log()}`);
}

/** A system prompt long enough for many 16-token blocks, distinct per `topic`. */
const systemPrompt = (topic: string): string =>
  Array.from({ length: 40 }, (_, i) => `Rule ${i + 1} about ${topic}: answer precisely, cite the section, and keep the tone friendly.`).join(" ");

describe.skipIf(SKIP_REASON !== null)(`prefix-router behind a real Envoy${SKIP_REASON ? ` — SKIPPED: ${SKIP_REASON}` : ` (${VERSION?.join(".")})`}`, () => {
  describe.each(VARIANTS.map((v) => [v.file, v] as const))("envoy/%s", (file, { minMinor, failOpen }) => {
    const tooOld = VERSION !== null && VERSION[0] === 1 && VERSION[1] < minMinor;
    const title = tooOld ? `skipped: needs Envoy >= 1.${minMinor}, found ${VERSION?.join(".")}` : "runs";
    describe.skipIf(tooOld)(title, () => {
      const replicas: Replica[] = [];
      let router: RunningRouter | null = null;
      let envoy: ChildProcess | null = null;
      let output = "";
      let listenPort = 0;
      const log = () => output.slice(-8000);

      async function chat(system: string, user: string, headers: Record<string, string> = {}, padding = ""): Promise<Echo> {
        const body = chatBody(system, `${user}${padding}`, "qwen3");
        const res = await fetch(`http://127.0.0.1:${listenPort}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
        const text = await res.text();
        if (res.status !== 200) return { status: res.status, replica: null, seen: {}, bodySha256: null, responseHeaders: res.headers };
        const echo = JSON.parse(text) as { replica: string; seen: Record<string, string>; bodySha256: string };
        return { status: res.status, ...echo, responseHeaders: res.headers };
      }
      const byId = (id: string | null) => replicas.find((r) => r.id === id);

      beforeAll(async () => {
        for (const id of ["w1", "w2", "w3"]) replicas.push(await startReplica(id));
        // The production decision budget, so the router answers inside Envoy's 250 ms message_timeout.
        router = await startTestRouter(
          testConfig({ workers: replicas.map((r) => ({ id: r.id, address: r.address, models: ["qwen3"] })), routing: { decisionTimeoutMs: 150 } }),
        );
        // Warm the tokenizer and template before Envoy's timer is watching.
        const warm = await router.client.process({ path: "/v1/chat/completions", body: chatBody("warm-up", "hello") });
        await warm.complete(200);

        listenPort = await freePort();
        const adminPort = await freePort();
        const dir = mkdtempSync(join(tmpdir(), "prefix-router-envoy-"));
        const configFile = join(dir, file);
        const text = readFileSync(join(REPO_ROOT, "envoy", file), "utf8");
        writeFileSync(configFile, renderEnvoyConfig(text, { listenAddress: "127.0.0.1", listenPort, adminPort, routerAddress: router.service.extProc.address, replicas: replicas.map((r) => r.address) }));
        envoy = spawn(ENVOY!, ["-c", configFile, "--log-level", "warn", "--disable-hot-restart", "--concurrency", "2"], { stdio: ["ignore", "pipe", "pipe"] });
        const collect = (b: Buffer) => (output = (output + b.toString()).slice(-64_000));
        envoy.stdout?.on("data", collect);
        envoy.stderr?.on("data", collect);
        envoy.on("exit", (code) => (output += `\n[envoy exited with ${code}]\n`));

        const admin = `http://127.0.0.1:${adminPort}`;
        await waitFor("Envoy /ready", async () => (await fetch(`${admin}/ready`)).status === 200, 30_000, log);
        await waitFor(
          "all replicas healthy in cluster vllm",
          async () => ((await (await fetch(`${admin}/clusters`)).text()).match(/^vllm::[^:]+:\d+::health_flags::healthy$/gm) ?? []).length === replicas.length,
          30_000,
          log,
        );
      });

      afterAll(async () => {
        if (envoy && envoy.exitCode === null) {
          const exited = new Promise((r) => envoy!.once("exit", r));
          envoy.kill("SIGTERM");
          await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
          if (envoy.exitCode === null) envoy.kill("SIGKILL");
        }
        await router?.stop();
        await Promise.all(replicas.map((r) => new Promise((done) => r.server.close(done))));
      });

      it("sends same-prefix chats to one replica, with the router's headers upstream", async () => {
        const system = systemPrompt("billing");
        const results: Echo[] = [];
        for (let i = 0; i < 6; i++) results.push(await chat(system, `Question ${i}: why was I charged twice?`));
        expect(results.map((r) => r.status), log()).toEqual(Array(6).fill(200));
        expect(new Set(results.map((r) => r.replica)).size, log()).toBe(1);
        const replica = byId(results[0].replica)!;
        for (const r of results) {
          expect(r.seen[DESTINATION_HEADER]).toBe(replica.address);
          expect(r.seen[DEBUG_HEADERS.worker]).toBe(replica.id);
          expect(r.seen[DEBUG_HEADERS.model]).toBe("qwen3");
          expect(Number(r.seen[DEBUG_HEADERS.decisionMicros])).toBeGreaterThan(0);
          // The route echoes the explanation to the client (response_headers_to_add).
          expect(r.responseHeaders.get(DEBUG_HEADERS.decision)).toBe(r.seen[DEBUG_HEADERS.decision]);
        }
        expect(results[0].seen[DEBUG_HEADERS.decision]).toMatch(/^(miss|hit)$/);
        // Recorded speculatively on the first pick: every later request matches the system prompt.
        for (const r of results.slice(1)) {
          expect(r.seen[DEBUG_HEADERS.decision]).toBe("hit");
          const [matched, total] = r.seen[DEBUG_HEADERS.blocks].split("/").map(Number);
          expect(matched).toBeGreaterThan(0);
          expect(matched).toBeLessThanOrEqual(total);
        }
      });

      it("ignores routing headers a client sends", async () => {
        const system = systemPrompt("billing");
        const first = await chat(system, "Which plan am I on?");
        const other = replicas.find((r) => r.id !== first.replica)!;
        const spoofed = await chat(system, "Which plan am I on, really?", { [DESTINATION_HEADER]: other.address, [DEBUG_HEADERS.decision]: "forged" });
        expect(spoofed.status, log()).toBe(200);
        expect(spoofed.replica).toBe(first.replica);
        expect(spoofed.seen[DESTINATION_HEADER]).toBe(byId(first.replica)!.address);
        expect(spoofed.seen[DEBUG_HEADERS.decision]).not.toBe("forged");
      });

      it("spreads different prefixes over the replicas", async () => {
        const served = new Set<string | null>();
        for (let i = 0; i < 12; i++) served.add((await chat(systemPrompt(`topic ${i}`), "Hello")).replica);
        expect(served.has(null), log()).toBe(false);
        expect(served.size).toBeGreaterThanOrEqual(2);
      });

      it("delivers a large body intact (several 64 KiB chunks in full-duplex mode)", async () => {
        const padding = " lorem ipsum dolor sit amet".repeat(12_000); // ≈ 320 KB
        const body = chatBody(systemPrompt("large"), `Summarize:${padding}`, "qwen3");
        const r = await chat(systemPrompt("large"), "Summarize:", {}, padding);
        expect(r.status, log()).toBe(200);
        expect(r.bodySha256).toBe(createHash("sha256").update(body).digest("hex"));
      });

      it(failOpen ? "keeps serving when the router is down (failure_mode_allow), still dropping client routing headers" : "fails closed when the router is down (Envoy refuses fail-open with FULL_DUPLEX_STREAMED)", async () => {
        await router!.stop();
        router = null;
        const results: Echo[] = [];
        for (let i = 0; i < 4; i++) results.push(await chat(systemPrompt("outage"), `Are you there? ${i}`, { [DESTINATION_HEADER]: replicas[0].address, [DEBUG_HEADERS.decision]: "forged" }));
        if (!failOpen) {
          for (const r of results) expect(r.status, log()).toBeGreaterThanOrEqual(500);
          return;
        }
        expect(results.map((r) => r.status), log()).toEqual(Array(4).fill(200));
        for (const r of results) {
          expect(byId(r.replica)).toBeDefined();
          // Nothing the client sent survives: the header_mutation filter runs before ext_proc.
          expect(r.seen).toEqual({});
          expect(r.responseHeaders.get(DEBUG_HEADERS.decision)).toBeNull();
        }
      });
    });
  });
});
