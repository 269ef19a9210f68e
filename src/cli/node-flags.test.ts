import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { missingNodeFlags, ROUTER_NODE_FLAGS } from "./node-flags";

describe("missingNodeFlags", () => {
  it("finds the router's V8 flags on node's command line or in NODE_OPTIONS, whatever their value or spelling", () => {
    expect(missingNodeFlags([], "")).toEqual([...ROUTER_NODE_FLAGS]);
    expect(missingNodeFlags(["--max-semi-space-size=8", "--initial-old-space-size=64"], "")).toEqual([]);
    expect(missingNodeFlags(["--enable-source-maps", "--initial_old_space_size=128"], "--inspect --max_semi_space_size=4")).toEqual([]);
    expect(missingNodeFlags(["--max-semi-space-size=8"], "")).toEqual(["--initial-old-space-size=64"]);
    expect(missingNodeFlags(["--max-old-space-size=4096"], "--max-semi-space")).toEqual([...ROUTER_NODE_FLAGS]);
  });
});

describe("the shipped launchers", () => {
  const root = join(__dirname, "..", "..");
  it.each([
    ["Dockerfile", /^ENTRYPOINT .*$/m],
    ["envoy/systemd/prefix-router.service", /^ExecStart=.*$/m],
    ["Makefile", /^\tnode .*dist\/cli\.js serve .*$/m],
    ["package.json", /"start": .*$/m],
  ])("%s starts the router with its V8 flags", (file, line) => {
    const found = readFileSync(join(root, file), "utf8").match(line)?.[0] ?? "";
    for (const flag of ROUTER_NODE_FLAGS) expect(found).toContain(flag);
  });
});
