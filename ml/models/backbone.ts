// What the rest of ca-pipe may know about a backbone. One module per family implements it (its
// parameter table, where CA blocks read, its tfjs forward, its ONNX emission); the model, the CA
// head, the exporter, weight checking and the CLI only ever talk to this interface.
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamSpec } from './params.js';

/** A feature map a CA block can read: its tap name (as in `tap.<name>` outputs) and width. */
export interface Reading {
  tap: string;
  channels: number;
}

/** One CA-Stream block: the reading it pools and its projection (official module name). */
export interface CaBlockSpec {
  tap: string;
  /** Module prefix of the projection: `<block>.to_out.1.weight` / `.bias`. */
  block: string;
  inDim: number;
  outDim: number;
}

/** What a backbone forward needs from the model holding its parameters. */
export interface ForwardContext {
  /** A parameter or buffer by torchvision name, tfjs layout (see params.ts). */
  param(name: string): tf.Tensor;
  /** BatchNorm with batch statistics (and running-stat updates). */
  training: boolean;
  /** Eval only: BatchNorm folded into the convolutions. */
  fold: boolean;
  /** Tensors derived from the weights (folded BN), kept until the weights change. */
  memo(key: string, make: () => tf.Tensor[]): tf.Tensor[];
  /** Training mode: fold one batch's statistics into a BatchNorm's running buffers (momentum default 0.1). */
  updateRunningStats(bn: string, mean: tf.Tensor, variance: tf.Tensor, count: number, momentum?: number): void;
  /**
   * Eval only (FullGrad): called with the output of every 2-D convolution with a bias and of every
   * BatchNorm (eval: the BN's effective bias β − μ·γ/√(σ²+ε), i.e. the folded conv's), before any
   * residual or activation, under the layer's module name; the forward goes on with what it
   * returns (a probe added to y makes ∂score/∂y a gradient of the probe). Every family's forward
   * must call it for exactly those layers.
   */
  biasOutput?(layer: string, y: tf.Tensor4D, bias: tf.Tensor1D): tf.Tensor4D;
}

/** ONNX attributes: a number is INT, an array INTS, `{ float }` FLOAT. */
export type OnnxAttrs = Record<string, number | number[] | { float: number }>;

/** The part of the ONNX graph builder a backbone emits through (kept free of protobuf types). */
export interface GraphEmitter {
  /** A float initializer; returns its name. */
  float(name: string, dims: number[], data: Float32Array): string;
  int64(name: string, values: number[]): string;
  /** Adds a node; returns its (single) output name, `out` when given. */
  node(opType: string, inputs: string[], attrs?: OnnxAttrs, out?: string): string;
}

/** Frozen weights as the exporter hands them over: file layout, checked against `params()`. */
export type WeightGetter = (name: string) => { shape: number[]; data: Float32Array };

export interface Backbone {
  readonly name: string;
  readonly family: string;
  /** Backbone and classifier parameters (torchvision names, file shapes): the only table. */
  params(numClasses: number): ParamSpec[];
  /** Name of the classifier's output weight ([K, C]), to infer the class count from a file. */
  readonly classifierWeight: string;
  /** Present when the classifier is a single Linear on the pooled token (lets Ablation-CAM fold it). */
  readonly linearClassifier?: { weight: string; bias: string };
  /** Every reading, in forward order; the last one is what GAP, ca-final and CAMs use. */
  readings(): Reading[];
  /** The CA-Stream blocks (the original code's placement), token width = the first's inDim. */
  caStream(): CaBlockSpec[];
  /** Module name of the ca-final block, or undefined when the family has no ca-final variant. */
  readonly caFinalBlock?: string;
  /**
   * 'kv': the ca-final block is the original's CLS_KV (ConvNeXt): keys and values are Linear(C, C)
   * maps of the feature tokens, the query is the token unprojected, the output is LayerNorm(C).
   * Default: the plain CA block (keys = values = features) with an optional projection.
   */
  readonly caFinalKind?: 'pool' | 'kv';
  /** Spatial side of each reading for a square input of side `size`. */
  readingSizes(size: number): Record<string, number>;
  /** NHWC input → every reading (NHWC). */
  forward(ctx: ForwardContext, x: tf.Tensor4D): Record<string, tf.Tensor4D>;
  /** Pooled features or CA token [B, C] → logits (ConvNeXt's classifier normalises the token). */
  classify(ctx: Pick<ForwardContext, 'param'>, token: tf.Tensor2D): tf.Tensor2D;
  /** Emits the backbone on `input` (NCHW); every reading becomes the node output `tap.<tap>`. */
  emitOnnx(g: GraphEmitter, w: WeightGetter, input: string): void;
  /** Emits the classifier on a B×C tensor. */
  emitClassifier(g: GraphEmitter, w: WeightGetter, token: string, out: string): string;
}

/** The last reading: GAP, ca-final and the CAM target layer read it. */
export function lastReading(b: Backbone): Reading {
  const r = b.readings();
  return r[r.length - 1];
}

/** Generic CA-Stream placement: block k reads tap k and projects to tap k+1's width (the last keeps its width). */
export function chainProjections(readings: Reading[], blockName: (i: number, tap: string) => string): CaBlockSpec[] {
  return readings.map((r, i) => ({
    tap: r.tap,
    block: blockName(i, r.tap),
    inDim: r.channels,
    outDim: i < readings.length - 1 ? readings[i + 1].channels : r.channels,
  }));
}

export const convOut = (s: number, k: number, stride: number, pad: number): number => Math.floor((s + 2 * pad - k) / stride) + 1;
