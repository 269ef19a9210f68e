/**
 * Benchmark presets: which scenarios run, on which cluster, with which sizes.
 *
 * How sizes were chosen (printed with every result):
 * - Replicas model Llama-3.1-8B on H100s (DESIGN.md §7 cost model; vLLM's 8,192-token step budget).
 * - Cache per replica: about a quarter to a half of the workload's working set (distinct blocks
 *   used in a trailing window of 4 think times) — so a cache-blind policy, which spreads every
 *   conversation over all replicas, keeps evicting, while a policy that keeps conversations
 *   together has room. Quick runs shrink caches below an H100's 27,500 blocks so the working set
 *   (and the run) stays small; the Mooncake scenario keeps the H100 size the trace was sized for.
 * - Load: new sessions arrive at a rate that keeps round-robin's replicas busy (stepping) most of
 *   the time while queues stay short — busy, not saturated. Utilisation is printed per policy.
 * - Measure window: arrivals after a warm-up (caches filled) until new sessions stop arriving.
 * - Targets (report/targets.ts) apply to every scenario of quick and full; the load sweep is
 *   informative.
 * - Streaming: 85% of sessions stream their responses (chat UIs do), so for them the router's
 *   Envoy stream ends at the response headers; the stream-mix scenario streams half.
 */
import type { ContenderName } from "./des/contenders";
import { CONTENDERS } from "./des/contenders";
import type { WorkloadSpec } from "./workloads/build-workload";
import type { ShareGptChatParams } from "./workloads/sharegpt-chat";
import { DATA_DIR } from "./workloads/text-corpus";
import { join } from "node:path";
import type { Scenario } from "./run-scenario";

export interface Preset {
  readonly name: string;
  readonly description: string;
  readonly seed: number;
  readonly contenders: readonly ContenderName[];
  readonly scenarios: readonly Scenario[];
}

const THINK_MS = 15_000;
const MOONCAKE_TRACE = join(DATA_DIR, "mooncake_synthetic_trace.jsonl");

type ChatExtras = Partial<Omit<ShareGptChatParams, "seed" | "durationS" | "conversationsPerS">>;

function chatSpec(replicas: number, perReplicaConvPerS: number, durationS: number, seed: number, extras: ChatExtras = {}): WorkloadSpec {
  return { kind: "chat", params: { seed, durationS, conversationsPerS: perReplicaConvPerS * replicas, thinkMeanMs: THINK_MS, ...extras } };
}

function chat(name: string, replicas: number, perReplicaConvPerS: number, durationS: number, totalBlocks: number, seed: number, extras: ChatExtras = {}): Scenario {
  return {
    name,
    workload: chatSpec(replicas, perReplicaConvPerS, durationS, seed, extras),
    replicas,
    totalBlocks,
    window: { fromMs: Math.min(90_000, durationS * 333), untilMs: durationS * 1000 },
    workingSetWindowMs: 4 * THINK_MS,
    targets: true,
    sizing: `${perReplicaConvPerS * replicas} new conversations/s (${perReplicaConvPerS}/s per replica) for ${durationS} s; ${totalBlocks} blocks per replica ≈ ¼–½ of the 8-replica working set`,
  };
}

function rag(name: string, replicas: number, copies: number, perReplicaConvPerS: number, totalBlocks: number, seed: number): Scenario {
  const rate = perReplicaConvPerS * replicas;
  const arrivalsS = (198 * copies) / rate;
  return {
    name,
    workload: { kind: "rag", params: { seed, conversationsPerS: rate, copies, thinkMeanMs: THINK_MS } },
    replicas,
    totalBlocks,
    window: { fromMs: Math.round(arrivalsS * 300), untilMs: Math.round(arrivalsS * 1000) },
    workingSetWindowMs: 4 * THINK_MS,
    targets: true,
    sizing: `${198 * copies} MTRAG conversations at ${rate}/s; ${totalBlocks} blocks per replica ≈ ¼–½ of the working set`,
  };
}

function agent(name: string, replicas: number, perReplicaSessionsPerS: number, durationS: number, totalBlocks: number, seed: number): Scenario {
  return {
    name,
    workload: { kind: "agent", params: { seed, durationS, sessionsPerS: perReplicaSessionsPerS * replicas } },
    replicas,
    totalBlocks,
    window: { fromMs: Math.min(30_000, durationS * 250), untilMs: durationS * 1000 },
    workingSetWindowMs: 30_000,
    targets: true,
    sizing: `${perReplicaSessionsPerS * replicas} agent sessions/s for ${durationS} s (≈6 steps each, 1.5 s tool latency); ${totalBlocks} blocks per replica`,
  };
}

function bursts(name: string, replicas: number, burstsPerS: number, durationS: number, totalBlocks: number, seed: number): Scenario {
  return {
    name,
    workload: { kind: "mix", params: { parts: [chatSpec(replicas, 1, durationS, seed), { kind: "bursts", params: { seed, durationS, burstsPerS } }] } },
    replicas,
    totalBlocks,
    window: { fromMs: Math.min(60_000, durationS * 333), untilMs: durationS * 1000 },
    workingSetWindowMs: 4 * THINK_MS,
    targets: true,
    sizing: `${burstsPerS} bursts/s of 8 identical 1k–8k-token prompts within 10 ms, over chat at ${replicas} new conversations/s; ${totalBlocks} blocks per replica`,
  };
}

