// The epoch/batch loop shared by every training mode: schedule, checkpoints, resume, validation,
// best-weights tracking, metrics (JSONL + live TensorBoard) and progress. What a step does (which
// weights, which forward pass) is the task's business; the loop only needs the state to save.
//
// Resume is exact because nothing the loop feeds a step carries hidden state: the lr is a closed
// form of the position, batch b of epoch e is a function of (seed, e, b) (see sources.ts), and the
// task derives its own per-batch randomness (mixup, dropout) from the same triple. A checkpoint
// therefore needs only the weights, optimizer/EMA state, position, meters and best-so-far.
//
// The metrics log holds no clock readings (no wall time, no images/s): it becomes an output, and
// outputs must be byte-identical when a run is repeated or resumed, so that downstream stages stay
// cached (early cutoff). Throughput is measured here and handed back in LoopResult.throughput for
// the stage's provenance, the progress line and the stage log.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { loadLatestCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { Ema } from './ema.js';
import { assertFinite } from './guards.js';
import { JsonlWriter, readJsonl, type JsonRecord } from './jsonl.js';
import { MeanMeter } from './meter.js';
import type { Optimizer } from './optim.js';
import { beginPhase, type ProgressSink } from './progress.js';
import type { LrSchedule } from './schedule.js';
import type { BatchSource, SourceBatch } from './sources.js';
import { TensorBoardWriter } from './tensorboard.js';
import { captureTrainState, restoreTrainState } from './train-state.js';

export interface StepResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Correct top-1 predictions in the batch. */
  correct: number;
  n: number;
}

export interface EvalResult {
  loss: number;
  acc: number;
  n: number;
}

export interface StepPosition {
  epoch: number;
  /** Batch index within the epoch. */
  iter: number;
  /** Optimizer steps done before this one. */
  iteration: number;
  lr: number;
}

export interface TrainTask {
  /** Everything that changes during training and must be checkpointed (parameters and BN buffers). */
  stateVars: Record<string, tf.Variable>;
  optimizer: Optimizer;
  ema: Ema | null;
  train: BatchSource;
  /** One optimizer step on `batch`. */
  step(batch: SourceBatch, pos: StepPosition): Promise<StepResult>;
  /** Validation of the weights that would be saved (the EMA average when EMA is on). */
  evaluate(): Promise<EvalResult>;
  /** The weights to save as final/best, in file layout with official names. */
  exportWeights(): Record<string, TensorToWrite>;
}

export type LoopProgress = ProgressSink;

export interface LoopLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface LoopOptions {
  task: TrainTask;
  epochs: number;
  schedule: LrSchedule;
  /** Survives interruption: checkpoints, metrics so far, best weights, live TensorBoard. */
  scratchDir: string;
  /** Checkpoint after every N-th epoch (the last epoch is always checkpointed). 0 = only the last. */
  checkpointEveryEpochs: number;
  /** Also checkpoint every N optimizer steps; 0 = off. */
  checkpointEveryIters: number;
  /** Write an 'iter' metrics record every N steps; 0 = off. */
  logEvery: number;
  /** Identifies the configuration; a checkpoint written under another one is not resumed. */
  configDigest: string;
  progress?: LoopProgress;
  log?: LoopLogger;
  signal?: AbortSignal;
  /** Called after every optimizer step (tests use it to interrupt at a chosen batch). */
  onStep?(pos: StepPosition): void;
}

export interface EpochRecord {
  [key: string]: number | string | null;
  type: 'epoch';
  epoch: number;
  step: number;
  loss: number;
  acc: number;
  lr: number;
  val_loss: number;
  val_acc: number;
}

/** Step-time throughput of the steps this process ran (not those before a resume). */
export interface Throughput {
  images: number;
  /** Seconds spent inside task.step (data loading and validation excluded). */
  seconds: number;
  /** images / seconds, or null when this process ran no step (resumed after the last one). */
  imagesPerSecond: number | null;
  /** Per epoch this process stepped in (a resumed epoch counts only its remaining batches). */
  epochs: Array<{ epoch: number; images: number; seconds: number; imagesPerSecond: number }>;
}

export interface LoopResult {
  epochs: EpochRecord[];
  best: { epoch: number; value: number } | null;
  /** Checkpoint iteration the run resumed from, or null for a fresh start. */
  resumedFrom: number | null;
  /** Timings of this process: provenance material, never written to the outputs. */
  throughput: Throughput;
  /** Files in scratchDir the caller copies to the outputs. */
  files: { metrics: string; best: string | null };
}

