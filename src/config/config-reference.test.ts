import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderConfigReference } from "./config-reference";

describe("docs/config.md", () => {
  it("is exactly what the schema generates (run `npm run docs:config` after changing the schema)", () => {
    expect(readFileSync(join(__dirname, "..", "..", "docs", "config.md"), "utf8")).toBe(renderConfigReference());
  });

  it("documents every top-level key and their defaults", () => {
    const doc = renderConfigReference();
    for (const key of ["extProc.listen", "blockSize", "hashSeed", "store", "models[].tokenizer", "workers[].address", "ingest.livenessTimeoutMs", "routing.loadGuard.absolute", "limits.maxBodyBytes", "tracing.otlpEndpoint"]) {
      expect(doc).toContain(`\`${key}\``);
    }
    expect(doc).toMatch(/\| `blockSize` \| integer \|  \| `16` \|/);
  });
});
