// The two engines compute the same model: a ResNet-50 + CA-Stream with random weights (and
// randomised BatchNorm statistics, so folding is exercised) at 224×224, tfjs-wasm vs ONNX Runtime.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackendLogger, tf } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { createModel, TAPS } from '../../ml/models/index.js';
import { createSession } from '../../ml/onnx/runtime.js';
import { getArch, tapSizes } from '../../ml/models/arch.js';
import { Rng } from '../../ml/data/rng.js';

before(async () => {
  setBackendLogger(() => {});
  await initTestBackend();
});

/** Largest |a − b| relative to the reference tensor's own scale (float32 sums over ~50 layers differ in order). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / scale;
}

async function assertEnginesAgree(
  archName: string,
  heads: number,
  numClasses: number,
  size: number,
): Promise<Record<string, { dims: readonly number[] }>> {
  const rng = new Rng(7);
  const m = createModel({ arch: archName, head: 'ca-stream', heads, numClasses, seed: 3 });
  const sd = m.stateDict();
  for (const [name, t] of sd) {
    if (name.endsWith('running_var')) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + rng.float();
    else if (name.endsWith('running_mean') || (/bn\d|downsample\.1/.test(name) && name.endsWith('.bias')))
      for (let i = 0; i < t.data.length; i++) t.data[i] = 0.2 * (rng.float() - 0.5);
    else if (/bn\d\.weight|downsample\.1\.weight/.test(name)) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + 0.5 * rng.float();
  }
  m.loadWeights(sd as any, { strict: true, file: `random-${archName}` });
  const x = new Float32Array(2 * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();

  const cacheDir = await mkdtemp(join(tmpdir(), 'agree-'));
  try {
    const outputs = [...TAPS.map((t) => `tap.${t}`), ...TAPS.map((t) => `attn.${t}`), 'logits', 'logits.gap'];
    const onnx = await createSession({
      arch: getArch(archName),
      head: 'ca-stream',
      heads,
      numClasses,
      weights: sd as any,
      outputs,
      cacheDir,
    });
    const ref = await onnx.run(x, 2, size, size);
    await onnx.release();

    const xt = tf.transpose(tf.tensor4d(x, [2, 3, size, size]), [0, 2, 3, 1]) as tf.Tensor4D;
    const out = m.forward(xt);
    const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]).dataSync();
    // taps are NHWC in tfjs; dots are already B×h×H×W
    for (const t of TAPS) {
      const e = relErr(nchw(out.taps[t]), ref[`tap.${t}`].data);
      assert.ok(e < 1e-4, `tap.${t}: relative error ${e}`);
      const d = relErr(out.dots[t]!.dataSync(), ref[`attn.${t}`].data);
      assert.ok(d < 1e-4, `attn.${t}: relative error ${d}`);
    }
    const l = relErr(out.logits.dataSync(), ref.logits.data);
    assert.ok(l < 1e-4, `logits: relative error ${l}`);
    const g = relErr(out.logitsGap!.dataSync(), ref['logits.gap'].data);
    assert.ok(g < 1e-4, `logits.gap: relative error ${g}`);
    tf.dispose(
      [
        xt,
        ...Object.values(out.taps),
        ...(Object.values(out.dots).filter(Boolean) as tf.Tensor[]),
        out.logits,
        out.token,
        out.logitsGap,
      ].filter(Boolean) as tf.Tensor[],
    );
    return ref;
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
    m.dispose();
  }
}

test('tfjs and ONNX Runtime agree on ResNet-50 + CA-Stream (random weights, 224×224): taps, dots, logits', async () => {
  await assertEnginesAgree('resnet50', 8, 1000, 224);
});

test('resnet-mini-hr (stride-1 layer4): both engines agree and layer4 keeps the 4×4 grid of layer3 at 64 px', async () => {
  const ref = await assertEnginesAgree('resnet-mini-hr', 2, 6, 64);
  // 64 → conv1 /2 → maxpool /2 = 16 → layer2 8 → layer3 4 → layer4 (stride 1) 4.
  assert.deepEqual([...ref['tap.layer3'].dims], [2, 64, 4, 4]);
  assert.deepEqual([...ref['tap.layer4'].dims], [2, 128, 4, 4]);
  assert.deepEqual([...ref['attn.layer4'].dims], [2, 2, 4, 4]);
  assert.deepEqual(tapSizes(64, getArch('resnet-mini-hr')), { stem: 16, layer1: 16, layer2: 8, layer3: 4, layer4: 4 });
  assert.deepEqual(tapSizes(64, getArch('resnet-mini')).layer4, 2);
});
