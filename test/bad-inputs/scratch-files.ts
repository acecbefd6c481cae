// Writing a case's inputs into its scratch directory: experiment files, list files, tiny images.
import { mkdir, writeFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { PNG_SIGNATURE, pngChunk } from '../support/png.js';

export async function put(dir: string, rel: string, content: string | Buffer): Promise<string> {
  const file = join(dir, rel);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

/** A file in `dir/sub` whose name is `name` byte for byte: how a name that is not UTF-8 gets onto disk. */
export async function putRawName(dir: string, sub: string, name: Buffer, content: string | Buffer): Promise<void> {
  await mkdir(join(dir, sub), { recursive: true });
  await writeFile(Buffer.concat([Buffer.from(join(dir, sub) + '/'), name]), content);
}

/** A valid w×w grey RGB PNG (no image library needed to make one). */
export function tinyPng(w = 8): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(w, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, 0x80)]);
  const raw = Buffer.concat(Array.from({ length: w }, () => row));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
