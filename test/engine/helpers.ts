// Shared helpers for the engine tests: temp dirs, experiment files, test-only stage kinds,
// and spawning the CLI (compiled main.js when running from dist/, main.ts through tsx otherwise).
import { mkdtemp, readFile, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageKind } from '../../engine/contract.js';
import { createRegistry, type Registry } from '../../engine/registry.js';
import { loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { cliCommand } from '../../engine/run/child.js';
import { Store } from '../../engine/store/index.js';
import { runPlan, type RunResult } from '../../engine/run/index.js';
import { commandStage } from '../../stages/command/index.js';
import type { Plan } from '../../engine/types.js';

export async function tempDir(t: { after(fn: () => Promise<void> | void): void }, prefix = 'ca-pipe-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

/**
 * `emit`: writes params.text (or the concatenation of its inputs' out.txt plus params.text) to
 * out.txt and appends "<stage> <text>" to params.counter (counts executions across processes).
 */
export const emitKind: StageKind<{ text: string; counter: string; fail?: boolean; pad?: number }> = {
  kind: 'emit',
  version: 1,
  paramsSchema: {
    type: 'object',
    properties: { text: { type: 'string' }, counter: { type: 'string' }, fail: { type: 'boolean' }, pad: { type: 'integer' } },
    required: ['text', 'counter'],
    additionalProperties: false,
  },
  nonKeyParams: ['pad'],
  async run(ctx) {
    await appendFile(ctx.params.counter, `${ctx.stage.name}\n`);
    if (ctx.params.fail) throw new Error(`stage ${ctx.stage.name} told to fail`);
    let body = '';
    for (const name of Object.keys(ctx.inputs).sort()) body += await readFile(join(ctx.inputs[name], 'out.txt'), 'utf8');
    for (const name of Object.keys(ctx.variantInputs).sort())
      for (const v of ctx.variantInputs[name]) body += await readFile(join(v.dir, 'out.txt'), 'utf8');
    ctx.progress.total(2, 'step');
    ctx.progress.tick();
    ctx.progress.tick();
    await writeFile(join(ctx.outDir, 'out.txt'), body + ctx.params.text + '\n');
  },
};

/**
 * `collect` (scope: experiment): writes what the engine handed it — every variant input and the
 * experiment info — to seen.json, and the inputs' out.txt texts to out.txt.
 */
export const collectKind: StageKind<{ tag?: string }> = {
  kind: 'collect',
  version: 1,
  scope: 'experiment',
  paramsSchema: { type: 'object', properties: { tag: { type: 'string' } }, additionalProperties: false },
  async run(ctx) {
    await writeFile(
      join(ctx.outDir, 'seen.json'),
      JSON.stringify({ variantInputs: ctx.variantInputs, experiment: ctx.experiment ?? null }),
    );
    let body = '';
    for (const name of Object.keys(ctx.variantInputs).sort())
      for (const v of ctx.variantInputs[name]) body += await readFile(join(v.dir, 'out.txt'), 'utf8');
    await writeFile(join(ctx.outDir, 'out.txt'), body);
  },
};

/** How to start test/engine/child-runner (compiled, or through tsx from the sources). */
export function childRunner(): { file: string; args: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./child-runner.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return { file: process.execPath, args: fromSource ? ['--import', import.meta.resolve('tsx'), script] : [script] };
}

export function testRegistry(extra: StageKind[] = []): Registry {
  return createRegistry([commandStage, emitKind, ...extra]);
}

export async function planFor(file: string, registry: Registry, overrides: string[] = []): Promise<Plan> {
  const exp = await loadExperiment(file, { overrides, registry, env: process.env, checkPaths: true });
  return buildPlan(exp, registry);
}

export async function runFile(
  dir: string,
  file: string,
  registry: Registry,
  overrides: string[] = [],
  extra: Partial<Parameters<typeof runPlan>[1]> = {},
): Promise<RunResult> {
  const plan = await planFor(file, registry, overrides);
  const store = await Store.open(join(dir, 'runs', '.store'));
  return runPlan(plan, { store, runsDir: join(dir, 'runs'), registry, ...extra });
}

/** Lines of the counter file (one per execution). */
export async function executions(counter: string): Promise<string[]> {
  try {
    return (await readFile(counter, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export async function writeExp(dir: string, name: string, yaml: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const f = join(dir, name);
  await writeFile(f, yaml);
  return f;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI in its own process group (so a test can kill the whole group). */
export function startCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const { file, args: pre } = cliCommand();
  const child = spawn(file, [...pre, ...args], { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  return { child, done, out: () => stdout };
}

export function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, cwd, env).done;
}
