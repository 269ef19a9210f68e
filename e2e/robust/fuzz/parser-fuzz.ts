/**
 * The bulk of the fuzz cases, in process and without gRPC: the request body parser
 * (parseOpenAiBody: JSON, chat messages, content parts, tools, limits) on the bodies of
 * arbitraries.ts, and the ingest batch validator on random batches. Property: the parser returns
 * an Outcome and never throws, and a parsed chat is something the template can take (every message
 * has a string role, content a string or null); the validator returns a verdict and never throws.
 * fast-check, seeded: a failure prints the seed and the shrunk case.
 */
import fc from "fast-check";
import { BatchValidator } from "../../../src/ingest/ingest-batch";
import { parseOpenAiBody } from "../../../src/request/parse-openai-body";
import { testConfig } from "../../support/router-fixture";
import { body } from "./arbitraries";

export interface ParserFuzzFigures {
  readonly bodies: number;
  readonly parsed: number;
  readonly failures: Record<string, number>;
  readonly batches: number;
  readonly seconds: number;
}

export function fuzzParsers(seed: number, bodies: number, batches: number): ParserFuzzFigures {
  const config = testConfig();
  const t0 = performance.now();
  const failures: Record<string, number> = {};
  let parsed = 0;
  fc.assert(
    fc.property(body, ({ path, body: bytes }) => {
      const r = parseOpenAiBody(path, bytes, config.limits);
      if (!r.ok) {
        failures[r.failure.code] = (failures[r.failure.code] ?? 0) + 1;
        return;
      }
      parsed++;
      const p = r.value;
      if (p.kind === "chat") {
        for (const m of p.messages) {
          if (typeof m.role !== "string") throw new Error(`parsed a chat message with role ${JSON.stringify(m.role)}`);
          if (m.content !== null && typeof m.content !== "string") throw new Error(`parsed a chat message with content ${JSON.stringify(m.content).slice(0, 200)}`);
        }
      }
    }),
    { seed, numRuns: bodies },
  );
  const validator = new BatchValidator(config, { maxEventsPerBatch: 10_000, maxKeysPerBatch: 500_000 });
  const event = fc.oneof(
    fc.record({ kind: fc.constantFrom("stored", undefined), stored: fc.record({ keys: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)), parent: fc.uint8Array({ maxLength: 10 }).map((a) => Buffer.from(a)) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    fc.record({ kind: fc.constantFrom("removed", undefined), removed: fc.record({ keys: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    fc.record({ kind: fc.constantFrom("cleared", "other", undefined), cleared: fc.constant({}) }, { requiredKeys: [] }),
  );
  const batch = fc.record(
    {
      worker_id: fc.oneof(fc.constantFrom("w1", "w2", "nope"), fc.string()),
      model: fc.oneof(fc.constantFrom("qwen3", "llama3"), fc.string()),
      lora: fc.string(),
      epoch: fc.string({ maxLength: 200 }),
      seq: fc.oneof(fc.nat().map(String), fc.string(), fc.bigInt().map(String)),
      block_size: fc.oneof(fc.constant(16), fc.integer()),
      events: fc.array(event, { maxLength: 5 }),
      sent_at_ms: fc.oneof(fc.nat().map(String), fc.string()),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(batch, (b) => {
      const verdict = validator.batch(b as Parameters<BatchValidator["batch"]>[0]);
      if (typeof verdict.ok !== "boolean") throw new Error("the validator returned no verdict");
    }),
    { seed, numRuns: batches },
  );
  return { bodies, parsed, failures, batches, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)) };
}
