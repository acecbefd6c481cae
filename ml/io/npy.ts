// NumPy .npy reader. Format: magic "\x93NUMPY", major/minor version bytes, header length (uint16 LE
// for v1, uint32 LE for v2/v3), an ASCII (v3: UTF-8) Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, then the raw C-order data.

import { readWhole } from './read-file.js';
import { f16ToF32 } from './float16.js';

export type NpyData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface NpyArray {
  /** The original dtype descriptor, e.g. '<f4'. */
  descr: string;
  shape: number[];
  /** '<f4', '<f8', '<f2' → Float32Array; '<i8' → BigInt64Array; '<i4' → Int32Array; '|u1' → Uint8Array. */
  data: NpyData;
}

export class NpyError extends Error {
  constructor(
    public file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'NpyError';
  }
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const ITEM: Record<string, number> = { '<f4': 4, '<f8': 8, '<f2': 2, '<i8': 8, '<i4': 4, '|u1': 1 };
// NumPy writes single-byte and native-order types with other prefixes; normalise the common ones.
const ALIASES: Record<string, string> = { '<u1': '|u1', '=f4': '<f4', '=f8': '<f8', '=i8': '<i8', '=i4': '<i4', '=f2': '<f2' };

/** Parse the header dict literal; only the three keys NumPy writes are accepted. */
function parseHeader(text: string, file: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyError(file, `malformed .npy header ${JSON.stringify(text.trim())} (needs 'descr', 'fortran_order' and 'shape')`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+L?$/.test(s)) throw new NpyError(file, `malformed shape (${shapeText}) in .npy header`);
      return Number.parseInt(s, 10);
    });
  return { descr, fortran: fortran === 'True', shape };
}

/** Parse a .npy buffer; `file` is only used in error messages. */
export function parseNpy(buf: Buffer, file = '<buffer>'): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new NpyError(file, 'not a .npy file (missing \\x93NUMPY magic)');
  const major = buf[6];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new NpyError(file, 'truncated .npy header');
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new NpyError(file, `unsupported .npy format version ${major}.${buf[7]} (supported: 1.x, 2.x, 3.x)`);
  }
  if (headerStart + headerLen > buf.length)
    throw new NpyError(file, `truncated: header claims ${headerLen} bytes but only ${buf.length - headerStart} follow`);
  const header = buf.subarray(headerStart, headerStart + headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const h = parseHeader(header, file);
  if (h.fortran) throw new NpyError(file, 'fortran_order=True arrays are not supported; save with np.ascontiguousarray(a) first');
  const descr = ALIASES[h.descr] ?? h.descr;
  const item = ITEM[descr];
  if (!item) throw new NpyError(file, `unsupported dtype '${h.descr}' (supported: ${Object.keys(ITEM).join(', ')})`);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLen;
  const need = count * item;
  if (buf.length - start < need) {
    throw new NpyError(
      file,
      `truncated: ${descr}${JSON.stringify(h.shape)} needs ${need} data bytes but the file has ${buf.length - start}`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset + start, need);
  let data: NpyData;
  switch (descr) {
    case '<f4': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      data = out;
      break;
    }
    case '<f8': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      data = out;
      break;
    }
    case '<f2': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
      data = out;
      break;
    }
    case '<i8': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(i * 8, true);
      data = out;
      break;
    }
    case '<i4': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      data = out;
      break;
    }
    default:
      data = new Uint8Array(buf.subarray(start, start + count));
  }
  return { descr: h.descr, shape: h.shape, data };
}

export async function readNpy(file: string): Promise<NpyArray> {
  return parseNpy(await readWhole(file, (m) => new NpyError(file, m)), file);
}
