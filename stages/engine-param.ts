// The `engine` param shared by the kinds that run a frozen model forward (saliency, evaluate,
// features, train in mode frozen). No schema default on purpose: absent means auto and keeps the
// keys of experiments written before the param existed; a value given enters the key, because
// the two engines' outputs differ at the 1e-6 level.
export type EngineParam = 'auto' | 'onnx' | 'tfjs';

export const engineParamSchema = {
  description:
    "Engine of the frozen forward passes: onnx (ONNX Runtime), tfjs (ca-pipe's model on the tfjs backend) or auto (default when absent): " +
    'a GPU engine before a CPU one; ONNX Runtime when tfjs runs on wasm or cpu; else a calibration timed once per machine ' +
    '(tfjs only when ≥ 1.1× faster). The choice and its reason are in run.json (provenance.engine_choice). A value given here is part of the key.',
  enum: ['auto', 'onnx', 'tfjs'],
} as const;
