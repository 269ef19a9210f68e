/**
 * CPU time and resident memory of a process tree, read from Linux /proc: the root process and every
 * descendant alive at a sample (a router that forks workers is measured whole). CPU is utime +
 * stime (/proc/PID/stat, in clock ticks); memory is the sum of VmRSS over the tree, sampled
 * periodically, its peak kept.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export interface TreeSample {
  /** CPU seconds the tree's live processes have used since they started. */
  readonly cpuS: number;
  readonly rssBytes: number;
  readonly pids: readonly number[];
}

let ticksPerS: number | undefined;

function clockTicks(): number {
  if (ticksPerS === undefined) {
    try {
      ticksPerS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerS = 100; // the Linux default (USER_HZ)
    }
  }
  return ticksPerS;
}

interface Stat {
  readonly ppid: number;
  readonly ticks: number;
}

/** ppid and utime + stime of one process; null if it is gone. The command name may hold spaces and parentheses. */
function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

function readRssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The root and its live descendants, with their stats. */
function tree(root: number): Map<number, Stat> {
  const all = new Map<number, Stat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.set(Number(name), s);
  }
  const out = new Map<number, Stat>();
  const rootStat = all.get(root);
  if (!rootStat) return out;
  out.set(root, rootStat);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, s] of all) {
      if (!out.has(pid) && out.has(s.ppid)) {
        out.set(pid, s);
        grew = true;
      }
    }
  }
  return out;
}

export function sampleTree(root: number): TreeSample {
  const t = tree(root);
  let ticks = 0;
  let rss = 0;
  for (const [pid, s] of t) {
    ticks += s.ticks;
    rss += readRssBytes(pid);
  }
  return { cpuS: ticks / clockTicks(), rssBytes: rss, pids: [...t.keys()] };
}

export interface TreeUsage {
  /** CPU seconds between mark() and stop(): the workload's. */
  readonly cpuS: number;
  /** CPU seconds from start-up to stop(). */
  readonly totalCpuS: number;
  /** Highest summed RSS seen from start() on, start-up included. */
  readonly peakRssBytes: number;
}

/** Samples a tree every `intervalMs` from start(): its peak RSS and its CPU seconds. */
export class TreeMonitor {
  private timer: NodeJS.Timeout | undefined;
  private peakRss = 0;
  private markCpuS = 0;
  private lastCpuS = 0;

  constructor(
    private readonly root: number,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** Where the workload's CPU count starts (after start-up). */
  mark(): void {
    this.markCpuS = this.sample().cpuS;
  }

  stop(): TreeUsage {
    clearInterval(this.timer);
    this.sample();
    return { cpuS: this.lastCpuS - this.markCpuS, totalCpuS: this.lastCpuS, peakRssBytes: this.peakRss };
  }

  private sample(): TreeSample {
    const s = sampleTree(this.root);
    this.peakRss = Math.max(this.peakRss, s.rssBytes);
    // A process that exits takes its CPU time with it: keep the highest total seen.
    this.lastCpuS = Math.max(this.lastCpuS, s.cpuS);
    return s;
  }
}
