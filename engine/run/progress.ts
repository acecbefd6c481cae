// ProgressReporter and StageLogger implementations shared by the executors.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ProgressReporter, StageLogger } from '../contract.js';
import type { ProgressUpdate } from './executor.js';

/** Coalesces progress calls so a stage ticking per image does not flood the UI and the journal. */
export class ThrottledProgress implements ProgressReporter {
  private state: ProgressUpdate = { done: 0 };
  private last = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (p: ProgressUpdate) => void,
    private readonly everyMs = 250,
  ) {}

  total(n: number, unit?: string): void {
    this.state.total = n;
    if (unit !== undefined) this.state.unit = unit;
    this.push(true);
  }
  tick(n = 1): void {
    this.state.done += n;
    this.push(false);
  }
  set(done: number): void {
    this.state.done = done;
    this.push(false);
  }
  message(text: string): void {
    this.state.message = text;
    this.push(false);
  }

  private push(force: boolean): void {
    const t = Date.now();
    if (force || t - this.last >= this.everyMs) {
      this.fire();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.fire(), this.everyMs - (t - this.last));
      this.timer.unref();
    }
  }

  private fire(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.last = Date.now();
    this.emit({ ...this.state });
  }

  /** Emits the last pending state (at the end of a stage). */
  flush(): void {
    if (this.timer) this.fire();
  }
}

/** Appends timestamped lines to the stage's log file. */
export class FileLogger implements StageLogger {
  private stream: WriteStream;
  private tail: string[] = [];

  constructor(
    readonly file: string,
    private readonly tailLines = 20,
  ) {
    this.stream = createWriteStream(file, { flags: 'a' });
  }

  write(level: string, msg: string): void {
    for (const line of msg.split('\n')) {
      this.stream.write(`${new Date().toISOString()} ${level.padEnd(5)} ${line}\n`);
      this.tail.push(line);
      if (this.tail.length > this.tailLines) this.tail.shift();
    }
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  warn(msg: string): void {
    this.write('warn', msg);
  }
  error(msg: string): void {
    this.write('error', msg);
  }
  debug(msg: string): void {
    this.write('debug', msg);
  }
  lastLines(): string[] {
    return [...this.tail];
  }
  close(): Promise<void> {
    return new Promise((res) => this.stream.end(res));
  }
}
