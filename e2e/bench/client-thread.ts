/** Starts a load generator thread (decision-client.ts), loaded through tsx like the sources. */
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { ClientCommand } from "./decision-client";

export interface ClientThread {
  /** Sends a command and resolves with the thread's reply. */
  send<T>(cmd: ClientCommand): Promise<T>;
  close(): Promise<number>;
}

export function startClientThread(): ClientThread {
  const entry = join(__dirname, "decision-client.ts");
  const worker = new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs/api"))}).register(); require(${JSON.stringify(entry)});`, { eval: true });
  return {
    send: <T>(cmd: ClientCommand) => new Promise<T>((resolve) => (worker.once("message", resolve), worker.postMessage(cmd))),
    close: () => worker.terminate(),
  };
}
