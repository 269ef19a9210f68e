/**
 * The router as its own process, the way it is deployed (`prefix-router serve --config FILE`, run
 * from source with tsx), on fixed ports so that a restart comes back where clients and workers
 * expect it. Faults: kill() is SIGKILL (no shutdown hook runs); restart() starts it again with the
 * same config. Ready = the admin server answers /healthz (it starts last, after ext_proc and ingest).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProcess, type RouterProcess } from "../../bench/peers/router-process";
import { REPO_ROOT } from "../../support/router-fixture";

export interface RouterChildOptions {
  /** The router config (a plain object: written as JSON, which YAML reads). Must set admin.listen. */
  readonly config: Record<string, unknown>;
  /** Run node with --expose-gc (the admin server then serves GET /debug/heap). */
  readonly exposeGc?: boolean;
  /** V8 old-space limit in MiB (a leak then dies early instead of swapping). */
  readonly maxOldSpaceMb?: number;
  readonly name?: string;
}

export interface RouterChild {
  readonly adminUrl: string;
  readonly logFile: string;
  pid(): number;
  /** SIGKILL to the process group; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it again (after kill(), or kills it first); resolves when ready. */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** True while the process lives. */
  alive(): boolean;
}

export async function startRouterChild(options: RouterChildOptions): Promise<RouterChild> {
  const admin = (options.config.admin as { listen?: string } | undefined)?.listen;
  if (!admin) throw new Error("startRouterChild: config.admin.listen is required (readiness and metrics)");
  const dir = mkdtempSync(join(tmpdir(), `prefix-router-${options.name ?? "router"}-`));
  const configFile = join(dir, "router.json");
  writeFileSync(configFile, JSON.stringify(options.config, null, 1));
  const logFile = join(dir, "router.log");
  const adminUrl = `http://${admin}`;
  const nodeArgs = [
    ...(options.exposeGc ? ["--expose-gc"] : []),
    ...(options.maxOldSpaceMb ? [`--max-old-space-size=${options.maxOldSpaceMb}`] : []),
    "--import",
    "tsx",
    join(REPO_ROOT, "src", "cli.ts"),
    "serve",
    "--config",
    configFile,
  ];
  const launch = () =>
    startProcess({
      role: options.name ?? "router",
      command: process.execPath,
      args: nodeArgs,
      logFile,
      readyTimeoutMs: 60_000,
      ready: async () => (await fetch(`${adminUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok,
    });
  let current: RouterProcess | null = await launch();

  const gone = async (pid: number) => {
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const kill = async () => {
    if (!current) return;
    const pid = current.pid;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
    await gone(pid);
    await current.stop(); // reaps the group and stops its monitor
    current = null;
  };
  return {
    adminUrl,
    logFile,
    pid: () => current?.pid ?? -1,
    kill,
    restart: async () => {
      await kill();
      current = await launch();
    },
    stop: async () => {
      if (current) await current.stop();
      current = null;
    },
    alive: () => current !== null,
  };
}

/** The admin /metrics text of a router (throws when it does not answer within 2 s). */
export async function scrapeAdmin(adminUrl: string, path = "/metrics"): Promise<string> {
  const res = await fetch(`${adminUrl}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${adminUrl}${path}: HTTP ${res.status}`);
  return res.text();
}
