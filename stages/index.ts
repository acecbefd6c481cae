// Every stage kind the CLI knows. Keep imports here light: a kind's run() imports ml/ lazily.
import type { StageKind } from '../engine/contract.js';
import { commandStage } from './command/index.js';
import { evaluateStage } from './evaluate/index.js';
import { featuresStage } from './features/index.js';
import { indexStage } from './index/index.js';
import { reportStage } from './report/index.js';
import { saliencyStage } from './saliency/index.js';
import { trainStage } from './train/index.js';

export const STAGE_KINDS: StageKind[] = [commandStage, indexStage, trainStage, featuresStage, saliencyStage, evaluateStage, reportStage];
