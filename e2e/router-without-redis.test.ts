/**
 * A router on the embedded in-memory map never loads ioredis (src/state/load-ioredis.ts: loading
 * it slows string code in the whole thread). Checked in a fresh process: start the router, route a
 * request, then look for ioredis among the loaded modules; loading it through redisClientClass()
 * afterwards shows the check sees it when it is there.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./support/router-fixture";

const run = promisify(execFile);

const SCRIPT = `
const { startTestRouter, chatBody } = require("./e2e/support/router-fixture");
const loaded = () => Object.keys(require.cache).some((k) => /node_modules[\\\\/]ioredis[\\\\/]/.test(k));
(async () => {
  const router = await startTestRouter();
  const ex = await router.client.process({ path: "/v1/chat/completions", body: chatBody("You are a helpful assistant.", "Hello there") });
  const routed = ex.upstreamHeaders.get("x-prefix-router-decision");
  await ex.complete(200);
  const before = loaded();
  require("./src/state/load-ioredis").redisClientClass();
  console.log(JSON.stringify({ routed, before, after: loaded() }));
  await router.stop();
})().catch((err) => { console.error(err); process.exit(1); });
`;

describe("a router without Redis", () => {
  it("routes without loading ioredis", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "-e", SCRIPT], { cwd: REPO_ROOT, timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!);
    expect(result).toEqual({ routed: expect.any(String), before: false, after: true });
  }, 90_000);
});
