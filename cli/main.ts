import { Command } from 'commander';
import { cancelCommand } from './cancel.js';
import { forwardCommand } from './forward.js';
import { gcCommand, verifyCommand, execCommand } from './maintenance.js';
import { lsCommand, planCommand, statusCommand, whyCommand } from './inspect.js';
import { runCommand } from './run.js';
import { schemasCommand } from './write-schemas.js';
import { setupCommand } from './setup/command.js';

// A reader that stops early (`ca-pipe plan … | head`) closes the pipe: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('ca-pipe')
  .description('CA-Stream experiments as a cached pipeline')
  .showHelpAfterError()
  .addHelpText(
    'after',
    '\nExamples:\n  $ ca-pipe run experiments/quickstart.yaml\n  $ ca-pipe plan experiments/quickstart.yaml\n  $ ca-pipe status --json',
  );
program.addCommand(runCommand());
program.addCommand(planCommand());
program.addCommand(statusCommand());
program.addCommand(cancelCommand());
program.addCommand(whyCommand());
program.addCommand(lsCommand());
program.addCommand(gcCommand());
program.addCommand(verifyCommand());
program.addCommand(execCommand(), { hidden: true });
program.addCommand(schemasCommand(), { hidden: true });
program.addCommand(forwardCommand());
program.addCommand(setupCommand());
// Usage errors (unknown option, missing argument) exit 2 like config errors; help exits 0.
for (const c of [program, ...program.commands, ...program.commands.flatMap((s) => s.commands)])
  c.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync(process.argv);
