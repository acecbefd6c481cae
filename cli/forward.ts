// `ca-pipe forward`: run a model on an NCHW tensor file and write every tap, attention map and
// logit set (NCHW) to a safetensors file. The ML modules are imported inside the action so that
// the rest of the CLI starts without loading tfjs or ONNX Runtime.
import { Command, Option } from 'commander';

interface ForwardOpts {
  arch: string;
  head: 'gap' | 'ca-stream' | 'ca-final';
  heads: string;
  weights: string;
  input: string;
  inputKey: string;
  out: string;
  engine: 'tfjs' | 'onnx';
  backend?: 'tensorflow' | 'wasm' | 'cpu';
  numClasses?: string;
  batchSize: string;
  project?: boolean;
  strict: boolean;
  cacheDir?: string;
}

/** An error already phrased for the user (normally starting with the file it concerns). */
class ForwardError extends Error {}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ForwardError(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

async function runTfjs(o: ForwardOpts, heads: number, batchSize: number): Promise<string[]> {
  const [{ initBackend, tf }, { readSafetensors, writeSafetensors }, { createModel, getBackbone }] = await Promise.all([
    import('../ml/backend/index.js'),
    import('../ml/io/safetensors.js'),
    import('../ml/models/index.js'),
  ]);
  let arch: ReturnType<typeof getBackbone>;
  try {
    arch = getBackbone(o.arch);
  } catch (e) {
    throw new ForwardError((e as Error).message);
  }
  const weights = (await readSafetensors(o.weights)).tensors;
  const inputs = (await readSafetensors(o.input)).tensors;
  const x = inputs.get(o.inputKey);
  if (!x) throw new ForwardError(`${o.input}: no tensor "${o.inputKey}" (has: ${[...inputs.keys()].join(', ') || 'nothing'})`);
  if (x.shape.length !== 4 || x.shape[1] !== 3) {
    throw new ForwardError(`${o.input} [${o.inputKey}]: expected an NCHW batch B×3×H×W, got shape [${x.shape.join(', ')}]`);
  }
  if (!(x.data instanceof Float32Array)) throw new ForwardError(`${o.input} [${o.inputKey}]: expected floating-point data, got ${x.dtype}`);
  const fc = weights.get(arch.classifierWeight) ?? weights.get(`module.${arch.classifierWeight}`);
  const numClasses = o.numClasses ? positiveInt('num-classes', o.numClasses) : fc?.shape[0];
  if (!numClasses)
    throw new ForwardError(`${o.weights}: no ${arch.classifierWeight} to infer the number of classes from; pass --num-classes`);

  const backend = await initBackend(o.backend);
  const model = createModel({ arch, head: o.head, heads, numClasses, project: o.project });
  try {
    model.loadWeights(weights, { strict: o.strict, file: o.weights });
    const [B, , H, W] = x.shape;
    const per = 3 * H * W;
    const chunks = new Map<string, { shape: number[]; parts: Float32Array[] }>();
    const put = (name: string, t: InstanceType<typeof tf.Tensor>) => {
      const e = chunks.get(name) ?? { shape: t.shape.slice(1), parts: [] };
      e.parts.push(t.dataSync() as Float32Array);
      chunks.set(name, e);
    };
    for (let b0 = 0; b0 < B; b0 += batchSize) {
      const n = Math.min(batchSize, B - b0);
      tf.tidy(() => {
        const xb = tf.transpose(tf.tensor4d(x.data.subarray(b0 * per, (b0 + n) * per) as Float32Array, [n, 3, H, W]), [0, 2, 3, 1]);
        const out = model.forward(xb as any);
        for (const [t, v] of Object.entries(out.taps)) put(`tap.${t}`, tf.transpose(v, [0, 3, 1, 2]));
        for (const [t, v] of Object.entries(out.dots)) put(`attn.${t}`, v!);
        if (o.head !== 'gap') put('cls.final', out.token);
        put('logits', out.logits);
        put('logits.gap', out.logitsGap);
        put('probs', tf.softmax(out.logits));
      });
    }
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, e] of chunks) {
      const data = new Float32Array(e.parts.reduce((s, p) => s + p.length, 0));
      let off = 0;
      for (const p of e.parts) {
        data.set(p, off);
        off += p.length;
      }
      tensors[name] = { shape: [B, ...e.shape], data };
    }
    await writeSafetensors(o.out, tensors, { engine: 'tfjs', backend: backend.name, arch: arch.name, head: o.head, heads: String(heads) });
    return Object.keys(tensors);
  } finally {
    model.dispose();
  }
}

