import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { initBackend, setBackendLogger, tf } from '../../ml/backend/index.js';
import { Rng } from '../../ml/models/rng.js';
import { setBackpropInputMode } from '../../ml/backend/wasm-kernels.js';

const logged: string[] = [];
before(() => setBackendLogger((l) => logged.push(l)));

test('initBackend picks wasm when asked, logs once, and is idempotent', async () => {
  const a = await initBackend('wasm');
  assert.equal(a.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  const b = await initBackend('cpu');
  assert.deepEqual(b, a);
  assert.equal(logged.length, 1);
  assert.match(logged[0], /^backend: wasm \(/);
});

test('CA_PIPE_BACKEND selects the backend; a bad value is a clear error', async () => {
  const script = [
    'const { initBackend, setBackendLogger } = await import(process.env.MOD);',
    'setBackendLogger(() => {});',
    'try { const c = await initBackend(); console.log(c.name); } catch (e) { console.log("ERR " + e.message); }',
  ].join('\n');
  const mod = new URL('../../ml/backend/index.js', import.meta.url).href;
  const run = async (value: string) => {
    const r = await promisify(execFile)(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
      env: { ...process.env, CA_PIPE_BACKEND: value, MOD: mod },
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    return r.stdout.trim();
  };
  assert.equal(await run('cpu'), 'cpu');
  assert.match(await run('gpu'), /^ERR CA_PIPE_BACKEND="gpu" is not one of tensorflow, wasm, cpu/);
});

function data(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

async function on<T>(backend: string, f: () => T): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return f();
  } finally {
    await tf.setBackend(prev);
  }
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
const sym = (p: number): Pad => [
  [0, 0],
  [p, p],
  [p, p],
  [0, 0],
];

test('wasm Conv2DBackpropFilter (ours) matches the cpu backend for many geometries', async () => {
  await initBackend('wasm');
  const cases: Array<[number, number, Pad, number]> = [
    [1, 1, 'valid', 8],
    [1, 2, 'valid', 8],
    [3, 1, 'same', 7],
    [3, 2, 'same', 8],
    [3, 2, 'valid', 9],
    [3, 1, sym(1), 6],
    [3, 2, sym(1), 9],
    [7, 2, sym(3), 12],
    [7, 1, 'same', 9],
    [3, 2, 1, 8],
    [
      3,
      1,
      [
        [0, 0],
        [0, 2],
        [1, 0],
        [0, 0],
      ],
      7,
    ],
  ];
  for (const [k, s, pad, size] of cases) {
    const xs = [2, size, size + 1, 3];
    const fs = [k, k, 3, 5];
    const xd = data(
      xs.reduce((a, b) => a * b),
      1,
    );
    const fd = data(
      fs.reduce((a, b) => a * b),
      2,
    );
    const grads = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xd, xs as [number, number, number, number]);
        const f = tf.tensor4d(fd, fs as [number, number, number, number]);
        const [gx, gf] = tf.grads((a: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, s, pad))))(
          [x, f],
        );
        return [gx.dataSync(), gf.dataSync()];
      });
    const [wx, wf] = grads();
    const [cx, cf] = await on('cpu', grads);
    const tag = `k=${k} s=${s} pad=${JSON.stringify(pad)}`;
    assert.ok(maxDiff(wf, cf) <= 1e-5 * Math.max(1, maxAbs(cf)), `${tag}: filter gradient differs by ${maxDiff(wf, cf)}`);
    assert.ok(maxDiff(wx, cx) <= 1e-5 * Math.max(1, maxAbs(cx)), `${tag}: input gradient differs by ${maxDiff(wx, cx)}`);
  }
  // the fused convolution (used by the models) goes through the same kernel
  const gf = tf.tidy(() => {
    const x = tf.tensor4d(data(2 * 6 * 6 * 3, 3), [2, 6, 6, 3]);
    const w = tf.tensor4d(data(27 * 4, 4), [3, 3, 3, 4]);
    return tf
      .grad((ww: tf.Tensor) =>
        tf.sum(tf.fused.conv2d({ x, filter: ww as tf.Tensor4D, strides: 2, pad: sym(1) as any, activation: 'relu' })),
      )(w)
      .dataSync();
  });
  const gfCpu = await on('cpu', () =>
    tf.tidy(() => {
      const x = tf.tensor4d(data(2 * 6 * 6 * 3, 3), [2, 6, 6, 3]);
      const w = tf.tensor4d(data(27 * 4, 4), [3, 3, 3, 4]);
      return tf
        .grad((ww: tf.Tensor) =>
          tf.sum(tf.fused.conv2d({ x, filter: ww as tf.Tensor4D, strides: 2, pad: sym(1) as any, activation: 'relu' })),
        )(w)
        .dataSync();
    }),
  );
  assert.ok(maxDiff(gf, gfCpu) < 1e-4);
});

