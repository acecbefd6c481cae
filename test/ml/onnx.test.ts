// Parity of the ONNX export (run through onnxruntime-node) with the PyTorch reference fixture,
// plus the ca-final / gap / backbone-only heads checked against direct formulas on fixture taps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../../ml/io/safetensors.js';
import { getArch } from '../../ml/models/arch.js';
import { createSession, nhwcToNchw, runForward } from '../../ml/onnx/runtime.js';
import type { WeightMap } from '../../ml/onnx/weights.js';
import { fixturesDir } from './fixtures.js';
import { assertAllClose } from '../assert-close.js';

const FIX = fixturesDir();
const WEIGHTS = join(FIX, 'resnet-basic-1111.weights.safetensors');
const arch = getArch('resnet-basic-1111');
const weightsP = readSafetensors(WEIGHTS).then((f) => f.tensors as unknown as WeightMap);
const expectedP = readSafetensors(join(FIX, 'resnet-basic-1111.expected.safetensors')).then((f) => f.tensors);
const TAP_NAMES = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'];

function assertClose(
  got: { dims: number[]; data: Float32Array },
  ref: NamedTensor | { shape: number[]; data: ArrayLike<number> },
  what: string,
): void {
  assert.deepEqual(got.dims, ref.shape, `${what}: shape`);
  assertAllClose(got.data, ref.data as ArrayLike<number>, { tol: 1e-4, what });
}

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'onnx-test-'));
});
test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

for (const heads of [1, 4]) {
  test(`ca-stream heads=${heads}: taps, dots, final token, GAP and CA logits match the PyTorch fixture`, async () => {
    const [weights, exp] = await Promise.all([weightsP, expectedP]);
    const outputs = [
      ...TAP_NAMES.map((t) => `tap.${t}`),
      ...TAP_NAMES.map((t) => `attn.${t}`),
      'cls.final',
      'logits',
      'logits.gap',
      'probs',
    ];
    const model = await createSession({ arch, head: 'ca-stream', heads, weights, weightsFile: WEIGHTS, outputs, cacheDir: tmp });
    try {
      const x = exp.get('input')!;
      const [b, , h, w] = x.shape;
      const r = await model.run(x.data as Float32Array, b, h, w);
      for (const t of TAP_NAMES) {
        assertClose(r[`tap.${t}`], exp.get(`tap.${t}`)!, `tap.${t}`);
        assertClose(r[`attn.${t}`], exp.get(`heads${heads}.attn.${t}`)!, `attn.${t}`);
      }
      assertClose(r['cls.final'], exp.get(`heads${heads}.cls.final`)!, 'cls.final');
      assertClose(r.logits, exp.get(`heads${heads}.logits.ca`)!, 'logits (CA)');
      assertClose(r.logits, exp.get(`heads${heads}.logits.forward`)!, 'logits (forward)');
      assertClose(r['logits.gap'], exp.get('logits.gap')!, 'logits.gap');
      const ref = exp.get(`heads${heads}.logits.ca`)!.data as Float32Array;
      assertClose(r.probs, { shape: [b, 10], data: softmaxRows(ref, 10) }, 'probs');
    } finally {
      await model.release();
    }
  });
}

function softmaxRows(x: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += out[r * n + j] = Math.exp(x[r * n + j] - m);
    for (let j = 0; j < n; j++) out[r * n + j] /= s;
  }
  return out;
}

test('gap head and backbone-only graph: logits = fixture GAP logits, taps match, batch is dynamic', async () => {
  const [weights, exp] = await Promise.all([weightsP, expectedP]);
  const x = exp.get('input')!;
  const [b, c, h, w] = x.shape;
  const gap = await createSession({ arch, head: 'gap', weights, outputs: ['logits'], cacheDir: tmp });
  const backbone = await createSession({ arch, head: 'none', weights, cacheDir: tmp });
  try {
    assertClose((await gap.run(x.data as Float32Array, b, h, w)).logits, exp.get('logits.gap')!, 'gap logits');
    // One image alone gives the first row of the batch result.
    const one = (x.data as Float32Array).subarray(0, c * h * w);
    const r1 = await backbone.run(one, 1, h, w);
    assert.deepEqual(
      backbone.outputs,
      TAP_NAMES.map((t) => `tap.${t}`),
    );
    for (const t of TAP_NAMES) {
      const ref = exp.get(`tap.${t}`)!;
      const per = ref.data.length / b;
      assertClose(
        r1[`tap.${t}`],
        { shape: [1, ...ref.shape.slice(1)], data: (ref.data as Float32Array).subarray(0, per) },
        `tap.${t} (batch 1)`,
      );
    }
  } finally {
    await gap.release();
    await backbone.release();
  }
});

