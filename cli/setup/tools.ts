// What `ca-pipe setup` needs from the machine, checked up front so that a missing compiler or a
// full disk is named before minutes of downloading, not after.
import { existsSync } from 'node:fs';
import { realpath, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CliError } from '../common.js';

export interface Step {
  title: string;
  started: number;
}

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with an argv array (no shell); a missing program is exit code 127, not a throw. */
export async function runTool(
  file: string,
  args: string[],
  o: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; onLine?: (line: string) => void } = {},
): Promise<ToolResult> {
  const { execa } = await import('execa');
  const child = execa(file, args, { cwd: o.cwd, env: o.env, reject: false, stdin: 'ignore', timeout: o.timeoutMs, all: false });
  if (o.onLine) {
    let buf = '';
    const feed = (chunk: Buffer): void => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) o.onLine!(l);
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
  }
  const res = await child;
  const missing = (res as { code?: string }).code === 'ENOENT';
  return {
    exitCode: missing ? 127 : (res.exitCode ?? (res.timedOut ? 124 : 1)),
    stdout: String(res.stdout ?? ''),
    stderr: missing ? `${file}: not found` : String(res.stderr ?? ''),
  };
}

export interface BuildTools {
  python: string;
  cxx: string;
  nodeGyp: string;
  nodeGypJs: string;
  nodeDir: string;
}

/** python3 (pip and the wheel), a C++ compiler and make (node-gyp), node-gyp itself, Node's headers. */
export async function checkBuildTools(): Promise<BuildTools> {
  const missing: string[] = [];
  const py = await runTool('python3', ['-c', 'import sys, pip; print(sys.version.split()[0])']);
  if (py.exitCode !== 0) missing.push('python3 with pip (the wheel comes from pip)');
  const cxx = await runTool('g++', ['--version']);
  if (cxx.exitCode !== 0) missing.push('a C++ compiler (g++), e.g. `apt-get install g++`');
  const make = await runTool('make', ['--version']);
  if (make.exitCode !== 0) missing.push('make, e.g. `apt-get install make`');
  const gyp = await findNodeGyp();
  if (!gyp) missing.push('node-gyp (it ships inside npm; or `npm install -g node-gyp`)');
  const nodeDir = nodeHeadersDir();
  if (!nodeDir) missing.push(`Node's C headers (node_api.h) for ${process.version}, e.g. Debian's nodejs or libnode-dev package`);
  if (missing.length) throw new CliError(`cannot build the TensorFlow binding here; missing:\n  - ${missing.join('\n  - ')}`, 2);
  const gypVersion = await runTool(process.execPath, [gyp!, '--version']);
  return {
    python: py.stdout.trim(),
    cxx: cxx.stdout.split('\n')[0]!.trim(),
    nodeGyp: gypVersion.stdout.trim().replace(/^v/, ''),
    nodeGypJs: gyp!,
    nodeDir: nodeDir!,
  };
}

/** npm bundles node-gyp; find it beside the npm that runs this machine's `npm`. */
async function findNodeGyp(): Promise<string | undefined> {
  const candidates: string[] = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmWhich = await runTool('sh', ['-c', 'command -v npm']);
  if (npmWhich.exitCode === 0) {
    const npmBin = await realpath(npmWhich.stdout.trim()).catch(() => '');
    if (npmBin) candidates.push(join(dirname(dirname(npmBin)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  candidates.push(join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => existsSync(c));
}

/** A prefix whose include/node has node_api.h for this Node (distribution packages put it in /usr). */
export function nodeHeadersDir(): string | undefined {
  const prefixes = [process.env.CA_PIPE_NODEDIR, dirname(dirname(process.execPath)), '/usr', '/usr/local'].filter((p): p is string => !!p);
  return prefixes.find((p) => existsSync(join(p, 'include', 'node', 'node_api.h')));
}

export async function checkFreeDisk(dir: string, bytes: number, forWhat: string): Promise<void> {
  const st = await statfs(dir);
  const free = st.bavail * st.bsize;
  if (free < bytes) {
    throw new CliError(
      `not enough disk in ${dir}: ${(free / 1e9).toFixed(2)} GB free, ${(bytes / 1e9).toFixed(1)} GB needed for ${forWhat}`,
      2,
    );
  }
}
