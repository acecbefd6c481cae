// Shared setup for the explain / saliency / evaluate tests (not a test file itself).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, writeSafetensors } from '../../ml/io/safetensors.js';
import { createModel } from '../../ml/models/model.js';
import { fixturesDir } from '../ml/fixtures.js';

export const FIXTURE_DIR = fixturesDir();
export const HAVE_FIXTURE = existsSync(`${FIXTURE_DIR}/resnet-basic-1111.expected.safetensors`);
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export function tmp(prefix = 'ca-pipe-explain-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function fixture(name: 'expected' | 'weights') {
  const f = parseSafetensors(readFileSync(`${FIXTURE_DIR}/resnet-basic-1111.${name}.safetensors`));
  return (key: string) => {
    const t = f.tensors.get(key);
    if (!t) throw new Error(`fixture ${name} lacks ${key}`);
    return { shape: t.shape, data: t.data as Float32Array };
  };
}

/** A model directory (model.json + final.safetensors) around the fixture weights. */
export function fixtureModelDir(dir: string, head: 'gap' | 'ca-stream', heads = 1, inputSize = 96): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(`${FIXTURE_DIR}/resnet-basic-1111.weights.safetensors`, join(dir, 'final.safetensors'));
  writeCard(dir, { arch: 'resnet-basic-1111', head, heads, num_classes: 10, input_size: inputSize });
  return dir;
}

export function writeCard(
  dir: string,
  c: { arch: string; head: string; heads: number; num_classes: number; input_size: number; resize?: number },
): void {
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      format: 'ca-pipe.model/1',
      ...c,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      classes: Array.from({ length: c.num_classes }, (_, i) => `c${i}`),
      weights: 'final.safetensors',
    }),
  );
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assertAllClose(actual, expected, { tol, what });
}

// ---- stage-level helpers ----
import type { StageContext } from '../../engine/contract.js';
import { indexStage } from '../../stages/index/index.js';
import { assertAllClose } from '../assert-close.js';

export interface TestCtx<P> extends StageContext<P> {
  logs: string[];
  done: number[];
}

export function testCtx<P>(
  params: P,
  inputs: Record<string, string>,
  dirs: { outDir: string; scratchDir: string; baseDir?: string },
  signal?: AbortSignal,
  onSet?: (done: number) => void,
): TestCtx<P> {
  const logs: string[] = [];
  const done: number[] = [];
  mkdirSync(dirs.outDir, { recursive: true });
  mkdirSync(dirs.scratchDir, { recursive: true });
  return {
    params,
    inputs,
    variantInputs: {},
    outDir: dirs.outDir,
    scratchDir: dirs.scratchDir,
    baseDir: dirs.baseDir ?? dirs.outDir,
    progress: {
      total() {},
      tick() {},
      set: (d: number) => {
        done.push(d);
        onSet?.(d);
      },
      message() {},
    },
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m), debug() {} },
    signal: signal ?? new AbortController().signal,
    stage: { name: 'x', variantId: '', alias: '', key: 'k' },
    provenance: {},
    logs,
    done,
  };
}

/** A small synthetic index (images with masks) built by the index stage itself. */
export async function syntheticIndex(
  dir: string,
  opts: { classes: number; per_class: number; size: number; seed?: number; fraction?: number },
): Promise<string> {
  const out = join(dir, 'index-out');
  const ctx = testCtx(
    {
      source: 'synthetic',
      synthetic: { classes: opts.classes, per_class: opts.per_class, size: opts.size, seed: opts.seed ?? 0 },
      split: { fraction: opts.fraction ?? 0.5, seed: 0 },
      verify: 'stat',
      extensions: ['png'],
      format: 'auto',
      header: 'auto',
    } as never,
    {},
    { outDir: out, scratchDir: join(dir, 'index-scratch') },
  );
  await indexStage.run(ctx as never);
  return out;
}

/** Minimal NumPy .npy (v1.0, little-endian float32) writer for import tests. */
export function npyBytes(shape: number[], data: Float32Array): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** A model directory of `arch` with seeded random weights (tests whose maps only need a valid model). */
export async function randomModelDir(
  dir: string,
  arch: string,
  head: 'gap' | 'ca-stream' | 'ca-final',
  numClasses: number,
  inputSize: number,
): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const m = createModel({ arch, head, numClasses, seed: 3 });
  try {
    const tensors = Object.fromEntries([...m.stateDict()].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
    await writeSafetensors(join(dir, 'final.safetensors'), tensors);
  } finally {
    m.dispose();
  }
  writeCard(dir, { arch, head, heads: 1, num_classes: numClasses, input_size: inputSize });
  return dir;
}
