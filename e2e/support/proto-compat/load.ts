// Loads our wire-compatible ext_proc protos and Envoy's real ones (as shipped by
// @grpc/grpc-js-xds) into two separate protobufjs Roots, so they can be compared.
import * as fs from "node:fs";
import * as path from "node:path";
import * as protobuf from "protobufjs";

// Paths come from this file's location, never the cwd, so any runner can use them.
const REPO_ROOT = path.resolve(__dirname, "../../..");
export const OUR_PROTO_DIR = path.join(REPO_ROOT, "proto");

const XDS_DEPS = path.join(path.dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
// envoy-api: envoy/...; googleapis: google/api, google/rpc; protoc-gen-validate: validate/...;
// xds: both udpa/annotations/... and xds/... (the annotations Envoy's files import).
export const UPSTREAM_INCLUDE_DIRS = ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) =>
  path.join(XDS_DEPS, d),
);

// protobufjs bundles any/duration/struct/wrappers/... as "common" protos and serves those itself;
// descriptor.proto (needed by the annotation files' `extend google.protobuf.FieldOptions`) is not
// in that set, but ships as a file in the package.
const PROTOBUFJS_DIR = path.dirname(require.resolve("protobufjs/package.json"));

export const EXT_PROC_FILE = "envoy/service/ext_proc/v3/external_processor.proto";

/** Loads `files` with imports searched in `includeDirs`; a missing import throws instead of being skipped. */
export function loadRoot(includeDirs: string[], files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  const dirs = [...includeDirs, PROTOBUFJS_DIR];
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    // protobufjs would silently drop an unresolved import; fail loudly instead.
    throw new Error(`proto import not found in include dirs: ${target}`);
  };
  // keepCase: compare the .proto field names (snake_case), not protobufjs's camelCase aliases.
  root.loadSync(files, { keepCase: true });
  root.resolveAll(); // fills resolvedType on fields/methods; throws on unresolved type names
  return root;
}

export function loadOurs(): protobuf.Root {
  return loadRoot([OUR_PROTO_DIR], [EXT_PROC_FILE]);
}

export function loadUpstream(): protobuf.Root {
  return loadRoot(UPSTREAM_INCLUDE_DIRS, [EXT_PROC_FILE]);
}
