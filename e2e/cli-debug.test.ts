/** `prefix-router explain` and `inspect` against a running router (real admin port, real ingest). */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IngestTestClient, withIngestTokens } from "./support/ingest-client";
import { chatBody, REPO_ROOT, routerKeys, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const TSX = join(REPO_ROOT, "node_modules", ".bin", "tsx");
const CLI = join(REPO_ROOT, "src", "cli.ts");

describe("explain and inspect", () => {
  let r: RunningRouter;
  let dir: string;
  let configFile: string;
  let bodyFile: string;
  let admin: string;
  let blocks: number;
  const body = chatBody("You are the explain test's assistant. " + "Reference material. ".repeat(150), "what now?");

  beforeAll(async () => {
    const base = testConfig();
    const config = testConfig({
      workers: withIngestTokens(base.workers),
      ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 600_000 }, // the CLI runs take a while
      admin: { listen: "127.0.0.1:0" },
    });
    r = await startTestRouter(config);
    admin = `http://${r.service.admin!.address}`;
    dir = mkdtempSync(join(tmpdir(), "prefix-router-explain-"));
    configFile = join(dir, "router.yaml");
    writeFileSync(configFile, stringify({ ...config, admin: undefined, ingest: undefined }));
    bodyFile = join(dir, "body.json");
    writeFileSync(bodyFile, body);
    // w3 reports that it holds the whole prompt; w1 holds its first 2 blocks.
    const keys = await routerKeys(r.service, body);
    blocks = keys.length;
    const ingest = new IngestTestClient(r.service.ingest!.server.address);
    await ingest.push({ worker: "w3", seq: 1, events: [{ stored: keys }] });
    await ingest.push({ worker: "w1", seq: 1, events: [{ stored: keys.slice(0, 2) }] });
    ingest.close();
  });
  afterAll(async () => r.stop());

  // Asynchronous: the router under test runs in this process and must keep answering.
  const cli = (...args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
      execFile(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );

  it("explain prints the blocks, each worker's match, load and estimate, and the pick with the term that decided", async () => {
    const out = await cli("explain", "--config", configFile, "--body", bodyFile, "--admin", admin);
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/policy: +min-ttft/);
    expect(out.stdout).toMatch(new RegExp(`blocks: +${blocks} full blocks of 16 tokens`));
    // Rows best charge first: w3 holds the whole prompt, w1 its first 2 blocks, the others nothing.
    const rows = out.stdout.split("\n").filter((l) => /^[→ ] +w\d /.test(l));
    expect(rows.map((l) => l.trim().split(/ +/).filter((c) => c !== "→")[0])).toEqual(["w3", "w1", expect.stringMatching(/^w[24]$/), expect.stringMatching(/^w[24]$/)]);
    expect(rows[0]).toMatch(new RegExp(`^→ +w3 +${blocks}/${blocks} +0 +0 `));
    expect(rows[1]).toMatch(new RegExp(`^ +w1 +2/${blocks} `));
    // Each row: queue, step, prefill, TTFT = queue + step + prefill, shared discount, others, charge.
    for (const row of rows) {
      const [queue, step, prefill, ttft] = row.trim().split(/ +/).slice(-7).map(Number);
      expect(ttft).toBeCloseTo(queue + step + prefill, 0);
    }
    expect(out.stdout).toMatch(new RegExp(`pick: +w3 \\(10\\.0\\.0\\.3:8000\\), hit, ${blocks}/${blocks} blocks, estimated TTFT [\\d.]+ ms`));
    expect(out.stdout).toMatch(/why: +cache — its cached prefix saves more prefill than any queue costs elsewhere/);
  });

  it("explain --json is machine-readable and agrees with the router's actual decision", async () => {
    const out = await cli("explain", "--config", configFile, "--body", bodyFile, "--admin", admin, "--json");
    const parsed = JSON.parse(out.stdout) as { decision: { worker: string; outcome: string; matchedBlocks: number } };
    const ex = await r.client.process({ path: "/v1/chat/completions", body });
    expect(ex.upstreamHeaders.get("x-prefix-router-worker")).toBe(parsed.decision.worker);
    expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe(parsed.decision.outcome);
    expect(ex.upstreamHeaders.get("x-prefix-router-blocks")).toBe(`${parsed.decision.matchedBlocks}/${blocks}`);
    await ex.complete(200);
  });

  it("explain names the fallback reason for a request that would fall back", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ model: "nope", messages: [{ role: "user", content: "x" }] }));
    const out = await cli("explain", "--config", configFile, "--body", bad, "--admin", admin);
    expect(out.stdout).toMatch(/fallback: +unknown-model/);
  });

  it("inspect lists blocks, liveness, epoch/seq and load per worker", async () => {
    const out = await cli("inspect", "--config", configFile, "--admin", admin);
    expect(out.status).toBe(0);
    const row = (w: string) => out.stdout.split("\n").find((l) => l.startsWith(w + " "))!;
    expect(row("w3")).toMatch(new RegExp(`^w3 +10\\.0\\.0\\.3:8000 +${blocks} +\\d+ +0 +yes +\\d+\\.\\ds ago +e1 +1 +0 +0 +live`));
    expect(row("w2")).toMatch(/no events yet/);
    const json = JSON.parse((await cli("inspect", "--config", configFile, "--admin", admin, "--json")).stdout) as { workers: { id: string; blocks: number }[] };
    expect(json.workers.find((w) => w.id === "w1")?.blocks).toBe(2);
  });
});
