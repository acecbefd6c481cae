// Reading a whole file for a parser, with the error naming the file and the OS reason.
import { readFile } from 'node:fs/promises';

export async function readWhole(file: string, fail: (message: string) => Error): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw fail(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
