/** Runs a command, turning config errors into a message and exit code 2 (bugs still throw). */
import { ConfigError } from "../config/load-config";

export async function withConfigErrors(work: () => void | Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}
