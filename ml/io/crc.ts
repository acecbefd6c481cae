// Table-driven reflected CRC-32s: zlib/PNG's (polynomial 0xEDB88320) and Castagnoli's CRC-32C
// (0x82F63B78, TFRecord's).

function table(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

function reflectedCrc(poly: number): (data: Uint8Array, start?: number, end?: number) => number {
  const t = table(poly);
  return (data, start = 0, end = data.length) => {
    let c = 0xffffffff;
    for (let i = start; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
}

/** CRC-32 as PNG chunks and zlib's crc32() compute it, over data[start, end). */
export const crc32 = reflectedCrc(0xedb88320);
/** CRC-32C (Castagnoli), over data[start, end). */
export const crc32c = reflectedCrc(0x82f63b78);
