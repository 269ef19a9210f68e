/**
 * Bounds on what one log line may carry. Log fields hold client text (request ids, paths, failure
 * details that quote the body) and worker-reported text (ingest errors): each string is cut to
 * MAX_LOG_STRING characters, each array to MAX_LOG_ITEMS items, nesting to MAX_LOG_DEPTH levels,
 * so a hostile request can neither flood the log nor hide in it. Applied to every line by the
 * logger (logger.ts), not by each call site.
 */

export const MAX_LOG_STRING = 1024;
export const MAX_LOG_ITEMS = 64;
const MAX_LOG_DEPTH = 6;

export function clipString(s: string, max = MAX_LOG_STRING): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length - max} more chars]`;
}

/**
 * A copy of `value` within the bounds. Plain objects and arrays are walked; Errors are left for the
 * logger's err serializer (which clips its output through here too); other values pass unchanged.
 */
export function clipLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return clipString(value);
  if (typeof value !== "object" || value === null || value instanceof Error) return value;
  if (depth >= MAX_LOG_DEPTH) return "[nested too deep]";
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_LOG_ITEMS).map((v) => clipLogValue(v, depth + 1));
    if (value.length > MAX_LOG_ITEMS) items.push(`…[${value.length - MAX_LOG_ITEMS} more items]`);
    return items;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value; // Buffers, Maps, class instances: their own toJSON
  const out: Record<string, unknown> = {};
  let keys = 0;
  for (const [key, v] of Object.entries(value)) {
    if (keys++ >= MAX_LOG_ITEMS) {
      out["…"] = "[more keys]";
      break;
    }
    out[clipString(key, 128)] = clipLogValue(v, depth + 1);
  }
  return out;
}
