// Reads one experiment YAML file (and, recursively, the files it `extends`) into a plain value
// plus the source position of every node, deep-merging layers: the extending file wins, maps
// merge, lists and scalars replace.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Node } from 'yaml';
import type { SourceLocation } from '../types.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { LocationMap, SourceTexts, type FieldPath } from './locations.js';
import { installedVersion, readCached, writeCached } from './tool-cache.js';

const require = createRequire(import.meta.url);

/** The yaml library, loaded on first use: a cached parse (below) does not need it. */
export function yamlLib(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}

/** Bump when the cached parse result changes shape or meaning. */
const PARSE_CACHE_VERSION = 1;

/** Whether JSON round-trips `v` exactly (no Infinity/NaN, dates, undefined...). */
function jsonExact(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) return v.every(jsonExact);
  if (isPlainMap(v)) return Object.getPrototypeOf(v) === Object.prototype && Object.values(v).every(jsonExact);
  return false;
}

export interface Layer {
  value: Record<string, unknown>;
  locs: LocationMap;
}

export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// `${...}` is not valid plain YAML inside flow collections (`{ size: ${vars.size} }`: the braces
// are flow indicators). Before parsing, its braces become private-use characters of the same
// length (so every offset, hence every line:column, is unchanged) and are restored afterwards.
const OPEN = '\uE000';
const CLOSE = '\uE001';

function maskInterpolations(text: string): string {
  // Conservative: only spans that cannot be part of quoting or flow syntax (unmasked ones still
  // parse inside quotes and block scalars).
  return text.replace(/\$\{([^{}\n"'[\],]*)\}/g, (_m, inner: string) => `$${OPEN}${inner}${CLOSE}`);
}

function unmask(s: string): string {
  return s.includes(OPEN) || s.includes(CLOSE) ? s.replaceAll(OPEN, '{').replaceAll(CLOSE, '}') : s;
}

function unmaskDeep(v: unknown): unknown {
  if (typeof v === 'string') return unmask(v);
  if (Array.isArray(v)) return v.map(unmaskDeep);
  if (isPlainMap(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[unmask(k)] = unmaskDeep(x);
    return out;
  }
  return v;
}

/** Parse YAML text; syntax errors become located issues. */
export function parseYamlText(
  text: string,
  file: string,
  texts: SourceTexts,
): { value: unknown; locs: LocationMap; issues: ConfigIssue[] } {
  texts.add(file, text);
  // Parsing is cheap but loading the yaml library is not (~70 modules): an unchanged file is
  // read from the tool cache, keyed by its path (positions name it) and exact text.
  const cacheName = `${createHash('sha256')
    .update(`${PARSE_CACHE_VERSION}\u0000${installedVersion('yaml')}\u0000${file}\u0000${text}`)
    .digest('hex')
    .slice(0, 32)}.json`;
  const hit = readCached('yaml', cacheName);
  if (hit !== undefined) {
    try {
      const c = JSON.parse(hit) as { value: unknown; locs: Parameters<typeof LocationMap.fromJSON>[0] };
      return { value: c.value, locs: LocationMap.fromJSON(c.locs, file), issues: [] };
    } catch {
      /* a damaged entry: parse again */
    }
  }
  const { LineCounter, parseDocument, isAlias, isMap, isPair, isScalar, isSeq } = yamlLib();
  const lc = new LineCounter();
  const doc = parseDocument(maskInterpolations(text), { lineCounter: lc, merge: true, prettyErrors: true });
  const pos = (offset: number): SourceLocation => {
    const p = lc.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  // Later errors are mostly echoes of the first one: keep a few.
  const issues: ConfigIssue[] = doc.errors.slice(0, 3).map((e) => {
    const lp = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
    const message = unmask(e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''));
    return { file, line: lp.line, column: lp.col, path: '', message: `YAML syntax error: ${message}`, source: texts.line(file, lp.line) };
  });
  const locs = new LocationMap();
  if (issues.length) return { value: undefined, locs, issues };
  const walk = (node: unknown, p: FieldPath): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Node;
    if (n.range) locs.setValue(p, pos(n.range[0]));
    if (isAlias(n)) return; // the aliased subtree is located at the alias
    if (isMap(n)) {
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const k = pair.key as Node | null;
        const name = unmask(isScalar(k) ? String(k.value) : String(k));
        const kp = [...p, name];
        if (k && k.range) {
          locs.setKey(kp, pos(k.range[0]));
          locs.setValue(kp, pos(k.range[0])); // replaced by the value's own position below, if any
        }
        walk(pair.value, kp);
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => walk(item, [...p, i]));
    }
  };
  walk(doc.contents, []);
  const value = unmaskDeep(doc.toJS({ maxAliasCount: 1000 }));
  if (jsonExact(value)) writeCached('yaml', cacheName, JSON.stringify({ value, locs }));
  return { value, locs, issues };
}

function merge(base: unknown, child: unknown, p: FieldPath, onReplace: (p: FieldPath) => void): unknown {
  if (isPlainMap(base) && isPlainMap(child)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(child)) out[k] = k in base ? merge(base[k], v, [...p, k], onReplace) : v;
    return out;
  }
  onReplace(p);
  return child;
}

/** Load `file` and everything it extends; throws ConfigError on the first unreadable/broken layer. */
export function loadLayers(file: string, texts: SourceTexts, chain: string[] = [], via?: { loc: SourceLocation; path: string }): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    const at = via?.loc ?? { file, line: 1, column: 1 };
    throw new ConfigError([
      {
        ...at,
        path: via?.path ?? '',
        message: `cannot read ${via ? 'extended file' : 'experiment file'} ${file}: ${reason}`,
        source: texts.line(at.file, at.line),
      },
    ]);
  }
  const parsed = parseYamlText(text, file, texts);
  if (parsed.issues.length) throw new ConfigError(parsed.issues);
  let value = parsed.value ?? {};
  if (!isPlainMap(value)) {
    const loc = parsed.locs.locate([]) ?? { file, line: 1, column: 1 };
    throw new ConfigError([
      {
        ...loc,
        path: '',
        message: `an experiment file must be a map of keys, got ${Array.isArray(value) ? 'a list' : 'a scalar'}`,
        source: texts.line(file, loc.line),
      },
    ]);
  }
  const ext = value.extends;
  if (ext === undefined) return { value, locs: parsed.locs };

  const extLoc = parsed.locs.locate(['extends']) ?? { file, line: 1, column: 1 };
  const located = (message: string): ConfigError =>
    new ConfigError([{ ...extLoc, path: 'extends', message, source: texts.line(extLoc.file, extLoc.line) }]);
  if (typeof ext !== 'string' || ext === '')
    throw located(`expected a file path (string), got ${Array.isArray(ext) ? 'a list' : typeof ext}`);
  const baseFile = path.resolve(path.dirname(file), ext);
  const here = [...chain, file];
  if (here.includes(baseFile)) {
    const names = [...here.slice(here.indexOf(baseFile)), baseFile].map((f) => path.basename(f));
    throw located(`extends cycle: ${names.join(' -> ')}`);
  }
  const base = loadLayers(baseFile, texts, here, { loc: extLoc, path: 'extends' });
  const { extends: _drop, ...own } = value;
  void _drop;
  const locs = base.locs;
  value = merge(base.value, own, [], (p) => locs.deleteUnder(p)) as Record<string, unknown>;
  locs.absorb(parsed.locs);
  // `extends` itself is consumed; keep nothing pointing at it.
  return { value: value as Record<string, unknown>, locs };
}
