// What a frozen job needs from an engine: forward passes of an NCHW float32 batch returning named
// graph outputs (tap.<t>, attn.<t>, cls.final, logits, logits.gap, probs; NCHW). ONNX Runtime's
// OnnxModel and the tfjs session both provide it, so callers do not know which one they hold.
import type { OutputTensor } from '../onnx/runtime.js';

export type EngineName = 'onnx' | 'tfjs';
export type EngineSetting = EngineName | 'auto';
export const ENGINE_SETTINGS: readonly EngineSetting[] = ['auto', 'onnx', 'tfjs'];

export interface ForwardSession {
  readonly engine: EngineName;
  /** The outputs a call returns when it names none. */
  readonly outputs: string[];
  run(input: Float32Array, batch: number, h: number, w: number, outputs?: string[]): Promise<Record<string, OutputTensor>>;
  /** Runs `n` images in chunks of `chunk`, outputs concatenated along the batch axis. */
  runChunked(
    input: Float32Array,
    n: number,
    h: number,
    w: number,
    chunk: number,
    outputs?: string[],
  ): Promise<Record<string, OutputTensor>>;
  release(): Promise<void>;
}

export type { OutputTensor };
