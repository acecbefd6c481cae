// Which engine runs a frozen job's forward passes when the stage says `engine: auto`.
// The rule, in order (README "Engines" gives the evidence):
//   1. a GPU engine beats a CPU engine: whichever of the two runs on a GPU is taken, no timing;
//   2. tfjs on wasm or cpu never competes with ONNX Runtime on the CPU (bench:forward, ResNet-50
//      224 batch 8: ORT 24.8 img/s, tfjs-wasm 3.3 on the idle machine; 78 vs 327 core-ms per
//      image under load), so ONNX Runtime is taken without timing;
//   3. otherwise (native TensorFlow vs ORT on the same kind of device) a recorded calibration
//      decides: tfjs only when it is at least TFJS_MARGIN times faster. ONNX Runtime is the
//      incumbent: the margin keeps a near tie, measured on a loaded machine, on the engine every
//      earlier run used.
import type { EngineName, EngineSetting } from './session.js';

export const TFJS_MARGIN = 1.1;

export interface EngineFacts {
  /** The active tfjs backend and where it runs. */
  tfjs: { backend: string; device: 'gpu' | 'cpu' };
  /** ONNX Runtime's execution provider. */
  onnx: { provider: 'cpu' | 'cuda' };
}

export interface Throughputs {
  onnx_img_s: number;
  tfjs_img_s: number;
}

export type RuleOutcome = { engine: EngineName; reason: string } | { calibrate: true; reason: string };

const device = (f: EngineFacts) => ({ tfjs: f.tfjs.device === 'gpu', onnx: f.onnx.provider === 'cuda' });

/** The rule without a measurement: an engine, or a request for the calibration. */
export function ruleWithoutTiming(setting: EngineSetting, facts: EngineFacts): RuleOutcome {
  if (setting !== 'auto') return { engine: setting, reason: `engine: ${setting} in the stage params` };
  const gpu = device(facts);
  if (gpu.onnx && !gpu.tfjs)
    return { engine: 'onnx', reason: `ONNX Runtime runs on the GPU (CUDA provider), tfjs (${facts.tfjs.backend}) on the CPU` };
  if (gpu.tfjs && !gpu.onnx)
    return { engine: 'tfjs', reason: `tfjs (${facts.tfjs.backend}) runs on the GPU, ONNX Runtime on the CPU provider` };
  if (!gpu.tfjs && facts.tfjs.backend !== 'tensorflow') {
    return {
      engine: 'onnx',
      reason: `tfjs runs on ${facts.tfjs.backend}, which bench:forward measured at 4× the CPU time per image of ONNX Runtime on the CPU`,
    };
  }
  const where = gpu.tfjs ? 'both on the GPU' : 'native TensorFlow and ONNX Runtime both on the CPU';
  return { calibrate: true, reason: where };
}

/** Step 3 of the rule, from a calibration's throughputs. */
export function ruleFromTiming(t: Throughputs, context: string): { engine: EngineName; reason: string } {
  const ratio = t.tfjs_img_s / t.onnx_img_s;
  const figures = `tfjs ${t.tfjs_img_s.toFixed(1)} img/s vs ONNX Runtime ${t.onnx_img_s.toFixed(1)} img/s`;
  if (ratio >= TFJS_MARGIN)
    return { engine: 'tfjs', reason: `${context}; calibration: ${figures} (${ratio.toFixed(2)}× ≥ ${TFJS_MARGIN})` };
  return {
    engine: 'onnx',
    reason: `${context}; calibration: ${figures} (tfjs ${ratio.toFixed(2)}×, below the ${TFJS_MARGIN}× it needs to replace ONNX Runtime)`,
  };
}
