// Small test-only stage kinds and helpers shared by the engine config/plan tests.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { StageKind } from '../../engine/contract.js';
import { createRegistry } from '../../engine/registry.js';

const run = async (): Promise<void> => {};

export const indexKind: StageKind = {
  kind: 'index',
  version: 1,
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['source'],
    properties: {
      source: { type: 'string' },
      classes: { type: 'integer', minimum: 1 },
      size: { type: 'integer', default: 32 },
      root: { type: 'string' },
      seed: { type: 'integer', default: 0 },
    },
  },
  requiredPaths: (p: { root?: string }) => (p.root ? [p.root] : []),
  run,
};

export const trainKind: StageKind = {
  kind: 'train',
  version: 2,
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      lr: { type: 'number', default: 0.1 },
      heads: { type: 'integer', default: 1 },
      epochs: { type: 'integer', default: 1 },
      batch: { type: 'integer', default: 8 },
      tag: { type: 'string' },
      names: { type: 'array', items: { type: 'string' } },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      layers: { type: 'array', items: { type: 'integer' } },
      optim: {
        type: 'object',
        additionalProperties: false,
        properties: { name: { enum: ['sgd', 'adam'] }, momentum: { type: 'number', default: 0.9 } },
      },
      workers: { type: 'integer', default: 2 },
    },
  },
  nonKeyParams: ['workers'],
  inputs: { required: ['data'], optional: ['init'] },
  run,
};

export const evalKind: StageKind = {
  kind: 'evaluate',
  version: 1,
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { metric: { type: 'string', default: 'auc' }, steps: { type: 'integer', default: 10 } },
  },
  run,
};

export const reportKind: StageKind = {
  kind: 'report',
  version: 1,
  scope: 'experiment',
  paramsSchema: { type: 'object', additionalProperties: false, properties: { title: { type: 'string', default: 'Report' } } },
  run,
};

export const registry = createRegistry([indexKind, trainKind, evalKind, reportKind]);

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'ca-pipe-cfg-'));
}

/** Write files (name → text) into a fresh temp dir; returns the dir. */
export function writeFiles(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    const full = path.join(dir, name);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  return dir;
}

/** "line:column" (1-based) of the first occurrence of `needle` in `text`, shifted by `delta` chars. */
export function posOf(text: string, needle: string, delta = 0): string {
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`test bug: "${needle}" not in text`);
  const off = at + delta;
  const before = text.slice(0, off);
  const line = before.split('\n').length;
  const column = off - before.lastIndexOf('\n');
  return `${line}:${column}`;
}
