// The layering the architecture promises (docs/architecture.md), checked on the TypeScript
// sources, type-only imports included: ml/ imports nothing outside ml/, engine/ neither ml/ nor
// stages/, and no two folders of engine/ import each other, directly or in a longer cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}

const ROOT = repoRoot();

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Repository-relative paths of the local modules a source file imports (static or dynamic). */
function localImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) =>
    relative(ROOT, resolve(ROOT, dirname(file), s))
      .split('\\')
      .join('/'),
  );
}

/** engine/run/slurm/x.ts → engine/run; engine/types.ts → engine. */
const folderOf = (p: string): string =>
  p
    .split('/')
    .slice(0, 2)
    .join('/')
    .replace(/\.[jt]s$/, '')
    .replace(/^engine\/[^/]*\.[jt]s$/, 'engine');

test('ml/ imports nothing outside ml/; engine/ imports neither ml/ nor stages/', () => {
  const bad: string[] = [];
  for (const f of sources('ml')) for (const i of localImports(f)) if (!i.startsWith('ml/')) bad.push(`${f} → ${i}`);
  for (const f of sources('engine'))
    for (const i of localImports(f)) if (i.startsWith('ml/') || i.startsWith('stages/')) bad.push(`${f} → ${i}`);
  assert.deepEqual(bad, []);
});

test('the folders of engine/ form no import cycle', () => {
  const edges = new Map<string, Set<string>>();
  const files = sources('engine').filter((f) => f.split('/').length > 2);
  for (const f of files) {
    const from = folderOf(f);
    for (const i of localImports(f)) {
      if (i.split('/').length < 3) continue; // engine/types.ts and friends: leaves by design
      const to = folderOf(i);
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, trail: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(n)), n].join(' → '));
      return;
    }
    state.set(n, 'open');
    for (const m of edges.get(n) ?? []) visit(m, [...trail, n]);
    state.set(n, 'done');
  };
  for (const n of edges.keys()) visit(n, []);
  assert.deepEqual(cycles, []);
});