async function runOnnx(o: ForwardOpts, heads: number, batchSize: number): Promise<string[]> {
  // ml/onnx is another module's; load it by a computed specifier so this file compiles without it.
  let mod: { runForward?: (opts: Record<string, unknown>) => Promise<{ outputs: string[] }> } | undefined;
  for (const spec of ['../ml/onnx/index.js', '../ml/onnx/runtime.js']) {
    try {
      mod = await import(spec);
      if (mod?.runForward) break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    }
  }
  if (!mod?.runForward)
    throw new ForwardError('the onnx engine is not available in this build (ml/onnx has no runForward); use --engine tfjs');
  if (o.project) throw new ForwardError('--project is not supported by the onnx engine');
  if (!o.strict) throw new ForwardError('--no-strict is not supported by the onnx engine');
  const res = await mod.runForward({
    arch: o.arch,
    head: o.head,
    heads,
    numClasses: o.numClasses ? positiveInt('num-classes', o.numClasses) : undefined,
    weightsFile: o.weights,
    inputFile: o.input,
    inputKey: o.inputKey,
    outFile: o.out,
    batchSize,
    cacheDir: o.cacheDir,
  });
  return res.outputs;
}

export function forwardCommand(): Command {
  return new Command('forward')
    .description('run a model on an NCHW input tensor file; write taps, attention maps (dots), the final token and logits (NCHW)')
    .requiredOption(
      '--arch <name>',
      'architecture (resnet18…152, resnext50_32x4d, wide_resnet50_2, convnext_tiny…large, efficientnet_b0…b7, the -mini nets, …)',
    )
    .addOption(new Option('--head <kind>', 'classifier head').choices(['gap', 'ca-stream', 'ca-final']).default('ca-stream'))
    .option('--heads <n>', 'attention heads of the CA blocks (must divide every tap width)', '1')
    .requiredOption('--weights <file>', 'safetensors with torchvision / official CA-Stream names')
    .requiredOption('--input <file>', 'safetensors holding an NCHW float32 batch')
    .option('--input-key <name>', 'tensor name in the input file', 'input')
    .requiredOption('--out <file>', 'output safetensors')
    .addOption(new Option('--engine <engine>', 'execution engine').choices(['tfjs', 'onnx']).default('tfjs'))
    .addOption(
      new Option('--backend <name>', 'tfjs backend (default: best available; env CA_PIPE_BACKEND)').choices(['tensorflow', 'wasm', 'cpu']),
    )
    .option('--num-classes <n>', 'classes (default: rows of fc.weight)')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .option('--project', 'ca-final: the block has the C4→C4 projection (cls_surrogate.to_out.1.*)')
    .option('--cache-dir <dir>', 'onnx: where exported graphs are cached (default: runs/.cache/onnx)')
    .option('--no-strict', 'tfjs: load matching keys only instead of failing on missing / unexpected ones')
    .addHelpText(
      'after',
      [
        '',
        'Outputs: tap.<reading> for every feature map a CA block reads (ResNet: stem, layer1..4;',
        'ConvNeXt / EfficientNet: features.<i>), attn.<reading> (CA heads; B×heads×H×W pre-softmax',
        'scores), cls.final (CA heads), logits, logits.gap (GAP of the last reading + the classifier), probs.',
        '',
        'Example:',
        '  $ ca-pipe forward --arch resnet50 --head ca-stream --heads 8 \\',
        '      --weights ca_stream_r50.safetensors --input batch.safetensors --out out.safetensors --backend wasm',
      ].join('\n'),
    )
    .action(async (o: ForwardOpts) => {
      try {
        const heads = positiveInt('heads', o.heads);
        const batchSize = positiveInt('batch-size', o.batchSize);
        const names = o.engine === 'onnx' ? await runOnnx(o, heads, batchSize) : await runTfjs(o, heads, batchSize);
        process.stderr.write(`wrote ${o.out} (${names.join(', ')})\n`);
      } catch (e) {
        // Every error reaching here is about the user's files or options: message only, no stack.
        const nonFinite = ((e as { report?: { nonFinite?: string[] } }).report?.nonFinite?.length ?? 0) > 0;
        const hint =
          (e as Error).name === 'WeightsError' && o.strict && o.engine === 'tfjs' && !nonFinite
            ? ' — pass --no-strict to load the matching keys only'
            : '';
        process.stderr.write(`ca-pipe forward: ${(e as Error).message ?? String(e)}${hint}\n`);
        process.exitCode = 1;
      }
    });
}
