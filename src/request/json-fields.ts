/**
 * Tiny helpers for walking an untrusted JSON body: type guards, Python-style truthiness (vLLM's
 * code branches on it), and the one way we report a bad field — an "invalid-request" failure whose
 * detail names the field path, e.g. `messages[3].content: expected string or array of parts`.
 */
import { fail, type Failure } from "../failure";

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export type Invalid = { ok: false; failure: Failure };

export function invalid(field: string, expected: string): Invalid {
  return fail("invalid-request", `${field}: ${expected}`);
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Own-property read that treats a missing key and JSON null alike (pydantic's `| None = None`). */
export function field(obj: JsonObject, key: string): Json | undefined {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

export function isNullish(value: unknown): value is null | undefined {
  return value === null || value === undefined;
}

/** Python's `bool(x)` for JSON values: None, False, 0, "", [] and {} are falsy. */
export function pyTruthy(value: Json | undefined): boolean {
  if (isNullish(value)) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return Boolean(value);
}

/** An optional boolean request field: absent or null gives the default. */
export function optionalBool(obj: JsonObject, key: string, fallback: boolean): boolean | Invalid {
  const value = field(obj, key);
  if (isNullish(value)) return fallback;
  if (typeof value !== "boolean") return invalid(key, "expected boolean");
  return value;
}

/** Copies an object's entries except `skip`, in their original order (pydantic extra="allow"). */
export function extraEntries(obj: JsonObject, skip: readonly string[]): [string, Json][] {
  return Object.entries(obj).filter(([key]) => !skip.includes(key));
}
