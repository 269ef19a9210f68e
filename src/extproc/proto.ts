/** Loads our ext_proc .proto subset (proto/) once, with the options messages.ts assumes. */
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import { loadPackageDefinition, type MethodDefinition, type ServiceDefinition } from "@grpc/grpc-js";
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

/** Bytes of the answers that never change (constantAnswer), serialized once. */
const constantBytes = new WeakMap<object, Buffer>();

/**
 * An answer sent as this very object every time (frozen): its bytes are computed once and reused,
 * where every other answer goes through protobufjs' fromObject and encode on each write.
 */
export function constantAnswer<T extends object>(answer: T): T {
  const method = load().service.Process as MethodDefinition<unknown, T>;
  constantBytes.set(answer, method.responseSerialize(answer));
  return deepFreeze(answer);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Buffer.isBuffer(value)) {
    for (const field of Object.values(value)) deepFreeze(field);
    Object.freeze(value);
  }
  return value;
}

function load(): { definition: PackageDefinition; service: ServiceDefinition } {
  if (!cached) {
    const definition = loadSync("envoy/service/ext_proc/v3/external_processor.proto", LOADER_OPTIONS);
    const grpcObject = loadPackageDefinition(definition) as unknown as {
      envoy: { service: { ext_proc: { v3: { ExternalProcessor: { service: ServiceDefinition } } } } };
    };
    const service = grpcObject.envoy.service.ext_proc.v3.ExternalProcessor.service;
    const process = service.Process as MethodDefinition<unknown, object>;
    const serialize = process.responseSerialize;
    const Process = { ...process, responseSerialize: (answer: object) => constantBytes.get(answer) ?? serialize(answer) };
    cached = { definition, service: { ...service, Process } };
  }
  return cached;
}

export function externalProcessorService(): ServiceDefinition {
  return load().service;
}

export function externalProcessorDefinition(): PackageDefinition {
  return load().definition;
}
