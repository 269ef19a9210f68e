/**
 * A strict check of a parsed YAML/JSON value against an Envoy API message, the way Envoy reads its
 * config (proto3 JSON mapping, snake_case field names), but failing on everything Envoy would
 * reject or that is likely a mistake. protobufjs's fromObject is no help here: it drops unknown
 * keys and coerces types silently.
 *
 * Checked, recursively (through google.protobuf.Any by its `@type`):
 *   - every key is a field of the message (proto names only: snake_case, as in our files);
 *   - value types: messages are objects, repeated fields arrays, maps objects, bool/string/
 *     number/bytes scalars, integer ranges, enums by a defined name (or number);
 *   - well-known types in their JSON forms: Duration ("1.5s"), Timestamp, wrappers (the bare
 *     scalar), Struct/Value/ListValue (any JSON), Any ({"@type", ...fields}), Empty, FieldMask;
 *   - at most one member of each oneof, and Envoy's `oneof_promotion` groups;
 *   - deprecated fields and enum values (our shipped configs must not need them);
 *   - the protoc-gen-validate rules Envoy enforces that matter for hand-written configs:
 *     message.required, oneof (validate.required), repeated.min_items/max_items,
 *     string.min_len/max_len, numeric gt/gte/lt/lte/const (also on wrappers), duration
 *     gt/gte/lt/lte/required.
 * Not checked: string regex/well-known-format rules, map key/value rules, `not_in`/`in` lists.
 *
 * `partial` (for Istio MERGE patches) turns off the presence rules (required, min_items,
 * min_len on absent fields) outside Any payloads: such a value is merged into a complete one.
 */
import * as protobuf from "protobufjs";

export interface WalkOptions {
  readonly partial?: boolean;
}

export interface WalkContext {
  readonly problems: string[];
  /** Full names of every message type the walk validated against (for coverage checks). */
  readonly typesSeen: Set<string>;
  /** Full names of enum values used, `Enum.VALUE`. */
  readonly enumValuesSeen: Set<string>;
}

export interface TypeResolver {
  lookup(fullName: string): protobuf.Type | protobuf.Enum | null;
}

const strip = (name: string): string => name.replace(/^\./, "");
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

const WRAPPERS: Record<string, string> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

const DURATION = /^(-)?(\d+)(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const INT_RANGES: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};
const INT64 = new Set(["int64", "sint64", "sfixed64", "uint64", "fixed64"]);

/** Seconds of a Duration string, or null when it is not one. */
export function durationSeconds(s: string): number | null {
  const m = DURATION.exec(s);
  if (!m) return null;
  const value = Number(m[2]) + (m[3] ? Number(`0${m[3]}`) : 0);
  return m[1] ? -value : value;
}

type Options = Record<string, unknown> | undefined;
const opt = (options: Options, key: string): unknown => options?.[key];

export class StrictWalker {
  constructor(private readonly types: TypeResolver) {}

  /** Validates `value` as message `typeName`; returns one line per problem (empty = valid). */
  validate(typeName: string, value: unknown, options: WalkOptions = {}, ctx?: WalkContext): WalkContext {
    const context = ctx ?? { problems: [], typesSeen: new Set<string>(), enumValuesSeen: new Set<string>() };
    const type = this.types.lookup(typeName);
    if (!(type instanceof protobuf.Type)) {
      context.problems.push(`(root): unknown message type ${typeName}`);
      return context;
    }
    this.message(type, value, "", !!options.partial, context);
    return context;
  }

  private message(type: protobuf.Type, value: unknown, path: string, partial: boolean, ctx: WalkContext): void {
    const name = strip(type.fullName);
    ctx.typesSeen.add(name);
    const at = path || "(root)";
    if (this.wellKnown(name, value, at, ctx)) return;
    if (!isObject(value)) {
      ctx.problems.push(`${at}: expected an object for ${name} (got ${show(value)})`);
      return;
    }
    const present = new Set<string>();
    for (const [key, v] of Object.entries(value)) {
      const field = type.fields[key];
      const here = path ? `${path}.${key}` : key;
      if (!field) {
        const camel = Object.values(type.fields).find((f) => f.options?.json_name === key || toCamel(f.name) === key);
        ctx.problems.push(`${here}: unknown field of ${name}${camel ? ` (write it as ${camel.name})` : ""}`);
        continue;
      }
      present.add(field.name);
      if (opt(field.options, "deprecated") === true) ctx.problems.push(`${here}: field is deprecated in ${name}`);
      this.field(field, v, here, partial, ctx);
    }
    this.oneofs(type, present, at, partial, ctx);
    if (!partial) this.presenceRules(type, present, path, ctx);
  }