test('registered gradients agree with central finite differences', async () => {
  await initBackend('wasm');
  const shape = [2, 3];
  const a0 = Float32Array.from([0.7, -0.4, 1.3, 0.2, -1.1, 0.9]);
  const b0 = Float32Array.from([0.5, 1.2, -0.8, 1.7, 0.3, -0.6]);
  const pos = Float32Array.from([0.7, 1.4, 0.3, 2.2, 0.9, 1.1]);
  const wts = tf.tensor2d([0.3, -1.2, 0.8, 1.1, 0.5, -0.7], [2, 3]);
  const fns: Record<string, [(x: tf.Tensor) => tf.Tensor, Float32Array]> = {
    add_bcast: [(x) => tf.add(x, tf.tensor1d([1, 2, 3])), a0],
    sub: [(x) => tf.sub(tf.tensor2d(b0, [2, 3]), x), a0],
    mul: [(x) => tf.mul(x, x), a0],
    div: [(x) => tf.div(tf.tensor2d(b0, [2, 3]), x), pos],
    div_bcast: [(x) => tf.div(x, tf.tensor2d([[2], [3]])), a0],
    sqdiff: [(x) => tf.squaredDifference(x, tf.tensor2d(b0, [2, 3])), a0],
    max_min: [(x) => tf.add(tf.maximum(x, 0.25), tf.minimum(x, -0.5)), a0],
    pow: [(x) => tf.pow(x, tf.scalar(1.7)), pos],
    sqrt_rsqrt: [(x) => tf.add(tf.sqrt(x), tf.rsqrt(x)), pos],
    exp_log: [(x) => tf.add(tf.exp(x), tf.log(x)), pos],
    recip_square: [(x) => tf.add(tf.reciprocal(x), tf.square(x)), pos],
    sigmoid_tanh: [(x) => tf.add(tf.sigmoid(x), tf.tanh(x)), a0],
    relu_abs_neg: [(x) => tf.add(tf.relu(x), tf.neg(tf.abs(x))), a0],
    softplus: [(x) => tf.softplus(x), a0],
    clip: [(x) => tf.clipByValue(x, -0.5, 0.8), a0],
    sum_mean: [(x) => tf.add(tf.sum(x, 1, true), tf.mean(x, 0)), a0],
    max_reduce: [(x) => tf.max(x, 1), a0],
    transpose_reshape: [(x) => tf.reshape(tf.transpose(x), [6]), a0],
    matmul: [(x) => tf.matMul(x, tf.tensor2d(b0, [3, 2])), a0],
    matmul_tt: [(x) => tf.matMul(tf.tensor2d(b0, [3, 2]), x, true, true), a0],
    softmax: [(x) => tf.softmax(x), a0],
    log_softmax: [(x) => tf.logSoftmax(x), a0],
    concat_slice: [(x) => tf.concat([tf.slice(x, [0, 1], [2, 2]), x], 1), a0],
    stack_unstack: [(x) => tf.stack(tf.unstack(x, 1), 0), a0],
    split: [(x) => tf.mul(tf.split(x, [1, 2], 1)[1], 2), a0],
    pad: [
      (x) =>
        tf.pad(
          x,
          [
            [1, 0],
            [0, 2],
          ],
          3,
        ),
      a0,
    ],
    tile_bcast: [(x) => tf.add(tf.reshape(tf.tile(x, [2, 1]), [2, 2, 3]), tf.broadcastTo(tf.reshape(x, [1, 2, 3]), [2, 2, 3])), a0],
    gather: [(x) => tf.gather(x, tf.tensor1d([2, 0, 2], 'int32'), 1), a0],
    where: [(x) => tf.where(tf.greater(x, 0), tf.square(x), tf.mul(x, 3)), a0],
    xent: [(x) => tf.losses.softmaxCrossEntropy(tf.tensor2d([0, 1, 0, 0, 0, 1], [2, 3]), x), a0],
    expand_squeeze: [(x) => tf.squeeze(tf.expandDims(x, 0)), a0],
  };
  for (const [name, [f, x0]] of Object.entries(fns)) {
    // weighted sum so that every output element matters differently
    const loss = (x: tf.Tensor) => {
      const y = f(x);
      const w = tf.reshape(tf.slice(tf.tile(tf.reshape(wts, [6]), [Math.ceil(y.size / 6)]), 0, y.size), y.shape);
      return tf.sum(tf.mul(y, w));
    };
    const g = tf.tidy(() =>
      tf
        .grad(loss)(tf.tensor2d(x0, shape as [number, number]))
        .dataSync(),
    );
    const h = 1e-2;
    for (let i = 0; i < x0.length; i++) {
      const at = (d: number) => {
        const v = Float32Array.from(x0);
        v[i] += d;
        return tf.tidy(() => loss(tf.tensor2d(v, shape as [number, number])).dataSync()[0]);
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      assert.ok(Math.abs(fd - g[i]) <= 5e-3 * Math.max(1, Math.abs(fd)), `${name}[${i}]: gradient ${g[i]} vs finite difference ${fd}`);
    }
  }
});

test('pooling and resize gradients route through their grad kernels', async () => {
  await initBackend('wasm');
  const x0 = data(1 * 6 * 6 * 2, 9);
  const fns: Record<string, (x: tf.Tensor) => tf.Tensor> = {
    maxpool_pad1: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 1),
    avgpool: (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'),
    resize_half_pixel: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [9, 9], false, true),
    resize_align_corners: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [11, 4], true, false),
    resize_down: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [4, 5], false, false),
  };
  for (const [name, f] of Object.entries(fns)) {
    const loss = (x: tf.Tensor) => {
      const y = f(x);
      return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
    };
    const g = tf.tidy(() =>
      tf
        .grad(loss)(tf.tensor4d(x0, [1, 6, 6, 2]))
        .dataSync(),
    );
    for (const i of [0, 7, 19, 40, 71]) {
      const at = (d: number) => {
        const v = Float32Array.from(x0);
        v[i] += d;
        return tf.tidy(() => loss(tf.tensor4d(v, [1, 6, 6, 2])).dataSync()[0]);
      };
      const fd = (at(1e-3) - at(-1e-3)) / 2e-3;
      assert.ok(Math.abs(fd - g[i]) <= 1e-2 * Math.max(1, Math.abs(fd)), `${name}[${i}]: gradient ${g[i]} vs finite difference ${fd}`);
    }
  }
});

