// The initialisation generator lives in ml/random with the others.
export { InitRng as Rng, fillNormal, fillUniform } from '../random/init.js';
