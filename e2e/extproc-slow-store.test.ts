/**
 * No request waits behind another's lookup: requests that share their first block (nearly every
 * chat request of one application) each get their own lookup and their own deadline. With the store
 * hung, 10 at once all fall back with store-error after routing.lookupTimeoutMs — none runs out of
 * routing.decisionTimeoutMs waiting behind the others; with a slow store they are all routed.
 * (Before the speculation overlay, one lookup at a time per first block: the 10th of a burst waited
 * for nine lookups.)
 */
import { describe, expect, it } from "vitest";
import type { BlockKey } from "../src/prefix/block-keys";
import { startRouterService } from "../src/router-service";
import type { CacheIndex, WorkerId } from "../src/state/cache-index";
import { MemoryCacheIndex } from "../src/state/memory-cache-index";
import { silentLogger } from "../src/telemetry/logger";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { chatBody, testConfig } from "./support/router-fixture";

const LOOKUP_TIMEOUT_MS = 200;
const DECISION_TIMEOUT_MS = 1_000;
const BURST = 10;

/** A memory index whose lookups take `delayMs` (Infinity: never answer, like a hung Redis); `asked` counts them. */
function slowIndex(delayMs: number, asked = { lookups: 0 }): CacheIndex {
  const inner = new MemoryCacheIndex({ maxEntries: 100_000 });
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== "lookup") return Reflect.get(target, prop, receiver) as unknown;
      return (keys: readonly BlockKey[], workers: readonly WorkerId[]) => {
        asked.lookups++;
        return delayMs === Infinity ? new Promise(() => undefined) : new Promise((resolve) => setTimeout(() => resolve(target.lookup(keys, workers)), delayMs));
      };
    },
  });
}

async function burst(delayMs: number): Promise<{ reason: string | undefined; decision: string | undefined; micros: number }[]> {
  const config = testConfig({ routing: { lookupTimeoutMs: LOOKUP_TIMEOUT_MS, decisionTimeoutMs: DECISION_TIMEOUT_MS, load: { scrapeMetrics: false } } });
  const service = await startRouterService(config, { logger: silentLogger, index: slowIndex(delayMs) });
  const client = new EnvoyExtProcClient(service.extProc.address);
  try {
    // Warm the tokenizer on the shared system prompt, so the burst measures lookups, not a cold encode.
    const system = "You are the support assistant of one application. ".repeat(40);
    await (await client.process({ path: "/v1/chat/completions", body: chatBody(system, "warm up") })).complete(200);
    const exchanges = await Promise.all(
      Array.from({ length: BURST }, (_, i) => client.process({ path: "/v1/chat/completions", body: chatBody(system, `question ${i}`), messageTimeoutMs: 5_000 })),
    );
    for (const ex of exchanges) await ex.complete(200);
    return exchanges.map((ex) => ({
      reason: ex.upstreamHeaders.get("x-prefix-router-reason"),
      decision: ex.upstreamHeaders.get("x-prefix-router-decision"),
      micros: Number(ex.upstreamHeaders.get("x-prefix-router-decision-us")),
    }));
  } finally {
    client.close();
    await service.close();
  }
}

/** One ~50k-character new document (heads of 2k and 8k would be asked about, then the rest) through a router whose lookups take `delayMs`. */
async function longNewPrompt(delayMs: number): Promise<{ headers: ReadonlyMap<string, string>; lookups: number }> {
  const asked = { lookups: 0 };
  const config = testConfig({ routing: { lookupTimeoutMs: LOOKUP_TIMEOUT_MS, decisionTimeoutMs: 5_000, load: { scrapeMetrics: false } } });
  const service = await startRouterService(config, { logger: silentLogger, index: slowIndex(delayMs, asked) });
  const client = new EnvoyExtProcClient(service.extProc.address);
  try {
    const document = Array.from({ length: 1_000 }, (_, i) => `Line ${i} of a new document, figure ${i * 7}.`).join("\n");
    const ex = await client.process({ path: "/v1/chat/completions", body: chatBody(document, "Summarize it."), messageTimeoutMs: 10_000 });
    await ex.complete(200);
    return { headers: ex.upstreamHeaders, lookups: asked.lookups };
  } finally {
    client.close();
    await service.close();
  }
}

describe("a slow or hung store", () => {
  it(`hung: ${BURST} requests sharing a first block all fall back on the lookup timeout, none on the decision deadline`, async () => {
    const answers = await burst(Infinity);
    expect(answers.map((a) => a.reason)).toEqual(Array(BURST).fill("store-error"));
    for (const a of answers) expect(a.micros).toBeLessThan(DECISION_TIMEOUT_MS * 1000);
  });

  it(`slow (150 ms per lookup): ${BURST} requests sharing a first block are all routed by prefix within the deadline`, async () => {
    const answers = await burst(150);
    expect(answers.map((a) => a.decision).every((d) => d === "hit" || d === "miss")).toBe(true);
    for (const a of answers) expect(a.micros).toBeLessThan(DECISION_TIMEOUT_MS * 1000);
  });

  it("hung: a long new prompt asks about one head, then keys it whole and falls back on the lookup timeout", async () => {
    const { headers, lookups } = await longNewPrompt(Infinity);
    expect(headers.get("x-prefix-router-reason")).toBe("store-error");
    expect(headers.get("x-prefix-router-keyed")).toBeUndefined();
    // The first head's lookup timed out: no second head was asked about, only the whole prompt's.
    expect(lookups).toBe(2);
  });

  it("a long new prompt no worker holds is looked up once: its decision uses its head's lookup", async () => {
    const { headers, lookups } = await longNewPrompt(0);
    expect(headers.get("x-prefix-router-keyed")).toBe("head");
    expect(headers.get("x-prefix-router-decision")).toBe("miss");
    expect(lookups).toBe(1);
  });
});
