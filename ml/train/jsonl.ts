// Metrics as JSON Lines: one record per line, each written straight to the OS (no user-space
// buffer), so a killed run keeps every line it logged. Reopening for a resumed run can drop the
// records past the checkpoint and a torn last line.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

export type JsonRecord = Record<string, unknown>;

export interface JsonlOpenOptions {
  /** Keep only existing records for which this holds (e.g. r => r.iteration <= resumedAt). */
  keep?: (record: JsonRecord) => boolean;
}

/** Parse a JSONL file; a torn (unterminated, unparsable) last line is ignored, other bad lines throw. */
export function readJsonl(file: string): JsonRecord[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const out: JsonRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      const torn = i === lines.length - 1 && !text.endsWith('\n');
      if (!torn) throw new Error(`${file}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
  });
  return out;
}

export class JsonlWriter {
  private fd: number | null;

  constructor(
    readonly path: string,
    o: JsonlOpenOptions = {},
  ) {
    if (o.keep && existsSync(path)) {
      const kept = readJsonl(path).filter(o.keep);
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, kept.map((r) => JSON.stringify(r) + '\n').join(''));
      renameSync(tmp, path);
    } else if (existsSync(path)) {
      // Terminate a torn last line so the next record starts on its own line.
      const text = readFileSync(path, 'utf8');
      if (text.length && !text.endsWith('\n')) writeFileSync(path, text.slice(0, text.lastIndexOf('\n') + 1));
    }
    this.fd = openSync(path, 'a');
  }

  write(record: JsonRecord): void {
    if (this.fd === null) throw new Error(`metrics log ${this.path} is closed`);
    // JSON has no NaN/Infinity; keep them visible as strings instead of silently becoming null.
    const line = JSON.stringify(record, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    writeSync(this.fd, line + '\n');
  }

  flush(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }
}
