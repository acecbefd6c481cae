// Bad-input cases for datasets and weights: the mistakes a user makes when bringing their own
// images, lists and weight files, made for real and answered by the real CLI.
import type { BadInputCase } from './case.js';
import { runCli } from './run-cli.js';
import { put, putRawName, tinyPng } from './scratch-files.js';
import { ARCH, writeInput, writeWeights, type Breakage } from './weights-files.js';

/** `ca-pipe run exp.yaml` in `dir` with the given experiment text. */
async function runExperiment(dir: string, yaml: string) {
  await put(dir, 'exp.yaml', yaml);
  return runCli(['run', 'exp.yaml', '--runs', 'runs', '--quiet'], dir);
}

const tinySynthetic = (classes: number, fraction: number) =>
  `{ source: synthetic, synthetic: { classes: ${classes}, per_class: 4, size: 32 }, split: { fraction: ${fraction} } }`;

const scratchTrain = (batch = 2) => `
  train:
    kind: train
    needs: { data: data }
    params: { arch: ${ARCH}, head: gap, mode: scratch, input_size: 32, resize: 32, epochs: 1, batch_size: ${batch} }
`;

/** Two class folders with two images each, and a list file over them. */
async function imageTree(dir: string): Promise<void> {
  for (const f of ['cat/1.png', 'cat/2.png', 'dog/1.png', 'dog/2.png']) await put(dir, `images/${f}`, tinyPng());
}

const listExperiment = (file: string) => `
stages:
  data:
    kind: index
    params: { source: list, file: ${file}, root: images }
`;

// What experiments/tools/model-dir.mjs does for a user's weights file: copy it into the stage's
// output and write a card naming it (the card's `source`), so errors can name the user's file.
const WRAP_WEIGHTS = `
import { copyFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
const [weights, out] = process.argv.slice(2);
copyFileSync(weights, join(out, 'final.safetensors'));
writeFileSync(join(out, 'model.json'), JSON.stringify({
  format: 'ca-pipe.model/1', arch: '${ARCH}', head: 'gap', heads: 1, num_classes: 2, input_size: 32, resize: 32,
  mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], classes: ['circle', 'square'], weights: 'final.safetensors',
  source: resolve(weights),
}));
`;

const CONSUMERS = {
  saliency: `
  saliency:
    kind: saliency
    needs: { model: weights, data: data }
    params: { methods: [gradcam] }
`,
  frozenTrain: `
  ca:
    kind: train
    needs: { data: data, init: weights }
    params: { arch: ${ARCH}, head: ca-stream, mode: frozen, input_size: 32, resize: 32, epochs: 1, batch_size: 2 }
`,
};

/** A pipeline whose `consumer` stage reads a model directory made from the user's weights file. */
async function runWithModelDir(
  dir: string,
  breakage: Breakage | undefined,
  consumer: keyof typeof CONSUMERS = 'saliency',
  valFraction = 0.5,
) {
  await writeWeights(`${dir}/my-weights.safetensors`, breakage);
  await put(dir, 'wrap-weights.mjs', WRAP_WEIGHTS);
  return runExperiment(
    dir,
    `
stages:
  data:
    kind: index
    params: ${tinySynthetic(2, valFraction)}
  weights:
    kind: command
    params:
      cmd: [node, wrap-weights.mjs, my-weights.safetensors, "{out}"]
      deps: [my-weights.safetensors, wrap-weights.mjs]
      outs: [model.json, final.safetensors]
${CONSUMERS[consumer]}`,
  );
}

/** `ca-pipe forward` on the user's weights file. */
async function runForward(dir: string, breakage: Breakage) {
  await writeWeights(`${dir}/my-weights.safetensors`, breakage);
  await writeInput(`${dir}/batch.safetensors`);
  return runCli(
    [
      'forward',
      '--arch',
      ARCH,
      '--head',
      'gap',
      '--weights',
      'my-weights.safetensors',
      '--input',
      'batch.safetensors',
      '--out',
      'out.safetensors',
    ],
    dir,
  );
}

