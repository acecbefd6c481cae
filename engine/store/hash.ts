// File and byte hashing for the content-addressed store.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

const SMALL_FILE = 8 * 1024 * 1024;

export function sha256Bytes(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file's content; small files are read whole, large ones streamed. */
export async function sha256File(file: string, knownSize?: number): Promise<string> {
  const size = knownSize ?? (await stat(file)).size;
  if (size <= SMALL_FILE) return sha256Bytes(await readFile(file));
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
