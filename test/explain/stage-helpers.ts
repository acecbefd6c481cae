// Shared setup of the saliency / evaluate stage tests (not a test file itself): small default
// params, a fixture world (synthetic index + GAP and CA fixture models), and planning an
// index → train → saliency → evaluate experiment to compare cache keys.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageKind } from '../../engine/contract.js';
import { loadExperiment } from '../../engine/config/index.js';
import { buildPlan } from '../../engine/plan/index.js';
import { createRegistry } from '../../engine/registry.js';
import { evaluateStage } from '../../stages/evaluate/index.js';
import { indexStage } from '../../stages/index/index.js';
import { saliencyStage } from '../../stages/saliency/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import { fixtureModelDir, HAVE_FIXTURE, syntheticIndex, testCtx, tmp } from './helpers.js';
import { initTestBackend } from '../support/backend.js';

/** Saliency params small enough for a test (RISE with 16 masks, tiny shards). */
export const SALIENCY_TEST_PARAMS: SaliencyParams = {
  methods: ['gradcam'],
  target: 'gt',
  split: 'val',
  batch_size: 4,
  method_batch: 32,
  shard_size: 2,
  dtype: 'float32',
  overlays: 0,
  seed: 0,
  rise: { masks: 16, cells: 2, p1: 0.5 },
};

export interface FixtureWorld {
  root: string;
  data: string;
  /** Fixture ResNet with GAP pooling, 64 px input (layer4 grid 2×2). */
  gapModel: string;
  /** The same backbone with a 4-head CA stream. */
  caModel: string;
}

export async function fixtureWorld(prefix: string, index: { classes: number; per_class: number }): Promise<FixtureWorld> {
  if (!HAVE_FIXTURE) throw new Error(`reference fixtures not found (test/fixtures/reference in the repository, or CA_PIPE_FIXTURES)`);
  // The stages initialise the backend themselves; doing it first asserts it is the one under test.
  await initTestBackend();
  const root = tmp(prefix);
  const data = await syntheticIndex(root, { ...index, size: 64 });
  return {
    root,
    data,
    gapModel: fixtureModelDir(join(root, 'gap'), 'gap', 1, 64),
    caModel: fixtureModelDir(join(root, 'ca'), 'ca-stream', 4, 64),
  };
}

/** The evaluate params these tests start from (localisation off, a small bootstrap). */
export const EVALUATE_TEST_PARAMS: EvaluateParams = {
  protocol: 'ca-stream',
  protocol_overrides: {},
  keep_constant: ['ones', 'center', 'random'],
  localisation: 'off',
  bootstrap: { samples: 200, seed: 0, level: 0.95 },
  batch_size: 16,
};

/**
 * Runs the saliency stage, then the evaluate stage on its maps, for a fixture model on a fresh
 * 64-px synthetic index; returns evaluation.json and the per_image.jsonl rows.
 */
export async function saliencyThenEvaluate(o: {
  prefix: string;
  head: 'gap' | 'ca-stream';
  index: { classes: number; per_class: number };
  saliency: SaliencyParams;
  evaluate: EvaluateParams;
  /** Another model than the reference fixture: writes a model directory under `root`. */
  model?: (root: string) => Promise<string>;
}): Promise<{ summary: any; rows: any[] }> {
  if (!o.model && !HAVE_FIXTURE)
    throw new Error('reference fixtures not found (test/fixtures/reference in the repository, or CA_PIPE_FIXTURES)');
  const root = tmp(o.prefix);
  const data = await syntheticIndex(root, { ...o.index, size: 64 });
  const model = o.model ? await o.model(root) : fixtureModelDir(join(root, 'model'), o.head, 1, 64);
  const sctx = testCtx(
    o.saliency,
    { model, data },
    { outDir: join(root, 'sal', 'out'), scratchDir: join(root, 'scratch', 'sal'), baseDir: root },
  );
  await saliencyStage.run(sctx);
  const ctx = testCtx(
    o.evaluate,
    { model, data, saliency: sctx.outDir },
    { outDir: join(root, 'ev', 'out'), scratchDir: join(root, 'scratch', 'ev'), baseDir: root },
  );
  await evaluateStage.run(ctx);
  const summary = JSON.parse(readFileSync(join(ctx.outDir, 'evaluation.json'), 'utf8'));
  const rows = readFileSync(join(ctx.outDir, 'per_image.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { summary, rows };
}

const trainStub: StageKind = {
  kind: 'train',
  version: 1,
  paramsSchema: { type: 'object', properties: { lr: { type: 'number', default: 0.1 } } },
  inputs: { required: ['data'] },
  run: async () => {},
};

/**
 * Plans `data → train → sal → ev` with the given params (YAML flow mappings) and returns each
 * stage's plan key and schema-defaulted params.
 */
export async function planKeys(params: {
  sal?: string;
  ev?: string;
}): Promise<Record<string, { key: string | undefined; params: Record<string, unknown> }>> {
  const registry = createRegistry([indexStage, trainStub, saliencyStage, evaluateStage]);
  const file = join(tmp('ca-pipe-keys-'), 'exp.yaml');
  writeFileSync(
    file,
    `stages:
  data: { kind: index, params: { source: synthetic } }
  train: { kind: train, needs: [data] }
  sal: { kind: saliency, needs: { model: train, data: data }, params: ${params.sal ?? '{}'} }
  ev: { kind: evaluate, needs: { model: train, data: data, saliency: sal }, params: ${params.ev ?? '{}'} }
`,
  );
  const exp = await loadExperiment(file, { registry, env: {} });
  const plan = await buildPlan(exp, registry);
  return Object.fromEntries(plan.instances.map((i) => [i.stage, { key: i.planKey, params: i.material.params as Record<string, unknown> }]));
}
