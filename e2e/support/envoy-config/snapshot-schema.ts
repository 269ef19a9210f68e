/**
 * Envoy's API as shipped by @grpc/grpc-js-xds (a data-plane-api snapshot of about mid-2024, Envoy
 * ≈1.31), loaded on demand: a type's whole package (one folder in Envoy's layout) is loaded the
 * first time a config names it, so an `@type` anywhere in a config resolves without a hand-kept
 * list of files. Types newer than the snapshot are declared on top by newer-than-snapshot.ts.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as protobuf from "protobufjs";
import { getExact } from "../proto-compat/compare";
import { loadRoot, UPSTREAM_INCLUDE_DIRS } from "../proto-compat/load";

export const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";

export class SnapshotSchema {
  readonly root: protobuf.Root;
  private readonly loadedPackages = new Set<string>();

  constructor() {
    this.root = loadRoot(UPSTREAM_INCLUDE_DIRS, ["envoy/config/bootstrap/v3/bootstrap.proto"]);
  }

  /** The message or enum with this full name (no leading dot), loading its package if needed. */
  lookup(fullName: string): protobuf.Type | protobuf.Enum | null {
    const found = this.exact(fullName);
    if (found) return found;
    if (!this.loadPackageOf(fullName)) return null;
    return this.exact(fullName);
  }

  lookupType(fullName: string): protobuf.Type {
    const t = this.lookup(fullName);
    if (!(t instanceof protobuf.Type)) throw new Error(`${fullName} is not a message in the API snapshot`);
    return t;
  }

  private exact(fullName: string): protobuf.Type | protobuf.Enum | null {
    const obj = getExact(this.root, fullName);
    return obj instanceof protobuf.Type || obj instanceof protobuf.Enum ? obj : null;
  }

  /** Loads every .proto file of the longest package prefix of `fullName` that is a folder. */
  private loadPackageOf(fullName: string): boolean {
    const segments = fullName.split(".");
    for (let n = segments.length - 1; n >= 1; n--) {
      const rel = segments.slice(0, n).join("/");
      for (const dir of UPSTREAM_INCLUDE_DIRS) {
        const abs = join(dir, rel);
        if (!existsSync(abs) || !statSync(abs).isDirectory()) continue;
        const files = readdirSync(abs).filter((f) => f.endsWith(".proto"));
        if (files.length === 0) continue;
        if (this.loadedPackages.has(rel)) return false; // loaded already: the name is simply absent
        this.loadedPackages.add(rel);
        this.root.loadSync(
          files.map((f) => `${rel}/${f}`),
          { keepCase: true },
        );
        this.root.resolveAll();
        return true;
      }
    }
    return false;
  }
}
