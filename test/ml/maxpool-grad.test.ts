// The JS MaxPoolGrad that replaces the stock wasm kernel: the same routing as the cpu backend
// (first maximum in scan order wins ties, as in PyTorch), including windows that are all ≤ 0.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, setBackendLogger, tf } from '../../ml/backend/index.js';
import { Rng } from '../../ml/models/index.js';

before(async () => {
  setBackendLogger(() => {});
  await initBackend('wasm');
});

const rng = new Rng(3);

type Geometry = { shape: [number, number, number, number]; k: number; s: number; pad: 'valid' | 'same' | number };

function poolGrad(x: Float32Array, dy: Float32Array, g: Geometry): Float32Array {
  return tf.tidy(() => {
    const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, g.k, g.s, g.pad), tf.tensor(dy, outShape(g))));
    return tf.grad(f)(tf.tensor(x, g.shape)).dataSync() as Float32Array;
  });
}

function outShape(g: Geometry): number[] {
  const info = tf.backend_util.computePool2DInfo(g.shape, g.k, g.s, 1, g.pad);
  return info.outShape;
}

async function onBackend<T>(name: string, f: () => T): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(name);
  try {
    return f();
  } finally {
    await tf.setBackend(prev);
  }
}

const GEOMETRIES: Geometry[] = [
  { shape: [2, 9, 9, 3], k: 3, s: 2, pad: 1 },
  { shape: [3, 8, 8, 5], k: 2, s: 2, pad: 'valid' },
  { shape: [2, 7, 6, 4], k: 3, s: 1, pad: 'same' },
  { shape: [1, 10, 10, 16], k: 3, s: 2, pad: 'same' },
];

test('wasm MaxPoolGrad agrees with the cpu backend, ties and negative windows included', async () => {
  for (const g of GEOMETRIES) {
    const n = g.shape.reduce((a, b) => a * b, 1);
    for (const kind of ['ties', 'negative', 'continuous']) {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = rng.normal();
        // ties: few distinct values, so most windows hold several equal maxima (ReLU-like zeros too)
        x[i] = kind === 'ties' ? Math.max(0, Math.round(v)) : kind === 'negative' ? -Math.abs(v) - 0.1 : v;
      }
      const m = outShape(g).reduce((a, b) => a * b, 1);
      const dy = new Float32Array(m);
      for (let i = 0; i < m; i++) dy[i] = rng.normal();
      const wasm = await onBackend('wasm', () => poolGrad(x, dy, g));
      const cpu = await onBackend('cpu', () => poolGrad(x, dy, g));
      // Same routing; only the order in which overlapping windows add into one input differs,
      // so sums may differ in the last bit (a misrouted gradient would be off by O(1)).
      for (let i = 0; i < n; i++) {
        if (!(Math.abs(wasm[i] - cpu[i]) <= 1e-6 * Math.max(1, Math.abs(cpu[i]))))
          assert.fail(`${JSON.stringify(g)} ${kind} dx[${i}]: wasm ${wasm[i]} vs cpu ${cpu[i]}`);
      }
    }
  }
});

test('MaxPoolGrad routes a tie to the first maximum in row-major window order', async () => {
  // one 2×2 window holding 5 twice (positions 1 and 2) and a smaller value: all the gradient goes to position 1
  const g: Geometry = { shape: [1, 2, 2, 1], k: 2, s: 2, pad: 'valid' };
  const got = await onBackend('wasm', () => poolGrad(Float32Array.from([1, 5, 5, -2]), Float32Array.from([3]), g));
  assert.deepEqual(Array.from(got), [0, 3, 0, 0]);
});
