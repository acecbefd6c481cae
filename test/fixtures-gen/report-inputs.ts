// Generated stand-ins for the outputs a report reads (stages/artifacts.ts): two trained models
// (GAP and CA) with per-epoch metrics, their saliency outputs with PNG overlays, and their
// evaluations with per-image scores and mean curves. Values are made up but well-formed, so the
// report can be rendered and inspected without training anything. Not a test file itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { StageContext, VariantInput } from '../../engine/contract.js';
import type { EvaluateSummary, ModelCard, SaliencyMeta, TrainSummary } from '../../stages/artifacts.js';

export interface ReportInputs {
  /** Input name → directory, as a report stage with scope experiment receives them. */
  variantInputs: Record<string, VariantInput[]>;
  ids: number[];
  methods: { gap: string[]; ca: string[] };
}

const iv = (mean: number, half = 0.05) => ({ mean, lo: mean - half, hi: mean + half, n: 8 });

function model(dir: string, head: 'gap' | 'ca-stream', accs: number[], classes: string[]): void {
  mkdirSync(dir, { recursive: true });
  const card: ModelCard = {
    format: 'ca-pipe.model/1',
    arch: 'resnet-mini',
    head,
    heads: 1,
    num_classes: classes.length,
    input_size: 64,
    resize: 64,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    classes,
    weights: 'final.safetensors',
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
  const lines = accs.map((acc, e) =>
    JSON.stringify({
      type: 'epoch',
      epoch: e + 1,
      iter: (e + 1) * 10,
      loss: 2 - 1.5 * acc,
      acc,
      lr: 0.01,
      val_loss: 2.1 - 1.5 * acc,
      val_acc: acc - 0.02,
    }),
  );
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  const summary: TrainSummary = {
    mode: head === 'gap' ? 'scratch' : 'frozen',
    epochs: accs.length,
    best_epoch: accs.length,
    best_val_loss: 0.5,
    final_val_acc: accs[accs.length - 1]! - 0.02,
    final_val_loss: 0.5,
    gap_val_acc: head === 'gap' ? undefined : 0.9,
    trainable_parameters: head === 'gap' ? ['*'] : ['cls_token'],
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
}

/** A jet-like overlay: a bright blob whose centre depends on (id, method), so images differ. */
async function overlay(file: string, id: number, k: number): Promise<void> {
  const n = 64;
  const px = Buffer.alloc(n * n * 3);
  const cx = 16 + ((id * 7 + k * 11) % 32);
  const cy = 16 + ((id * 13 + k * 5) % 32);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const s = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 120);
      const o = 3 * (y * n + x);
      px[o] = Math.round(255 * s);
      px[o + 1] = Math.round(128 * (1 - Math.abs(2 * s - 1)));
      px[o + 2] = Math.round(255 * (1 - s));
    }
  }
  await sharp(px, { raw: { width: n, height: n, channels: 3 } })
    .png()
    .toFile(file);
}

async function saliency(dir: string, pooling: 'gap' | 'ca', methods: string[], ids: number[]): Promise<void> {
  mkdirSync(join(dir, 'overlays'), { recursive: true });
  const overlays: SaliencyMeta['overlays'] = [];
  for (const id of ids) {
    for (const [k, method] of methods.entries()) {
      const file = `overlays/${id}-${method}.png`;
      await overlay(join(dir, file), id, k + (pooling === 'ca' ? 3 : 0));
      overlays.push({ id, method, file });
    }
  }
  const meta: SaliencyMeta = {
    format: 'ca-pipe.saliency/1',
    methods,
    h: 2,
    w: 2,
    split: 'val',
    target: 'gt',
    pooling,
    ids,
    targets: ids.map((i) => i % 6),
    shards: [],
    degenerate: {},
    overlays,
  };
  writeFileSync(join(dir, 'saliency.json'), JSON.stringify(meta));
}

