// ResNet-50 with the GAP head and deterministic random weights as a loaded model directory would
// give it: what the evaluation benchmarks time (their figures do not depend on trained weights).
import type { LoadedModel } from '../ml/explain/model-dir.js';
import { getArch, tapChannels, tapSizes } from '../ml/models/arch.js';
import { getBackbone } from '../ml/models/backbones.js';
import { randomResNetWeights } from './forward.js';

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export function randomResNet50(size: number): LoadedModel {
  const arch = getArch('resnet50');
  const f = tapSizes(size).layer4;
  return {
    dir: '<memory>',
    card: {
      format: 'ca-pipe.model/1',
      arch: 'resnet50',
      head: 'gap',
      heads: 1,
      num_classes: 1000,
      input_size: size,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      classes: [],
      weights: '<random>',
    },
    arch: getBackbone(arch),
    weightsFile: '<random weights>',
    weights: randomResNetWeights(arch, 'gap', 1000),
    feature: { K: tapChannels(arch).layer4, h: f, w: f },
  };
}