test('wasm Conv2DBackpropInput (phase convolution) matches the cpu backend for many geometries', async () => {
  await initBackend('wasm');
  type Case = [k: number | [number, number], s: number | [number, number], pad: Pad, h: number, w: number];
  const cases: Case[] = [];
  for (const k of [1, 3, 7]) {
    for (const s of [1, 2]) {
      for (const pad of [
        'same',
        'valid',
        2,
        [
          [0, 0],
          [1, 2],
          [3, 0],
          [0, 0],
        ],
      ] as Pad[]) {
        for (const [h, w] of [
          [9, 8],
          [10, 13],
        ])
          if (pad !== 'valid' || Math.min(h, w) >= k) cases.push([k, s, pad, h, w]);
      }
    }
  }
  // non-square kernels / strides, padding wider than the kernel, stride larger than the kernel
  cases.push(
    [[3, 1], [2, 1], 'same', 7, 6],
    [[1, 3], [1, 2], sym(1), 6, 9],
    [3, 3, 'same', 8, 7],
    [1, 1, sym(2), 5, 6],
    [
      3,
      2,
      [
        [0, 0],
        [4, 0],
        [0, 5],
        [0, 0],
      ],
      6,
      7,
    ],
  );
  const [nb, ci, co] = [2, 3, 5];
  try {
    for (const [k, s, pad, h, w] of cases) {
      const [kh, kw] = Array.isArray(k) ? k : [k, k];
      const inputShape: [number, number, number, number] = [nb, h, w, ci];
      const info = tf.backend_util.computeConv2DInfo(inputShape, [kh, kw, ci, co], s, 1, pad as any);
      const dyShape = [nb, info.outHeight, info.outWidth, co];
      const dyd = data(
        dyShape.reduce((a, b) => a * b),
        5,
      );
      const fd = data(kh * kw * ci * co, 6);
      const dx = () =>
        tf.tidy(() => {
          const dy = tf.tensor4d(dyd, dyShape as [number, number, number, number]);
          const f = tf.tensor4d(fd, [kh, kw, ci, co]);
          const r = tf
            .engine()
            .runKernel('Conv2DBackpropInput', { dy, filter: f }, { strides: s, pad, dataFormat: 'NHWC', inputShape } as any) as tf.Tensor;
          assert.deepEqual(r.shape, inputShape);
          return r.dataSync();
        });
      const want = await on('cpu', dx);
      for (const mode of ['forward', 'auto'] as const) {
        setBackpropInputMode(mode);
        const got = dx();
        const tag = `${mode} k=${k} s=${s} pad=${JSON.stringify(pad)} ${h}x${w}`;
        assert.ok(maxDiff(got, want) <= 1e-5 * Math.max(1, maxAbs(want)), `${tag}: differs by ${maxDiff(got, want)}`);
      }
    }
    // by hand: a 1×1 stride-2 'valid' conv scatters dy·w onto the even pixels and leaves the rest 0
    setBackpropInputMode('forward');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const dy = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const f = tf.tensor4d([2], [1, 1, 1, 1]);
    const before = backend.numDataIds();
    const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, {
      strides: 2,
      pad: 'valid',
      dataFormat: 'NHWC',
      inputShape: [1, 3, 3, 1],
    } as any) as tf.Tensor;
    assert.deepEqual(Array.from(dx.dataSync()), [2, 0, 4, 0, 0, 0, 6, 0, 8]);
    // the kernel frees its temporaries: only the output is new
    assert.equal(backend.numDataIds(), before + 1);
    tf.dispose([dy, f, dx]);
  } finally {
    setBackpropInputMode('auto');
  }
});
