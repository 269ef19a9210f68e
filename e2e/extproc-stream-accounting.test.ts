/**
 * Every stream is routed at most once and every count is released exactly once, whatever order the
 * messages come in: sequences Envoy should never send (a proxy bug) over real gRPC, then the
 * router's in-flight counts and load ledger (admin /debug/workers) must be back where they were.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BodySendMode, ProcessingRequest } from "../src/extproc/messages";
import type { RawStream } from "./support/envoy-ext-proc-client";
import { chatBody, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function headers(opts: { eos?: boolean; mode?: BodySendMode } = {}): ProcessingRequest {
  const kv: Record<string, string> = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "router.test", "content-type": "application/json" };
  return {
    request_headers: { headers: { headers: Object.entries(kv).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: opts.eos ?? false },
    protocol_config: { request_body_mode: opts.mode ?? "BUFFERED", response_body_mode: "NONE" },
  };
}

const body = (text: string, eos = true): ProcessingRequest => ({ request_body: { body: Buffer.from(text), end_of_stream: eos } });
const responseHeaders: ProcessingRequest = { response_headers: { headers: { headers: [{ key: ":status", raw_value: Buffer.from("200") }] }, end_of_stream: true } };
const trailers: ProcessingRequest = { request_trailers: { trailers: { headers: [] } } };

/** Writes the messages with a pause after each (the server answers or not, as it likes), then half-closes. */
async function play(stream: RawStream, messages: readonly (ProcessingRequest | "cancel")[]): Promise<void> {
  for (const msg of messages) {
    if (msg === "cancel") {
      stream.cancel();
      break;
    }
    stream.write(msg);
    await sleep(30);
  }
  stream.end();
  await Promise.race([stream.closed(), sleep(2000)]);
}

interface WorkerFigures {
  inFlight: number;
  load: { running: number; queuedTokens: number } | null;
}

describe("ext_proc stream accounting", () => {
  let r: RunningRouter;
  let admin: string;
  beforeAll(async () => {
    // Ledger entries retire at their predicted completion too: put it far away, so only the
    // stream's end retires them and a leak stays visible.
    r = await startTestRouter(testConfig({ admin: { listen: "127.0.0.1:0" }, routing: { load: { scrapeMetrics: false, expectedOutputTokens: 10_000_000 } } }));
    admin = `http://${r.service.admin!.address}`;
  });
  afterAll(async () => r.stop());

  const figures = async () => {
    const reply = (await (await fetch(`${admin}/debug/workers`)).json()) as { workers: WorkerFigures[] };
    return {
      inFlight: reply.workers.reduce((n, w) => n + w.inFlight, 0),
      running: reply.workers.reduce((n, w) => n + (w.load?.running ?? 0), 0),
    };
  };

  const sequences: { name: string; messages: (ProcessingRequest | "cancel")[] }[] = [
    { name: "request headers with end_of_stream twice", messages: [headers({ eos: true }), headers({ eos: true })] },
    { name: "headers again after a buffered body", messages: [headers(), body(chatBody("again", "hi")), headers({ eos: true })] },
    { name: "a buffered body twice", messages: [headers(), body(chatBody("twice", "hi")), body(chatBody("twice", "hi"))] },
    { name: "a full-duplex body ended twice", messages: [headers({ mode: "FULL_DUPLEX_STREAMED" }), body(chatBody("fd", "hi")), body(chatBody("fd", "hi"))] },
    { name: "full-duplex trailers twice", messages: [headers({ mode: "FULL_DUPLEX_STREAMED" }), body(chatBody("tr", "hi"), false), trailers, trailers] },
    { name: "the response before the request", messages: [responseHeaders, headers({ eos: true }), responseHeaders] },
    { name: "a cancel in the middle of the decision", messages: [headers(), body(chatBody("cancel " + "w".repeat(100_000), "hi")), "cancel"] },
    { name: "a protocol error after the commit", messages: [headers({ eos: true }), {} as ProcessingRequest, responseHeaders] },
    { name: "a body with no headers at all", messages: [body(chatBody("headless", "hi")), responseHeaders] },
  ];

  it.each(sequences)("$name: counts back to where they were", async ({ messages }) => {
    const before = await figures();
    // A witness stream stays routed throughout: an over-release would take its count too.
    const witness = await r.client.process({ path: "/v1/chat/completions", body: chatBody("witness", "hi") });
    const held = { inFlight: before.inFlight + 1, running: before.running + 1 };
    try {
      expect(await figures()).toEqual(held);
      await play(r.client.raw(), messages);
      let after = await figures();
      for (let i = 0; i < 50 && after.inFlight !== held.inFlight; i++) after = (await sleep(20), await figures());
      expect(after).toEqual(held);
    } finally {
      await witness.complete(200);
    }
    expect(await figures()).toEqual(before);
  });

  it("ends with nothing held", async () => {
    expect(await figures()).toEqual({ inFlight: 0, running: 0 });
  });
});
