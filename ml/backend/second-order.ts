// Gradients of gradients (ShapleyCAM's Hessian-vector product). tfjs differentiates a gradient by
// recording the ops of the backward pass, but a kernel whose gradient reads its saved OUTPUT (exp,
// softmax, sqrt, rsqrt, tanh, sigmoid, reciprocal, pow) hands the backward pass a copy that is not
// connected to the input on the tape, so the second derivative through it is silently lost
// (measured: softmax's HVP came out 100 % wrong, a ConvNeXt LayerNorm classifier's 7 %). Inside
// `withSecondOrderGradients` those kernels use gradients that recompute the output from the saved
// input instead: the same first derivative, now differentiable once more. The swap is synchronous
// and restored afterwards, so training and every other caller keep the cheaper gradients.
// Not covered: ops tfjs builds with customGrad (logSoftmax; our fast attention block), whose
// backward cannot be swapped; the saliency head's second-order pass uses the plain-autodiff block.
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;

function unary(kernelName: string, grad: (dy: T, x: T) => T): tf.GradConfig {
  return { kernelName, inputsToSave: ['x'], gradFunc: (dy, saved) => ({ x: () => grad(dy as T, saved[0]) }) };
}

function configs(): tf.GradConfig[] {
  return [
    unary('Exp', (dy, x) => tf.mul(dy, tf.exp(x))),
    unary('Sqrt', (dy, x) => tf.div(dy, tf.mul(tf.sqrt(x), 2))),
    unary('Rsqrt', (dy, x) => tf.mul(dy, tf.mul(tf.pow(tf.rsqrt(x), 3), -0.5))),
    unary('Reciprocal', (dy, x) => tf.neg(tf.div(dy, tf.square(x)))),
    unary('Sigmoid', (dy, x) => {
      const y = tf.sigmoid(x);
      return tf.mul(dy, tf.mul(y, tf.sub(1, y)));
    }),
    unary('Tanh', (dy, x) => tf.mul(dy, tf.sub(1, tf.square(tf.tanh(x))))),
    {
      kernelName: 'Softmax',
      inputsToSave: ['logits'],
      gradFunc: (dy, saved, attrs) => {
        const dim = (attrs as { dim?: number }).dim ?? -1;
        const y = tf.softmax(saved[0], dim);
        return { logits: () => tf.mul(y, tf.sub(dy as T, tf.sum(tf.mul(dy as T, y), dim, true))) };
      },
    },
    {
      kernelName: 'Pow',
      inputsToSave: ['a', 'b'],
      gradFunc: (dy, saved) => {
        const [a, b] = saved;
        const g = dy as T;
        const reduce = (v: T, shape: number[]) => {
          const axes = tf.backend_util.getReductionAxes(shape, v.shape);
          return tf.reshape(axes.length ? tf.sum(v, axes) : v, shape);
        };
        const safeLog = tf.where(tf.greater(a, 0), tf.log(tf.maximum(a, 1e-30)), tf.zerosLike(a));
        return {
          a: () => reduce(tf.mul(g, tf.mul(b, tf.pow(a, tf.sub(b, 1)))), a.shape),
          b: () => reduce(tf.mul(g, tf.mul(tf.pow(a, b), safeLog)), b.shape),
        };
      },
    },
  ];
}

/** Runs fn with second-order-safe gradients for the kernels above, then restores the previous ones. */
export function withSecondOrderGradients<R>(fn: () => R): R {
  const swapped = configs();
  const previous = swapped.map((c) => tf.getGradient(c.kernelName));
  const put = (c: tf.GradConfig | undefined, name: string) => {
    if (tf.getGradient(name)) tf.unregisterGradient(name);
    if (c) tf.registerGradient(c);
  };
  for (const c of swapped) put(c, c.kernelName);
  try {
    return fn();
  } finally {
    swapped.forEach((c, i) => put(previous[i], c.kernelName));
  }
}
