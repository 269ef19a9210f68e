/**
 * The ingest API's .proto (proto/prefix_router/ingest/v1/ingest.proto), loaded once, for the
 * server, the simulator's reporter and the tests alike. Options: field names as in the .proto,
 * uint64 as decimal strings, enums as names, bytes as Buffers, defaults filled (so a reply with
 * status APPLIED — enum 0 — still carries it), oneofs named in a virtual field.
 */
import { join } from "node:path";
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { PROTO_ROOT } from "../common/grpc-server";

export const KV_INGEST_SERVICE = "prefix_router.ingest.v1.KvIngest";

let cached: { definition: PackageDefinition; client: ServiceClientConstructor } | undefined;

function load(): { definition: PackageDefinition; client: ServiceClientConstructor } {
  if (!cached) {
    const definition = loadSync(join("prefix_router", "ingest", "v1", "ingest.proto"), {
      keepCase: true,
      longs: String,
      enums: String,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
      includeDirs: [PROTO_ROOT],
    });
    const pkg = loadPackageDefinition(definition) as unknown as { prefix_router: { ingest: { v1: { KvIngest: ServiceClientConstructor } } } };
    cached = { definition, client: pkg.prefix_router.ingest.v1.KvIngest };
  }
  return cached;
}

export function kvIngestDefinition(): PackageDefinition {
  return load().definition;
}

export function kvIngestService(): ServiceDefinition {
  return load().client.service;
}

/** The generated client class; callers cast instances to the methods they use. */
export function kvIngestClient(): ServiceClientConstructor {
  return load().client;
}
