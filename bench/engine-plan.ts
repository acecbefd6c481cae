// Planning speed: a 1,000-variant sweep (10 × 10 × 10) over a 5-stage experiment with test-only
// stage kinds (no store, no work). Target: under 1 s for load + plan.
// Standalone: `node dist/bench/engine-plan.js`; bench/engine.ts imports benchPlan().
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StageKind } from '../engine/contract.js';
import { loadExperiment } from '../engine/config/index.js';
import { buildPlan } from '../engine/plan/index.js';
import { createRegistry } from '../engine/registry.js';

const noop = async (): Promise<void> => {};
const kind = (name: string, properties: Record<string, object>, extra: Partial<StageKind> = {}): StageKind => ({
  kind: name,
  version: 1,
  paramsSchema: { type: 'object', additionalProperties: false, properties },
  run: noop,
  ...extra,
});

const KINDS: StageKind[] = [
  kind('b-index', { source: { type: 'string' }, classes: { type: 'integer', default: 10 } }),
  kind(
    'b-train',
    {
      lr: { type: 'number' },
      heads: { type: 'integer' },
      epochs: { type: 'integer', default: 1 },
      workers: { type: 'integer', default: 2 },
    },
    { nonKeyParams: ['workers'], inputs: { required: ['data'] } },
  ),
  kind('b-saliency', { method: { type: 'string' }, batch: { type: 'integer', default: 8 } }),
  kind('b-evaluate', { metric: { type: 'string', default: 'insertion' }, steps: { type: 'integer', default: 16 } }),
  kind('b-report', { title: { type: 'string', default: 'bench' } }, { scope: 'experiment' }),
];

const EXPERIMENT = `name: bench-plan
stages:
  data:
    kind: b-index
    params: { source: synthetic }
  train:
    kind: b-train
    needs: [data]
    params: { lr: 0.1, heads: 1 }
  saliency:
    kind: b-saliency
    needs: [train]
    params: { method: ca }
  evaluate:
    kind: b-evaluate
    needs: [saliency]
  report:
    kind: b-report
    needs: [evaluate]
sweep:
  train.lr: [${Array.from({ length: 10 }, (_, i) => 0.001 * (i + 1)).join(', ')}]
  train.heads: [${Array.from({ length: 10 }, (_, i) => i + 1).join(', ')}]
  saliency.method: [${Array.from({ length: 10 }, (_, i) => `m${i}`).join(', ')}]
`;

export async function benchPlan(): Promise<{ variants: number; ms: number; instances: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ca-pipe-bench-plan-'));
  try {
    const file = path.join(dir, 'bench.yaml');
    writeFileSync(file, EXPERIMENT);
    const registry = createRegistry(KINDS);
    const t0 = performance.now();
    const exp = await loadExperiment(file, { registry, env: {} });
    const plan = await buildPlan(exp, registry);
    const ms = performance.now() - t0;
    return { variants: plan.variants.length, ms, instances: plan.instances.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchPlan();
  console.log(`plan: ${r.variants} variants, ${r.instances} stage instances in ${r.ms.toFixed(0)} ms (target < 1000 ms)`);
}
