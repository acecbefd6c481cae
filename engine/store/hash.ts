// File and byte hashing for the content-addressed store.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { sha256Hex } from '../canonical.js';

const SMALL_FILE = 8 * 1024 * 1024;

/** sha256 of bytes or a string, hex (the one definition is engine/canonical.ts). */
export const sha256Bytes = sha256Hex;

/** sha256 of a file's content; small files are read whole, large ones streamed. */
export async function sha256File(file: string, knownSize?: number): Promise<string> {
  const size = knownSize ?? (await stat(file)).size;
  if (size <= SMALL_FILE) return sha256Bytes(await readFile(file));
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
