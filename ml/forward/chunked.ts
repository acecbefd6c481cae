// Chunked forward passes for sessions that only implement one call (batch-axis concatenation).
import type { OutputTensor } from '../onnx/runtime.js';

type RunOnce = (input: Float32Array, batch: number, h: number, w: number, outputs: string[]) => Promise<Record<string, OutputTensor>>;

export async function runInChunks(
  run: RunOnce,
  input: Float32Array,
  n: number,
  h: number,
  w: number,
  chunk: number,
  outputs: string[],
): Promise<Record<string, OutputTensor>> {
  const per = 3 * h * w;
  if (input.length !== n * per) throw new Error(`input has ${input.length} values but ${n}×3×${h}×${w} needs ${n * per}`);
  const parts: Array<Record<string, OutputTensor>> = [];
  for (let s = 0; s < n; s += chunk) {
    const b = Math.min(chunk, n - s);
    parts.push(await run(input.subarray(s * per, (s + b) * per), b, h, w, outputs));
  }
  const out: Record<string, OutputTensor> = {};
  for (const o of outputs) {
    const data = new Float32Array(parts.reduce((a, p) => a + p[o].data.length, 0));
    let off = 0;
    for (const p of parts) {
      data.set(p[o].data, off);
      off += p[o].data.length;
    }
    out[o] = { dims: [n, ...parts[0][o].dims.slice(1)], data };
  }
  return out;
}
