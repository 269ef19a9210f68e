/**
 * Lowers the OS priority of the calling thread only (the large-prompt lane of the tokenizer pool).
 * On Linux a thread has its own nice value: setpriority(PRIO_PROCESS, tid) applies to that thread
 * alone, and /proc/thread-self names its tid. Raising a nice value needs no privilege; lowering
 * it back would, so a lane's threads keep theirs for life. Elsewhere there is no per-thread nice
 * value to set: the thread stays at the process's priority (null).
 */
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

export interface ThreadPriority {
  /** The thread's id (Linux tid), null where it cannot be named. */
  readonly tid: number | null;
  /** The nice value the thread runs at, null where it could not be set. */
  readonly nice: number | null;
}

export function niceThisThread(nice: number): ThreadPriority {
  let tid: number;
  try {
    tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return { tid: null, nice: null };
  }
  if (!Number.isInteger(tid) || tid <= 0) return { tid: null, nice: null };
  try {
    if (nice > 0) setPriority(tid, nice);
    return { tid, nice: getPriority(tid) };
  } catch {
    return { tid, nice: null };
  }
}
