// The tfjs part of `npm run bench:evaluate`: Opti-CAM, FullGrad (whole-model gradients) and ROAD
// (imputation + perturbed forwards) per image on ResNet-50 224, random weights, on one tfjs backend.
// The backend is chosen once per process, so bench/evaluate.ts runs this once per backend:
//   node dist/bench/evaluate-tfjs.js --backend wasm|tensorflow
//   BENCH_TFJS_IMAGES=n (default 2), BENCH_OPTICAM_STEPS=n (default the official 50)
import { loadavg } from 'node:os';
import { initBackend, type BackendName } from '../ml/backend/index.js';
import { benchRoad } from './evaluate-road.js';
import { benchNewMethods } from './saliency-methods.js';

const i = process.argv.indexOf('--backend');
const want = (i > 0 ? process.argv[i + 1] : 'wasm') as BackendName;
const backend = await initBackend(want);
if (backend.name !== want) throw new Error(`asked for ${want}, got ${backend.name}: ${backend.reason}`);
const images = Number(process.env.BENCH_TFJS_IMAGES ?? 2);
const steps = process.env.BENCH_OPTICAM_STEPS === undefined ? undefined : Number(process.env.BENCH_OPTICAM_STEPS);
console.log(`tfjs backend ${backend.name}, load ${loadavg()[0].toFixed(2)}`);
await benchNewMethods({ images, opticamSteps: steps });
await benchRoad({ images, engine: 'tfjs' });
