/** Reading Envoy's header maps and writing header mutations the way Envoy >= 1.27 expects. */
import type { HeaderMap, HeaderMutation, HeaderValueOption } from "./messages";

/** Header values: Envoy sends raw_value; older Envoy (and some clients) send value. */
export function readHeaders(map: HeaderMap | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of map?.headers ?? []) {
    const value = h.raw_value && h.raw_value.length > 0 ? h.raw_value.toString("latin1") : (h.value ?? "");
    out.set(h.key.toLowerCase(), value);
  }
  return out;
}

/** A set-header entry with the value in raw_value only (a value in `value` would become empty). */
export function setHeader(key: string, value: string): HeaderValueOption {
  return { header: { key, raw_value: Buffer.from(value, "latin1") }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" };
}

export function mutation(set: ReadonlyArray<readonly [string, string]>, remove: readonly string[] = []): HeaderMutation {
  return { set_headers: set.map(([k, v]) => setHeader(k, v)), remove_headers: [...remove] };
}
