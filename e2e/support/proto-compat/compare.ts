// Compares every message, enum and service we declare against the upstream definitions with the
// same full name. Kept as one small pure function so tests can feed it hand-made Roots too.
import * as protobuf from "protobufjs";

export interface CompareResult {
  /** One human-readable line per mismatch; empty means wire-compatible. */
  problems: string[];
  /** Full names of the types/enums/services that were compared (guards against a vacuous pass). */
  checked: string[];
}

const strip = (fullName: string): string => fullName.replace(/^\./, "");

/**
 * Exact lookup by full name, segment by segment. (protobufjs's own `lookup` also searches nested
 * namespaces for a partial path, which could match a different type of the same short name.)
 * Returns types, enums, services, and fields (Type#get also returns fields).
 */
export function getExact(root: protobuf.Root, fullName: string): protobuf.ReflectionObject | null {
  let obj: protobuf.ReflectionObject | null = root;
  for (const segment of fullName.split(".")) {
    if (!(obj instanceof protobuf.Namespace)) return null;
    obj = obj.get(segment);
  }
  return obj;
}

// Message/enum fields compare by resolved full name (so `config.core.v3.HeaderMap` and
// `envoy.config.core.v3.HeaderMap` agree); scalars by their proto name.
function typeName(field: protobuf.Field): string {
  return field.resolvedType ? strip(field.resolvedType.fullName) : field.type;
}

// Everything that decides how a field looks on the wire besides its number.
function shape(field: protobuf.Field): string {
  const label = field instanceof protobuf.MapField ? `map<${field.keyType}, ${typeName(field)}>`
    : field.repeated ? `repeated ${typeName(field)}` : typeName(field);
  return `${label}; oneof=${field.partOf ? field.partOf.name : "-"}`;
}

/**
 * `skip` holds full names (type, `Type.field` or `Enum.VALUE`) that exist only in newer Envoy;
 * they are not compared. Types under google.protobuf are protobufjs's bundled copies and skipped.
 */
export function compareRoots(ours: protobuf.Root, upstream: protobuf.Root, skip: ReadonlySet<string>): CompareResult {
  const problems: string[] = [];
  const checked: string[] = [];

  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      const name = strip(obj.fullName);
      if (name.startsWith("google.protobuf") || skip.has(name)) continue;
      if (obj instanceof protobuf.Type) compareType(obj, name);
      else if (obj instanceof protobuf.Enum) compareEnum(obj, name);
      else if (obj instanceof protobuf.Service) compareService(obj, name);
      if (obj instanceof protobuf.Namespace) visit(obj); // Type and Service are Namespaces too: nested types
    }
  };

  function compareType(type: protobuf.Type, name: string): void {
    const up = getExact(upstream, name);
    if (!(up instanceof protobuf.Type)) return void problems.push(`${name}: message missing upstream`);
    checked.push(name);
    for (const field of type.fieldsArray) {
      const id = `${name}.${field.name}`;
      if (skip.has(id)) continue;
      const upField = up.fields[field.name];
      if (!upField) { problems.push(`${id}: field missing upstream`); continue; }
      if (field.id !== upField.id) problems.push(`${id}: number ${field.id}, upstream ${upField.id}`);
      if (shape(field) !== shape(upField)) problems.push(`${id}: "${shape(field)}", upstream "${shape(upField)}"`);
    }
  }

  function compareEnum(en: protobuf.Enum, name: string): void {
    const up = getExact(upstream, name);
    if (!(up instanceof protobuf.Enum)) return void problems.push(`${name}: enum missing upstream`);
    checked.push(name);
    for (const [value, num] of Object.entries(en.values)) {
      if (skip.has(`${name}.${value}`)) continue;
      if (up.values[value] !== num) problems.push(`${name}.${value}: ${num}, upstream ${up.values[value] ?? "missing"}`);
    }
  }

  function compareService(svc: protobuf.Service, name: string): void {
    const up = getExact(upstream, name);
    if (!(up instanceof protobuf.Service)) return void problems.push(`${name}: service missing upstream`);
    checked.push(name);
    const sig = (m: protobuf.Method): string =>
      `${m.requestStream ? "stream " : ""}${strip(m.resolvedRequestType!.fullName)} -> ` +
      `${m.responseStream ? "stream " : ""}${strip(m.resolvedResponseType!.fullName)}`;
    for (const method of svc.methodsArray) {
      const upMethod = up.methods[method.name];
      if (!upMethod) problems.push(`${name}.${method.name}: method missing upstream`);
      else if (sig(method) !== sig(upMethod)) problems.push(`${name}.${method.name}: "${sig(method)}", upstream "${sig(upMethod)}"`);
    }
  }

  visit(ours);
  return { problems, checked };
}

/** True when `fullName` (a type, `Type.field` or `Enum.VALUE`) is declared in `root`. */
export function declares(root: protobuf.Root, fullName: string): boolean {
  if (getExact(root, fullName)) return true;
  const dot = fullName.lastIndexOf(".");
  const parent = getExact(root, fullName.slice(0, dot));
  return parent instanceof protobuf.Enum && fullName.slice(dot + 1) in parent.values;
}