  private oneofs(type: protobuf.Type, present: Set<string>, at: string, partial: boolean, ctx: WalkContext): void {
    for (const oneof of type.oneofsArray) {
      if (isSynthetic(oneof)) continue;
      const set = oneof.oneof.filter((f) => present.has(f));
      if (set.length > 1) ctx.problems.push(`${at}: ${set.join(" and ")} are in oneof ${oneof.name}: set only one`);
      if (!partial && set.length === 0 && opt(oneof.options, "(validate.required)") === true)
        ctx.problems.push(`${at}: one of ${oneof.oneof.join(", ")} is required (oneof ${oneof.name})`);
    }
    // Envoy's planned oneofs: fields that will become one oneof already exclude each other.
    const groups = new Map<string, string[]>();
    for (const f of type.fieldsArray) {
      const group = opt(f.options, "(udpa.annotations.field_migrate).oneof_promotion");
      if (typeof group === "string" && present.has(f.name)) groups.set(group, [...(groups.get(group) ?? []), f.name]);
    }
    for (const [group, names] of groups) if (names.length > 1) ctx.problems.push(`${at}: ${names.join(" and ")} are in oneof ${group}: set only one`);
  }

  /** PGV rules that concern absent fields. */
  private presenceRules(type: protobuf.Type, present: Set<string>, path: string, ctx: WalkContext): void {
    for (const f of type.fieldsArray) {
      // Rules on oneof members apply only to the member that is set.
      if (present.has(f.name) || (f.partOf && !isSynthetic(f.partOf))) continue;
      const here = path ? `${path}.${f.name}` : f.name;
      if (opt(f.options, "(validate.rules).message.required") === true || opt(f.options, "(validate.rules).duration.required") === true)
        ctx.problems.push(`${here}: required field of ${strip(type.fullName)} is missing`);
      const minItems = opt(f.options, "(validate.rules).repeated.min_items");
      if (typeof minItems === "number" && minItems > 0) ctx.problems.push(`${here}: needs at least ${minItems} item(s) (missing)`);
      // An absent string is "" to Envoy's validator.
      const minLen = opt(f.options, "(validate.rules).string.min_len");
      if (typeof minLen === "number" && minLen > 0 && f.type === "string" && !f.repeated)
        ctx.problems.push(`${here}: required string of ${strip(type.fullName)} is missing`);
    }
  }

  private field(field: protobuf.Field, v: unknown, path: string, partial: boolean, ctx: WalkContext): void {
    if (field instanceof protobuf.MapField) {
      if (!isObject(v)) {
        ctx.problems.push(`${path}: expected a map (object) (got ${show(v)})`);
        return;
      }
      for (const [k, item] of Object.entries(v)) {
        if (field.keyType !== "string" && !/^-?\d+$/.test(k) && field.keyType !== "bool") ctx.problems.push(`${path}.${k}: map key must be a ${field.keyType}`);
        this.single(field, item, `${path}.${k}`, partial, ctx);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) {
        ctx.problems.push(`${path}: expected a list for repeated field ${field.name} (got ${show(v)})`);
        return;
      }
      const min = opt(field.options, "(validate.rules).repeated.min_items");
      const max = opt(field.options, "(validate.rules).repeated.max_items");
      if (typeof min === "number" && v.length < min) ctx.problems.push(`${path}: needs at least ${min} item(s) (got ${v.length})`);
      if (typeof max === "number" && v.length > max) ctx.problems.push(`${path}: allows at most ${max} item(s) (got ${v.length})`);
      v.forEach((item, i) => this.single(field, item, `${path}.${i}`, partial, ctx));
      return;
    }
    this.single(field, v, path, partial, ctx);
  }

