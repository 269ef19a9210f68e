import { afterEach, describe, expect, it, vi } from "vitest";
import { blockKeys, chainRoot } from "../prefix/block-keys";
import { RealtimeDriver } from "./realtime-driver";
import { SimReplicaEngine } from "./replica-engine";
import { H100_LLAMA_8B, type RequestTiming } from "./replica-model";
import { stepDurationMs } from "./step-cost";

const ROOT = chainRoot({ hashSeed: "0", model: "m" });

afterEach(() => {
  vi.useRealTimers();
});

describe("RealtimeDriver", () => {
  it("delivers first token, each streamed token and the completion when scaled model time reaches them", () => {
    vi.useFakeTimers();
    const engine = new SimReplicaEngine({ blockSize: 16, totalBlocks: 1000, maxBatchedTokens: 8192, maxSeqs: 8, cost: H100_LLAMA_8B });
    const events: number[] = [];
    const driver = new RealtimeDriver(engine, { timeScale: 0.5, wallMs: () => Date.now(), onKvEvents: (e) => events.push(e.length) });
    const prompt = Uint32Array.from({ length: 1024 }, (_, i) => i);
    const seen: string[] = [];
    let done: RequestTiming | undefined;
    driver.submit({ id: "r", prompt, promptKeys: blockKeys(prompt, 16, ROOT), maxTokens: 3, root: ROOT }, {
      onFirstToken: (cached) => seen.push(`first:${cached}`),
      onProgress: (n) => seen.push(`tokens:${n}`),
      onDone: (t) => (done = t),
    });
    expect(events).toEqual([1]); // the prompt's blocks, stored when its prefill is scheduled
    const ttftWall = stepDurationMs(H100_LLAMA_8B, [{ context: 0, tokens: 1024 }], 0, 0) * 0.5;
    vi.advanceTimersByTime(Math.floor(ttftWall) - 1);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(2);
    expect(seen).toEqual(["first:0", "tokens:1"]);
    vi.advanceTimersByTime(4); // one 7 ms decode step = 3.5 ms wall
    expect(seen).toEqual(["first:0", "tokens:1", "tokens:2"]);
    vi.advanceTimersByTime(10);
    expect(done).toMatchObject({ id: "r", outputTokens: 3, cachedTokens: 0 });
    driver.close();
  });
});
