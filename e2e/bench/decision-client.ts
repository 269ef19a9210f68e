/**
 * The load generator of decision.bench.ts, in its own thread: it builds the request bodies and
 * plays Envoy's side of the gRPC exchange, so the router's event loop (or the no-op floor's) sees
 * only what a real Envoy in another process would cause. Commands come over the worker port.
 */
import { parentPort } from "node:worker_threads";
import { summarize, type Summary } from "../../src/bench/metrics/stats";
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { chat, HISTORY } from "./decision-bodies";

export type BodyKind = "cold" | "warm-prefix" | "warm-identical" | "huge-tools" | "many-messages";

export interface BodySpec {
  readonly kind: BodyKind;
  /** Key into the system prompts sent with "prompts" (ignored for huge-tools; many-messages: the message count). */
  readonly size: number;
}

export type ClientCommand =
  | { readonly op: "prompts"; readonly systems: Record<number, string>; readonly hugeText: string }
  | { readonly op: "run"; readonly address: string; readonly bodies: readonly BodySpec[]; readonly total: number; readonly concurrency: number }
  /** Until stopped: `concurrency` in flight at all times, or (perSecond) one started every 1/perSecond s, at most `concurrency` in flight. */
  | { readonly op: "background"; readonly address: string; readonly bodies: readonly BodySpec[]; readonly concurrency: number; readonly perSecond?: number }
  | { readonly op: "stop-background" };

export interface ClientResult {
  readonly roundTripUs: Summary;
  readonly decisionUs: Summary | null;
  readonly outcomes: Record<string, number>;
  readonly perSecond: number;
  /** Paced runs: arrivals not sent because `concurrency` were already in flight. */
  readonly skipped?: number;
}

/** The text with a marker in every paragraph: no piece of it was ever tokenized before. */
const fresh = (text: string, k: number) => `(${k}) ` + text.replaceAll("\n\n", `\n\n(${k}) `);

let systems: Record<number, string> = {};
let hugeText = "";
let k = 0;

function bodyOf(spec: BodySpec): string {
  const system = systems[spec.size];
  k++;
  switch (spec.kind) {
    case "cold":
      return chat(fresh(system, k), HISTORY.map((h) => `${h} ${k}`), `question ${k}`);
    case "warm-prefix":
      return chat(system, HISTORY, `a new question number ${k}?`);
    case "warm-identical":
      return chat(system, HISTORY, "the same question");
    case "many-messages":
      return chat(`(${k})`, Array.from({ length: spec.size - 2 }, (_, i) => `w${i}`), "Which one?");
    case "huge-tools":
      return chat("You are a helpful assistant.", [], "Which tool fits?", [
        { type: "function", function: { name: "lookup", description: fresh(hugeText, k), parameters: { type: "object", properties: {} } } },
      ]);
  }
}

const clients = new Map<string, EnvoyExtProcClient>();
const clientOf = (address: string) => {
  let c = clients.get(address);
  if (!c) clients.set(address, (c = new EnvoyExtProcClient(address)));
  return c;
};

/**
 * Bodies a background loader (Infinity total) prepares: it stops when they run out, since sending
 * one twice would make a cold body warm. Two cold 32k requests in flight finish ~250 while the
 * 300 warm 1k requests they run beside take their turn.
 */
const BACKGROUND_BODIES = 1024;

/**
 * `total` requests cycling through `bodies` (Infinity total: until stopped), `concurrency` in
 * flight — or, with `perSecond`, one started every 1/perSecond s (an open loop: arrivals do not
 * wait for answers), at most `concurrency` in flight, an arrival beyond that skipped and counted.
 * Every body is built before the first is sent: building a 131 kB JSON body (and, for a cold one,
 * marking every paragraph) costs this process CPU that Envoy, which forwards the client's bytes,
 * never spends — on 2 cores it would be charged to the router under test.
 */
async function run(address: string, bodies: readonly BodySpec[], total: number, concurrency: number, stopped: () => boolean = () => false, perSecond?: number): Promise<ClientResult> {
  const client = clientOf(address);
  const prepared = Array.from({ length: Number.isFinite(total) ? total : BACKGROUND_BODIES }, (_, i) => Buffer.from(bodyOf(bodies[i % bodies.length])));
  const rt: number[] = [];
  const dec: number[] = [];
  const outcomes: Record<string, number> = {};
  const exchange = async (b: Buffer) => {
    const t = process.hrtime.bigint();
    const ex = await client.process({ path: "/v1/chat/completions", body: b, messageTimeoutMs: 60_000 });
    rt.push(Number(process.hrtime.bigint() - t) / 1000);
    const d = ex.upstreamHeaders.get("x-prefix-router-decision-us");
    if (d) dec.push(Number(d));
    const o = ex.upstreamHeaders.get("x-prefix-router-decision") ?? "none";
    outcomes[o] = (outcomes[o] ?? 0) + 1;
    await ex.complete(200);
  };
  let started = 0;
  let skipped = 0;
  const t0 = performance.now();
  if (perSecond === undefined) {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (started < prepared.length && !stopped()) await exchange(prepared[started++]);
      }),
    );
  } else {
    const inFlight = new Set<Promise<void>>();
    for (let arrival = 0; started < prepared.length && !stopped(); arrival++) {
      const due = t0 + (arrival * 1000) / perSecond;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      if (inFlight.size >= concurrency) {
        skipped++;
        continue;
      }
      const p: Promise<void> = exchange(prepared[started++]).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  }
  return { roundTripUs: summarize(rt), decisionUs: dec.length ? summarize(dec) : null, outcomes, perSecond: rt.length / ((performance.now() - t0) / 1000), ...(perSecond === undefined ? {} : { skipped }) };
}

let background: { stop: boolean; done: Promise<ClientResult> } | null = null;

parentPort!.on("message", (cmd: ClientCommand) => {
  const reply = (value: unknown) => parentPort!.postMessage(value);
  switch (cmd.op) {
    case "prompts":
      systems = cmd.systems;
      hugeText = cmd.hugeText;
      reply(null);
      return;
    case "run":
      void run(cmd.address, cmd.bodies, cmd.total, cmd.concurrency).then(reply);
      return;
    case "background": {
      const state = { stop: false, done: Promise.resolve(null as unknown as ClientResult) };
      state.done = run(cmd.address, cmd.bodies, Infinity, cmd.concurrency, () => state.stop, cmd.perSecond);
      background = state;
      reply(null);
      return;
    }
    case "stop-background": {
      const state = background;
      background = null;
      if (!state) return reply(null);
      state.stop = true;
      void state.done.then(reply);
      return;
    }
  }
});
