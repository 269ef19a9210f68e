/**
 * A one-line progress bar on stderr, redrawn at most every 100 ms; on a non-TTY stderr (CI logs)
 * one line per finished run instead.
 */
export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
  }

  update(label: string, done: number, total: number): void {
    const finished = done >= total;
    const now = performance.now();
    if (!finished && now - this.last < 100) return;
    this.last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    if (this.tty) {
      const width = 30;
      const full = Math.round(frac * width);
      this.stream.write(`\r\x1b[2K${label} [${"█".repeat(full)}${"░".repeat(width - full)}] ${(100 * frac).toFixed(0).padStart(3)}% ${done}/${total}`);
      if (finished) this.stream.write("\n");
    } else if (finished) {
      this.stream.write(`${label}: ${done}/${total} requests\n`);
    }
  }

  note(text: string): void {
    this.stream.write(`${this.tty ? "\r\x1b[2K" : ""}${text}\n`);
  }
}
