// ConvNeXt and EfficientNet CA-Streams against the reference tensors the original code produced
// (test/fixtures/reference/{convnext,efficientnet}-mini.*), on tfjs and on ONNX Runtime, to
// ≤ 1e-4·max(1, |ref|) elementwise.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { createModel, getBackbone } from '../../ml/models/index.js';
import { createSession } from '../../ml/onnx/runtime.js';
import { fixturesDir } from './fixtures.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

/** Worst |a − r| / max(1, |r|) over the tensor. */
function worst(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(a.length, ref.length, 'element count');
  let w = 0;
  for (let i = 0; i < ref.length; i++) w = Math.max(w, Math.abs(a[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return w;
}

async function fixture(name: string) {
  const dir = fixturesDir();
  const weights = (await readSafetensors(join(dir, `${name}.weights.safetensors`))).tensors;
  const expected = (await readSafetensors(join(dir, `${name}.expected.safetensors`))).tensors;
  return { weights, expected };
}

const TOL = 1e-4;

/** Fixture key → what ca-pipe calls it: the original's forward is our `logits`. */
const ours = (key: string) => (key === 'logits.ca' ? 'logits' : key);

function checkAll(engine: string, name: string, got: Map<string, ArrayLike<number>>, expected: Map<string, { data: unknown }>): void {
  const report: string[] = [];
  for (const [key, ref] of expected) {
    if (key === 'input') continue;
    const mine = got.get(ours(key));
    assert.ok(mine, `${engine} ${name}: no output for ${key}`);
    const e = worst(mine, ref.data as Float32Array);
    report.push(`${key} ${e.toExponential(2)}`);
    assert.ok(e <= TOL, `${engine} ${name}: ${key} differs by ${e} (> ${TOL})`);
  }
  // The worst error per key, for the record (node --test prints diagnostics).
  console.log(`# ${engine} ${name}: ${report.join(', ')}`);
}

async function tfjsOutputs(arch: string, weights: Map<string, any>, input: { shape: number[]; data: Float32Array }) {
  const classes = weights.get(getBackbone(arch).classifierWeight)!.shape[0];
  const m = createModel({ arch, head: 'ca-stream', numClasses: classes });
  try {
    m.loadWeights(weights, { strict: true, file: arch });
    const got = new Map<string, ArrayLike<number>>();
    tf.tidy(() => {
      const [B, , H, W] = input.shape;
      const x = tf.transpose(tf.tensor4d(input.data, [B, 3, H, W]), [0, 2, 3, 1]) as tf.Tensor4D;
      const out = m.forward(x);
      for (const [t, v] of Object.entries(out.taps)) got.set(`tap.${t}`, tf.transpose(v, [0, 3, 1, 2]).dataSync());
      for (const [t, v] of Object.entries(out.dots)) got.set(`attn.${t}`, v!.dataSync());
      got.set('cls.final', out.token.dataSync());
      got.set('logits', out.logits.dataSync());
      got.set('logits.gap', out.logitsGap.dataSync());
    });
    return got;
  } finally {
    m.dispose();
  }
}

async function onnxOutputs(arch: string, weights: Map<string, any>, input: { shape: number[]; data: Float32Array }, outputs: string[]) {
  const cacheDir = await mkdtemp(join(tmpdir(), 'families-'));
  try {
    const s = await createSession({ arch, head: 'ca-stream', weights, outputs, cacheDir });
    const [B, , H, W] = input.shape;
    const r = await s.run(input.data, B, H, W);
    await s.release();
    return new Map(Object.entries(r).map(([k, v]) => [k, v.data] as const));
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

for (const name of ['convnext-mini', 'efficientnet-mini']) {
  test(`${name}: tfjs matches the original code's tensors`, async () => {
    const { weights, expected } = await fixture(name);
    checkAll('tfjs', name, await tfjsOutputs(name, weights, expected.get('input') as any), expected);
  });

  test(`${name}: ONNX Runtime matches the original code's tensors`, async () => {
    const { weights, expected } = await fixture(name);
    const outputs = [...expected.keys()].filter((k) => k !== 'input').map(ours);
    checkAll('onnx', name, await onnxOutputs(name, weights, expected.get('input') as any, outputs), expected);
  });
}

test('the CA-Stream placement of the original code', () => {
  const cx = getBackbone('convnext_base');
  assert.deepEqual(
    cx.caStream().map((b) => [b.tap, b.inDim, b.outDim]),
    [
      ['features.0', 128, 256],
      ['features.2', 256, 512],
      ['features.4', 512, 1024],
      ['features.7', 1024, 1024],
    ],
  );
  assert.deepEqual(cx.readingSizes(224)['features.7'], 7);
});
