// Training building blocks; the loop and the train stage compose these.
export * from './optim.js';
export * from './schedule.js';
export * from './recipe.js';
export * from './losses.js';
export * from './sampling.js';
export * from './mixup.js';
export * from './ema.js';
export * from './clip.js';
export * from './checkpoint.js';
export * from './tensors.js';
export * from './meter.js';
export * from './jsonl.js';
export * from './tensorboard.js';
export * from './crc32c.js';
export * from './guards.js';
export * from './train-state.js';
export * from './progress.js';
