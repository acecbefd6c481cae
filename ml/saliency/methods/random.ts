// Baseline: seeded uniform noise (AD/AI can be gamed by uninformative maps; design §4).
import { randomBaseline } from '../baselines.js';
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'random',
    title: 'Random baseline',
    needs: 'none',
    inputs: ['h', 'w', 'seed'],
    resolution: 'any',
    classSpecific: false,
    caOnly: false,
    seeded: true,
  },
  (i) => randomBaseline(i.h, i.w, i.seed),
);
