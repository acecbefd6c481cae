// Faithfulness and localisation metrics, evaluation protocols and statistics (model-independent).
export * from './protocol.js';
export * from './blur.js';
export * from './upsample.js';
export * from './maps.js';
export * from './score.js';
export * from './confidence.js';
export * from './insdel.js';
export * from './localisation.js';
export * from './stats.js';
