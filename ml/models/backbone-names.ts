// Every architecture name the backbone registry (backbones.ts) knows, from the families' settings
// tables alone: the stage schemas need the list at CLI start-up, before any tfjs code loads.
import { ARCHS } from './arch.js';
import { CONVNEXT_ARCHS } from './convnext-archs.js';
import { EFFICIENTNET_ARCHS } from './efficientnet-archs.js';

export function backboneNames(): string[] {
  return [ARCHS, CONVNEXT_ARCHS, EFFICIENTNET_ARCHS].flatMap((t) => Object.keys(t));
}
