/**
 * One way to name a workload (a tagged spec) and one place that builds it: an exhaustive switch.
 * Built workloads are memoised per process by their spec, so every policy of a run — and every
 * scenario that shares a spec — reuses one tokenization.
 */
import { agentSessionsWorkload, type AgentSessionParams } from "./agent-sessions";
import { documentQaWorkload, type DocumentQaParams } from "./document-qa";
import { mooncakeWorkload, type MooncakeParams } from "./mooncake-trace";
import { mtragRagWorkload, type MtragRagParams } from "./mtrag-rag";
import { shareGptChatWorkload, type ShareGptChatParams } from "./sharegpt-chat";
import { samplingBurstsWorkload, type SamplingBurstParams } from "./sampling-bursts";
import { sharedPrefixWorkload, type SharedPrefixParams } from "./shared-prefix";
import type { BenchRequest, Workload } from "./workload";

export type WorkloadSpec =
  | { readonly kind: "chat"; readonly params: ShareGptChatParams }
  | { readonly kind: "rag"; readonly params: MtragRagParams }
  | { readonly kind: "shared-prefix"; readonly params: SharedPrefixParams }
  | { readonly kind: "mooncake"; readonly params: MooncakeParams }
  | { readonly kind: "agent"; readonly params: AgentSessionParams }
  | { readonly kind: "bursts"; readonly params: SamplingBurstParams }
  | { readonly kind: "document-qa"; readonly params: DocumentQaParams }
  /** Several workloads at once on one cluster (e.g. short chats with long document questions). */
  | { readonly kind: "mix"; readonly params: { readonly parts: readonly WorkloadSpec[] } };

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
    case "agent":
      return agentSessionsWorkload(spec.params);
    case "bursts":
      return samplingBurstsWorkload(spec.params);
    case "document-qa":
      return documentQaWorkload(spec.params);
    case "mix":
      return mix(await Promise.all(spec.params.parts.map(buildWorkload)));
    default:
      return unknownSpec(spec);
  }
}

/** One workload of all parts' requests (ids prefixed by the part's name), in arrival order. */
function mix(parts: readonly Workload[]): Workload {
  const [first] = parts;
  if (!first) throw new Error("a mix needs at least one part");
  for (const p of parts) if (p.blockSize !== first.blockSize || !p.root.equals(first.root)) throw new Error(`mix: ${p.name} is keyed differently from ${first.name}`);
  const requests: BenchRequest[] = parts.flatMap((p) =>
    p.requests.map((r) => ({ ...r, id: `${p.name}:${r.id}`, session: `${p.name}:${r.session}`, after: r.after && { ...r.after, id: `${p.name}:${r.after.id}` } })),
  );
  requests.sort((a, b) => (a.arrivalMs ?? Infinity) - (b.arrivalMs ?? Infinity));
  return {
    name: parts.map((p) => p.name).join("+"),
    description: parts.map((p) => p.description).join("; with "),
    blockSize: first.blockSize,
    root: first.root,
    requests,
  };
}

function unknownSpec(spec: never): never {
  throw new Error(`unknown workload ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
}
