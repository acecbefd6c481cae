// The tfjs forward session computes what the exported ONNX graph computes, on the fixture ResNet
// (the reference PyTorch weights), for both poolings: every output a frozen job asks for.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { setProviderLogger, visibleGpu } from '../../ml/onnx/provider.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { getArch, TAPS } from '../../ml/models/arch.js';
import { createSession } from '../../ml/onnx/runtime.js';
import { availableOutputs } from '../../ml/onnx/export.js';
import { TfjsSession } from '../../ml/forward/tfjs-session.js';
import { Rng } from '../../ml/data/rng.js';
import { fixturesDir } from '../ml/fixtures.js';
import { initTestBackend } from '../support/backend.js';

const WEIGHTS = join(fixturesDir(), 'resnet-basic-1111.weights.safetensors');
const arch = getArch('resnet-basic-1111');
let weights: Map<string, { shape: number[]; data: Float32Array }>;
let cacheDir = '';
let backend: Awaited<ReturnType<typeof initTestBackend>>;

before(async () => {
  setBackendLogger(() => {});
  setProviderLogger(() => {});
  backend = await initTestBackend();
  weights = (await readSafetensors(WEIGHTS)).tensors as typeof weights;
  cacheDir = await mkdtemp(join(tmpdir(), 'tfjs-session-'));
});

function input(n: number, size: number): Float32Array {
  const r = new Rng(11);
  return Float32Array.from({ length: n * 3 * size * size }, () => r.normal());
}

/** Largest |a − b| over the reference's own scale. */
function relErr(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  return worst / scale;
}

for (const [head, heads] of [
  ['gap', 1],
  ['ca-stream', 4],
] as const) {
  test(`${head}: tfjs session and ONNX Runtime agree within 1e-4 on every output (fixture ResNet, 64 px)`, async () => {
    const outputs = availableOutputs(head);
    const x = input(3, 64);
    const onnx = await createSession({ arch, head, heads, weights, weightsFile: WEIGHTS, outputs, cacheDir, inputSize: 64 });
    const tfjs = new TfjsSession({ arch, head, heads, weights, weightsFile: WEIGHTS, outputs });
    try {
      const ref = await onnx.run(x, 3, 64, 64);
      const got = await tfjs.run(x, 3, 64, 64);
      assert.deepEqual(Object.keys(got).sort(), [...outputs].sort());
      for (const o of outputs) {
        assert.deepEqual(got[o].dims, ref[o].dims, `${o} dims`);
        const e = relErr(got[o].data, ref[o].data);
        assert.ok(e < 1e-4, `${o}: relative error ${e}`);
      }
      if (head === 'ca-stream') for (const t of TAPS) assert.ok(outputs.includes(`attn.${t}`));
      // probs are a distribution per image
      const K = got.probs.dims[1];
      for (let b = 0; b < 3; b++) assert.ok(Math.abs(got.probs.data.subarray(b * K, (b + 1) * K).reduce((a, v) => a + v, 0) - 1) < 1e-5);
    } finally {
      await onnx.release();
      await tfjs.release();
    }
  });
}

for (const family of ['convnext-mini', 'efficientnet-mini'] as const) {
  test(`${family} ca-stream: tfjs session and ONNX Runtime agree within 1e-4 on every output, and a CA checkpoint also serves the GAP twin`, async () => {
    const file = join(fixturesDir(), `${family}.weights.safetensors`);
    const w = (await readSafetensors(file)).tensors as typeof weights;
    const x = input(2, 64);
    for (const head of ['ca-stream', 'gap'] as const) {
      const outputs = availableOutputs(head, family);
      const onnx = await createSession({ arch: family, head, heads: 1, weights: w, weightsFile: file, outputs, cacheDir, inputSize: 64 });
      const tfjs = new TfjsSession({ arch: family, head, heads: 1, weights: w, weightsFile: file, outputs });
      try {
        const ref = await onnx.run(x, 2, 64, 64);
        const got = await tfjs.run(x, 2, 64, 64);
        assert.deepEqual(Object.keys(got).sort(), [...outputs].sort());
        for (const o of outputs) {
          const e = relErr(got[o].data, ref[o].data);
          assert.ok(e < 1e-4, `${family} ${head} ${o}: relative error ${e}`);
        }
      } finally {
        await onnx.release();
        await tfjs.release();
      }
    }
  });
}

test('tfjs session: chunked and sliced runs equal one run, a rerun is bit-identical, bad outputs and use after release are errors', async () => {
  const outputs = ['tap.layer4', 'logits'];
  const tfjs = new TfjsSession({ arch, head: 'gap', weights, weightsFile: WEIGHTS, outputs });
  const x = input(5, 64);
  const whole = await tfjs.run(x, 5, 64, 64);
  const again = await tfjs.run(x, 5, 64, 64);
  for (const o of outputs) assert.deepEqual(again[o].data, whole[o].data, `${o} rerun`);
  const chunked = await tfjs.runChunked(x, 5, 64, 64, 2);
  // a pixel budget of two 64 px images: run() itself goes through in slices of 2, 2, 1
  const sliced = new TfjsSession({ arch, head: 'gap', weights, weightsFile: WEIGHTS, outputs, slicePixels: 2 * 64 * 64 });
  const calls: number[] = [];
  const inner = sliced as unknown as { runSlice: (x: Float32Array, b: number, ...rest: unknown[]) => Promise<unknown> };
  const runSlice = inner.runSlice.bind(sliced);
  inner.runSlice = (xs, b, ...rest) => (calls.push(b), runSlice(xs, b, ...rest));
  const bySlices = await sliced.run(x, 5, 64, 64);
  assert.deepEqual(calls, [2, 2, 1]);
  await sliced.release();
  for (const o of outputs) {
    for (const r of [chunked, bySlices]) {
      assert.deepEqual(r[o].dims, whole[o].dims);
      assert.ok(relErr(r[o].data, whole[o].data) < 1e-5, o);
    }
  }
  await assert.rejects(tfjs.run(x, 5, 64, 64, ['attn.layer4']), /output "attn.layer4" is not offered/);
  await assert.rejects(tfjs.run(x.subarray(1), 5, 64, 64), /needs/);
  await tfjs.release();
  await assert.rejects(tfjs.run(x, 5, 64, 64), /after release/);
});

test('tfjs session: a CA checkpoint serves a GAP model (as in ONNX), other stray keys still fail the strict load', () => {
  // The fixture file holds CA-Stream weights: the GAP session above already loaded it.
  assert.ok([...weights.keys()].some((k) => k.startsWith('l4.to_out')));
  const stray = new Map(weights);
  stray.set('layer9.weight', { shape: [1], data: new Float32Array(1) });
  assert.throws(
    () => new TfjsSession({ arch, head: 'gap', weights: stray, weightsFile: 'stray.safetensors', outputs: ['logits'] }),
    /layer9\.weight/,
  );
});

test('the backend choice says which device it runs on', () => {
  if (backend.name !== 'tensorflow') assert.equal(backend.device, 'cpu');
  else if (backend.device === 'gpu') assert.match(backend.reason, /tfjs-node-gpu \(on the GPU\)/);
  else assert.match(backend.reason, /tfjs-node \(CPU build\)|tfjs-node-gpu \(GPU build, but TensorFlow sees no GPU/);
  // Without a visible GPU the line must never claim one.
  if (!visibleGpu()) assert.equal(backend.device, 'cpu');
});

test.after(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
