// Runs the real ca-pipe CLI (the compiled one beside this test) in a case's scratch directory.
import { spawn } from 'node:child_process';
import { cliCommand } from '../../engine/run/child.js';

export interface CliAnswer {
  exitCode: number | null;
  /** stdout then stderr, as a user reads them in a terminal. */
  output: string;
}

const CASE_TIMEOUT_MS = 60_000;

export function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliAnswer> {
  const { file, args: pre } = cliCommand();
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...pre, ...args], {
      cwd,
      // No colours, no live progress: the catalogue shows what a log file would hold. One tfjs
      // backend everywhere: the answers must not depend on whether the native binding is installed
      // (its library prints start-up lines of its own).
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1', CA_PIPE_BACKEND: 'wasm', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, output: stdout + stderr });
    });
  });
}
