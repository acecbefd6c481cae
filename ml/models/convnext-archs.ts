// ConvNeXt's settings, apart from its tfjs code: the stage schemas list architecture names at
// start-up and must not load tfjs to do it.
export interface ConvNeXtArch {
  name: string;
  /** torchvision's block setting: (input channels, output channels or null for the last, blocks). */
  stages: Array<[number, number | null, number]>;
}

export const CONVNEXT_ARCHS: Record<string, ConvNeXtArch> = {
  convnext_tiny: {
    name: 'convnext_tiny',
    stages: [
      [96, 192, 3],
      [192, 384, 3],
      [384, 768, 9],
      [768, null, 3],
    ],
  },
  convnext_small: {
    name: 'convnext_small',
    stages: [
      [96, 192, 3],
      [192, 384, 3],
      [384, 768, 27],
      [768, null, 3],
    ],
  },
  convnext_base: {
    name: 'convnext_base',
    stages: [
      [128, 256, 3],
      [256, 512, 3],
      [512, 1024, 27],
      [1024, null, 3],
    ],
  },
  convnext_large: {
    name: 'convnext_large',
    stages: [
      [192, 384, 3],
      [384, 768, 3],
      [768, 1536, 27],
      [1536, null, 3],
    ],
  },
  // The reference fixture's net (test/fixtures/reference/convnext-mini.*).
  'convnext-mini': {
    name: 'convnext-mini',
    stages: [
      [16, 32, 1],
      [32, 64, 1],
      [64, 128, 2],
      [128, null, 1],
    ],
  },
};
