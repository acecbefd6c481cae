// The tfjs implementation of ForwardSession: ca-pipe's own model (ml/models, eval mode with
// BatchNorm folded) on the active tfjs backend, returning the same named NCHW outputs as the
// exported ONNX graph. With the native TensorFlow binding (or tfjs-node-gpu on a GPU) this can be
// the faster engine for frozen jobs; see choose.ts for when it is picked.
import { tf } from '../backend/index.js';
import { createModel, type CaPipeModel } from '../models/index.js';
import { availableOutputs, defaultOutputs, resolveNumClasses, type ExportOptions } from '../onnx/export.js';
import { familyKeys } from '../onnx/weights.js';
import { getBackbone } from '../models/backbones.js';
import type { OutputTensor } from '../onnx/runtime.js';
import { runInChunks } from './chunked.js';
import type { ForwardSession } from './session.js';

export type TfjsSessionOptions = Pick<ExportOptions, 'arch' | 'head' | 'heads' | 'numClasses' | 'weights' | 'weightsFile' | 'outputs'> & {
  /** Pixels per forward call (default TFJS_SLICE_PIXELS). */
  slicePixels?: number;
};

function hasKey(weights: ExportOptions['weights'], name: string): boolean {
  return weights.has(name) || weights.has(`module.${name}`);
}

/**
 * Like the ONNX exporter's check, a CA-Stream checkpoint also serves a GAP model: CA weights the
 * model has no place for are left out before the strict load, which still rejects anything else.
 */
function weightsFor(model: CaPipeModel, arch: ExportOptions['arch'], weights: ExportOptions['weights']): ExportOptions['weights'] {
  const names = new Set(model.specs.map((s) => s.name));
  const family = familyKeys(getBackbone(arch));
  return new Map(
    [...weights].filter(([k]) => {
      const bare = k.replace(/^module\./, '');
      return !family.has(bare) || names.has(bare);
    }),
  );
}

/** Pixels per tfjs forward call: 8 images at 224 px. */
export const TFJS_SLICE_PIXELS = 8 * 224 * 224;

export class TfjsSession implements ForwardSession {
  readonly engine = 'tfjs' as const;
  readonly outputs: string[];
  private readonly available: string[];
  private readonly slicePixels: number;
  private model: CaPipeModel | undefined;

  constructor(o: TfjsSessionOptions) {
    if (o.head === 'none') throw new Error("the tfjs engine has no backbone-only model: use head 'gap' and the tap outputs");
    this.available = availableOutputs(o.head, o.arch);
    this.slicePixels = o.slicePixels ?? TFJS_SLICE_PIXELS;
    this.outputs = o.outputs ?? defaultOutputs(o.head, o.arch);
    this.checkOutputs(this.outputs);
    const numClasses = resolveNumClasses(o);
    // The ONNX exporter reads the optional ca-final projection off the weights; so does this.
    const finalBlock = getBackbone(o.arch).caFinalBlock;
    const project = o.head === 'ca-final' && finalBlock !== undefined && hasKey(o.weights, `${finalBlock}.to_out.1.weight`);
    const model = createModel({ arch: o.arch, head: o.head, heads: o.heads ?? 1, numClasses, project });
    try {
      model.loadWeights(weightsFor(model, o.arch, o.weights) as Parameters<CaPipeModel['loadWeights']>[0], {
        strict: true,
        file: o.weightsFile,
      });
    } catch (e) {
      model.dispose();
      throw e;
    }
    this.model = model;
  }

  private checkOutputs(outputs: string[]): void {
    for (const name of outputs)
      if (!this.available.includes(name))
        throw new Error(`output "${name}" is not offered by this model (has: ${this.available.join(', ')})`);
  }

  async run(
    input: Float32Array,
    batch: number,
    h: number,
    w: number,
    outputs: string[] = this.outputs,
  ): Promise<Record<string, OutputTensor>> {
    // One tidy scope holds every intermediate activation of the forward until it ends (about
    // 100 MB per ResNet-50 image at 224 px): larger batches go through in slices of
    // slicePixels. Eval-mode images do not interact, so slicing changes no value.
    const slice = Math.max(1, Math.floor(this.slicePixels / (h * w)));
    if (batch > slice) return runInChunks((x, b, hh, ww, o) => this.runSlice(x, b, hh, ww, o), input, batch, h, w, slice, outputs);
    return this.runSlice(input, batch, h, w, outputs);
  }

  private async runSlice(
    input: Float32Array,
    batch: number,
    h: number,
    w: number,
    outputs: string[],
  ): Promise<Record<string, OutputTensor>> {
    const model = this.model;
    if (!model) throw new Error('tfjs session used after release()');
    if (input.length !== batch * 3 * h * w)
      throw new Error(`input has ${input.length} values but batch ${batch}×3×${h}×${w} needs ${batch * 3 * h * w}`);
    this.checkOutputs(outputs);
    const want = new Set(outputs);
    const res: Record<string, OutputTensor> = {};
    tf.tidy(() => {
      const x = tf.transpose(tf.tensor4d(input, [batch, 3, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
      const out = model.forward(x);
      const named = new Map<string, tf.Tensor>();
      for (const t of Object.keys(out.taps)) {
        if (want.has(`tap.${t}`)) named.set(`tap.${t}`, tf.transpose(out.taps[t]!, [0, 3, 1, 2]));
        const dots = out.dots[t];
        if (dots && want.has(`attn.${t}`)) named.set(`attn.${t}`, dots);
      }
      if (want.has('cls.final')) named.set('cls.final', out.token);
      if (want.has('logits')) named.set('logits', out.logits);
      if (want.has('logits.gap')) named.set('logits.gap', out.logitsGap);
      if (want.has('probs')) named.set('probs', tf.softmax(out.logits));
      for (const name of outputs) {
        const t = named.get(name)!;
        res[name] = { dims: [...t.shape], data: t.dataSync() as Float32Array };
      }
    });
    return res;
  }

  runChunked(
    input: Float32Array,
    n: number,
    h: number,
    w: number,
    chunk: number,
    outputs: string[] = this.outputs,
  ): Promise<Record<string, OutputTensor>> {
    return runInChunks((x, b, hh, ww, o) => this.run(x, b, hh, ww, o), input, n, h, w, chunk, outputs);
  }

  async release(): Promise<void> {
    this.model?.dispose();
    this.model = undefined;
  }
}
