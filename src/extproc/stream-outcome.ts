/** What one ext_proc stream did, recorded once when the stream ends (house style 14). */
import type { RouteResult } from "../router/route-result";
import type { ServedBy } from "./served-endpoint";

export interface StreamOutcome {
  readonly requestId: string | null;
  readonly method: string | null;
  readonly path: string | null;
  /** null when the stream ended before a decision (client gone, protocol error). */
  readonly result: RouteResult | null;
  readonly bodyMode: "buffered" | "full-duplex-streamed" | "other" | null;
  readonly bodyBytes: number;
  /** Upstream response status seen in response headers, when Envoy sends them. */
  readonly responseStatus: number | null;
  /** ip:port that served the request, when Envoy reports it (served-endpoint.ts). */
  readonly servedBy: string | null;
  /** servedBy compared with the pick; null when unknown or not routed. */
  readonly served: ServedBy | null;
  /** How the stream ended; expired: the router ended it after extProc.maxStreamAgeMs. */
  readonly end: "completed" | "cancelled" | "error" | "expired";
  readonly error: string | null;
}
