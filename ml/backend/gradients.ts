// Gradient definitions for the kernels our models, losses and saliency methods use.
// Why: the Node bundle of @tensorflow/tfjs-core ships the autodiff engine but none of the per-kernel
// gradients (the union package @tensorflow/tfjs registers them; we depend on core only). A kernel
// whose gradient is already registered (e.g. by tfjs-node) is left alone.
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;
type GradFn = (dy: T | T[], saved: T[], attrs: any) => Record<string, () => T>;

const run = (name: string, inputs: Record<string, T>, attrs: Record<string, unknown> = {}): T =>
  tf.engine().runKernel(name, inputs as any, attrs as any) as T;

/** Sum a broadcast gradient back to the operand's shape. */
function unbroadcast(g: T, shape: number[]): T {
  const axes = tf.backend_util.getReductionAxes(shape, g.shape);
  const s = axes.length ? tf.sum(g, axes) : g;
  return tf.reshape(s, shape);
}

/**
 * matMul with optional transposes, computed without the transpose flags when a cheap way exists.
 * Why: tfjs-wasm's BatchMatMul is up to 10× slower with transposeA / transposeB set (measured:
 * [16,2048]ᵀ·[16,2048] 228 ms with the flag vs 19 ms after an explicit transpose; x·Wᵀ for a
 * 2048² W 104 ms vs 17 ms). Of the two flag-free forms, op(a)·op(b) with the flagged operands
 * transposed, or (op(b)ᵀ·op(a)ᵀ)ᵀ with the unflagged operands and the result transposed, we take
 * the one that copies fewer elements; if even that is huge (feature maps), we keep the flags.
 */
export function matMulT(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (!transposeA && !transposeB) return tf.matMul(a, b);
  const LIMIT = 1 << 22;
  const swap = (t: tf.Tensor) => tf.transpose(t, [...Array(t.rank - 2).keys(), t.rank - 1, t.rank - 2]);
  const rows = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2];
  const cols = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1];
  const batch = Math.max(a.size / (a.shape[a.rank - 1] * a.shape[a.rank - 2]), b.size / (b.shape[b.rank - 1] * b.shape[b.rank - 2]));
  const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0);
  const flipped = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + batch * rows * cols;
  if (Math.min(direct, flipped) > LIMIT) return tf.matMul(a, b, transposeA, transposeB);
  if (direct <= flipped) return tf.matMul(transposeA ? swap(a) : a, transposeB ? swap(b) : b);
  return swap(tf.matMul(transposeB ? b : swap(b), transposeA ? a : swap(a)));
}

function normAxes(axis: number | number[] | undefined, rank: number): number[] {
  if (axis === undefined || axis === null) return [...Array(rank).keys()];
  const a = Array.isArray(axis) ? axis : [axis];
  return a.map((v) => (v < 0 ? v + rank : v));
}