function mixedSizes(name: string, replicas: number, docSessionsPerS: number, durationS: number, totalBlocks: number, seed: number): Scenario {
  return {
    name,
    workload: { kind: "mix", params: { parts: [chatSpec(replicas, 1.5, durationS, seed), { kind: "document-qa", params: { seed, durationS, sessionsPerS: docSessionsPerS } }] } },
    replicas,
    totalBlocks,
    window: { fromMs: Math.min(90_000, durationS * 333), untilMs: durationS * 1000 },
    workingSetWindowMs: 4 * THINK_MS,
    targets: true,
    sizing: `chat at ${1.5 * replicas} new conversations/s with ${docSessionsPerS} document sessions/s (16k–32k-token documents, 1–4 questions); ${totalBlocks} blocks per replica`,
  };
}

export const PRESETS: Readonly<Record<string, Preset>> = {
  smoke: {
    name: "smoke",
    description: "a few seconds: tiny chat and shared-prefix runs, 4 replicas (checks the pipeline, not the targets)",
    seed: 1,
    contenders: CONTENDERS,
    scenarios: [
      chat("chat", 4, 0.5, 30, 4_000, 1),
      {
        name: "shared-prefix",
        workload: { kind: "shared-prefix", params: { seed: 1, groups: 4, promptsPerGroup: 6, systemTokens: 512, questionTokens: 32, outputTokens: 16, requestsPerS: 8 } },
        replicas: 4,
        totalBlocks: 2_000,
        workingSetWindowMs: 60_000,
        sizing: "4 groups × 6 prompts of ≈512-token system prompts at 8 req/s; 2,000 blocks per replica",
      },
    ],
  },
  quick: {
    name: "quick",
    description: "all policies on chat, RAG, chat with a 512-token shared system prompt, agent sessions and n-sampling bursts, 8 replicas (a few minutes on 2 cores)",
    seed: 1,
    contenders: CONTENDERS,
    scenarios: [
      chat("chat", 8, 1.5, 180, 16_000, 1),
      rag("rag", 8, 2, 0.5, 27_500, 1),
      { ...chat("chat-sys512", 8, 1.5, 180, 16_000, 1, { systemPromptTokens: 512 }), sizing: "the chat scenario with a ≈512-token system prompt (instructions + reference text) every conversation shares; 16,000 blocks per replica" },
      agent("agent", 8, 0.25, 120, 16_000, 1),
      bursts("bursts", 8, 0.5, 120, 16_000, 1),
    ],
  },
  full: {
    name: "full",
    description: "all policies, all workloads, 8–32 replicas, a tight-cache variant (tens of minutes)",
    seed: 1,
    contenders: CONTENDERS,
    scenarios: [
      chat("chat", 8, 1.5, 300, 16_000, 1),
      {
        ...chat("chat-tight", 8, 1.5, 300, 4_000, 1),
        sizing: "the chat scenario's workload with 4,000 blocks per replica: the whole cluster holds about half the working set, so every policy evicts",
      },
      chat("chat-16", 16, 1.5, 300, 16_000, 2),
      chat("chat-32", 32, 1.5, 300, 16_000, 3),
      { ...chat("chat-sys512", 8, 1.5, 300, 16_000, 1, { systemPromptTokens: 512 }), sizing: "chat with a ≈512-token system prompt every conversation shares; 16,000 blocks per replica" },
      { ...chat("chat-sys2048", 8, 1.5, 300, 16_000, 1, { systemPromptTokens: 2048 }), sizing: "chat with a ≈2,048-token system prompt every conversation shares; 16,000 blocks per replica" },
      { ...chat("chat-stream-mix", 8, 1.5, 300, 16_000, 1, { streamFraction: 0.5 }), sizing: "the chat scenario with half the conversations streaming (the rest's responses end the Envoy stream at completion)" },
      rag("rag", 8, 4, 0.5, 27_500, 1),
      agent("agent", 8, 0.25, 300, 16_000, 1),
      bursts("bursts", 8, 0.5, 300, 16_000, 1),
      mixedSizes("mixed-sizes", 8, 0.2, 300, 27_500, 1),
      {
        name: "shared-prefix",
        workload: { kind: "shared-prefix", params: { seed: 1, groups: 64, promptsPerGroup: 16, requestsPerS: 16 } },
        replicas: 8,
        totalBlocks: 8_000,
        window: { fromMs: 15_000, untilMs: 64_000 },
        workingSetWindowMs: 64_000,
        targets: true,
        sizing: "SGLang's 64 groups × 16 prompts (2,048-token system prompts, 128-token questions, 256 output) shuffled at 16 req/s; 8,000 blocks per replica ≈ ⅓ of the distinct blocks",
      },
      {
        name: "mooncake",
        workload: { kind: "mooncake", params: { file: MOONCAKE_TRACE } },
        replicas: 8,
        totalBlocks: 27_500,
        workingSetWindowMs: 60_000,
        targets: true,
        sizing: "the synthetic trace as recorded (3,993 requests over 17 min); an H100's 27,500 blocks (≈440k tokens) per replica",
      },
    ],
  },
  "load-sweep": {
    name: "load-sweep",
    description: "chat on 8 replicas at 1×–4× the quick preset's load: where affinity starts to pay in TTFT",
    seed: 1,
    contenders: ["round-robin", "least-loaded", "consistent-hash", "prefix-router"],
    scenarios: [1.5, 3, 4.5, 6].map((perReplica, i) => ({
      ...chat(`chat-x${i + 1}`, 8, perReplica, 120, 16_000, 1),
      targets: false,
    })),
  },
};