const META_BEST = 'val_loss';

function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  return r instanceof Error ? r : new Error(typeof r === 'string' ? r : 'training aborted');
}

function rate(images: number, seconds: number): number {
  return images / Math.max(seconds, 1e-9);
}

interface LoopFiles {
  ckptDir: string;
  metricsFile: string;
  bestFile: string;
}

/** What a checkpoint holds besides the weights and optimizer/EMA state. */
interface LoopState {
  epoch: number;
  batchInEpoch: number;
  iteration: number;
  best: { metric: string; value: number; epoch: number } | null;
  epochRecords: EpochRecord[];
  lossMeter: MeanMeter;
  accMeter: MeanMeter;
  resumedFrom: number | null;
}

interface MetricsLogs {
  metrics: JsonlWriter;
  tb: TensorBoardWriter;
}

/** The steps of the current epoch that this process ran, and the lr its record reports. */
interface EpochSteps {
  images: number;
  seconds: number;
  lr: number;
}

export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const files: LoopFiles = {
    ckptDir: join(o.scratchDir, 'checkpoints'),
    metricsFile: join(o.scratchDir, 'metrics.jsonl'),
    bestFile: join(o.scratchDir, 'best.safetensors'),
  };
  await mkdir(files.ckptDir, { recursive: true });
  const log = o.log ?? { info() {}, warn() {} };
  const state = await resumeOrStartFresh(o, files, log);
  const logs = await openMetricsLogs(o.scratchDir, files.metricsFile, state.resumedFrom);
  const run = new LoopRun(o, files, log, state, logs);
  try {
    while (state.epoch < o.epochs) await run.runEpoch();
  } finally {
    logs.metrics.close();
    logs.tb.close();
  }
  return run.result();
}

async function resumeOrStartFresh(o: LoopOptions, files: LoopFiles, log: LoopLogger): Promise<LoopState> {
  const { task } = o;
  const state: LoopState = {
    epoch: 0,
    batchInEpoch: 0,
    iteration: 0,
    best: null,
    epochRecords: [],
    lossMeter: new MeanMeter(),
    accMeter: new MeanMeter(),
    resumedFrom: null,
  };
  const ck = await loadLatestCheckpoint(files.ckptDir, { warn: (m) => log.warn(m) });
  if (ck && ck.meta.extra?.config !== o.configDigest) {
    // Stale state of another configuration (e.g. an older version of this code): start over.
    log.warn(`ignoring checkpoint ${ck.path}: it was written for another configuration; training starts from the beginning`);
    await rm(files.ckptDir, { recursive: true, force: true });
    await rm(files.bestFile, { force: true });
    await mkdir(files.ckptDir, { recursive: true });
  } else if (ck) {
    const meta = restoreTrainState({ vars: task.stateVars, optimizer: task.optimizer, ema: task.ema }, ck);
    state.epoch = meta.epoch;
    state.batchInEpoch = meta.batchInEpoch;
    state.iteration = meta.iteration;
    state.best = meta.best;
    state.epochRecords = meta.metrics as EpochRecord[];
    const meters = meta.extra?.meters as { loss: { sum: number; count: number }; acc: { sum: number; count: number } } | undefined;
    if (meters) {
      state.lossMeter.load(meters.loss);
      state.accMeter.load(meters.acc);
    }
    state.resumedFrom = state.iteration;
    log.info(
      `resuming from ${ck.path}: epoch ${state.epoch + 1}/${o.epochs}, batch ${state.batchInEpoch}/${task.train.numBatches}, step ${state.iteration}`,
    );
  }
  if (state.best && !existsSync(files.bestFile)) {
    log.warn(
      `${files.bestFile} is missing although epoch ${state.best.epoch + 1} was the best so far; the best weights will be those of a later epoch`,
    );
    state.best = null;
  }
  return state;
}

async function openMetricsLogs(scratchDir: string, metricsFile: string, resumedFrom: number | null): Promise<MetricsLogs> {
  // Records past the checkpoint were logged by the interrupted process and will be logged again.
  const metrics = new JsonlWriter(metricsFile, {
    keep: (r: JsonRecord) => resumedFrom !== null && typeof r.step === 'number' && r.step <= resumedFrom,
  });
  const tbDir = join(scratchDir, 'tb-live');
  await mkdir(tbDir, { recursive: true });
  const tb = new TensorBoardWriter(tbDir, resumedFrom !== null ? { purgeStep: resumedFrom + 1 } : {});
  return { metrics, tb };
}

