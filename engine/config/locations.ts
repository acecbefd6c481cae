// Source positions of every node of a (merged, overridden) experiment document, addressed by
// field path, and the source texts needed to print the offending line.
import type { SourceLocation } from '../types.js';
import type { ConfigIssue } from './errors.js';

export type FieldPath = (string | number)[];

const SEP = '\u0000';
export function pathKey(p: readonly (string | number)[]): string {
  return p.map(String).join(SEP);
}

/** "stages.train.params.lr", list indices as "needs[0]". */
export function pathString(p: readonly (string | number)[]): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

export class LocationMap {
  private readonly values = new Map<string, SourceLocation>();
  private readonly keys = new Map<string, SourceLocation>();

  setValue(p: FieldPath, loc: SourceLocation): void {
    this.values.set(pathKey(p), loc);
  }
  setKey(p: FieldPath, loc: SourceLocation): void {
    this.keys.set(pathKey(p), loc);
  }
  /** Position of the value at `p`, else of its closest located ancestor. */
  locate(p: readonly (string | number)[]): SourceLocation | undefined {
    for (let n = p.length; n >= 0; n--) {
      const l = this.values.get(pathKey(p.slice(0, n)));
      if (l) return l;
    }
    return undefined;
  }
  /** Position of the map key naming `p` (for "unknown key" errors), else of its value. */
  locateKey(p: readonly (string | number)[]): SourceLocation | undefined {
    return this.keys.get(pathKey(p)) ?? this.locate(p);
  }
  /** Forget everything strictly below `p` (a replaced list or scalar). */
  deleteUnder(p: FieldPath): void {
    const prefix = pathKey(p) + SEP;
    const root = p.length === 0;
    for (const m of [this.values, this.keys]) {
      for (const k of [...m.keys()]) if (root ? k !== '' : k.startsWith(prefix)) m.delete(k);
    }
  }
  /** Compact form of a single file's positions (for the parse cache). */
  toJSON(): { v: [string, number, number][]; k: [string, number, number][] } {
    const pack = (m: Map<string, SourceLocation>): [string, number, number][] => [...m].map(([k, l]) => [k, l.line, l.column]);
    return { v: pack(this.values), k: pack(this.keys) };
  }
  static fromJSON(j: { v: [string, number, number][]; k: [string, number, number][] }, file: string): LocationMap {
    const m = new LocationMap();
    for (const [k, line, column] of j.v) m.values.set(k, { file, line, column });
    for (const [k, line, column] of j.k) m.keys.set(k, { file, line, column });
    return m;
  }
  /** Copy all of `other`'s entries over this map's. */
  absorb(other: LocationMap): void {
    for (const [k, v] of other.values) this.values.set(k, v);
    for (const [k, v] of other.keys) this.keys.set(k, v);
  }
}

/** Texts of every source (files and pseudo-files such as "<overrides>"), split into lines. */
export class SourceTexts {
  private readonly lines = new Map<string, string[]>();
  add(file: string, text: string): void {
    this.lines.set(file, text.split(/\r?\n/));
  }
  line(file: string, line: number): string | undefined {
    return this.lines.get(file)?.[line - 1];
  }
}

/** Collects located issues for one experiment load. */
export class IssueList {
  readonly list: ConfigIssue[] = [];
  constructor(
    private readonly locs: LocationMap,
    private readonly texts: SourceTexts,
    private readonly fallbackFile: string,
  ) {}

  /** Record a problem at `p`; `at: 'key'` points at the map key instead of the value. */
  add(p: readonly (string | number)[], message: string, at: 'key' | 'value' = 'value'): void {
    const loc = (at === 'key' ? this.locs.locateKey(p) : this.locs.locate(p)) ?? { file: this.fallbackFile, line: 1, column: 1 };
    this.addAt(loc, pathString(p), message);
  }
  addAt(loc: SourceLocation, fieldPath: string, message: string): void {
    this.list.push({ ...loc, path: fieldPath, message, source: this.texts.line(loc.file, loc.line) });
  }
  get size(): number {
    return this.list.length;
  }
}
