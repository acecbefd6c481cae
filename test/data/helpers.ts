// Shared helpers for the data tests: temp dirs, a hand-built stage context, tiny image files.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StageContext } from '../../engine/contract.js';

/** The repository root (works from test/data under tsx and from dist/test/data). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('repository root not found');
    d = up;
  }
  return d;
}

export async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-pipe-data-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface FakeCtx<P> extends StageContext<P> {
  logs: string[];
}

export function fakeCtx<P>(params: P, dirs: { outDir: string; scratchDir: string; baseDir: string }): FakeCtx<P> {
  const logs: string[] = [];
  return {
    params,
    inputs: {},
    variantInputs: {},
    ...dirs,
    progress: { total() {}, tick() {}, set() {}, message() {} },
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m), debug() {} },
    signal: new AbortController().signal,
    stage: { name: 'data', variantId: '', alias: '', key: 'k' },
    provenance: {},
    logs,
  };
}

/** Rejects with an Error whose message matches every pattern. */
export async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    const msg = (e as Error).message;
    for (const re of patterns) if (!re.test(msg)) throw new Error(`error message ${JSON.stringify(msg)} does not match ${re}`);
    return msg;
  }
  throw new Error(`expected a rejection matching ${patterns.join(', ')}`);
}

/** The original annotation lists, shipped with the repository (copies of shared/data). */
export const SHARED_DATA = join(repoRoot(), 'experiments', 'data');
