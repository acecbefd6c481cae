import { Command } from 'commander';
import { resolve } from 'node:path';
import { CliError } from '../common.js';
import { DEFAULT_TF_WHEEL_VERSION, setupTensorflow } from './tensorflow.js';

export function setupCommand(): Command {
  const setup = new Command('setup').description('install optional native parts (the TensorFlow binding)');
  setup.addCommand(
    new Command('tensorflow')
      .description('make the native TensorFlow backend (@tensorflow/tfjs-node, or -gpu) load in this project')
      .option('--gpu', "the CUDA binding @tensorflow/tfjs-node-gpu (built against TensorFlow's CUDA-12 wheels; untested here)")
      .option('--from-wheel', "skip the package's own libtensorflow download and build from a TensorFlow pip wheel")
      .option('--wheel <file>', 'build from this TensorFlow wheel instead of asking pip')
      .option('--tf-version <v>', 'TensorFlow wheel version to build against', DEFAULT_TF_WHEEL_VERSION)
      .option('--force', 'rebuild even when the binding loads or a cached build exists')
      .option('--root <dir>', 'project root (where node_modules is)', '.')
      .addHelpText(
        'after',
        `
Tries, in order, stopping at the first that gives a binding that loads:
  1. nothing, when the binding already loads;
  2. a build this command made before (kept in ~/.cache/ca-pipe/tensorflow, so rerunning after
     \`npm ci\` takes seconds);
  3. the package's own install, which downloads libtensorflow;
  4. a build from source: pip downloads tensorflow-cpu (tensorflow[and-cuda] with --gpu), its
     C library and headers become the package's deps/, node-gyp compiles the addon (~1 min,
     0.9 GB of disk; needs python3 with pip, g++, make and Node's headers).

Examples:
  $ npx ca-pipe setup tensorflow
  $ npx ca-pipe setup tensorflow --wheel ~/Downloads/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl
  $ CA_PIPE_BACKEND=tensorflow npx ca-pipe run experiments/quickstart.yaml`,
      )
      .action(async (opts: { gpu?: boolean; fromWheel?: boolean; wheel?: string; tfVersion: string; force?: boolean; root: string }) => {
        const started = Date.now();
        try {
          await setupTensorflow({
            root: resolve(opts.root),
            gpu: !!opts.gpu,
            fromWheel: !!opts.fromWheel,
            wheel: opts.wheel ? resolve(opts.wheel) : undefined,
            tfVersion: opts.tfVersion,
            force: !!opts.force,
            log: (l) => process.stderr.write(`${l}\n`),
          });
          process.stderr.write(`setup tensorflow: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        } catch (e) {
          if (e instanceof CliError) {
            process.stderr.write(`setup tensorflow: ${e.message}\n`);
            process.exit(e.exitCode);
          }
          throw e;
        }
      }),
  );
  return setup;
}