/**
 * Epochs from the (possibly resumed) state to the end. A class because stepping, validation and
 * checkpointing all move the one position a checkpoint must capture whole.
 */
class LoopRun {
  private stepSeconds = 0;
  private stepImages = 0;
  private readonly epochTimes: Throughput['epochs'] = [];
  private readonly perEpoch: number;

  constructor(
    private readonly o: LoopOptions,
    private readonly files: LoopFiles,
    private readonly log: LoopLogger,
    private readonly state: LoopState,
    private readonly logs: MetricsLogs,
  ) {
    this.perEpoch = o.task.train.numBatches;
  }

  async runEpoch(): Promise<void> {
    const { o, state } = this;
    beginPhase(o.progress, {
      total: this.perEpoch,
      unit: 'batch',
      message: `epoch ${state.epoch + 1}/${o.epochs}`,
      done: state.batchInEpoch,
    });
    const steps = await this.stepThroughEpoch();
    if (o.signal?.aborted) throw abortError(o.signal);
    if (state.batchInEpoch < this.perEpoch)
      throw new Error(`epoch ${state.epoch + 1}: the data source produced ${state.batchInEpoch} of ${this.perEpoch} batches`);
    await this.validateAndRecord(steps);
    await this.advanceEpoch();
  }

  private async stepThroughEpoch(): Promise<EpochSteps> {
    const { o, state } = this;
    const steps: EpochSteps = { images: 0, seconds: 0, lr: o.schedule.at({ epoch: state.epoch, iter: state.batchInEpoch }) };
    for await (const batch of o.task.train.batches(state.epoch, state.batchInEpoch)) {
      if (o.signal?.aborted) throw abortError(o.signal);
      await this.step(batch, steps);
    }
    return steps;
  }

  private async step(batch: SourceBatch, steps: EpochSteps): Promise<void> {
    const { o, state } = this;
    const { epoch } = state;
    const lr = o.schedule.at({ epoch, iter: batch.index });
    steps.lr = lr;
    const pos: StepPosition = { epoch, iter: batch.index, iteration: state.iteration, lr };
    const t0 = performance.now();
    const r = await o.task.step(batch, pos);
    const dt = (performance.now() - t0) / 1000;
    assertFinite(r.loss, { iteration: state.iteration, epoch, batch: batch.index, lr });
    this.stepSeconds += dt;
    this.stepImages += r.n;
    steps.seconds += dt;
    steps.images += r.n;
    state.lossMeter.add(r.loss, r.n);
    state.accMeter.add(r.correct / r.n, r.n);
    state.iteration++;
    state.batchInEpoch = batch.index + 1;
    if (o.logEvery > 0 && state.iteration % o.logEvery === 0) {
      this.logs.metrics.write({ type: 'iter', epoch, iter: batch.index, step: state.iteration, loss: r.loss, acc: r.correct / r.n, lr });
      this.logs.tb.scalars(state.iteration, { 'train/iter_loss': r.loss, 'train/iter_acc': r.correct / r.n, 'train/lr': lr });
    }
    o.progress?.tick(1);
    o.progress?.message(
      `epoch ${epoch + 1}/${o.epochs} · loss ${state.lossMeter.mean.toFixed(4)} · acc ${(100 * state.accMeter.mean).toFixed(1)}% · ${rate(steps.images, steps.seconds).toFixed(1)} img/s`,
    );
    o.onStep?.(pos);
    if (o.checkpointEveryIters > 0 && state.iteration % o.checkpointEveryIters === 0 && state.batchInEpoch < this.perEpoch)
      await this.save();
  }

