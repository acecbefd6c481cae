// TFRecord's masked CRC-32C (the CRC itself lives in io/crc.ts).
import { crc32c } from '../io/crc.js';

export { crc32c };

/** TFRecord stores CRCs rotated right by 15 bits plus a constant (so CRCs of CRCs stay distinct). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
