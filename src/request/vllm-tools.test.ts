import { describe, expect, it } from "vitest";
import { dumpTools } from "./vllm-tools";

describe("dumpTools (vLLM tool.model_dump())", () => {
  it("puts declared keys first with nulls, then extra keys in request order", () => {
    const out = dumpTools([
      { x_top: 1, function: { strict: true, parameters: { b: 1, a: 2 }, name: "f", x_fn: "e" }, type: "function" },
    ]);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    // JSON.stringify shows key order, which Qwen3's `tool | tojson` reproduces.
    expect(JSON.stringify(out.value)).toBe(
      '[{"type":"function","function":{"name":"f","description":null,"parameters":{"b":1,"a":2},"strict":true,"x_fn":"e"},"x_top":1}]',
    );
  });

  it("defaults type to function and passes null for no tools", () => {
    expect(dumpTools(null)).toEqual({ ok: true, value: null });
    expect(dumpTools(undefined)).toEqual({ ok: true, value: null });
    expect(dumpTools([])).toEqual({ ok: true, value: [] });
    expect(dumpTools([{ function: { name: "g", description: "d" } }])).toEqual({
      ok: true,
      value: [{ type: "function", function: { name: "g", description: "d", parameters: null } }],
    });
  });

  it.each([
    [[{ type: "code_interpreter", function: { name: "f" } }], /tools\[0\]\.type/],
    [[{ type: "function" }], /tools\[0\]\.function: expected object/],
    [[{ function: { description: "no name" } }], /tools\[0\]\.function\.name/],
    [[{ function: { name: "f", parameters: "schema" } }], /tools\[0\]\.function\.parameters/],
    [[{ function: { name: "f", description: 3 } }], /tools\[0\]\.function\.description/],
    [["f"], /tools\[0\]: expected object/],
  ])("rejects %j", (tools, detail) => {
    const out = dumpTools(tools);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.failure.code).toBe("invalid-request");
      expect(out.failure.detail).toMatch(detail);
    }
  });
});
