// The data pipeline's generator lives in ml/random with the others.
export { Rng, type RngState } from '../random/xoshiro.js';
