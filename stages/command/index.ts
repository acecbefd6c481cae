// The `command` stage kind: runs an external program as a cached stage.
import { stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, normalize, resolve } from 'node:path';
import type { StageContext, StageKind } from '../../engine/contract.js';
import { buildManifest, manifestDigest, sha256File } from '../../engine/store/index.js';
import { commandParamsSchema } from './schema.js';

export interface CommandParams {
  cmd: string[];
  deps?: string[];
  outs?: string[];
  env?: Record<string, string>;
  cwd?: string;
}

/** CA_PIPE_IN_<NAME>: input names upper-cased, anything else than [A-Z0-9_] becomes '_'. */
export function inputEnvName(name: string): string {
  return `CA_PIPE_IN_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** Directories of an input: one for a variant-scoped input, one per variant for experiment scope. */
function inputDirs(ctx: Pick<StageContext, 'inputs' | 'variantInputs'>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [name, dir] of Object.entries(ctx.inputs)) m.set(name, dir);
  for (const [name, list] of Object.entries(ctx.variantInputs)) m.set(name, list.map((v) => v.dir).join(delimiter));
  return m;
}

/** Replaces {out}, {scratch}, {base} and {in.<name>} inside one argv element. */
export function substituteTokens(
  arg: string,
  ctx: Pick<StageContext, 'inputs' | 'variantInputs' | 'outDir' | 'scratchDir' | 'baseDir'>,
): string {
  const ins = inputDirs(ctx);
  return arg.replace(/\{(out|scratch|base|in\.([A-Za-z0-9_-]+))\}/g, (_m, what: string, name?: string) => {
    if (what === 'out') return ctx.outDir;
    if (what === 'scratch') return ctx.scratchDir;
    if (what === 'base') return ctx.baseDir;
    const dir = ins.get(name!);
    if (dir === undefined) throw new Error(`command: {in.${name}} names no input (inputs: ${[...ins.keys()].join(', ') || 'none'})`);
    return dir;
  });
}

/** A command reports progress by printing `::progress <done>[/<total>] [unit] [message]`. */
export const PROGRESS_LINE = /^::progress (\d+)(?:\/(\d+))?(?: (\S+))?(?: (.*))?$/;

async function depDigest(path: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new Error(`command: dep ${path} does not exist`);
  if (st.isDirectory()) return `dir:${manifestDigest(await buildManifest(path))}`;
  return `file:${await sha256File(path, st.size)}`;
}

function checkRelative(p: string, what: string): void {
  if (isAbsolute(p) || normalize(p).startsWith('..'))
    throw new Error(`command: ${what} "${p}" must be a relative path inside the output dir`);
}

async function run(ctx: StageContext<CommandParams>): Promise<void> {
  const { execa } = await import('execa');
  const p = ctx.params;
  const argv = p.cmd.map((a) => substituteTokens(a, ctx));
  const env: Record<string, string> = {
    ...(p.env ?? {}),
    CA_PIPE_OUT: ctx.outDir,
    CA_PIPE_SCRATCH: ctx.scratchDir,
    CA_PIPE_BASE: ctx.baseDir,
  };
  for (const [name, dir] of inputDirs(ctx)) env[inputEnvName(name)] = dir;
  const cwd = resolve(ctx.baseDir, p.cwd ?? '.');
  ctx.log.info(`$ ${argv.map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ')}  (cwd ${cwd})`);
  const tail: string[] = [];
  const child = execa(argv[0], argv.slice(1), {
    cwd,
    env,
    extendEnv: true,
    stdin: 'ignore',
    reject: false,
    buffer: false,
    cancelSignal: ctx.signal,
    forceKillAfterDelay: 3000,
  });
  const pipe = (stream: NodeJS.ReadableStream | null, level: 'info' | 'warn'): void => {
    if (!stream) return;
    stream.setEncoding('utf8');
    let rest = '';
    stream.on('data', (chunk: string) => {
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const l of lines) emitLine(l, level);
    });
    stream.on('end', () => rest && emitLine(rest, level));
  };
  const emitLine = (line: string, level: 'info' | 'warn'): void => {
    const pm = PROGRESS_LINE.exec(line);
    if (pm) {
      if (pm[2] !== undefined) ctx.progress.total(Number(pm[2]), pm[3]);
      ctx.progress.set(Number(pm[1]));
      if (pm[4]) ctx.progress.message(pm[4]);
      return;
    }
    ctx.log[level](line);
    tail.push(line);
    if (tail.length > 15) tail.shift();
  };
  pipe(child.stdout, 'info');
  pipe(child.stderr, 'warn');
  const res = await child;
  ctx.signal.throwIfAborted();
  if (res.failed) {
    const why =
      res.exitCode !== undefined
        ? `exited with code ${res.exitCode}`
        : res.signal
          ? `was killed by ${res.signal}`
          : (res.shortMessage ?? 'failed');
    const t = tail.length ? `\n--- last lines of output ---\n${tail.join('\n')}` : ' (no output)';
    throw new Error(`command ${JSON.stringify(argv[0])} ${why}${t}`);
  }
  const missing: string[] = [];
  for (const out of p.outs ?? []) {
    checkRelative(out, 'out');
    if (!(await stat(join(ctx.outDir, out)).catch(() => undefined))) missing.push(out);
  }
  if (missing.length) throw new Error(`command finished but did not produce its declared outs: ${missing.join(', ')} (in ${ctx.outDir})`);
  ctx.provenance.command = argv[0];
}

export const commandStage: StageKind<CommandParams> = {
  kind: 'command',
  version: 1,
  paramsSchema: commandParamsSchema,
  scope: 'variant',
  // Any input name is accepted: a command reads whatever it is given.
  async externalDigest(params, baseDir) {
    const out: Record<string, string> = {};
    for (const d of params.deps ?? []) out[`dep:${d}`] = await depDigest(resolve(baseDir, d));
    return out;
  },
  requiredPaths(params) {
    return params.deps ?? [];
  },
  run,
};
