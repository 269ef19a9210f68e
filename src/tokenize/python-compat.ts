/**
 * Where @huggingface/jinja (0.5.x) and Python's jinja2 disagree on things chat templates use, we
 * rewrite the parsed template to call Python-exact helpers instead:
 *   - `s.strip(chars)`, `s.lstrip(chars)`, `s.rstrip(chars)`: the library ignores `chars` and trims
 *     JavaScript whitespace, so Qwen3's `content.lstrip('\n')` would also eat leading spaces;
 *   - the `trim` filter (Llama 3: `message['content'] | trim`) uses JavaScript's whitespace set, which
 *     differs from Python's str.strip() (U+001C–U+001F and U+0085 are whitespace only in Python,
 *     U+FEFF only in JavaScript).
 * The rewrite works on the public `Template.parsed` tree; the helpers are passed as render globals.
 * Known differences that remain (see the report in src/tokenize): `{{ x }}` prints JavaScript forms
 * for None/True/lists (Python: "None", "True", repr), and `tojson` cannot tell 1.0 from 1, orders
 * integer-like object keys first, and formats large/small floats the JavaScript way.
 */
import type { Template } from "@huggingface/jinja";

/** Python's str.isspace() set (Unicode White_Space plus the ASCII separators U+001C–U+001F). */
const PY_WHITESPACE = new Set(
  [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]
    .concat(Array.from({ length: 11 }, (_, i) => 0x2000 + i)),
);

type Side = "both" | "left" | "right";

/** Python `str.strip/lstrip/rstrip(chars)`: strips code points, `chars` None means whitespace. */
export function pyStrip(value: unknown, chars: unknown, side: Side = "both"): string {
  if (typeof value !== "string") throw new Error(`'${typeof value}' object has no attribute 'strip'`);
  if (chars !== undefined && chars !== null && typeof chars !== "string") {
    throw new Error("strip arg must be None or str");
  }
  const set = typeof chars === "string" ? new Set(Array.from(chars, (c) => c.codePointAt(0))) : PY_WHITESPACE;
  let start = 0;
  let end = value.length;
  if (side !== "right") {
    while (start < end) {
      const cp = value.codePointAt(start)!;
      if (!set.has(cp)) break;
      start += cp > 0xffff ? 2 : 1;
    }
  }
  if (side !== "left") {
    while (end > start) {
      const low = value.charCodeAt(end - 1);
      const width = low >= 0xdc00 && low <= 0xdfff && end - 2 >= start && isHighSurrogate(value.charCodeAt(end - 2)) ? 2 : 1;
      if (!set.has(value.codePointAt(end - width)!)) break;
      end -= width;
    }
  }
  return value.slice(start, end);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

const HELPERS = {
  __py_strip: (s: unknown, chars?: unknown) => pyStrip(s, chars, "both"),
  __py_lstrip: (s: unknown, chars?: unknown) => pyStrip(s, chars, "left"),
  __py_rstrip: (s: unknown, chars?: unknown) => pyStrip(s, chars, "right"),
} as const;

/** Render globals the rewritten template calls; spread them into every render context. */
export const PY_HELPER_GLOBALS: Readonly<Record<string, unknown>> = HELPERS;

const METHOD_HELPERS: Readonly<Record<string, keyof typeof HELPERS>> = {
  strip: "__py_strip",
  lstrip: "__py_lstrip",
  rstrip: "__py_rstrip",
};

/** AST nodes are plain objects discriminated by `type`; the interpreter dispatches on it alone. */
interface Node {
  type: string;
  [key: string]: unknown;
}

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

function call(helper: string, args: unknown[]): Node {
  return { type: "CallExpression", callee: { type: "Identifier", value: helper }, args };
}

/** Replaces one node if it is a strip-family method call or a `trim` filter. */
function replacement(node: Node): Node | undefined {
  if (node.type === "CallExpression" && isNode(node.callee) && node.callee.type === "MemberExpression") {
    const member = node.callee;
    const prop = member.property;
    if (!member.computed && isNode(prop) && prop.type === "Identifier") {
      const helper = METHOD_HELPERS[prop.value as string];
      if (helper !== undefined) return call(helper, [member.object, ...(node.args as unknown[])]);
    }
  }
  if (node.type === "FilterExpression" && isNode(node.filter)) {
    const filter = node.filter;
    if (filter.type === "Identifier" && filter.value === "trim") return call("__py_strip", [node.operand]);
    if (filter.type === "CallExpression" && isNode(filter.callee) && filter.callee.value === "trim") {
      return call("__py_strip", [node.operand, ...(filter.args as unknown[])]);
    }
  }
  return undefined;
}

function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewrite);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [rewrite(k), rewrite(v)]));
  if (!isNode(value)) return value;
  for (const key of Object.keys(value)) {
    if (key !== "type") value[key] = rewrite(value[key]);
  }
  return replacement(value) ?? value;
}

/** Rewrites `template.parsed` in place (children first, so nested calls are covered). */
export function pythonize(template: Template): Template {
  rewrite(template.parsed);
  return template;
}
