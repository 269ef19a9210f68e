/**
 * Resolves a request's model name (or alias) to its canonical model and the workers serving it,
 * and caches each model's prefix-key chain root.
 */
import type { ModelConfig, WorkerConfig } from "../config/schema";
import { chainRoot } from "../prefix/block-keys";

export interface CatalogModel {
  readonly name: string;
  readonly workers: readonly WorkerConfig[];
  /** Parent of block 0 for this model's chains. */
  readonly root: Buffer;
}

export class ModelCatalog {
  private readonly byName = new Map<string, CatalogModel>();
  readonly allWorkers: readonly WorkerConfig[];

  constructor(models: readonly ModelConfig[], workers: readonly WorkerConfig[], hashSeed: string) {
    this.allWorkers = workers;
    for (const m of models) {
      const entry: CatalogModel = {
        name: m.name,
        workers: workers.filter((w) => w.models.some((name) => name === m.name || m.aliases.includes(name))),
        root: chainRoot({ hashSeed, model: m.name }),
      };
      for (const name of [m.name, ...m.aliases]) this.byName.set(name, entry);
    }
  }

  resolve(model: string): CatalogModel | undefined {
    return this.byName.get(model);
  }

  /** Every name a request may give → canonical model and chain root (what a tokenizer thread needs to key a body it parses). */
  keyRoots(): Record<string, { readonly model: string; readonly root: Uint8Array }> {
    const out: Record<string, { model: string; root: Uint8Array }> = {};
    for (const [name, entry] of this.byName) out[name] = { model: entry.name, root: new Uint8Array(entry.root) };
    return out;
  }
}
