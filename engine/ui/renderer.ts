// Renderers turn run events into terminal output.
import type { RunEvent } from '../run/events.js';

export interface Renderer {
  onEvent(e: RunEvent): void;
  /** Waits until everything is printed. */
  finish(): Promise<void>;
}

export type RendererMode = 'tty' | 'plain' | 'quiet' | 'json';

export function chooseMode(opts: { json?: boolean; quiet?: boolean }, stream: NodeJS.WriteStream = process.stdout): RendererMode {
  if (opts.json) return 'json';
  if (opts.quiet) return 'quiet';
  return stream.isTTY ? 'tty' : 'plain';
}

export async function createRenderer(mode: RendererMode, out: NodeJS.WritableStream = process.stdout): Promise<Renderer> {
  if (mode === 'json') return new JsonRenderer(out);
  if (mode === 'tty') {
    const { TtyRenderer } = await import('./tty.js');
    return new TtyRenderer(out);
  }
  const { PlainRenderer } = await import('./plain.js');
  return new PlainRenderer(out, mode === 'quiet');
}

/** One JSON object per line: the run events themselves. */
export class JsonRenderer implements Renderer {
  constructor(private readonly out: NodeJS.WritableStream) {}
  onEvent(e: RunEvent): void {
    this.out.write(JSON.stringify(e) + '\n');
  }
  async finish(): Promise<void> {}
}
