// EfficientNet's settings, apart from its tfjs code: the stage schemas list architecture names at
// start-up and must not load tfjs to do it.
export const BASE: Array<[number, number, number, number, number, number]> = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

export interface EfficientNetArch {
  name: string;
  width: number;
  depth: number;
  /** BatchNorm ε and momentum: 1e-5 / 0.1, but 1e-3 / 0.01 for B5–B7 (torchvision builds those so). */
  bnEps: number;
  bnMomentum: number;
}

const eff = (name: string, width: number, depth: number, bnEps = 1e-5, bnMomentum = 0.1): EfficientNetArch => ({
  name,
  width,
  depth,
  bnEps,
  bnMomentum,
});

export const EFFICIENTNET_ARCHS: Record<string, EfficientNetArch> = {
  efficientnet_b0: eff('efficientnet_b0', 1.0, 1.0),
  efficientnet_b1: eff('efficientnet_b1', 1.0, 1.1),
  efficientnet_b2: eff('efficientnet_b2', 1.1, 1.2),
  efficientnet_b3: eff('efficientnet_b3', 1.2, 1.4),
  efficientnet_b4: eff('efficientnet_b4', 1.4, 1.8),
  efficientnet_b5: eff('efficientnet_b5', 1.6, 2.2, 1e-3, 0.01),
  efficientnet_b6: eff('efficientnet_b6', 1.8, 2.6, 1e-3, 0.01),
  efficientnet_b7: eff('efficientnet_b7', 2.0, 3.1, 1e-3, 0.01),
  // The reference fixture's net (test/fixtures/reference/efficientnet-mini.*).
  'efficientnet-mini': eff('efficientnet-mini', 0.5, 0.5),
};
