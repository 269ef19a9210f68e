/** `prefix-router sim` as a user runs it: help, config errors, and replicas that answer. */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseConfig } from "../src/config/load-config";
import { QWEN3_TOKENIZER, REPO_ROOT } from "./support/router-fixture";

const TSX = join(REPO_ROOT, "node_modules", ".bin", "tsx");
const CLI = join(REPO_ROOT, "src", "cli.ts");

describe("prefix-router sim", () => {
  it("prints help", () => {
    const r = spawnSync(TSX, [CLI, "sim", "--help"], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: prefix-router sim/);
    expect(r.stdout).toMatch(/--time-scale/);
  });

  it("names the bad key and exits 2", () => {
    const r = spawnSync(TSX, [CLI, "sim", "--model", "qwen3", "--tokenizer", QWEN3_TOKENIZER, "--time-scale", "-1"], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/timeScale: /);
  });

  it("starts replicas that answer, and prints a router config the router accepts", async () => {
    const args = [CLI, "sim", "--model", "qwen3", "--tokenizer", QWEN3_TOKENIZER, "--replicas", "2", "--port", "0", "--zmq-port", "0", "--time-scale", "0.01"];
    const proc = spawn(TSX, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        proc.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          if (/^ready: /m.test(stderr)) resolve();
        });
        void exited.then((code) => reject(new Error(`sim exited ${code}: ${stderr}`)));
      });
      const config = parseConfig(parseYaml(stdout));
      expect(config.workers.map((w) => w.id)).toEqual(["sim-1", "sim-2"]);
      expect(config.workers.every((w) => w.kvEvents?.startsWith("tcp://127.0.0.1:"))).toBe(true);
      for (const w of config.workers) {
        const res = await fetch(`http://${w.address}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: "hello" }], max_tokens: 2 }),
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("x-sim-replica")).toBe(w.id);
      }
    } finally {
      proc.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
