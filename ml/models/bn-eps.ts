// BatchNorm's ε (torchvision's default), shared by the tfjs model and the ONNX exporter, which
// must not load the tfjs model to know it.
export const BN_EPS = 1e-5;
