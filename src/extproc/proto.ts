/** Loads our ext_proc .proto subset (proto/) once, with the options messages.ts assumes. */
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import { loadPackageDefinition, type ServiceDefinition } from "@grpc/grpc-js";
import { PROTO_ROOT } from "../common/grpc-server";

const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export const EXT_PROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor";

let cached: { definition: PackageDefinition; service: ServiceDefinition } | undefined;

function load(): { definition: PackageDefinition; service: ServiceDefinition } {
  if (!cached) {
    const definition = loadSync("envoy/service/ext_proc/v3/external_processor.proto", LOADER_OPTIONS);
    const grpcObject = loadPackageDefinition(definition) as unknown as {
      envoy: { service: { ext_proc: { v3: { ExternalProcessor: { service: ServiceDefinition } } } } };
    };
    cached = { definition, service: grpcObject.envoy.service.ext_proc.v3.ExternalProcessor.service };
  }
  return cached;
}

export function externalProcessorService(): ServiceDefinition {
  return load().service;
}

export function externalProcessorDefinition(): PackageDefinition {
  return load().definition;
}
