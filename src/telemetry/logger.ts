/** Structured JSON logs (pino). Only the edges log: extproc stream ends, startup, ingest. */
import pino, { type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: "prefix-router" } }, destination ?? process.stdout);
}

export const silentLogger: Logger = pino({ level: "silent" });