  private async validateAndRecord(steps: EpochSteps): Promise<void> {
    const { o, state } = this;
    const { epoch } = state;
    const { lr } = steps;
    o.progress?.message(`epoch ${epoch + 1}/${o.epochs} · validating`);
    const v = await o.task.evaluate();
    const rec: EpochRecord = {
      type: 'epoch',
      epoch,
      step: state.iteration,
      loss: state.lossMeter.mean,
      acc: state.accMeter.mean,
      lr,
      val_loss: v.loss,
      val_acc: v.acc,
    };
    state.epochRecords.push(rec);
    this.logs.metrics.write(rec);
    this.logs.tb.scalars(epoch + 1, {
      'epoch/train_loss': rec.loss,
      'epoch/train_acc': rec.acc,
      'epoch/val_loss': v.loss,
      'epoch/val_acc': v.acc,
      'epoch/lr': lr,
    });
    if (steps.images > 0)
      this.epochTimes.push({ epoch, images: steps.images, seconds: steps.seconds, imagesPerSecond: rate(steps.images, steps.seconds) });
    const speed = steps.images > 0 ? `, ${rate(steps.images, steps.seconds).toFixed(1)} img/s` : '';
    this.log.info(
      `epoch ${epoch + 1}/${o.epochs}: loss ${rec.loss.toFixed(4)}, acc ${(100 * rec.acc).toFixed(2)}%, val loss ${v.loss.toFixed(4)}, val acc ${(100 * v.acc).toFixed(2)}%${speed}`,
    );
    if (Number.isFinite(v.loss) && (state.best === null || v.loss < state.best.value)) {
      await writeSafetensors(this.files.bestFile, o.task.exportWeights(), { epoch: String(epoch) });
      state.best = { metric: META_BEST, value: v.loss, epoch };
    }
  }

  private async advanceEpoch(): Promise<void> {
    const { o, state } = this;
    state.epoch++;
    state.batchInEpoch = 0;
    state.lossMeter.reset();
    state.accMeter.reset();
    const every = o.checkpointEveryEpochs;
    if (state.epoch === o.epochs || (every > 0 && state.epoch % every === 0)) await this.save();
  }

  private async save(): Promise<void> {
    const { o, state } = this;
    const data = captureTrainState(
      { vars: o.task.stateVars, optimizer: o.task.optimizer, ema: o.task.ema },
      {
        epoch: state.epoch,
        batchInEpoch: state.batchInEpoch,
        iteration: state.iteration,
        best: state.best,
        metrics: state.epochRecords,
        extra: { config: o.configDigest, meters: { loss: state.lossMeter.state(), acc: state.accMeter.state() } },
      },
    );
    await saveCheckpoint(this.files.ckptDir, data, { keep: 2 });
  }

  result(): LoopResult {
    const { best } = this.state;
    const { stepImages, stepSeconds } = this;
    return {
      epochs: this.state.epochRecords,
      best: best ? { epoch: best.epoch, value: best.value } : null,
      resumedFrom: this.state.resumedFrom,
      // A run resumed after its last step (crash while writing outputs) did no steps of its own.
      throughput: {
        images: stepImages,
        seconds: stepSeconds,
        imagesPerSecond: stepImages > 0 ? rate(stepImages, stepSeconds) : null,
        epochs: this.epochTimes,
      },
      files: { metrics: this.files.metricsFile, best: best ? this.files.bestFile : null },
    };
  }
}

/** File name of the output event file: fixed, since TensorBoard's time.host naming would vary. */
export const OUTPUT_TB_FILE = 'events.out.tfevents.0.ca-pipe';

/**
 * TensorBoard scalars for the outputs, rebuilt from the metrics log: a resumed run's live event
 * files overlap (TensorBoard's purge handles that, plain readers do not), the log does not.
 * The file must be a function of the metrics alone, so its name is fixed (OUTPUT_TB_FILE) and
 * every event's wall_time is the count of optimizer steps done when it was logged (seconds since
 * 1970-01-01T00:00:00Z, as TensorBoard reads it): the "relative" axis then shows steps.
 */
export function writeTensorBoardFromMetrics(metricsFile: string, dir: string): string {
  const tb = new TensorBoardWriter(dir, { host: 'ca-pipe', now: () => 0 });
  try {
    for (const r of readJsonl(metricsFile)) {
      const num = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : Number(r[k]));
      const wallTime = num('step');
      if (r.type === 'iter') {
        tb.scalars(num('step'), { 'train/iter_loss': num('loss'), 'train/iter_acc': num('acc'), 'train/lr': num('lr') }, wallTime);
      } else if (r.type === 'epoch') {
        tb.scalars(
          num('epoch') + 1,
          {
            'epoch/train_loss': num('loss'),
            'epoch/train_acc': num('acc'),
            'epoch/val_loss': num('val_loss'),
            'epoch/val_acc': num('val_acc'),
            'epoch/lr': num('lr'),
          },
          wallTime,
        );
      }
    }
  } finally {
    tb.close();
  }
  return tb.path;
}

/** Copy a scratch file into the outputs (scratch stays intact for a rerun after a failed commit). */
export async function copyOut(src: string, dst: string): Promise<void> {
  await rm(dst, { force: true });
  await copyFile(src, dst);
}
