/**
 * The bulk encoder process (started by the tokenizer pool, bulk-encoder.ts): encodes background
 * batches — the rest of long new prompts, keyed after their answer — for every tokenizer thread,
 * at a lower OS priority than the router. Its threads (the Rust encoder's pool among them) then
 * yield the CPU to the router's threads whenever both want it, and take whatever is idle otherwise.
 *
 * The parent sends one IPC message, {socket, models, nice}; the child listens on that local socket
 * (frames: bulk-frames.ts) and exits when its parent goes away (removing the socket file). A
 * model's tokenizer is loaded on its first batch (only the encoder: tokenizer.json through the
 * Rust library, or the tiktoken file).
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { setPriority } from "node:os";
import { join } from "node:path";
import { frame, FrameReader, type BulkReply, type BulkRequest } from "./bulk-frames";
import { loadModelFiles, openTokenizerJson, type ModelTokenizerConfig } from "./model-files";
import { huggingFaceEncoder, type TokenEncoder } from "./token-encoder";

export interface BulkInit {
  readonly socket: string;
  readonly models: readonly ModelTokenizerConfig[];
  readonly nice: number;
}

/**
 * Every thread of this process at `nice`: on Linux a priority is per thread, and threads started
 * later (libuv's pool, the encoder's) inherit their creator's, so this runs again whenever the
 * thread count has changed. Elsewhere the call sets the whole process.
 */
let threadsSeen = -1;
function lowerPriority(nice: number): void {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    if (threadsSeen < 0) setPriority(nice);
    threadsSeen = 0;
    return;
  }
  if (tasks.length === threadsSeen) return;
  threadsSeen = tasks.length;
  for (const task of tasks) {
    try {
      setPriority(Number(task), nice);
    } catch {
      // The thread ended meanwhile.
    }
  }
}

function loadEncoder(model: ModelTokenizerConfig): TokenEncoder {
  const json = join(model.tokenizer, "tokenizer.json");
  if (existsSync(json)) return huggingFaceEncoder(openTokenizerJson(json));
  const { tokenizer } = loadModelFiles(model); // a tiktoken file
  return "encodeSegments" in tokenizer ? tokenizer : huggingFaceEncoder(tokenizer);
}

function serve(init: BulkInit): void {
  const encoders = new Map<string, TokenEncoder>(); // models that share tokenizer files share one
  const encoderOf = (index: number): TokenEncoder => {
    const model = init.models[index];
    if (model === undefined) throw new Error(`no model ${index} in the bulk encoder`);
    const files = JSON.stringify([model.tokenizer, model.tiktokenPattern ?? null]);
    let encoder = encoders.get(files);
    if (encoder === undefined) encoders.set(files, (encoder = loadEncoder(model)));
    return encoder;
  };
  const answer = (socket: Socket, reply: BulkReply) => {
    if (!socket.destroyed) socket.write(frame(reply));
  };
  const server = createServer((socket) => {
    const reader = new FrameReader<BulkRequest>();
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      for (const request of reader.push(chunk)) {
        new Promise<TokenEncoder>((resolve) => resolve(encoderOf(request.model)))
          .then((encoder) => encoder.encodeSegments(request.texts))
          .then(
            (ids) => answer(socket, { id: request.id, ids }),
            (err: unknown) => answer(socket, { id: request.id, error: err instanceof Error ? err.message : String(err) }),
          )
          .finally(() => lowerPriority(init.nice));
      }
    });
  });
  server.listen(init.socket);
}

process.once("message", (init: BulkInit) => {
  // The parent went away: nobody will connect again (and nobody else would remove the socket file).
  process.on("disconnect", () => {
    if (process.platform !== "win32") rmSync(init.socket, { force: true });
    process.exit(0);
  });
  lowerPriority(init.nice);
  serve(init);
});
