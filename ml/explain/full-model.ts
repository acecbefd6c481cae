// The whole model in tfjs (backbone + head), for the methods that need gradients through the
// backbone: FullGrad (the input gradient and the gradient at every biased conv / BN output). The
// saliency stage's other passes run on ONNX Runtime or the forward sessions; this one is built
// lazily from the same weights. Images arrive NCHW (normalised), as everywhere in ml/explain.
import * as tf from '@tensorflow/tfjs-core';
import { createModel, type CaPipeModel } from '../models/model.js';
import type { BiasGradient, FullGradInputs } from '../saliency/fullgrad.js';
import type { LoadedModel } from './model-dir.js';

export class FullModel {
  readonly model: CaPipeModel;
  /** Biased layers in forward order with their (effective) biases, found on the first pass. */
  private layers?: { key: string; list: { name: string; bias: Float32Array; shape: number[] }[] };

  constructor(loaded: LoadedModel) {
    const { card, arch, weights } = loaded;
    const block = arch.caFinalBlock;
    const project = card.head === 'ca-final' && block !== undefined && weights.has(`${block}.to_out.1.weight`);
    this.model = createModel({ arch, head: card.head, heads: card.heads, numClasses: card.num_classes, project });
    this.model.loadWeights(weights, { file: loaded.weightsName ?? loaded.weightsFile });
  }

  private nhwc(images: Float32Array, n: number, H: number, W: number): tf.Tensor4D {
    if (images.length !== n * 3 * H * W) throw new Error(`full model: ${images.length} values are not ${n} images of 3×${H}×${W}`);
    return tf.transpose(tf.tensor4d(images, [n, 3, H, W]), [0, 2, 3, 1]);
  }

  /** The biased layers (names, biases, output shapes of one image) at this input size, from one observed pass. */
  private biasedLayers(H: number, W: number): { name: string; bias: Float32Array; shape: number[] }[] {
    const key = `${H}x${W}`;
    if (this.layers?.key === key) return this.layers.list;
    const list: { name: string; bias: Float32Array; shape: number[] }[] = [];
    tf.tidy(() => {
      this.model.backbone(tf.zeros([1, H, W, 3]), {
        biasOutput: (name, y, bias) => {
          list.push({ name, bias: Float32Array.from(bias.dataSync() as Float32Array), shape: y.shape.slice(1) });
          return y;
        },
      });
    });
    this.layers = { key, list };
    return list;
  }

  /**
   * Per image: ∂ logit_t / ∂x and the gradient at every biased layer's output, from one backward
   * pass on Σ_b logit_{t_b} (images do not interact in eval mode).
   */
  fullGradInputs(images: Float32Array, n: number, H: number, W: number, targets: ArrayLike<number>): FullGradInputs[] {
    const layers = this.biasedLayers(H, W);
    const C = this.model.numClasses;
    for (let i = 0; i < n; i++)
      if (!Number.isInteger(targets[i]) || targets[i] < 0 || targets[i] >= C)
        throw new Error(`target class ${targets[i]} of image ${i} is outside the model's ${C} classes`);
    const out = tf.tidy(() => {
      const x = this.nhwc(images, n, H, W);
      const onehot = tf.cast(tf.oneHot(tf.tensor1d(Array.from(targets).slice(0, n), 'int32'), C), 'float32');
      // One zero probe per biased layer, added to its output: ∂y/∂probe = ∂y/∂(layer output).
      const probes = layers.map((l) => tf.zeros([n, ...l.shape]));
      const score = (...xs: tf.Tensor[]) => {
        let i = 0;
        const taps = this.model.backbone(xs[0] as tf.Tensor4D, {
          biasOutput: (name, y) => {
            if (name !== layers[i]?.name) throw new Error(`full model: biased layer ${name} out of the order first seen`);
            return tf.add(y, xs[1 + i++]) as tf.Tensor4D;
          },
        });
        return tf.sum(tf.mul(this.model.head(taps).logits, onehot)) as tf.Scalar;
      };
      const grads = tf.grads(score)([x, ...probes]);
      return grads.map((g) => tf.transpose(g, [0, 3, 1, 2]));
    });
    const data = out.map((t) => t.dataSync() as Float32Array);
    tf.dispose(out);
    const res: FullGradInputs[] = [];
    for (let b = 0; b < n; b++) {
      const per = (t: Float32Array) => t.length / n;
      const inputGrad = data[0].slice(b * per(data[0]), (b + 1) * per(data[0]));
      const ls: BiasGradient[] = layers.map((l, i) => {
        const g = data[i + 1];
        const [, c, h, w] = out[i + 1].shape;
        if (c !== l.bias.length) throw new Error(`full model: layer ${l.name} has ${c} channels and ${l.bias.length} biases`);
        return { layer: l.name, bias: l.bias, grad: g.slice(b * per(g), (b + 1) * per(g)), h, w };
      });
      res.push({ inputGrad, layers: ls });
    }
    return res;
  }

  /**
   * Opti-CAM's model side for a batch of normalised images: for masks S (one H×W plane per image
   * of `idx`), the target logits of normalise(pixels ⊙ S) — masking in [0, 1] pixel space, as the
   * official code's model-with-normalisation-layer does — and their gradients with respect to S.
   */
  maskedScores(
    images: Float32Array,
    n: number,
    H: number,
    W: number,
    mean: readonly number[],
    std: readonly number[],
    targets: ArrayLike<number>,
  ): (masks: Float32Array, idx: readonly number[]) => Promise<{ scores: Float32Array; grads: Float32Array }> {
    const C = this.model.numClasses;
    const per = 3 * H * W;
    if (images.length !== n * per) throw new Error(`full model: ${images.length} values are not ${n} images of 3×${H}×${W}`);
    // Pixels in [0, 1], NHWC, per image.
    const pixels = new Float32Array(n * per);
    for (let b = 0; b < n; b++)
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < H * W; i++) pixels[b * per + i * 3 + c] = images[b * per + c * H * W + i] * std[c] + mean[c];
    return async (masks, idx) => {
      const m = idx.length;
      if (masks.length !== m * H * W) throw new Error(`opticam: ${masks.length} mask values for ${m} images of ${H}×${W}`);
      const px = new Float32Array(m * per);
      idx.forEach((b, j) => px.set(pixels.subarray(b * per, (b + 1) * per), j * per));
      const out = tf.tidy(() => {
        const P = tf.tensor4d(px, [m, H, W, 3]);
        const onehot = tf.cast(
          tf.oneHot(
            tf.tensor1d(
              idx.map((b) => targets[b]),
              'int32',
            ),
            C,
          ),
          'float32',
        );
        const mu = tf.tensor1d(Array.from(mean));
        const sd = tf.tensor1d(Array.from(std));
        // The per-image logits are kept out of the gradient's scope: one forward gives both.
        let scores: tf.Tensor | undefined;
        const f = (S: tf.Tensor) => {
          const x = tf.div(tf.sub(tf.mul(P, tf.reshape(S, [m, H, W, 1])), mu), sd) as tf.Tensor4D;
          scores = tf.keep(tf.sum(tf.mul(this.model.forward(x).logits, onehot), 1));
          return tf.sum(scores) as tf.Scalar;
        };
        const grad = tf.grad(f)(tf.tensor3d(masks, [m, H, W]));
        return { scores: scores!, grad };
      });
      const res = {
        scores: Float32Array.from(out.scores.dataSync() as Float32Array),
        grads: Float32Array.from(out.grad.dataSync() as Float32Array),
      };
      tf.dispose([out.scores, out.grad]);
      return res;
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}
