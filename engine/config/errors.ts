// Errors for bad experiment files. Every problem is located (file:line:column plus the field
// path) so the user can jump straight to it; several problems are reported together.
import * as path from 'node:path';

export interface ConfigIssue {
  /** Absolute path of the file (or a pseudo-file such as "<overrides>"). */
  file: string;
  line: number; // 1-based
  column: number; // 1-based
  /** Field path, e.g. "stages.train.params.lr" ("" for the document itself). */
  path: string;
  message: string;
  /** Text of the offending line, for the caret display. */
  source?: string;
}

function displayFile(file: string): string {
  if (!path.isAbsolute(file)) return file;
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** One-line form: `exp.yaml:12:7: stages.train.params.lr: expected number, got string "abc"`. */
export function formatIssueLine(i: ConfigIssue): string {
  const where = `${displayFile(i.file)}:${i.line}:${i.column}`;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/** Multi-line form: the one-line form, then the source line with a caret under the column. */
export function formatIssue(i: ConfigIssue): string {
  const head = formatIssueLine(i);
  if (i.source === undefined) return head;
  const num = String(i.line);
  const gutter = ' '.repeat(Math.max(4, num.length + 1));
  const src = i.source.replace(/\t/g, ' ');
  return [head, `${gutter.slice(num.length)}${num} | ${src}`, `${gutter} | ${' '.repeat(Math.max(0, i.column - 1))}^`].join('\n');
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  /** Location of the first issue (the others are in `issues`). */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  constructor(issues: ConfigIssue[]) {
    if (issues.length === 0) throw new Error('ConfigError needs at least one issue');
    super(issues.map(formatIssueLine).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
    const first = issues[0]!;
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.path = first.path;
  }
  /** Human-readable report with source excerpts and carets. */
  format(): string {
    const body = this.issues.map(formatIssue).join('\n\n');
    return this.issues.length > 1 ? `${this.issues.length} problems:\n\n${body}` : body;
  }
}

/** Edit distance with adjacent transpositions counting as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  for (let i = 1; i <= n; i++) {
    const cur = new Array<number>(m + 1);
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[m]!;
}

/** The closest candidate if it is close enough to be a plausible typo. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    if (c === name) continue;
    const d = c.toLowerCase() === lower ? 0.5 : editDistance(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  return best !== undefined && bestD <= limit ? best : undefined;
}

/** ` (did you mean "x"?)` or "" when nothing is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === undefined ? '' : ` (did you mean "${c}"?)`;
}

/** Short description of a value for messages: `string "abc"`, `number 3`, `list`, `map`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'list';
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 37)}...` : v;
      return `string ${JSON.stringify(s)}`;
    }
    case 'number':
      return `${Number.isInteger(v) ? 'integer' : 'number'} ${v}`;
    case 'boolean':
      return `boolean ${v}`;
    case 'object':
      return 'map';
    default:
      return typeof v;
  }
}
