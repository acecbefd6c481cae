// Direct typed-array access to tensor data inside a kernel, for kernels written in plain JS.
// wasm keeps tensors in its heap: we work on live views (no copies), which is why every output
// must be allocated BEFORE any view is taken — an allocation may grow the heap and detach the
// views taken earlier. cpu keeps a typed array per tensor, which we read and hand over directly.
import * as tf from '@tensorflow/tfjs-core';

interface WasmLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.backend_util.TypedArray;
}

interface CpuLike {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function isWasm(backend: unknown): backend is WasmLike {
  return typeof (backend as WasmLike).typedArrayFromHeap === 'function';
}

/** The kernel-side handle on one backend: allocate outputs, then view data. */
export class KernelMemory {
  private readonly pending: Array<{ info: tf.TensorInfo; data?: Float32Array }> = [];

  constructor(private readonly backend: tf.KernelBackend) {}

  /** Reserve a float32 output; its data is reachable through view() once all outputs exist. */
  output(shape: number[]): tf.TensorInfo {
    if (isWasm(this.backend)) {
      const info = this.backend.makeOutput(shape, 'float32');
      this.pending.push({ info });
      return info;
    }
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const info = (this.backend as unknown as CpuLike).makeTensorInfo(shape, 'float32', data);
    this.pending.push({ info, data });
    return info;
  }

  /** A float32 view of a tensor's data (an input or an output reserved above). */
  view(info: tf.TensorInfo): Float32Array {
    if (info.dtype !== 'float32') throw new Error(`JS kernel: float32 tensors only, got ${info.dtype}`);
    if (isWasm(this.backend)) return this.backend.typedArrayFromHeap(info) as Float32Array;
    const own = this.pending.find((p) => p.info.dataId === info.dataId);
    if (own?.data) return own.data;
    return this.backend.readSync(info.dataId) as Float32Array;
  }
}
