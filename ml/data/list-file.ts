// Parser for the original project's annotation lists:
//   CSV  `path,label`   — split on the LAST comma (six MIT-67 file names contain spaces, and a
//                          file name may itself contain a comma before the label);
//   text `path label`   — split on the LAST run of whitespace;
//   path-only lists      — one path per line (MIT_*.txt), labels inferred elsewhere.
// An optional header line is auto-detected (or forced with `header: true|false`).

export type ListFormat = 'auto' | 'csv' | 'txt';

export interface ListEntry {
  /** Path exactly as written (trimmed), relative to the list's root unless absolute. */
  path: string;
  /** Integer label, or undefined for path-only lists. */
  label?: number;
  /** 1-based line number in the list file (for error messages). */
  line: number;
}

export interface ParsedList {
  entries: ListEntry[];
  format: 'csv' | 'txt';
  hasLabels: boolean;
  headerSkipped: boolean;
}

export interface ParseListOptions {
  format?: ListFormat;
  header?: boolean | 'auto';
  /** Name used in error messages (the list file's path). */
  source?: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The list file's text. Paths are kept as strings from here on, and a byte sequence that is not
 * UTF-8 would silently become U+FFFD and then "no such file"; so such a line is named instead.
 */
export function decodeListText(buf: Buffer, source: string): string {
  try {
    return strictUtf8.decode(buf);
  } catch {
    const lines = buf.toString('latin1').split('\n');
    let offset = 0;
    for (let i = 0; i < lines.length; i++) {
      const bytes = buf.subarray(offset, offset + lines[i]!.length);
      offset += lines[i]!.length + 1;
      try {
        strictUtf8.decode(bytes);
      } catch {
        throw new Error(
          `${source}:${i + 1}: not valid UTF-8: ${escapeBytes(bytes)}; ca-pipe reads list files (and the paths in them) as UTF-8: ` +
            'give such files UTF-8 names (e.g. `convmv -f latin1 -t utf-8 -r --notest <root>`) and write the list in UTF-8',
        );
      }
    }
    throw new Error(`${source}: not valid UTF-8`);
  }
}

/** ASCII as is, every other byte as \xNN: the user sees which bytes are at fault. */
function escapeBytes(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0x0d ? '' : `\\x${b.toString(16).padStart(2, '0')}`;
  return JSON.stringify(out).replace(/\\\\x/g, '\\x');
}

const HEADER_RE = /^\s*(path|file|filename|file_name|image|img|name)\s*[,;\t ]\s*(label|class|target|y|category)\s*$/i;
const INT_RE = /^[+-]?\d+$/;

/** Parses list text; throws an Error naming `source:line` on a malformed line or duplicate path. */
export function parseList(text: string, opts: ParseListOptions = {}): ParsedList {
  const source = opts.source ?? '<list>';
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  let first = 0;
  while (first < lines.length && stripCr(lines[first] as string).trim() === '') first++;

  let headerSkipped = false;
  const headerOpt = opts.header ?? 'auto';
  if (first < lines.length) {
    const l = stripCr(lines[first] as string);
    if (headerOpt === true || (headerOpt === 'auto' && HEADER_RE.test(l))) {
      headerSkipped = true;
      first++;
      while (first < lines.length && stripCr(lines[first] as string).trim() === '') first++;
    }
  }

  let format: 'csv' | 'txt';
  if (opts.format && opts.format !== 'auto') format = opts.format;
  else format = first < lines.length && stripCr(lines[first] as string).includes(',') ? 'csv' : 'txt';

  // Labelled or not is decided once, from the first data line: a path-only list whose file
  // names end in a number token would otherwise be silently half-labelled.
  let hasLabels = false;
  if (first < lines.length) {
    const l = stripCr(lines[first] as string).trim();
    hasLabels = format === 'csv' ? l.includes(',') : splitLabel(l, format) !== null;
  }

  const entries: ListEntry[] = [];
  const seen = new Map<string, number>();
  for (let i = first; i < lines.length; i++) {
    const raw = stripCr(lines[i] as string).trim();
    if (raw === '') continue;
    const lineNo = i + 1;
    let path: string;
    let label: number | undefined;
    if (hasLabels) {
      const split = splitLabel(raw, format);
      if (!split) {
        throw new Error(
          `${source}:${lineNo}: malformed line ${JSON.stringify(raw)}: expected ` +
            (format === 'csv' ? '"<path>,<integer label>"' : '"<path> <integer label>"'),
        );
      }
      [path, label] = split;
    } else {
      if (format === 'csv' && raw.includes(',')) {
        throw new Error(
          `${source}:${lineNo}: malformed line ${JSON.stringify(raw)}: the list's first line has no label (no comma), this one has one`,
        );
      }
      path = raw;
    }
    if (path === '') throw new Error(`${source}:${lineNo}: empty path`);
    const prev = seen.get(path);
    if (prev !== undefined) throw new Error(`${source}:${lineNo}: duplicate entry ${JSON.stringify(path)} (first seen on line ${prev})`);
    seen.set(path, lineNo);
    entries.push(label === undefined ? { path, line: lineNo } : { path, label, line: lineNo });
  }
  return { entries, format, hasLabels, headerSkipped };
}

/** Splits "<path><sep><int>" on the last separator; null when the tail is not an integer. */
function splitLabel(line: string, format: 'csv' | 'txt'): [string, number] | null {
  let cut: number;
  let tailStart: number;
  if (format === 'csv') {
    cut = line.lastIndexOf(',');
    tailStart = cut + 1;
  } else {
    const m = /\s+(\S+)$/.exec(line);
    if (!m) return null;
    cut = m.index;
    tailStart = cut + m[0].length - (m[1] as string).length;
  }
  if (cut < 0) return null;
  const tail = line.slice(tailStart).trim();
  if (!INT_RE.test(tail)) return null;
  return [line.slice(0, cut).trim(), Number(tail)];
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/** Parses a classes file: a JSON array of names, or one name per line. */
export function parseClassesFile(text: string, source: string): string[] {
  const t = text.trim();
  let names: unknown;
  if (t.startsWith('[')) {
    try {
      names = JSON.parse(t);
    } catch (e) {
      throw new Error(`${source}: invalid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
      throw new Error(`${source}: expected a JSON array of non-empty class names`);
    }
  } else {
    names = t.split('\n').map((l) => stripCr(l).trim());
    const arr = names as string[];
    const empty = arr.findIndex((n) => n === '');
    if (empty >= 0) throw new Error(`${source}:${empty + 1}: empty class name`);
  }
  const arr = names as string[];
  if (arr.length === 0) throw new Error(`${source}: no class names`);
  const seen = new Map<string, number>();
  arr.forEach((n, i) => {
    const p = seen.get(n);
    if (p !== undefined) throw new Error(`${source}: duplicate class name ${JSON.stringify(n)} (entries ${p + 1} and ${i + 1})`);
    seen.set(n, i);
  });
  return arr;
}
