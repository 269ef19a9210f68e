/**
 * BodyPrefixMemo gives exactly what JSON.parse gives, for bodies that share a prefix of whole
 * messages with a remembered one (and reuses it: hits are counted), and gives up — leaving the
 * whole parse to the caller — whenever reuse could differ: a tail that does not parse, a tail that
 * repeats "messages", a remembered root that repeats a key, messages that are not objects.
 */
import { describe, expect, it } from "vitest";
import { seededRandom } from "../common/seeded-random";
import { BodyPrefixMemo, scanBody } from "./body-prefix-memo";
import type { JsonObject } from "./json-fields";

const bytes = (text: string) => Buffer.from(text);

/** Parses through the memo (whole when it gives up) and remembers, as a tokenizer thread does. */
function parseVia(memo: BodyPrefixMemo, body: Buffer): { json: JsonObject; hit: boolean } {
  const hit = memo.parse(body);
  const json = hit?.json ?? (JSON.parse(body.toString("utf8")) as JsonObject);
  memo.remember(body, json);
  return { json, hit: hit !== undefined };
}

const SYSTEM = 'You are a careful assistant. Quote "exactly" and escape \\ backslashes; ünïcode 你好 👋.\n'.repeat(40);

describe("BodyPrefixMemo", () => {
  it("parses like JSON.parse, reusing the longest shared run of messages (random conversations, spacing, escapes, fields around the messages)", () => {
    const random = seededRandom(12);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    const memo = new BodyPrefixMemo(4 * 64 << 10, 1024);
    const texts = [SYSTEM, "short", 'with "quotes" and \\"escaped\\" ones', "line\nbreaks\tand \u2028 separators", "\\", '\\"', "}", "]", "{", "[", ","];
    // Each conversation has its own spacing and fields before the messages; what follows them varies.
    const conversations = [0, 1, 2].map((c) => ({ indent: c, model: c < 2, messages: [{ role: "system", content: `${c}: ${SYSTEM}` }] }));
    let hits = 0;
    for (let round = 0; round < 300; round++) {
      const conversation = pick(conversations);
      if (random() < 0.5) conversation.messages.push({ role: pick(["user", "assistant"]), content: `${pick(texts)} ${round}` });
      const messages = random() < 0.3 ? [...conversation.messages, { role: "user", content: `another question ${round} ${pick(texts)}` }] : conversation.messages;
      const body: Record<string, unknown> = {};
      if (conversation.model) body.model = "qwen3";
      body.messages = random() < 0.1 ? [...messages, { role: "tool", content: [{ type: "text", text: pick(texts) }] }] : messages;
      if (random() < 0.5) body.stream = random() < 0.5;
      if (random() < 0.3) body.tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
      if (random() < 0.2) body.chat_template_kwargs = { enable_thinking: false };
      const text = JSON.stringify(body, null, conversation.indent);
      const { json, hit } = parseVia(memo, bytes(text));
      expect(json).toEqual(JSON.parse(text));
      if (hit) hits++;
    }
    expect(hits).toBeGreaterThan(100);
    expect(memo.stats().hits).toBe(hits);
    expect(memo.stats().bytesReused).toBeGreaterThan(hits * SYSTEM.length);
  });

  it("takes a field after the messages over the same field before them, as JSON.parse does", () => {
    const memo = new BodyPrefixMemo(1 << 20, 0);
    memo.remember(bytes(`{"model":"a","messages":[{"role":"system","content":"${"x".repeat(500)}"}],"stream":false}`), JSON.parse(`{"model":"a","messages":[{"role":"system","content":"${"x".repeat(500)}"}],"stream":false}`));
    const next = `{"model":"a","messages":[{"role":"system","content":"${"x".repeat(500)}"},{"role":"user","content":"q"}],"model":"b","stream":true}`;
    const parsed = memo.parse(bytes(next));
    expect(parsed?.json).toEqual(JSON.parse(next));
    expect(parsed?.json.model).toBe("b");
    expect(Object.keys(parsed!.json)).toEqual(Object.keys(JSON.parse(next)));
  });

  it("gives up where reuse could differ from JSON.parse", () => {
    const system = { role: "system", content: "s".repeat(600) };
    const first = JSON.stringify({ model: "m", messages: [system, { role: "user", content: "one" }] });
    const memo = new BodyPrefixMemo(1 << 20, 0);
    memo.remember(bytes(first), JSON.parse(first));
    const prefix = first.slice(0, first.indexOf(',{"role":"user"'));
    // A tail that is not JSON (".5" or "e5" could continue a number, never a "}"), or not UTF-8, or
    // starts with a U+FEFF (a character there, not a mark): the whole parse reports it.
    for (const tail of [',{"role":"user","content":"two"}', ',{"role":"user",}]}', ".5]}", "e5]}", `\uFEFF]}`]) expect(memo.parse(bytes(prefix + tail))).toBeUndefined();
    expect(memo.parse(Buffer.concat([bytes(prefix + ',{"role":"user","content":"'), Buffer.from([0xff]), bytes('"}]}')]))).toBeUndefined();
    // A tail that names "messages" again replaces the whole array in JSON.parse.
    expect(memo.parse(bytes(prefix + '],"messages":[]}'))).toBeUndefined();
    // The control: the same prefix with a valid tail is reused.
    const valid = prefix + ',{"role":"user","content":"two"}],"stream":true}';
    expect(memo.parse(bytes(valid))?.json).toEqual(JSON.parse(valid));
    // Nothing in common past the first message, or a different first message.
    expect(memo.parse(bytes(JSON.stringify({ model: "m", messages: [{ role: "system", content: "t".repeat(600) }] })))).toBeUndefined();
  });

  it("keeps the newest bodies its budget holds (eight at most), and none over half of it", () => {
    const body = (c: string, n: number) => JSON.stringify({ messages: [{ role: "system", content: c.repeat(n) }, { role: "user", content: "q" }] });
    const next = (c: string, n: number) => bytes(body(c, n).replace('"q"}]', '"q"},{"role":"user","content":"r"}]'));
    const memo = new BodyPrefixMemo(3_000, 0);
    for (const c of ["a", "b", "c"]) memo.remember(bytes(body(c, 1_000)), JSON.parse(body(c, 1_000)));
    expect([memo.parse(next("a", 1_000)), memo.parse(next("b", 1_000)), memo.parse(next("c", 1_000))].map((p) => p !== undefined)).toEqual([false, true, true]);
    memo.remember(bytes(body("d", 1_600)), JSON.parse(body("d", 1_600)));
    expect(memo.parse(next("d", 1_600))).toBeUndefined();
    // And at most eight, however small.
    const roomy = new BodyPrefixMemo(1 << 20, 0);
    for (let c = 0; c < 9; c++) roomy.remember(bytes(body(String(c), 10)), JSON.parse(body(String(c), 10)));
    expect([0, 1, 8].map((c) => roomy.parse(next(String(c), 10)) !== undefined)).toEqual([false, true, true]);
  });

  it("remembers only a root with one messages array of objects and no repeated key", () => {
    const long = "z".repeat(300);
    expect(scanBody(bytes(`{"model":"m","messages":[{"content":"${long}"}],"model":"n"}`))).toBeNull();
    expect(scanBody(bytes(`{"messages":[{"content":"${long}"}],"messages":[]}`))).toBeNull();
    expect(scanBody(bytes(`{"messages":[1,{"content":"${long}"}]}`))).toBeNull();
    expect(scanBody(bytes(`{"prompt":"${long}"}`))).toBeNull();
    expect(scanBody(bytes(`[{"messages":[]}]`))).toBeNull();
    const text = ` { "a" : 1 , "m\\u0065ssages" : [ {"c":"}\\"]"} , {"d":[{}]} ] , "b":"\\\\"} `;
    const offsets = scanBody(bytes(text));
    const first = '{"c":"}\\"]"}';
    const second = '{"d":[{}]}';
    expect(offsets).toEqual({ before: ["a"], ends: [text.indexOf(first) + first.length, text.indexOf(second) + second.length] });
  });
});
