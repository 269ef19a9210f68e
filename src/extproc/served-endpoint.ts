/**
 * Which replica actually served a request, as Envoy reports it on the response headers message:
 *  - the endpoint-picker protocol's `envoy.lb` / `x-gateway-destination-endpoint-served` metadata
 *    (a GIE gateway, or Envoy's override_host `selected_host_key`, forwarded by
 *    metadata_options.forwarding_namespaces), else
 *  - the `upstream.address` attribute (ext_proc `response_attributes`, any Envoy >= 1.35).
 * Compared with the pick it tells a retry onto a fallback, or a pick Envoy could not use.
 */
import type { RoutedRequest } from "../router/route-result";
import { LB_METADATA_NAMESPACE } from "./decision-response";
import type { ProcessingRequest } from "./messages";

export const SERVED_KEY = "x-gateway-destination-endpoint-served";
/** ext_proc puts the attributes it was asked for under its own filter name. */
const ATTRIBUTES_KEY = "envoy.filters.http.ext_proc";
const UPSTREAM_ADDRESS = "upstream.address";

export function readServedEndpoint(msg: ProcessingRequest): string | null {
  const fromMetadata = msg.metadata_context?.filter_metadata?.[LB_METADATA_NAMESPACE]?.fields?.[SERVED_KEY]?.stringValue;
  if (fromMetadata) return fromMetadata;
  const fromAttribute = msg.attributes?.[ATTRIBUTES_KEY]?.fields?.[UPSTREAM_ADDRESS]?.stringValue;
  return fromAttribute ? fromAttribute : null;
}

/**
 * picked: the pick served it. fallback: a listed fallback did (Envoy retried). elsewhere: a
 * replica the router never named (override_host's fallback policy: the pick was not among the
 * cluster's endpoints, or every listed one failed) — a stale or misconfigured route.
 */
export type ServedBy = "picked" | "fallback" | "elsewhere";

export function classifyServed(result: RoutedRequest, served: string): ServedBy {
  if (served === result.worker.address) return "picked";
  if ((result.fallbacks ?? []).some((w) => w.address === served)) return "fallback";
  return "elsewhere";
}
