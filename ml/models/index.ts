// Public surface of the model code.
export * from './arch.js';
export {
  createModel,
  CaPipeModel,
  BN_EPS,
  BN_MOMENTUM,
  type ModelOptions,
  type BackboneOptions,
  type ForwardOptions,
  type ForwardOutput,
  type NamedArray,
  type TrainMode,
} from './model.js';
export {
  caHeadForward,
  headTaps,
  linear,
  type CaHeadParams,
  type CaBlockParams,
  type HeadOutput,
  type HeadRunOptions,
  type Taps,
} from './ca-head.js';
export { attentionPool, attentionPoolNaive, type PoolOptions, type PoolResult } from './attention.js';
export { paramSpecs, oihwToHwio, hwioToOihw, type ParamSpec, type HeadKind } from './params.js';
export { backboneSpec } from './resnet-backbone.js';
export { lastReading, type Backbone, type CaBlockSpec, type Reading } from './backbone.js';
export { backboneNames, getBackbone } from './backbones.js';
export { matchWeights, WeightsError, type LoadReport, type TensorLike } from './weights.js';
export { Rng } from './rng.js';