function evaluation(dir: string, pooling: 'gap' | 'ca', methods: string[], ids: number[], shift: number): void {
  mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  const summary: EvaluateSummary = {
    format: 'ca-pipe.evaluate/1',
    protocol: { name: 'ca-stream', insdel: { step: 512 } },
    pooling,
    accuracy: { top1: 0.9 + shift / 10, top5: 1, n: ids.length },
    methods: {},
  };
  const curves: Record<string, { insertion: number[]; deletion: number[] }> = {};
  methods.forEach((method, k) => {
    const base = 10 + k * 3 + shift * 10;
    for (const id of ids) {
      rows.push(
        JSON.stringify({
          id,
          method,
          AD: base + (id % 5),
          AI: id % 2,
          AG: 5 + k,
          insertion: 0.6 + 0.02 * k,
          deletion: 0.2 - 0.01 * k,
          pointing: id % 2,
          energy: 0.3 + 0.05 * k,
          p: 0.8,
          o: 0.7,
        }),
      );
    }
    summary.methods[method] = {
      AD: iv(base + 2, 1),
      AI: iv(50, 5),
      AG: iv(5 + k, 1),
      insertion: iv(0.6 + 0.02 * k),
      deletion: iv(0.2 - 0.01 * k),
      pointing: iv(0.5),
      energy: iv(0.3 + 0.05 * k),
      excluded: {},
    };
    curves[method] = {
      insertion: Array.from({ length: 9 }, (_, i) => Math.min(1, 0.1 + (i / 8) * (0.8 + 0.02 * k))),
      deletion: Array.from({ length: 9 }, (_, i) => Math.max(0, 0.9 - (i / 8) * (0.85 - 0.01 * k))),
    };
  });
  writeFileSync(join(dir, 'evaluation.json'), JSON.stringify(summary));
  writeFileSync(join(dir, 'per_image.jsonl'), rows.join('\n') + '\n');
  writeFileSync(join(dir, 'curves.json'), JSON.stringify(curves));
}

/**
 * Writes GAP and CA models, saliency outputs and evaluations under `root`. `className` lets a test
 * smuggle markup into a class name to check that the report escapes it.
 */
export async function writeReportInputs(root: string, opts: { className?: string; images?: number } = {}): Promise<ReportInputs> {
  const classes = ['circle', 'square', 'triangle', 'star', 'cross', opts.className ?? 'ring'];
  const ids = Array.from({ length: opts.images ?? 8 }, (_, i) => 3 * i + 1);
  const methods = { gap: ['gradcam', 'gradcampp', 'random', 'center'], ca: ['ca-attention', 'gradcam', 'gradcampp', 'random', 'center'] };
  model(join(root, 'pretrain'), 'gap', [0.4, 0.7, 0.85, 0.93], classes);
  model(join(root, 'ca'), 'ca-stream', [0.8, 0.9, 0.92], classes);
  await saliency(join(root, 'saliency_gap'), 'gap', methods.gap, ids);
  await saliency(join(root, 'saliency_ca'), 'ca', methods.ca, ids);
  evaluation(join(root, 'evaluate_gap'), 'gap', methods.gap, ids, 0);
  evaluation(join(root, 'evaluate_ca'), 'ca', methods.ca, ids, -0.2);
  const v = (name: string): VariantInput[] => [{ variantId: '', alias: '', values: {}, dir: join(root, name), key: `key-${name}` }];
  const names = ['pretrain', 'ca', 'saliency_gap', 'saliency_ca', 'evaluate_gap', 'evaluate_ca'];
  return { variantInputs: Object.fromEntries(names.map((n) => [n, v(n)])), ids, methods };
}

/** A stage context for running the report kind directly on generated inputs. */
export function reportCtx(root: string, inputs: ReportInputs, params: Record<string, unknown>, experimentName: string): StageContext<any> {
  const noop = () => {};
  mkdirSync(join(root, 'out'), { recursive: true });
  return {
    params: { gallery_images: 6, max_bytes: 5_000_000, bootstrap: 200, seed: 0, ...params },
    inputs: {},
    variantInputs: inputs.variantInputs,
    outDir: join(root, 'out'),
    scratchDir: join(root, 'scratch'),
    baseDir: root,
    progress: { total: noop, tick: noop, set: noop, message: noop },
    log: { info: noop, warn: noop, error: noop, debug: noop },
    signal: new AbortController().signal,
    stage: { name: 'report', variantId: '', alias: '', key: 'report-key' },
    provenance: {},
    experiment: {
      name: experimentName,
      file: join(root, 'exp.yaml'),
      resolved: { name: experimentName, stages: { data: { kind: 'index' } } },
      variants: [],
      instances: Object.keys(inputs.variantInputs).map((id) => ({
        id,
        stage: id,
        kind: id.split('_')[0]!,
        variant: '',
        status: 'executed',
        seconds: 1.5,
        provenance: { backend: 'wasm' },
      })),
      toolVersion: '0.0.0-test',
    },
  };
}
