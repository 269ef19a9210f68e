/** Structured JSON logs (pino). Only the edges log: extproc stream ends, startup, ingest. */
import pino, { type Logger } from "pino";
import { clipLogValue } from "./log-bounds";

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "prefix-router" },
      // Every field of every line is bounded (log-bounds.ts): fields carry client text.
      formatters: { log: (object) => clipLogValue(object) as Record<string, unknown> },
      serializers: { err: (err: Error) => clipLogValue({ ...pino.stdSerializers.err(err) }) },
    },
    destination ?? process.stdout,
  );
}

export const silentLogger: Logger = pino({ level: "silent" });
