// `ca-pipe forward`: placeholder until the ML core lands (issue 3) — replaced by the ML core helper.
import { Command } from 'commander';

export function forwardCommand(): Command {
  return new Command('forward').description('run a model on an input tensor file (not yet available)').action(() => {
    console.error('ca-pipe forward: not implemented yet');
    process.exitCode = 2;
  });
}
