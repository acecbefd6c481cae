// bench:forward's GFLOP figures: the multiply-adds counted on the exported graphs against
// torchvision's published counts (its "GFLOPS" are multiply-adds: ResNet-50 4.09,
// ConvNeXt-T 4.46, EfficientNet-B0 0.39 at 224) and against the ResNet table's own count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { graphMacs } from '../../bench/forward-families.js';
import { resnetMacs } from '../../bench/forward.js';
import { getArch } from '../../ml/models/arch.js';

test('multiply-adds from the exported graphs match torchvision and the ResNet table', () => {
  const r50 = graphMacs('resnet50', 224);
  assert.equal(r50, resnetMacs(getArch('resnet50'), 224));
  const near = (got: number, want: number, rel: number, name: string) =>
    assert.ok(Math.abs(got / want - 1) < rel, `${name}: ${(got / 1e9).toFixed(3)} G vs ${want / 1e9} G`);
  near(r50, 4.09e9, 0.01, 'resnet50');
  near(graphMacs('convnext_tiny', 224), 4.46e9, 0.01, 'convnext_tiny');
  near(graphMacs('efficientnet_b0', 224), 0.39e9, 0.02, 'efficientnet_b0');
});
