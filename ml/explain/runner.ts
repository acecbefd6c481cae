// One loaded model, ready for the saliency and evaluation stages: forward sessions (probabilities;
// taps + logits + l4 dots) on ONNX Runtime or tfjs (ml/forward: the stage's `engine`, `auto` by
// rule and calibration), and the tfjs pooling head for gradients. Sessions are opened lazily, so a
// stage that only needs probabilities never exports the tap graph.
import { lastReading } from '../models/backbone.js';
import { chooseEngine, openForwardSession, type EngineChoice, type ForwardModelSpec } from '../forward/choose.js';
import type { EngineSetting, ForwardSession } from '../forward/session.js';
import { FullModel } from './full-model.js';
import { PoolingHeadRunner, type TapSet } from './head.js';
import type { LoadedModel } from './model-dir.js';

export interface RunnerOptions {
  /** Where exported graphs are cached (default: ml/onnx's runs/.cache/onnx). */
  cacheDir?: string;
  /** Images per forward call (default 16). */
  batchSize?: number;
  /** Engine of the forward passes (default onnx; the stages default to auto). */
  engine?: EngineSetting;
  /** Where `auto` records its calibration (default: ml/forward's per-machine directory). */
  calibrationDir?: string;
  /** Told when `auto` times the engines (the first time on a machine). */
  onCalibrate?: (what: string) => void;
}

export interface Features {
  taps: TapSet;
  /** B×classes. */
  logits: Float32Array;
  /** CA models: the l4 block's pre-softmax scores, B×heads×h×w. */
  dots?: Float32Array;
}

export class ModelRunner {
  readonly model: LoadedModel;
  readonly batchSize: number;
  private readonly cacheDir?: string;
  private readonly opts: RunnerOptions;
  private choice?: Promise<EngineChoice>;
  private probsSession?: Promise<ForwardSession>;
  private logitsSession?: Promise<ForwardSession>;
  private featureSession?: Promise<ForwardSession>;
  private headRunner?: PoolingHeadRunner;
  private full?: FullModel;
  /** Forward passes (images) run so far, for throughput figures. */
  forwardImages = 0;

  constructor(model: LoadedModel, opts: RunnerOptions = {}) {
    this.model = model;
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 16));
    this.cacheDir = opts.cacheDir;
    this.opts = opts;
  }

  get size(): number {
    return this.model.card.input_size;
  }

  get isCa(): boolean {
    return this.model.card.head !== 'gap';
  }

  private spec(outputs: string[]): ForwardModelSpec {
    const m = this.model;
    return {
      arch: m.arch,
      head: m.card.head,
      heads: m.card.heads,
      numClasses: m.card.num_classes,
      weights: m.weights,
      weightsFile: m.weightsName ?? m.weightsFile,
      outputs,
      inputSize: m.card.input_size,
      cacheDir: this.cacheDir,
    };
  }

  /** The engine every forward pass of this runner uses, chosen once (on first use). */
  engine(): Promise<EngineChoice> {
    this.choice ??= chooseEngine(this.opts.engine ?? 'onnx', this.spec(['probs']), {
      batch: this.batchSize,
      calibrationDir: this.opts.calibrationDir,
      onCalibrate: this.opts.onCalibrate,
    });
    return this.choice;
  }

  private async open(outputs: string[]): Promise<ForwardSession> {
    return openForwardSession((await this.engine()).engine, this.spec(outputs));
  }

  head(): PoolingHeadRunner {
    this.headRunner ??= new PoolingHeadRunner(
      this.model.card.head,
      this.model.card.heads,
      this.model.arch,
      this.model.weights,
      this.model.weightsName ?? this.model.weightsFile,
    );
    return this.headRunner;
  }

  /** The whole model in tfjs, for gradients through the backbone (FullGrad); built on first use. */
  fullModel(): FullModel {
    this.full ??= new FullModel(this.model);
    return this.full;
  }

  /** The last feature map's tap (ResNet: layer4): the CAM target and the CA attention map's block. */
  get lastTap(): string {
    return lastReading(this.model.arch).tap;
  }

  private tapNames(): string[] {
    return this.model.card.head === 'ca-stream' ? this.model.arch.caStream().map((b) => b.tap) : [this.lastTap];
  }

  /** Softmax probabilities of n normalised NCHW images (n×classes), in chunks of batchSize. */
  probs = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    this.probsSession ??= this.open(['probs']);
    return this.classScores(await this.probsSession, 'probs', batch, n);
  };

  /** Logits of n normalised NCHW images (n×classes), in chunks of batchSize. */
  logits = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    this.logitsSession ??= this.open(['logits']);
    return this.classScores(await this.logitsSession, 'logits', batch, n);
  };

  private async classScores(s: ForwardSession, output: 'probs' | 'logits', batch: Float32Array, n: number): Promise<Float32Array> {
    const side = this.size;
    const per = 3 * side * side;
    if (batch.length !== n * per) throw new Error(`${output}: ${batch.length} values are not ${n} images of 3×${side}×${side}`);
    const classes = this.model.card.num_classes;
    const out = new Float32Array(n * classes);
    for (let s0 = 0; s0 < n; s0 += this.batchSize) {
      const b = Math.min(this.batchSize, n - s0);
      const r = await s.run(batch.subarray(s0 * per, (s0 + b) * per), b, side, side, [output]);
      out.set(r[output].data, s0 * classes);
      this.forwardImages += b;
    }
    return out;
  }

  /** Taps the head needs, logits and (CA) the l4 dots for n images. */
  async features(batch: Float32Array, n: number): Promise<Features> {
    const names = this.tapNames().map((t) => `tap.${t}`);
    const outputs = [...names, 'logits', ...(this.isCa ? [`attn.${this.lastTap}`] : [])];
    this.featureSession ??= this.open(outputs);
    const s = await this.featureSession;
    const side = this.size;
    const r = await s.runChunked(batch, n, side, side, this.batchSize, outputs);
    this.forwardImages += n;
    const taps: TapSet = {};
    for (const t of this.tapNames()) taps[t] = { shape: r[`tap.${t}`].dims, data: r[`tap.${t}`].data };
    return { taps, logits: r.logits.data, ...(this.isCa && { dots: r[`attn.${this.lastTap}`].data }) };
  }

  async release(): Promise<void> {
    const ss = [this.probsSession, this.logitsSession, this.featureSession];
    this.probsSession = this.logitsSession = this.featureSession = undefined;
    for (const s of ss) if (s) await (await s).release();
    this.headRunner?.dispose();
    this.headRunner = undefined;
    this.full?.dispose();
    this.full = undefined;
  }
}
