// safetensors: 8-byte little-endian header length, a JSON header
// ({ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }), then raw LE data.
import { writeFile, rename } from 'node:fs/promises';
import { readWhole } from './read-file.js';
import { f16ToF32, f32ToF16 } from './float16.js';

export { f32ToF16 };

// BF16 is the top half of a float32: converted through this pair of views.
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

export interface NamedTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** Values decoded to a JS array type: F32/F16/BF16 → Float32Array, I64 → BigInt64Array, I32 → Int32Array, U8 → Uint8Array. */
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface TensorFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

export class TensorFileError extends Error {
  constructor(
    public file: string,
    message: string,
    public key?: string,
  ) {
    super(`${file}${key ? ` [${key}]` : ''}: ${message}`);
    this.name = 'TensorFileError';
  }
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };

function decode(buf: Buffer, dtype: SafetensorsDType, begin: number, count: number): NamedTensor['data'] {
  const view = new DataView(buf.buffer, buf.byteOffset + begin, count * BYTES[dtype]);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        u32buf[0] = view.getUint16(i * 2, true) << 16;
        out[i] = f32buf[0];
      }
      return out;
    }
    case 'I64': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(i * 8, true);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case 'U8':
      return new Uint8Array(buf.subarray(begin, begin + count));
  }
}

/** Parse a safetensors buffer; `file` is only used in error messages. */
export function parseSafetensors(buf: Buffer, file = '<buffer>'): TensorFile {
  if (buf.length < 8) throw new TensorFileError(file, `truncated: ${buf.length} bytes, not even the 8-byte header length`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8) {
    throw new TensorFileError(
      file,
      `truncated or not a safetensors file: header claims ${headerLen} bytes but only ${buf.length - 8} follow`,
    );
  }
  let header: Record<string, any>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (e) {
    throw new TensorFileError(file, `malformed JSON header (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new TensorFileError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info ?? {};
      continue;
    }
    const dtype = info?.dtype as SafetensorsDType;
    if (!(dtype in BYTES))
      throw new TensorFileError(
        file,
        `unsupported dtype ${JSON.stringify(info?.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`,
        name,
      );
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d: unknown) => !Number.isInteger(d) || (d as number) < 0)) {
      throw new TensorFileError(file, `invalid shape ${JSON.stringify(shape)}`, name);
    }
    const offs = info.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o: unknown) => Number.isInteger(o) && (o as number) >= 0) ||
      offs[1] < offs[0]
    ) {
      throw new TensorFileError(file, `invalid data_offsets ${JSON.stringify(offs)}`, name);
    }
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (offs[1] - offs[0] !== count * BYTES[dtype]) {
      throw new TensorFileError(
        file,
        `data_offsets span ${offs[1] - offs[0]} bytes but ${dtype}${JSON.stringify(shape)} needs ${count * BYTES[dtype]}`,
        name,
      );
    }
    if (offs[1] > dataLen)
      throw new TensorFileError(file, `truncated: tensor data ends at byte ${offs[1]} but the data section has ${dataLen}`, name);
    tensors.set(name, { dtype, shape, data: decode(buf, dtype, dataStart + offs[0], count) });
  }
  return { tensors, metadata };
}

export async function readSafetensors(file: string): Promise<TensorFile> {
  return parseSafetensors(await readWhole(file, (m) => new TensorFileError(file, m)), file);
}

export interface TensorToWrite {
  dtype?: SafetensorsDType; // default: F32 for Float32Array, I64 for BigInt64Array, I32, U8
  shape: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array | number[];
}

function encode(t: TensorToWrite): { dtype: SafetensorsDType; bytes: Buffer } {
  const dtype: SafetensorsDType =
    t.dtype ??
    (t.data instanceof BigInt64Array ? 'I64' : t.data instanceof Int32Array ? 'I32' : t.data instanceof Uint8Array ? 'U8' : 'F32');
  const n = t.data.length;
  const bytes = Buffer.alloc(n * BYTES[dtype]);
  for (let i = 0; i < n; i++) {
    const v = t.data[i] as number | bigint;
    switch (dtype) {
      case 'F32':
        bytes.writeFloatLE(Number(v), i * 4);
        break;
      case 'F16':
        bytes.writeUInt16LE(f32ToF16(Number(v)), i * 2);
        break;
      case 'BF16':
        f32buf[0] = Number(v);
        bytes.writeUInt16LE(u32buf[0] >>> 16, i * 2);
        break;
      case 'I64':
        bytes.writeBigInt64LE(BigInt(v), i * 8);
        break;
      case 'I32':
        bytes.writeInt32LE(Number(v), i * 4);
        break;
      case 'U8':
        bytes.writeUInt8(Number(v), i);
        break;
    }
  }
  return { dtype, bytes };
}

/** Serialise tensors (keys sorted, so equal content gives equal bytes). */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const parts: Buffer[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`tensor ${name}: shape ${JSON.stringify(t.shape)} has ${count} elements, data has ${t.data.length}`);
    const { dtype, bytes } = encode(t);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep the data section 8-byte aligned
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...parts]);
}

/** Write atomically (temp file + rename), so a crash never leaves a truncated file under the final name. */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, serializeSafetensors(tensors, metadata));
  await rename(tmp, file);
}