export const cases: BadInputCase[] = [
  {
    id: 'data-imagefolder-missing',
    area: 'data',
    mistake: 'An imagefolder index whose root folder does not exist (a typo in the path).',
    run: (dir) =>
      runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: { source: imagefolder, root: imgaes }
`,
      ),
    expect: /required path not found: imgaes/,
    exitCode: 2,
  },
  {
    id: 'data-single-class',
    area: 'data',
    mistake: 'Training on an image folder that holds a single class folder.',
    run: async (dir) => {
      for (const f of ['cat/1.png', 'cat/2.png', 'cat/3.png', 'cat/4.png', 'cat/5.png']) await put(dir, `images/${f}`, tinyPng());
      return runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: { source: imagefolder, root: images, split: { fraction: 0.2 } }
${scratchTrain()}`,
      );
    },
    expect: /training needs at least 2 classes, but its input "data" \(index stage "data"\) has 1 class \("cat"\)/,
    exitCode: 2,
  },
  {
    id: 'data-list-single-class-unverified',
    area: 'data',
    mistake: 'Training on a one-class list under `verify: none` (the list is trusted at plan time, so this surfaces when training starts).',
    run: async (dir) => {
      for (const f of ['cat/1.png', 'cat/2.png', 'cat/3.png', 'cat/4.png', 'cat/5.png']) await put(dir, `images/${f}`, tinyPng());
      await put(dir, 'train.csv', 'cat/1.png,0\ncat/2.png,0\ncat/3.png,0\ncat/4.png,0\ncat/5.png,0\n');
      return runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: { source: list, file: train.csv, root: images, verify: none, split: { fraction: 0.2 } }
${scratchTrain()}`,
      );
    },
    expect: /FAILED +train: \S+classes\.json: training needs at least 2 classes, but the index given as input "data" has 1/,
    exitCode: 1,
  },
  {
    id: 'data-synthetic-single-class',
    area: 'data',
    mistake: 'Training on a synthetic dataset of one class.',
    run: (dir) =>
      runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: ${tinySynthetic(1, 0.25)}
${scratchTrain()}`,
      ),
    expect: /stages\.train\.needs: .*training needs at least 2 classes/,
    exitCode: 2,
  },
  {
    id: 'data-empty-val-split',
    area: 'data',
    mistake: 'Training on an index whose validation split is empty (split.fraction: 0).',
    run: (dir) =>
      runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: ${tinySynthetic(2, 0)}
${scratchTrain()}`,
      ),
    expect: /has an empty validation split; training needs it to pick the best epoch/,
    exitCode: 2,
  },
  {
    id: 'data-batch-larger-than-train-split',
    area: 'data',
    mistake: 'A batch_size larger than the number of training images.',
    run: (dir) =>
      runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: ${tinySynthetic(2, 0.25)}
${scratchTrain(64)}`,
      ),
    expect: /batch_size 64 is larger than the 6 training images/,
    exitCode: 2,
  },
  {
    id: 'data-saliency-empty-split',
    area: 'data',
    mistake: 'Explaining the validation split (the default) of an index that has none.',
    run: (dir) => runWithModelDir(dir, undefined, 'saliency', 0),
    expect: /stages\.saliency\.needs: .*split "val" of its input "data" \(index stage "data"\) has no images/,
    exitCode: 2,
  },
  {
    id: 'data-list-bad-row',
    area: 'data',
    mistake: 'A path,label CSV with a row that has no label (a semicolon instead of a comma).',
    run: async (dir) => {
      await imageTree(dir);
      await put(dir, 'train.csv', 'cat/1.png,0\ncat/2.png;0\ndog/1.png,1\n');
      return runExperiment(dir, listExperiment('train.csv'));
    },
    expect: /train\.csv:2: malformed line "cat\/2\.png;0": expected "<path>,<integer label>"/,
    exitCode: 2,
  },
  {
    id: 'data-list-missing-image',
    area: 'data',
    mistake: 'A list file naming an image that is not under the root.',
    run: async (dir) => {
      await imageTree(dir);
      await put(dir, 'train.csv', 'cat/1.png,0\ncat/3.png,0\ndog/1.png,1\n');
      return runExperiment(dir, listExperiment('train.csv'));
    },
    expect: /train\.csv:2: cannot read \S+\/images\/cat\/3\.png \(no such file\)/,
    exitCode: 2,
  },
  {
    id: 'data-list-label-out-of-range',
    area: 'data',
    mistake: 'A list file with a label beyond num_classes.',
    run: async (dir) => {
      await imageTree(dir);
      await put(dir, 'train.csv', 'cat/1.png,0\ncat/2.png,0\ndog/1.png,2\n');
      return runExperiment(
        dir,
        `
stages:
  data:
    kind: index
    params: { source: list, file: train.csv, root: images, num_classes: 2 }
`,
      );
    },
    expect: /train\.csv:3: label 2 out of range \[0, 2\) \(num_classes\)/,
    exitCode: 2,
  },
  {
    id: 'data-list-path-not-utf8',
    area: 'data',
    mistake: 'A list file naming a file whose name is not UTF-8 (Latin-1 "café.png"), the file being there.',
    run: async (dir) => {
      await imageTree(dir);
      const latin1Name = Buffer.from('caf\xe9.png', 'latin1');
      await putRawName(dir, 'images/cat', latin1Name, tinyPng());
      await put(dir, 'train.csv', Buffer.concat([Buffer.from('cat/1.png,0\ncat/'), latin1Name, Buffer.from(',0\ndog/1.png,1\n')]));
      return runExperiment(dir, listExperiment('train.csv'));
    },
    expect: /train\.csv:2: not valid UTF-8: "cat\/caf\\xe9\.png,0"/,
    exitCode: 2,
  },
  {
    id: 'weights-forward-missing-key',
    area: 'weights',
    mistake: '`ca-pipe forward` with a weights file that lacks a parameter (fc.bias).',
    run: (dir) => runForward(dir, { drop: 'fc.bias' }),
    expect: /my-weights\.safetensors: weights do not match the model resnet-mini\/gap \(missing keys: fc\.bias\)/,
    exitCode: 1,
  },
  {
    id: 'weights-forward-wrong-shape',
    area: 'weights',
    mistake: '`ca-pipe forward` with a weights file whose classifier has the wrong width.',
    run: (dir) => runForward(dir, { reshape: 'fc.weight' }),
    expect: /fc\.weight: file \[2, 129\] vs model \[2, 128\]/,
    exitCode: 1,
  },
  {
    id: 'weights-forward-int-dtype',
    area: 'weights',
    mistake: '`ca-pipe forward` with a weights file holding an integer (I32) tensor.',
    run: (dir) => runForward(dir, { asInt32: 'fc.weight' }),
    expect: /fc\.weight: dtype I32, expected a float type/,
    exitCode: 1,
  },
  {
    id: 'weights-forward-nan',
    area: 'weights',
    mistake: '`ca-pipe forward` with a weights file holding a NaN.',
    run: (dir) => runForward(dir, { nan: 'layer1.0.conv1.weight' }),
    expect: /my-weights\.safetensors: non-finite weights: layer1\.0\.conv1\.weight: 1 of 2304 values are not finite/,
    exitCode: 1,
  },
  {
    id: 'weights-model-dir-int-dtype',
    area: 'weights',
    mistake: 'A pipeline whose model directory is made from a weights file holding an I32 tensor.',
    run: (dir) => runWithModelDir(dir, { asInt32: 'fc.weight' }),
    expect:
      /FAILED +saliency: \S+\/my-weights\.safetensors \(copied to .*\): unusable weights: \[fc\.weight\] dtype I32, expected a float type/,
    exitCode: 1,
  },
  {
    id: 'weights-model-dir-nan',
    area: 'weights',
    mistake: 'A pipeline whose model directory is made from a weights file holding a NaN.',
    run: (dir) => runWithModelDir(dir, { nan: 'fc.weight' }),
    expect:
      /FAILED +saliency: \S+\/my-weights\.safetensors \(copied to .*\): unusable weights: \[fc\.weight\] 1 of 256 values are not finite/,
    exitCode: 1,
  },
  {
    id: 'weights-model-dir-missing-key',
    area: 'weights',
    mistake: 'A pipeline whose model directory is made from a weights file that lacks a parameter.',
    run: (dir) => runWithModelDir(dir, { drop: 'layer4.0.bn2.running_var' }),
    expect:
      /FAILED +saliency: \S+\/my-weights\.safetensors \(copied to .*\): 1 weight problem\(s\):\n +\[layer4\.0\.bn2\.running_var\] missing/,
    exitCode: 1,
  },
  {
    id: 'weights-init-nan',
    area: 'weights',
    mistake: 'Frozen CA-Stream training whose init model directory is made from a weights file holding a NaN.',
    run: (dir) => runWithModelDir(dir, { nan: 'layer2.0.bn1.running_var' }, 'frozenTrain'),
    expect:
      /FAILED +ca: init: \S+\/my-weights\.safetensors \(copied to .*\) does not hold resnet-mini weights: layer2\.0\.bn1\.running_var: 1 of 32 values are not finite/,
    exitCode: 1,
  },
];
