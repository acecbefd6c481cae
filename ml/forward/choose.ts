// Opens a frozen job's forward sessions on the engine the stage asked for, or, for `auto`, on the
// one the rule in rule.ts picks (with a recorded calibration where it needs one). The choice comes
// back with its reason, for the stage's provenance.
import { initBackend } from '../backend/index.js';
import { createSession } from '../onnx/runtime.js';
import { ortProvider } from '../onnx/provider.js';
import { calibrated, calibrationDir, machineFacts, tensorflowSettings, timeEngines, type CalibrationKey } from './calibration.js';
import { ruleFromTiming, ruleWithoutTiming, type EngineFacts } from './rule.js';
import type { EngineName, EngineSetting, ForwardSession } from './session.js';
import { TfjsSession, type TfjsSessionOptions } from './tfjs-session.js';

/** The model a job runs, in the terms both engines understand. */
export interface ForwardModelSpec extends TfjsSessionOptions {
  /** Square input side (the calibration times it). */
  inputSize: number;
  /** Export the ONNX graph for exactly inputSize (default true) rather than a dynamic size. */
  fixedInputSize?: boolean;
  /** Where exported ONNX graphs are cached. */
  cacheDir?: string;
}

export interface EngineChoice {
  engine: EngineName;
  setting: EngineSetting;
  reason: string;
  /** Absent when the setting was `onnx` and tfjs was never loaded. */
  tfjs_backend?: string;
  tfjs_device?: 'gpu' | 'cpu';
  ort_provider: 'cpu' | 'cuda';
  calibration?: { file: string; fresh: boolean; onnx_img_s: number; tfjs_img_s: number; measured_at: string; load: number };
}

export async function openForwardSession(engine: EngineName, spec: ForwardModelSpec): Promise<ForwardSession> {
  if (engine === 'tfjs') {
    await initBackend();
    return new TfjsSession(spec);
  }
  const { fixedInputSize, inputSize, ...rest } = spec;
  return createSession({ ...rest, inputSize: fixedInputSize === false ? undefined : inputSize });
}

export interface ChooseOptions {
  /** Images per forward call in the job (what the calibration times). */
  batch: number;
  /** Default: calibrationDir() (per user, per machine). */
  calibrationDir?: string;
  /** Told when a calibration is about to run (it takes a few forwards of the model). */
  onCalibrate?: (what: string) => void;
}

export async function chooseEngine(setting: EngineSetting, spec: ForwardModelSpec, o: ChooseOptions): Promise<EngineChoice> {
  const provider = ortProvider().provider;
  if (setting === 'onnx') return { engine: 'onnx', setting, reason: 'engine: onnx in the stage params', ort_provider: provider };
  const backend = await initBackend();
  const facts: EngineFacts = { tfjs: { backend: backend.name, device: backend.device }, onnx: { provider } };
  const base = { setting, tfjs_backend: backend.name, tfjs_device: backend.device, ort_provider: provider };
  const first = ruleWithoutTiming(setting, facts);
  if ('engine' in first) return { ...base, engine: first.engine, reason: first.reason };

  const outputs = spec.outputs ?? ['logits'];
  const key: CalibrationKey = {
    format: 'ca-pipe.engine-calibration/1',
    arch: archName(spec.arch),
    head: spec.head,
    heads: spec.head === 'gap' ? 1 : (spec.heads ?? 1),
    input_size: spec.inputSize,
    batch: o.batch,
    outputs: [...outputs].sort(),
    tfjs: facts.tfjs,
    onnx: facts.onnx,
    machine: machineFacts(),
    ...(backend.name === 'tensorflow' && { tensorflow: tensorflowSettings() }),
  };
  const { record, file, fresh } = await calibrated(key, o.calibrationDir ?? calibrationDir(), async () => {
    o.onCalibrate?.(
      `timing ${archName(spec.arch)} at ${spec.inputSize} px, batch ${o.batch}, on ONNX Runtime and tfjs (${backend.name}) once for this machine`,
    );
    const onnx = await openForwardSession('onnx', spec);
    try {
      const tfjs = await openForwardSession('tfjs', spec);
      try {
        return await timeEngines(onnx, tfjs, { batch: o.batch, size: spec.inputSize, outputs });
      } finally {
        await tfjs.release();
      }
    } finally {
      await onnx.release();
    }
  });
  const decided = ruleFromTiming(record, first.reason);
  return {
    ...base,
    ...decided,
    calibration: {
      file,
      fresh,
      onnx_img_s: record.onnx_img_s,
      tfjs_img_s: record.tfjs_img_s,
      measured_at: record.measured_at,
      load: record.load,
    },
  };
}

function archName(arch: ForwardModelSpec['arch']): string {
  return typeof arch === 'string' ? arch : arch.name;
}
