/** The parent side of sim-host.ts: forks it (run from source with tsx) and sends it commands. */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { BlockKey } from "../../../src/prefix/block-keys";
import type { FaultRates } from "./ingest-fault-proxy";
import type { SimHostSpec, SimHostStats } from "./sim-host";

export class SimHost {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (m: { id: number; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`sim host: ${m.error}`));
      else w?.resolve(m.value);
    });
    child.once("exit", (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`sim host exited (${signal ?? code})`));
      this.waiting.clear();
    });
  }

  static async start(spec: SimHostSpec): Promise<SimHost> {
    const child = fork(join(__dirname, "sim-host.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const host = new SimHost(child);
    try {
      await host.send("start", spec);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
    return host;
  }

  private send<T>(cmd: string, args?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args });
    });
  }

  async truth(): Promise<Map<string, readonly BlockKey[]>> {
    return new Map(Object.entries(await this.send<Record<string, BlockKey[]>>("truth")));
  }

  restartReplica(index: number, downMs: number): Promise<void> {
    return this.send("restartReplica", { index, downMs });
  }

  /** True when every reporter went idle within the timeout. */
  flush(timeoutMs: number): Promise<boolean> {
    return this.send("flush", { timeoutMs });
  }

  setFaults(proxy: number, rates: FaultRates): Promise<void> {
    return this.send("setFaults", { proxy, rates });
  }

  /** Makes every replica resync; the wall-clock ms when the last one completed (null: timed out). */
  resync(timeoutMs: number): Promise<number | null> {
    return this.send("resync", { timeoutMs });
  }

  stats(): Promise<SimHostStats> {
    return this.send("stats");
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
    await Promise.race([this.send("close").catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000))]);
    this.child.kill("SIGKILL");
  }
}