/** Shape of a reduction result with keepDims = true. */
function keptShape(shape: number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function def(
  kernelName: string,
  gradFunc: GradFn,
  opts: { inputsToSave?: string[]; outputsToSave?: boolean[]; saveAllInputs?: boolean } = {},
) {
  return { kernelName, gradFunc, ...opts } as tf.GradConfig;
}

const binary = (f: (dy: T, a: T, b: T, out?: T) => [T, T], outputsToSave?: boolean[]) => (name: string) =>
  def(
    name,
    (dy, saved) => {
      const [a, b] = saved;
      const out = saved[2];
      return {
        a: () => unbroadcast(f(dy as T, a, b, out)[0], a.shape),
        b: () => unbroadcast(f(dy as T, a, b, out)[1], b.shape),
      };
    },
    { inputsToSave: ['a', 'b'], outputsToSave },
  );

const unary = (name: string, f: (dy: T, x: T, y: T) => T, save: 'x' | 'y' | 'both' = 'x') =>
  def(
    name,
    (dy, saved) => ({
      x: () =>
        f(
          dy as T,
          save === 'y' ? (undefined as unknown as T) : saved[0],
          save === 'x' ? (undefined as unknown as T) : save === 'y' ? saved[0] : saved[1],
        ),
    }),
    save === 'y' ? { outputsToSave: [true] } : save === 'both' ? { inputsToSave: ['x'], outputsToSave: [true] } : { inputsToSave: ['x'] },
  );

const zeroGrad = (name: string, input = 'x') =>
  def(name, (_dy, saved) => ({ [input]: () => tf.zeros(saved[0].shape) }), { inputsToSave: [input] });

function reductionGrad(name: string, kind: 'sum' | 'mean') {
  return def(
    name,
    (dy, saved, attrs) => {
      const x = saved[0];
      const axes = normAxes(attrs.axis, x.rank);
      return {
        x: () => {
          let g = tf.reshape(dy as T, keptShape(x.shape, axes));
          if (kind === 'mean')
            g = tf.div(
              g,
              axes.reduce((n, a) => n * x.shape[a], 1),
            );
          return tf.mul(g, tf.onesLike(x));
        },
      };
    },
    { inputsToSave: ['x'] },
  );
}

function extremumGrad(name: string) {
  // Gradient goes to every position equal to the extremum (as TensorFlow does).
  return def(
    name,
    (dy, saved, attrs) => {
      const [x, y] = saved;
      const axes = normAxes(attrs.reductionIndices ?? attrs.axis, x.rank);
      const kept = keptShape(x.shape, axes);
      return { x: () => tf.mul(tf.reshape(dy as T, kept), tf.cast(tf.equal(x, tf.reshape(y, kept)), 'float32')) };
    },
    { inputsToSave: ['x'], outputsToSave: [true] },
  );
}

/**
 * Row-interpolation matrix [outSize, inSize] of tfjs's bilinear resize along one axis (the same
 * source-coordinate rule as the forward kernels).
 */
function interpMatrix(inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean): tf.Tensor2D {
  const ratio = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  const m = new Float32Array(outSize * inSize);
  for (let r = 0; r < outSize; r++) {
    const src = halfPixel ? ratio * (r + 0.5) - 0.5 : ratio * r;
    const lo = Math.max(0, Math.floor(src));
    const hi = Math.min(inSize - 1, Math.ceil(src));
    const frac = src - lo;
    m[r * inSize + lo] += 1 - frac;
    m[r * inSize + hi] += frac;
  }
  return tf.tensor2d(m, [outSize, inSize]);
}

/**
 * Gradient of bilinear resizing as the adjoint of the separable linear map Y = Ry·X·Rxᵀ.
 * Why not the backends' ResizeBilinearGrad kernels: they ignore halfPixelCenters (the setting that
 * matches PyTorch's align_corners=False) and return wrong gradients for it.
 */
function resizeBilinearAdjoint(dy: tf.Tensor4D, inShape: number[], alignCorners: boolean, halfPixel: boolean): tf.Tensor4D {
  const [B, ih, iw, C] = inShape;
  const [, oh, ow] = dy.shape;
  const ry = interpMatrix(ih, oh, alignCorners, halfPixel);
  const rx = interpMatrix(iw, ow, alignCorners, halfPixel);
  // rows: [oh, B·ow·C] → Ryᵀ· → [ih, B, ow, C]
  const a = tf.reshape(tf.matMul(ry, tf.reshape(tf.transpose(dy, [1, 0, 2, 3]), [oh, B * ow * C]), true, false), [ih, B, ow, C]);
  // columns: [ow, B·ih·C] → Rxᵀ· → [iw, B, ih, C]
  const b = tf.reshape(tf.matMul(rx, tf.reshape(tf.transpose(a, [2, 1, 0, 3]), [ow, B * ih * C]), true, false), [iw, B, ih, C]);
  return tf.transpose(b, [1, 2, 0, 3]) as tf.Tensor4D;
}

function conv2dGrads(): tf.GradConfig {
  return def(
    'Conv2D',
    (dy, saved, attrs) => {
      const [x, filter] = saved;
      const { strides, pad, dataFormat, dimRoundingMode, dilations } = attrs;
      const dil = dilations ?? 1;
      if (!(dil === 1 || (Array.isArray(dil) && dil.every((d: number) => d === 1)))) {
        throw new Error('Conv2D gradient: dilation > 1 is not supported');
      }
      return {
        x: () => run('Conv2DBackpropInput', { dy: dy as T, filter }, { strides, pad, dataFormat, dimRoundingMode, inputShape: x.shape }),
        filter: () =>
          run('Conv2DBackpropFilter', { x, dy: dy as T }, { strides, pad, dataFormat, dimRoundingMode, filterShape: filter.shape }),
      };
    },
    { inputsToSave: ['x', 'filter'] },
  );
}

function configs(): tf.GradConfig[] {
  const c: tf.GradConfig[] = [
    binary((dy) => [dy, dy])('Add'),
    binary((dy) => [dy, tf.neg(dy)])('Sub'),
    binary((dy, a, b) => [tf.mul(dy, b), tf.mul(dy, a)])('Multiply'),
    binary((dy, a, b) => [tf.div(dy, b), tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))])('RealDiv'),
    binary((dy, a, b) => {
      const d = tf.mul(tf.sub(a, b), 2);
      return [tf.mul(dy, d), tf.neg(tf.mul(dy, d))];
    })('SquaredDifference'),
    binary((dy, a, b) => {
      const ge = tf.cast(tf.greaterEqual(a, b), 'float32');
      return [tf.mul(dy, ge), tf.mul(dy, tf.sub(1, ge))];
    })('Maximum'),
    binary((dy, a, b) => {
      const le = tf.cast(tf.lessEqual(a, b), 'float32');
      return [tf.mul(dy, le), tf.mul(dy, tf.sub(1, le))];
    })('Minimum'),
    binary(
      (dy, a, b, y) => {
        const da = tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1))));
        const safeLog = tf.where(tf.greater(a, 0), tf.log(tf.maximum(a, 1e-30)), tf.zerosLike(a));
        return [da, tf.mul(dy, tf.mul(y!, safeLog))];
      },
      [true],
    )('Pow'),
    def('AddN', (dy, saved) => Object.fromEntries(saved.map((_, i) => [String(i), () => dy as T])), { saveAllInputs: true }),
    unary('Neg', (dy) => tf.neg(dy)),
    unary('Identity', (dy) => dy),
    unary('Square', (dy, x) => tf.mul(dy, tf.mul(x, 2))),
    unary('Sqrt', (dy, _x, y) => tf.div(dy, tf.mul(y, 2)), 'y'),
    unary('Rsqrt', (dy, _x, y) => tf.mul(dy, tf.mul(tf.pow(y, 3), -0.5)), 'y'),
    unary('Reciprocal', (dy, _x, y) => tf.neg(tf.mul(dy, tf.square(y))), 'y'),
    unary('Exp', (dy, _x, y) => tf.mul(dy, y), 'y'),
    unary('Log', (dy, x) => tf.div(dy, x)),
    unary('Log1p', (dy, x) => tf.div(dy, tf.add(x, 1))),
    unary('Abs', (dy, x) => tf.mul(dy, tf.sign(x))),
    unary('Relu', (dy, x) => tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32'))),
    unary('Relu6', (dy, x) => tf.mul(dy, tf.cast(tf.logicalAnd(tf.greater(x, 0), tf.less(x, 6)), 'float32'))),
    unary('Sigmoid', (dy, _x, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y))), 'y'),
    unary('Tanh', (dy, _x, y) => tf.mul(dy, tf.sub(1, tf.square(y))), 'y'),
    unary('Softplus', (dy, x) => tf.mul(dy, tf.sigmoid(x))),
    unary('Cast', (dy) => dy),
    zeroGrad('Sign'),
    zeroGrad('Floor'),
    zeroGrad('Ceil'),
    zeroGrad('Round'),
    zeroGrad('Step'),
    zeroGrad('ZerosLike'),
    zeroGrad('OnesLike'),
    ...['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'LogicalAnd', 'LogicalOr'].map((n) =>
      def(n, (_dy, saved) => ({ a: () => tf.zeros(saved[0].shape), b: () => tf.zeros(saved[1].shape) }), { inputsToSave: ['a', 'b'] }),
    ),
    zeroGrad('LogicalNot'),
    zeroGrad('ArgMax'),
    zeroGrad('ArgMin'),
    def('OneHot', (_dy, saved) => ({ indices: () => tf.zeros(saved[0].shape) }), { inputsToSave: ['indices'] }),
    def(
      'ClipByValue',
      (dy, saved, attrs) => ({
        x: () =>
          tf.mul(
            dy as T,
            tf.cast(tf.logicalAnd(tf.greaterEqual(saved[0], attrs.clipValueMin), tf.lessEqual(saved[0], attrs.clipValueMax)), 'float32'),
          ),
      }),
      { inputsToSave: ['x'] },
    ),
    def(
      'LeakyRelu',
      (dy, saved, attrs) => ({
        x: () => tf.mul(dy as T, tf.where(tf.greater(saved[0], 0), tf.onesLike(saved[0]), tf.fill(saved[0].shape, attrs.alpha))),
      }),
      { inputsToSave: ['x'] },
    ),
    def(
      'Select',
      (dy, saved) => {
        const [cond] = saved;
        const m = tf.cast(cond, 'float32');
        return { condition: () => tf.zeros(cond.shape), t: () => tf.mul(dy as T, m), e: () => tf.mul(dy as T, tf.sub(1, m)) };
      },
      { inputsToSave: ['condition'] },
    ),
    reductionGrad('Sum', 'sum'),
    reductionGrad('Mean', 'mean'),
    extremumGrad('Max'),
    extremumGrad('Min'),
    def('Reshape', (dy, saved) => ({ x: () => tf.reshape(dy as T, saved[0].shape) }), { inputsToSave: ['x'] }),
    def('ExpandDims', (dy, saved) => ({ input: () => tf.reshape(dy as T, saved[0].shape) }), { inputsToSave: ['input'] }),
    def('Squeeze', (dy, saved) => ({ x: () => tf.reshape(dy as T, saved[0].shape) }), { inputsToSave: ['x'] }),
    def('Transpose', (dy, _s, attrs) => {
      const perm: number[] = attrs.perm;
      const inv = new Array(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      return { x: () => tf.transpose(dy as T, inv) };
    }),
    def('BroadcastTo', (dy, _s, attrs) => ({ x: () => unbroadcast(dy as T, attrs.inputShape) })),
    def(
      'Tile',
      (dy, saved, attrs) => {
        const x = saved[0];
        const reps: number[] = attrs.reps;
        // Split every tiled axis into (reps, size) and sum over the reps axes.
        const split: number[] = [];
        const sumAxes: number[] = [];
        x.shape.forEach((d, i) => {
          sumAxes.push(split.length);
          split.push(reps[i], d);
        });
        return { x: () => tf.reshape(tf.sum(tf.reshape(dy as T, split), sumAxes), x.shape) };
      },
      { inputsToSave: ['x'] },
    ),
    def(
      'BatchMatMul',
      (dy, saved, attrs) => {
        const [a, b] = saved;
        const { transposeA, transposeB } = attrs;
        const g = dy as T;
        const mm = matMulT;
        let da: () => T;
        let db: () => T;
        if (!transposeA && !transposeB) {
          da = () => mm(g, b, false, true);
          db = () => mm(a, g, true, false);
        } else if (!transposeA && transposeB) {
          da = () => mm(g, b, false, false);
          db = () => mm(g, a, true, false);
        } else if (transposeA && !transposeB) {
          da = () => mm(b, g, false, true);
          db = () => mm(a, g, false, false);
        } else {
          da = () => mm(b, g, true, true);
          db = () => mm(g, a, true, true);
        }
        // Batch dimensions may have been broadcast.
        return { a: () => unbroadcast(da(), a.shape), b: () => unbroadcast(db(), b.shape) };
      },
      { inputsToSave: ['a', 'b'] },
    ),
    def(
      'Softmax',
      (dy, saved, attrs) => {
        const y = saved[0];
        const dim = attrs.dim ?? -1;
        return { logits: () => tf.mul(y, tf.sub(dy as T, tf.sum(tf.mul(dy as T, y), dim, true))) };
      },
      { outputsToSave: [true] },
    ),
    conv2dGrads(),
    def(
      'Conv2DBackpropInput',
      (ddx, saved, attrs) => {
        const [dy, filter] = saved;
        const { strides, pad, dataFormat, dimRoundingMode } = attrs;
        return {
          dy: () => tf.conv2d(ddx as tf.Tensor4D, filter as tf.Tensor4D, strides, pad, dataFormat, 1, dimRoundingMode),
          filter: () =>
            run('Conv2DBackpropFilter', { x: ddx as T, dy }, { strides, pad, dataFormat, dimRoundingMode, filterShape: filter.shape }),
        };
      },
      { inputsToSave: ['dy', 'filter'] },
    ),
    def(
      'MaxPool',
      (dy, saved, attrs) => {
        const [x, y] = saved;
        const { filterSize, strides, pad, dimRoundingMode } = attrs;
        return { x: () => run('MaxPoolGrad', { dy: dy as T, input: x, output: y }, { filterSize, strides, pad, dimRoundingMode }) };
      },
      { inputsToSave: ['x'], outputsToSave: [true] },
    ),
    def(
      'AvgPool',
      (dy, saved, attrs) => {
        const { filterSize, strides, pad, dimRoundingMode } = attrs;
        return { x: () => run('AvgPoolGrad', { dy: dy as T, input: saved[0] }, { filterSize, strides, pad, dimRoundingMode }) };
      },
      { inputsToSave: ['x'] },
    ),
    def(
      'ResizeBilinear',
      (dy, saved, attrs) => ({
        images: () => resizeBilinearAdjoint(dy as tf.Tensor4D, saved[0].shape, attrs.alignCorners, attrs.halfPixelCenters),
      }),
      { inputsToSave: ['images'] },
    ),
    def(
      'Concat',
      (dy, saved, attrs) => {
        const axis = normAxes(attrs.axis, saved[0].rank)[0];
        const sizes = saved.map((t) => t.shape[axis]);
        const parts = tf.split(dy as T, sizes, axis);
        return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
      },
      { saveAllInputs: true },
    ),
    def('Pack', (dy, _saved, attrs) => {
      const parts = tf.unstack(dy as T, attrs.axis);
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    }),
    def('Unpack', (dy, _s, attrs) => ({ value: () => tf.stack(dy as T[], attrs.axis) })),
    def('SplitV', (dy, _s, attrs) => ({ x: () => tf.concat(dy as T[], attrs.axis) })),
    def(
      'Slice',
      (dy, saved, attrs) => {
        const x = saved[0];
        const begin: number[] = tf.slice_util.parseSliceParams(x, attrs.begin, attrs.size)[0];
        const g = dy as T;
        return {
          x: () =>
            tf.pad(
              g,
              x.shape.map((d, i) => [begin[i], d - begin[i] - g.shape[i]] as [number, number]),
            ),
        };
      },
      { inputsToSave: ['x'] },
    ),
    def(
      'PadV2',
      (dy, saved, attrs) => {
        const x = saved[0];
        const begin = (attrs.paddings as Array<[number, number]>).map((p) => p[0]);
        return { x: () => tf.slice(dy as T, begin, x.shape) };
      },
      { inputsToSave: ['x'] },
    ),
    def(
      'GatherV2',
      (dy, saved, attrs) => {
        const [x, indices] = saved;
        const axis = normAxes(attrs.axis, x.rank)[0];
        if ((attrs.batchDims ?? 0) !== 0) throw new Error('GatherV2 gradient: batchDims is not supported');
        return {
          x: () => {
            // Move the gathered axis to the front, scatter-add, move back.
            const g = dy as T;
            const idxRank = indices.rank;
            const outerAxes = [...Array(axis).keys()];
            const idxAxes = [...Array(idxRank).keys()].map((i) => i + axis);
            const innerAxes = [...Array(g.rank - axis - idxRank).keys()].map((i) => i + axis + idxRank);
            const perm = [...idxAxes, ...outerAxes, ...innerAxes];
            const gT = tf.transpose(g, perm);
            const flatIdx = tf.reshape(indices, [indices.size]);
            const rest = gT.shape.slice(idxRank);
            const gFlat = tf.reshape(gT, [indices.size, rest.reduce((a, b) => a * b, 1)]);
            // Scatter-add as a one-hot product (wasm has no UnsortedSegmentSum kernel).
            // (oneHot stays int32 and is cast: the wasm kernel ignores a float32 dtype request and writes ints.)
            const hot = tf.cast(tf.oneHot(tf.cast(flatIdx, 'int32') as tf.Tensor1D, x.shape[axis]), 'float32');
            const summed = tf.reshape(tf.matMul(hot, gFlat, true, false), [x.shape[axis], ...rest]);
            // summed axes: [axis-dim, outer..., inner...] → original order
            const inv = [...outerAxes.map((i) => i + 1), 0, ...innerAxes.map((_, i) => 1 + outerAxes.length + i)];
            return tf.transpose(summed, inv);
          },
          indices: () => tf.zeros(indices.shape),
        };
      },
      { inputsToSave: ['x', 'indices'] },
    ),
  ];
  return c;
}

let registered = false;
/** Kernels whose stock tfjs gradient is wrong for settings we use. */
const ALWAYS_OURS = new Set(['ResizeBilinear']);

/** Register our gradient configs for every kernel that has none yet. Idempotent. */
export function registerGradients(): void {
  if (registered) return;
  registered = true;
  for (const cfg of configs()) {
    if (tf.getGradient(cfg.kernelName)) {
      if (!ALWAYS_OURS.has(cfg.kernelName)) continue;
      tf.unregisterGradient(cfg.kernelName);
    }
    tf.registerGradient(cfg);
  }
}