  private single(field: protobuf.Field, v: unknown, path: string, partial: boolean, ctx: WalkContext): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      this.message(resolved, v, path, partial, ctx);
      const wrapped = WRAPPERS[strip(resolved.fullName)];
      if (wrapped) this.numericRules(field.options, wrapped, v, path, ctx);
      if (strip(resolved.fullName) === "google.protobuf.Duration" && typeof v === "string") this.durationRules(field.options, v, path, ctx);
      return;
    }
    if (resolved instanceof protobuf.Enum) {
      this.enumValue(resolved, v, path, ctx);
      return;
    }
    this.scalar(field.type, v, path, ctx);
    if (typeof v === "string" && field.type === "string") {
      const min = opt(field.options, "(validate.rules).string.min_len");
      const max = opt(field.options, "(validate.rules).string.max_len");
      if (typeof min === "number" && v.length < min) ctx.problems.push(`${path}: must be at least ${min} character(s)`);
      if (typeof max === "number" && v.length > max) ctx.problems.push(`${path}: must be at most ${max} character(s)`);
    }
    this.numericRules(field.options, field.type, v, path, ctx);
  }

  private enumValue(e: protobuf.Enum, v: unknown, path: string, ctx: WalkContext): void {
    const name = strip(e.fullName);
    let key: string | undefined;
    if (typeof v === "string") key = Object.prototype.hasOwnProperty.call(e.values, v) ? v : undefined;
    else if (typeof v === "number") key = e.valuesById[v];
    if (key === undefined) {
      ctx.problems.push(`${path}: ${show(v)} is not a value of enum ${name} (one of ${Object.keys(e.values).join(", ")})`);
      return;
    }
    ctx.enumValuesSeen.add(`${name}.${key}`);
    if (e.valuesOptions?.[key]?.deprecated === true) ctx.problems.push(`${path}: enum value ${key} of ${name} is deprecated`);
  }

  private scalar(type: string, v: unknown, path: string, ctx: WalkContext): void {
    const bad = (what: string) => ctx.problems.push(`${path}: expected ${what} (got ${show(v)})`);
    switch (type) {
      case "string":
        if (typeof v !== "string") bad("a string");
        return;
      case "bool":
        if (typeof v !== "boolean") bad("true or false");
        return;
      case "bytes":
        if (typeof v !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) bad("base64 bytes");
        return;
      case "double":
      case "float":
        if (typeof v !== "number" && !(typeof v === "string" && ["NaN", "Infinity", "-Infinity"].includes(v))) bad("a number");
        return;
    }
    const range = INT_RANGES[type];
    if (range) {
      if (typeof v !== "number" || !Number.isInteger(v)) bad(`an integer (${type})`);
      else if (v < range[0] || v > range[1]) bad(`a ${type} in ${range[0]}..${range[1]}`);
      return;
    }
    if (INT64.has(type)) {
      const ok = (typeof v === "number" && Number.isSafeInteger(v)) || (typeof v === "string" && /^-?\d+$/.test(v));
      if (!ok) bad(`an integer (${type})`);
      else if (type.startsWith("u") || type === "fixed64") if (String(v).startsWith("-")) bad(`a non-negative ${type}`);
      return;
    }
    ctx.problems.push(`${path}: field type ${type} is not understood by the checker`);
  }

  private numericRules(options: Options, type: string, v: unknown, path: string, ctx: WalkContext): void {
    if (typeof v !== "number" && !(typeof v === "string" && /^-?\d+$/.test(v))) return;
    const n = Number(v);
    for (const rule of ["gt", "gte", "lt", "lte", "const"] as const) {
      const limit = opt(options, `(validate.rules).${type}.${rule}`);
      if (typeof limit !== "number") continue;
      const ok = rule === "gt" ? n > limit : rule === "gte" ? n >= limit : rule === "lt" ? n < limit : rule === "lte" ? n <= limit : n === limit;
      if (!ok) ctx.problems.push(`${path}: must be ${rule} ${limit} (got ${n})`);
    }
  }

  private durationRules(options: Options, v: string, path: string, ctx: WalkContext): void {
    const seconds = durationSeconds(v);
    if (seconds === null) return;
    for (const rule of ["gt", "gte", "lt", "lte"] as const) {
      const s = opt(options, `(validate.rules).duration.${rule}.seconds`);
      const ns = opt(options, `(validate.rules).duration.${rule}.nanos`);
      const hasEmpty = options !== undefined && Object.keys(options).some((k) => k === `(validate.rules).duration.${rule}` || k.startsWith(`(validate.rules).duration.${rule}.`));
      if (!hasEmpty) continue;
      const limit = (typeof s === "number" ? s : 0) + (typeof ns === "number" ? ns / 1e9 : 0);
      const ok = rule === "gt" ? seconds > limit : rule === "gte" ? seconds >= limit : rule === "lt" ? seconds < limit : seconds <= limit;
      if (!ok) ctx.problems.push(`${path}: duration must be ${rule} ${limit}s (got ${v})`);
    }
  }

  /** Handles the well-known types with special JSON forms; returns false for ordinary messages. */
  private wellKnown(name: string, v: unknown, at: string, ctx: WalkContext): boolean {
    const wrapped = WRAPPERS[name];
    if (wrapped) {
      this.scalar(wrapped, v, at, ctx);
      return true;
    }
    switch (name) {
      case "google.protobuf.Duration":
        if (typeof v !== "string" || durationSeconds(v) === null) ctx.problems.push(`${at}: expected a duration like "0.25s" or "300s" (got ${show(v)})`);
        return true;
      case "google.protobuf.Timestamp":
        if (typeof v !== "string" || !TIMESTAMP.test(v)) ctx.problems.push(`${at}: expected an RFC 3339 timestamp (got ${show(v)})`);
        return true;
      case "google.protobuf.Struct":
        if (!isObject(v)) ctx.problems.push(`${at}: expected an object (google.protobuf.Struct) (got ${show(v)})`);
        return true;
      case "google.protobuf.Value":
        return true;
      case "google.protobuf.ListValue":
        if (!Array.isArray(v)) ctx.problems.push(`${at}: expected a list (got ${show(v)})`);
        return true;
      case "google.protobuf.Empty":
        if (!isObject(v) || Object.keys(v).length > 0) ctx.problems.push(`${at}: expected {} (got ${show(v)})`);
        return true;
      case "google.protobuf.FieldMask":
        if (typeof v !== "string") ctx.problems.push(`${at}: expected a field mask string (got ${show(v)})`);
        return true;
      case "google.protobuf.Any":
        this.any(v, at, ctx);
        return true;
    }
    return false;
  }

  private any(v: unknown, at: string, ctx: WalkContext): void {
    if (!isObject(v)) {
      ctx.problems.push(`${at}: expected an object with "@type" (google.protobuf.Any) (got ${show(v)})`);
      return;
    }
    const url = v["@type"];
    if (typeof url !== "string" || !url.includes("/")) {
      ctx.problems.push(`${at}: google.protobuf.Any needs "@type": type.googleapis.com/<message> (got ${show(url)})`);
      return;
    }
    const typeName = url.slice(url.lastIndexOf("/") + 1);
    const type = this.types.lookup(typeName);
    const here = at === "(root)" ? "" : at;
    if (!(type instanceof protobuf.Type)) {
      ctx.problems.push(`${at}.@type: unknown message ${typeName}: not in the API snapshot and not declared in NEWER_THAN_SNAPSHOT`);
      return;
    }
    const rest = Object.fromEntries(Object.entries(v).filter(([k]) => k !== "@type"));
    // Well-known types inside Any carry their JSON form in "value".
    if (WRAPPERS[typeName] || typeName.startsWith("google.protobuf.")) {
      if (typeName === "google.protobuf.Empty" || typeName === "google.protobuf.Any") this.message(type, rest, here, false, ctx);
      else this.message(type, rest.value, `${here}.value`, false, ctx);
      return;
    }
    // An Any payload is a whole extension config: presence rules apply even inside a partial patch.
    this.message(type, rest, here, false, ctx);
  }
}

/** proto3 `optional` becomes a synthetic oneof named "_field" with that one member. */
function isSynthetic(oneof: protobuf.OneOf): boolean {
  return oneof.oneof.length === 1 && oneof.name === `_${oneof.oneof[0]}`;
}

function toCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