test('ca-final (projected and not) matches the block formula applied to the fixture layer4 tap', async () => {
  const [fixtureWeights, exp] = await Promise.all([weightsP, expectedP]);
  const C = 512;
  const heads = 4;
  const d = C / heads;
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const token = Float32Array.from({ length: C }, () => 1 + rand());
  const W = Float32Array.from({ length: C * C }, () => rand() * 0.05);
  const bias = Float32Array.from({ length: C }, () => rand() * 0.1);
  const fcW = fixtureWeights.get('fc.weight')!.data;
  const fcB = fixtureWeights.get('fc.bias')!.data;
  const tap = exp.get('tap.layer4')!;
  const [B, , H, Wd] = tap.shape;
  const N = H * Wd;
  const F = tap.data as Float32Array;

  // Direct formula in float64: dots_g = F_gᵀq_g/√C, a = softmax(dots), z_g = F_g a_g, q' = Wz + b.
  const dots = new Float64Array(B * heads * N);
  const z = new Float64Array(B * C);
  for (let bi = 0; bi < B; bi++) {
    for (let g = 0; g < heads; g++) {
      const row = dots.subarray((bi * heads + g) * N, (bi * heads + g + 1) * N);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += F[(bi * C + g * d + k) * N + n] * token[g * d + k];
        row[n] = s / Math.sqrt(C);
      }
      const a = softmaxRows(row, N);
      for (let k = 0; k < d; k++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += F[(bi * C + g * d + k) * N + n] * a[n];
        z[bi * C + g * d + k] = s;
      }
    }
  }
  const linear = (x: Float64Array, Wm: ArrayLike<number>, bv: ArrayLike<number>, out: number) => {
    const y = new Float64Array(B * out);
    for (let bi = 0; bi < B; bi++)
      for (let o = 0; o < out; o++) {
        let s = bv[o];
        for (let k = 0; k < C; k++) s += Wm[o * C + k] * x[bi * C + k];
        y[bi * out + o] = s;
      }
    return y;
  };
  const projected = linear(z, W, bias, C);

  for (const withProjection of [false, true]) {
    const weights: WeightMap = new Map(fixtureWeights);
    for (const k of [...weights.keys()]) if (/^(base|l\d)\.to_out/.test(k)) weights.delete(k);
    weights.set('cls_token', { shape: [1, 1, C], data: token });
    if (withProjection) {
      weights.set('cls_surrogate.to_out.1.weight', { shape: [C, C], data: W });
      weights.set('cls_surrogate.to_out.1.bias', { shape: [C], data: bias });
    }
    const model = await createSession({
      arch,
      head: 'ca-final',
      heads,
      weights,
      outputs: ['attn.layer4', 'cls.final', 'logits'],
      cacheDir: tmp,
    });
    try {
      const x = exp.get('input')!;
      const r = await model.run(x.data as Float32Array, B, x.shape[2], x.shape[3]);
      const q = withProjection ? projected : z;
      const what = withProjection ? 'projected' : 'identity';
      assertClose(r['attn.layer4'], { shape: [B, heads, H, Wd], data: dots }, `ca-final ${what} dots`);
      assertClose(r['cls.final'], { shape: [B, C], data: q }, `ca-final ${what} token`);
      assertClose(r.logits, { shape: [B, 10], data: linear(q, fcW, fcB, 10) }, `ca-final ${what} logits`);
    } finally {
      await model.release();
    }
  }
});

test('runForward writes every requested output (NCHW) to safetensors, in chunks', async () => {
  const exp = await expectedP;
  const inputFile = join(tmp, 'input.safetensors');
  const outFile = join(tmp, 'out.safetensors');
  const x = exp.get('input')!;
  await writeSafetensors(inputFile, { input: { shape: x.shape, data: x.data as Float32Array } });
  const res = await runForward({
    arch: 'resnet-basic-1111',
    head: 'ca-stream',
    heads: 4,
    weightsFile: WEIGHTS,
    inputFile,
    outFile,
    cacheDir: tmp,
    batchSize: 1,
  });
  const out = (await readSafetensors(outFile)).tensors;
  assert.deepEqual([...out.keys()].sort(), [...res.outputs].sort());
  assert.ok(res.outputs.includes('attn.layer1') && res.outputs.includes('probs'));
  const asOut = (t: NamedTensor) => ({ dims: t.shape, data: t.data as Float32Array });
  assertClose(asOut(out.get('attn.layer2')!), exp.get('heads4.attn.layer2')!, 'runForward attn.layer2');
  assertClose(asOut(out.get('logits')!), exp.get('heads4.logits.ca')!, 'runForward logits');
  assertClose(asOut(out.get('tap.layer3')!), exp.get('tap.layer3')!, 'runForward tap.layer3');
  await assert.rejects(
    runForward({ arch: 'resnet-basic-1111', head: 'gap', weightsFile: WEIGHTS, inputFile, inputKey: 'images', outFile, cacheDir: tmp }),
    (e: Error) => e.message.includes(inputFile) && e.message.includes('"images"'),
  );
});

test('nhwcToNchw moves channels first', () => {
  // 1 image, 1×2 pixels, 3 channels: pixel p channel k = 10p + k.
  const nchw = nhwcToNchw(new Float32Array([0, 1, 2, 10, 11, 12]), 1, 1, 2, 3);
  assert.deepEqual(Array.from(nchw), [0, 10, 1, 11, 2, 12]);
});
