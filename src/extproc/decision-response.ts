/**
 * Turns a routing result into Envoy's language: the destination header (and the same value in
 * dynamic metadata namespace envoy.lb, the Gateway API Inference Extension's endpoint-picker
 * protocol), the debug headers that explain the decision, or a 503 ImmediateResponse when nobody
 * can take the request. The destination is the pick, then up to `fallbacks` other eligible
 * workers, comma-separated: Envoy's override_host policy tries them in order on retries.
 */
import type { RejectedRequest, RoutedRequest } from "../router/route-result";
import { mutation } from "./headers";
import type { CommonResponse, ImmediateResponse, Struct } from "./messages";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";
export const LB_METADATA_NAMESPACE = "envoy.lb";

/** Debug headers, documented in README.md ("Debug headers"). */
export const DEBUG_HEADERS = {
  decision: "x-prefix-router-decision",
  blocks: "x-prefix-router-blocks",
  worker: "x-prefix-router-worker",
  candidates: "x-prefix-router-candidates",
  reason: "x-prefix-router-reason",
  decisionMicros: "x-prefix-router-decision-us",
  model: "x-prefix-router-model",
  decidedBy: "x-prefix-router-decided-by",
  estimate: "x-prefix-router-estimate-ms",
  keyed: "x-prefix-router-keyed",
} as const;

/** A header value Envoy accepts as is: visible ASCII and spaces, bounded. */
const HEADER_SAFE = /^[\x20-\x7e]{1,256}$/;

/** Client-supplied copies of these are always removed, so nobody can steer or fake a decision. */
const STRIPPED_HEADERS = [DESTINATION_HEADER, ...Object.values(DEBUG_HEADERS)];

export interface AnswerOptions {
  readonly debug: boolean;
  /** How many fallback endpoints follow the pick in the destination. */
  readonly fallbacks: number;
}

/** "pick[,fallback…]": the value of the destination header and metadata (they must be equal). */
export function destinationValue(result: RoutedRequest, fallbacks: number): string {
  return [result.worker, ...(result.fallbacks ?? []).slice(0, fallbacks)].map((w) => w.address).join(",");
}

export function routedHeaders(result: RoutedRequest, options: AnswerOptions): Array<[string, string]> {
  const debug = options.debug;
  const headers: Array<[string, string]> = [[DESTINATION_HEADER, destinationValue(result, options.fallbacks)]];
  for (const [k, v] of result.extraHeaders ?? []) headers.push([k, v]);
  if (!debug) return headers;
  headers.push(
    [DEBUG_HEADERS.decision, result.outcome],
    [DEBUG_HEADERS.blocks, `${result.matchedBlocks}/${result.totalBlocks}`],
    [DEBUG_HEADERS.worker, result.worker.id],
    [DEBUG_HEADERS.candidates, String(result.candidates)],
    [DEBUG_HEADERS.decisionMicros, String(result.decisionMicros)],
  );
  if (result.reason) headers.push([DEBUG_HEADERS.reason, result.reason]);
  // A configured name (never the client's string); one Envoy would reject is left out, not sent.
  if (result.model && HEADER_SAFE.test(result.model)) headers.push([DEBUG_HEADERS.model, result.model]);
  if (result.decidedBy) headers.push([DEBUG_HEADERS.decidedBy, result.decidedBy]);
  if (result.estimateMs !== null) headers.push([DEBUG_HEADERS.estimate, result.estimateMs.toFixed(1)]);
  if (result.headOnly) headers.push([DEBUG_HEADERS.keyed, "head"]);
  return headers;
}

/** The CommonResponse that routes the request (Envoy applies removals before sets). */
export function routingCommonResponse(result: RoutedRequest, options: AnswerOptions): CommonResponse {
  return {
    status: "CONTINUE",
    header_mutation: mutation(routedHeaders(result, options), STRIPPED_HEADERS),
    // Envoy ignores clear_route_cache unless the same response carries a header mutation.
    clear_route_cache: true,
  };
}

/** A CommonResponse that only strips client-supplied routing headers. */
export function strippingCommonResponse(): CommonResponse {
  return { status: "CONTINUE", header_mutation: mutation([], STRIPPED_HEADERS) };
}

export function destinationMetadata(destination: string): Struct {
  return {
    fields: {
      [LB_METADATA_NAMESPACE]: { structValue: { fields: { [DESTINATION_HEADER]: { stringValue: destination } } } },
    },
  };
}

export function rejection(result: RejectedRequest, debug: boolean): ImmediateResponse {
  const body = JSON.stringify({ error: { message: `no eligible worker: ${result.detail}`, type: "service_unavailable", code: 503 } });
  const set: Array<[string, string]> = [["content-type", "application/json"]];
  if (debug) set.push([DEBUG_HEADERS.reason, result.reason], [DEBUG_HEADERS.decisionMicros, String(result.decisionMicros)]);
  return { status: { code: result.status }, headers: mutation(set), body: Buffer.from(body), details: "prefix_router_no_eligible_worker" };
}
