/**
 * One way to name a workload (a tagged spec) and one place that builds it: an exhaustive switch.
 * Built workloads are memoised per process by their spec, so every policy of a run — and every
 * scenario that shares a spec — reuses one tokenization.
 */
import { mooncakeWorkload, type MooncakeParams } from "./mooncake-trace";
import { mtragRagWorkload, type MtragRagParams } from "./mtrag-rag";
import { shareGptChatWorkload, type ShareGptChatParams } from "./sharegpt-chat";
import { sharedPrefixWorkload, type SharedPrefixParams } from "./shared-prefix";
import type { Workload } from "./workload";

export type WorkloadSpec =
  | { readonly kind: "chat"; readonly params: ShareGptChatParams }
  | { readonly kind: "rag"; readonly params: MtragRagParams }
  | { readonly kind: "shared-prefix"; readonly params: SharedPrefixParams }
  | { readonly kind: "mooncake"; readonly params: MooncakeParams };

const built = new Map<string, Promise<Workload>>();

export function buildWorkload(spec: WorkloadSpec): Promise<Workload> {
  const id = JSON.stringify(spec);
  let w = built.get(id);
  if (!w) {
    w = build(spec);
    built.set(id, w);
  }
  return w;
}

async function build(spec: WorkloadSpec): Promise<Workload> {
  switch (spec.kind) {
    case "chat":
      return shareGptChatWorkload(spec.params);
    case "rag":
      return mtragRagWorkload(spec.params);
    case "shared-prefix":
      return sharedPrefixWorkload(spec.params);
    case "mooncake":
      return mooncakeWorkload(spec.params);
    default:
      return unknownSpec(spec);
  }
}

function unknownSpec(spec: never): never {
  throw new Error(`unknown workload ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
}
