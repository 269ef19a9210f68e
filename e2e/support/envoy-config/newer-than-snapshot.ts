/**
 * THE skip list: API items our Envoy configs use that are newer than the grpc-js-xds snapshot
 * (≈ Envoy 1.31). Rather than skipping their contents, each entry declares the item on top of the
 * snapshot — transcribed from envoyproxy/envoy's api/ folder, field names, numbers and types only —
 * so the configs that use it are still checked field by field.
 *
 * envoy-config.test.ts fails when an entry exists in the snapshot already (drop the entry: the real
 * definition then takes over) or when no config uses it any more (drop the entry).
 */
import * as protobuf from "protobufjs";
import { getExact } from "../proto-compat/compare";
import type { SnapshotSchema } from "./snapshot-schema";

export interface NewerThanSnapshot {
  /** Full name: a message (with its nested types), or `Enum.VALUE`. */
  readonly name: string;
  readonly kind: "message" | "enum-value";
  /** The first Envoy release that has it. */
  readonly addedIn: string;
  /** Where upstream defines it. */
  readonly upstream: string;
  /** Declares it in `schema` (which must not have it yet). */
  declare(schema: SnapshotSchema): void;
}

function declareEnumValue(schema: SnapshotSchema, enumName: string, value: string, id: number): void {
  const e = schema.lookup(enumName);
  if (!(e instanceof protobuf.Enum)) throw new Error(`${enumName} is not an enum in the snapshot`);
  e.add(value, id);
}

/** Parses `source` (a .proto body) into the snapshot's root; referenced types must resolve there. */
function declareProto(schema: SnapshotSchema, requires: readonly string[], source: string): void {
  for (const name of requires) if (!schema.lookup(name)) throw new Error(`${name} is missing from the snapshot`);
  protobuf.parse(source, schema.root, { keepCase: true });
  schema.root.resolveAll();
}

export const NEWER_THAN_SNAPSHOT: readonly NewerThanSnapshot[] = [
  {
    name: "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode.FULL_DUPLEX_STREAMED",
    kind: "enum-value",
    // In the 1.33 API behind not-implemented-hide (#34942), enabled by #37774, announced in 1.34.0.
    addedIn: "1.34",
    upstream: "api/envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto",
    declare: (schema) => declareEnumValue(schema, "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode", "FULL_DUPLEX_STREAMED", 4),
  },
  {
    name: "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost",
    kind: "message",
    addedIn: "1.35",
    upstream: "api/envoy/extensions/load_balancing_policies/override_host/v3/override_host.proto",
    declare: (schema) =>
      declareProto(
        schema,
        ["envoy.config.cluster.v3.LoadBalancingPolicy", "envoy.type.metadata.v3.MetadataKey"],
        `syntax = "proto3";
         package envoy.extensions.load_balancing_policies.override_host.v3;
         message OverrideHost {
           message OverrideHostSource {
             string header = 1;
             envoy.type.metadata.v3.MetadataKey metadata = 2;
           }
           repeated OverrideHostSource override_host_sources = 1 [(validate.rules).repeated = {min_items: 1}];
           envoy.type.metadata.v3.MetadataKey selected_host_key = 2;
           envoy.config.cluster.v3.LoadBalancingPolicy fallback_policy = 3 [(validate.rules).message = {required: true}];
         }`,
      ),
  },
];

/** Whether the pristine snapshot already has `entry` (then the entry must go). */
export function snapshotHas(schema: SnapshotSchema, entry: NewerThanSnapshot): boolean {
  if (entry.kind === "message") return schema.lookup(entry.name) !== null;
  const dot = entry.name.lastIndexOf(".");
  const e = schema.lookup(entry.name.slice(0, dot));
  return e instanceof protobuf.Enum && Object.prototype.hasOwnProperty.call(e.values, entry.name.slice(dot + 1));
}

/** Declares every entry in `schema`; throws if one exists there already. */
export function declareNewer(schema: SnapshotSchema, entries: readonly NewerThanSnapshot[] = NEWER_THAN_SNAPSHOT): void {
  for (const entry of entries) {
    if (snapshotHas(schema, entry)) throw new Error(`${entry.name} is in the API snapshot already: remove it from NEWER_THAN_SNAPSHOT`);
    entry.declare(schema);
    if (entry.kind === "message" && !(getExact(schema.root, entry.name) instanceof protobuf.Type)) throw new Error(`declaring ${entry.name} failed`);
  }
}
