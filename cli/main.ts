import { Command } from 'commander';
import { forwardCommand } from './forward.js';

const program = new Command('ca-pipe').description('CA-Stream experiments as a cached pipeline');
program.addCommand(forwardCommand());
await program.parseAsync(process.argv);
