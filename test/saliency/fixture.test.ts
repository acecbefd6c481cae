// Checks against the reference fixture produced by the original PyTorch code (see
// /work/shared/fixtures/README.md): the tap layout our methods assume, Grad-CAM = CAM on a GAP net,
// and the meaning of the CA block's dots that caAttention relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseSafetensors } from '../../ml/io/safetensors.js';
import { gradcam } from '../../ml/saliency/gradient-cams.js';
import { caAttention, caAttentionWeights } from '../../ml/saliency/ca-attention.js';
import { assertClose, refReluMinMax } from './helpers.js';
import { fixturesDir } from '../ml/fixtures.js';

const DIR = fixturesDir();

function load(name: string) {
  const f = parseSafetensors(readFileSync(`${DIR}/resnet-basic-1111.${name}.safetensors`));
  return (key: string) => {
    const t = f.tensors.get(key);
    assert.ok(t, `fixture ${name} lacks ${key}`);
    return { shape: t.shape, data: t.data as Float32Array };
  };
}

test('fixture: GAP logits from tap.layer4 (channel-major), and Grad-CAM through GAP+fc equals CAM', () => {
  const ex = load('expected');
  const wt = load('weights');
  const tap = ex('tap.layer4'); // B×K×h×w
  const [B, K, h, w] = tap.shape;
  const hw = h * w;
  const fcW = wt('fc.weight').data; // classes×K
  const fcB = wt('fc.bias').data;
  const classes = fcB.length;
  const logits = ex('logits.gap').data;
  for (let b = 0; b < B; b++) {
    const A = tap.data.subarray(b * K * hw, (b + 1) * K * hw);
    const ours: number[] = [];
    for (let c = 0; c < classes; c++) {
      let y = fcB[c];
      for (let k = 0; k < K; k++) {
        let m = 0;
        for (let p = 0; p < hw; p++) m += A[k * hw + p];
        y += (fcW[c * K + k] * m) / hw;
      }
      ours.push(y);
    }
    assertClose(ours, logits.subarray(b * classes, (b + 1) * classes), 1e-4, `logits image ${b}`);

    // ∂y_c/∂A_k(p) = W_ck / hw through GAP + fc; Grad-CAM's map is then Zhou et al.'s CAM.
    const c = ours.indexOf(Math.max(...ours));
    const G = new Float32Array(K * hw);
    for (let k = 0; k < K; k++) G.fill(fcW[c * K + k] / hw, k * hw, (k + 1) * hw);
    const r = gradcam(A, G, K, h, w);
    const cam = Array.from({ length: hw }, (_, p) => {
      let s = 0;
      for (let k = 0; k < K; k++) s += fcW[c * K + k] * A[k * hw + p];
      return s;
    });
    assertClose(r.map, refReluMinMax(cam), 1e-5, `CAM image ${b}`);
  }
});

test('fixture: softmax of the l4 dots per head pools the tap into the final CA token', () => {
  const ex = load('expected');
  const wt = load('weights');
  const tap = ex('tap.layer4');
  const [B, K, h, w] = tap.shape;
  const hw = h * w;
  const W4 = wt('l4.to_out.1.weight').data; // K×K
  const b4 = wt('l4.to_out.1.bias').data;
  for (const heads of [1, 4]) {
    const dots = ex(`heads${heads}.attn.layer4`).data; // B×heads×h×w
    const final = ex(`heads${heads}.cls.final`).data; // B×K
    for (let b = 0; b < B; b++) {
      const d = dots.subarray(b * heads * hw, (b + 1) * heads * hw);
      const a = caAttentionWeights(d, heads, h, w)!;
      const F = tap.data.subarray(b * K * hw, (b + 1) * K * hw);
      const per = K / heads;
      const z = new Float64Array(K);
      for (let k = 0; k < K; k++) {
        const g = Math.floor(k / per);
        for (let p = 0; p < hw; p++) z[k] += F[k * hw + p] * a[g * hw + p];
      }
      const q: number[] = [];
      for (let i = 0; i < K; i++) {
        let s = b4[i];
        for (let k = 0; k < K; k++) s += W4[i * K + k] * z[k];
        q.push(s);
      }
      assertClose(q, final.subarray(b * K, (b + 1) * K), 1e-3, `heads=${heads} image ${b}`);
      // And the map is the min-max of the head-mean of those weights.
      const avg = Array.from({ length: hw }, (_, p) => {
        let s = 0;
        for (let g = 0; g < heads; g++) s += a[g * hw + p];
        return s / heads;
      });
      assertClose(caAttention(d, heads, h, w).map, refReluMinMax(avg), 1e-6);
    }
  }
});
