/**
 * The bulk encoder process (bulk-encoder-child.ts) and the tokenizer threads' connections to it.
 * Background batches of at least BULK_CHARS characters — the rest of a long new prompt, keyed after
 * its answer (prompt-keyer.ts), work no decision waits for — are encoded there, at a lower OS
 * priority (tokenizerCache.bulkNice, default 19), so that they take only CPU routing leaves idle.
 * A decision's own batches never go there: a prompt new to this router may be cached on a replica,
 * and starving its routing cost several routers sharing conversations 98 of 500 decisions
 * (docs/benchmark.md).
 *
 * One process serves every thread, over a local socket (frames: bulk-frames.ts). The pool starts it
 * without waiting for it and replaces it, RESTART_MS after it exits. A thread connects on its first
 * bulk batch; until connected, and whenever the connection or the process is gone, encode()
 * answers null and the thread encodes the batch itself as before — no request fails or waits for
 * the bulk encoder. Batches in flight when it goes fail, and their callers encode them themselves.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import type { BulkInit } from "./bulk-encoder-child";
import { frame, FrameReader, type BulkReply, type BulkRequest } from "./bulk-frames";
import type { ModelTokenizerConfig } from "./model-files";

/** A process that exited is replaced after this long; a failed connection is retried after RETRY_MS. */
export const RESTART_MS = 5_000;
export const RETRY_MS = 1_000;

const SOURCE = extname(__filename) === ".ts";
const ENTRY = join(__dirname, `bulk-encoder-child${SOURCE ? ".ts" : ".js"}`);

/** The process, owned by the tokenizer pool. */
export class BulkEncoderProcess {
  /** Where it listens (a Unix socket, or a named pipe on Windows). */
  readonly socket: string;
  private child: ChildProcess | null = null;
  private closed = false;
  private restart: NodeJS.Timeout | undefined;

  private constructor(
    private readonly init: Omit<BulkInit, "socket">,
    private readonly restartMs: number,
    private readonly env: Readonly<Record<string, string>>,
  ) {
    const name = `prefix-router-bulk-${process.pid}-${randomBytes(6).toString("hex")}`;
    this.socket = process.platform === "win32" ? `\\\\.\\pipe\\${name}` : join(tmpdir(), `${name}.sock`);
  }

  /**
   * Starts the process (with `env` over this process's environment); does not wait for it
   * (threads encode bulk batches themselves meanwhile).
   */
  static start(models: readonly ModelTokenizerConfig[], nice: number, env: Readonly<Record<string, string>> = {}, restartMs = RESTART_MS): BulkEncoderProcess {
    const bulk = new BulkEncoderProcess({ models, nice }, restartMs, env);
    bulk.spawn();
    return bulk;
  }

  /** Its process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.restart);
    this.child?.kill();
    this.removeSocket();
  }

  private spawn(): void {
    this.removeSocket(); // a dead process's socket file would keep the next from listening
    // From source (tests, tsx) the child needs tsx's require hook, as the tokenizer threads do.
    const execArgv = SOURCE ? ["--require", require.resolve("tsx/cjs")] : [];
    const child = fork(ENTRY, [], { execArgv, env: { ...process.env, ...this.env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    child.unref();
    child.channel?.unref();
    child.on("error", () => undefined); // "exit" follows
    child.on("exit", () => {
      if (this.child !== child) return;
      this.child = null;
      if (this.closed) return;
      this.restart = setTimeout(() => this.spawn(), this.restartMs);
      this.restart.unref();
    });
    child.send({ ...this.init, socket: this.socket } satisfies BulkInit);
  }

  private removeSocket(): void {
    if (process.platform !== "win32") rmSync(this.socket, { force: true });
  }
}

interface Pending {
  readonly resolve: (ids: Uint32Array[]) => void;
  readonly reject: (err: Error) => void;
}

/** A tokenizer thread's connection to the process. */
export class BulkEncoderClient {
  private connection: Socket | null = null;
  private lastAttempt = -Infinity;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly socket: string,
    private readonly retryMs = RETRY_MS,
  ) {}

  /** Ids of `texts` (model: its index in the pool's model list), or null: encode them yourself. */
  encode(model: number, texts: readonly string[]): Promise<Uint32Array[]> | null {
    if (this.connection === null || this.connection.connecting) {
      this.connectIfDue();
      return null;
    }
    const id = this.nextId++;
    const connection = this.connection;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      connection.write(frame({ id, model, texts } satisfies BulkRequest));
    });
  }

  close(): void {
    this.connection?.destroy();
  }

  private connectIfDue(): void {
    if (this.connection !== null || performance.now() - this.lastAttempt < this.retryMs) return;
    this.lastAttempt = performance.now();
    const connection = createConnection(this.socket);
    this.connection = connection;
    const reader = new FrameReader<BulkReply>();
    connection.on("data", (chunk: Buffer) => {
      for (const reply of reader.push(chunk)) {
        const job = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (job === undefined) continue;
        if ("error" in reply) job.reject(new Error(reply.error));
        else job.resolve(reply.ids);
      }
    });
    connection.on("error", () => connection.destroy());
    connection.on("close", () => {
      if (this.connection === connection) this.connection = null;
      for (const job of this.pending.values()) job.reject(new Error("the bulk encoder process went away"));
      this.pending.clear();
    });
  }
}
