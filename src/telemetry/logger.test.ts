import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger";
import { MAX_LOG_STRING } from "./log-bounds";

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return { logger: createLogger("info", sink), lines };
}

const big = "z".repeat(100_000);

describe("logger bounds", () => {
  it.each([
    ["a long string field", { requestId: big }],
    ["a nested string", { gap: { detail: { text: big } } }],
    ["a long array", { workers: Array.from({ length: 10_000 }, (_, i) => `worker-${i}`) }],
    ["many keys", Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]))],
    ["a long key", { [big]: 1 }],
    ["an error with a long message and command arguments", { err: Object.assign(new Error(big), { command: { name: "EVALSHA", args: [big, big] } }) }],
  ])("%s is cut short", (_name, fields) => {
    const { logger, lines } = capture();
    logger.info(fields, "message");
    expect(lines).toHaveLength(1);
    expect(lines[0].length).toBeLessThan(12 * MAX_LOG_STRING);
    expect(JSON.parse(lines[0]).msg).toBe("message");
  });

  it("keeps short fields as they are", () => {
    const { logger, lines } = capture();
    logger.info({ requestId: "abc", n: 3, nested: { ok: true, list: [1, 2] } }, "fine");
    expect(JSON.parse(lines[0])).toMatchObject({ requestId: "abc", n: 3, nested: { ok: true, list: [1, 2] } });
  });
});
