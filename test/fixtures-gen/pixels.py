#!/usr/bin/env python3
"""Makes test/fixtures/pixels/: test photographs and the torchvision + PIL reference tensors.

Run once, by hand, never from the tests (they only read what this wrote):

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision pillow numpy
    /tmp/tv/bin/pip download --no-deps scikit-image matplotlib -d /tmp/wheels
    (cd /tmp/wheels && unzip -q 'scikit_image-*.whl' 'skimage/data/*' && unzip -q 'matplotlib-*.whl' 'matplotlib/mpl-data/sample_data/*')
    /tmp/tv/bin/python test/fixtures-gen/pixels.py /tmp/wheels

The references are what torchvision computes on PIL images; they are stored losslessly as the
uint8 image that enters ToTensor plus torchvision's ToTensor + Normalize value of every byte
(`table`), and this script checks that table[u8] equals torchvision's float32 tensor bit for bit
before writing anything (see README.md).
"""
import gzip
import io
import json
import os
import sys
import types

import numpy as np
import PIL
import torch

# The local CPU torch came with a CUDA build of torchvision whose compiled ops (_C.so) cannot
# load; the transforms used here are pure Python on PIL images and never call them. Skipping the
# module that registers fake kernels for those ops lets `import torchvision` succeed.
sys.modules.setdefault('torchvision._meta_registrations', types.ModuleType('torchvision._meta_registrations'))
import torchvision  # noqa: E402
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'pixels')


def pil_loader(path):
    # torchvision.datasets.folder.pil_loader: no EXIF transpose, no colour management.
    with open(path, 'rb') as f:
        return Image.open(f).convert('RGB')


def make_images(src):
    sk = os.path.join(src, 'skimage', 'data')
    mpl = os.path.join(src, 'matplotlib', 'mpl-data', 'sample_data')
    src = os.path.abspath(src)
    sk, mpl = os.path.abspath(sk), os.path.abspath(mpl)
    img_dir = os.path.join(OUT, 'images')
    os.makedirs(img_dir, exist_ok=True)
    made = {}

    def copy(name, path):
        with open(path, 'rb') as f, open(os.path.join(img_dir, name), 'wb') as g:
            g.write(f.read())
        made[name] = os.path.relpath(path, src)

    # As shipped: a portrait JPEG, an Adobe RGB (1998) JPEG, a 1411×1411 JPEG (≥ 4× 256).
    copy('hopper.jpg', os.path.join(mpl, 'grace_hopper.jpg'))
    copy('rocket-adobergb.jpg', os.path.join(sk, 'rocket.jpg'))
    copy('retina-1411.jpg', os.path.join(sk, 'retina.jpg'))

    coffee = Image.open(os.path.join(sk, 'coffee.png')).convert('RGB')
    chelsea = Image.open(os.path.join(sk, 'chelsea.png')).convert('RGB')
    camera = Image.open(os.path.join(sk, 'camera.png'))

    # CMYK JPEG (PIL's naive RGB→CMYK; PIL writes Adobe-inverted CMYK with an APP14 marker).
    coffee.resize((450, 300), Image.BILINEAR).convert('CMYK').save(os.path.join(img_dir, 'coffee-cmyk.jpg'), quality=85)
    # Greyscale JPEG (1 component).
    camera.convert('L').save(os.path.join(img_dir, 'camera-grey.jpg'), quality=85)
    # RGBA PNG: alpha a radial ramp, the colour under transparent pixels kept.
    small = chelsea.resize((300, 200), Image.BILINEAR)
    w, h = small.size
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    alpha = np.clip(255 * (1.2 - r), 0, 255).astype(np.uint8)
    rgba = np.dstack([np.asarray(small), alpha])
    Image.fromarray(rgba, 'RGBA').save(os.path.join(img_dir, 'chelsea-alpha.png'))
    # Palette PNG with a transparent index (convert('RGB') ignores the transparency).
    pal = chelsea.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    pal.info['transparency'] = 0
    pal.save(os.path.join(img_dir, 'chelsea-palette.png'), transparency=0)
    # 16-bit RGB PNG (PIL keeps the high byte of each sample).
    # The low bytes are a pattern, not the high byte repeated, so rounding instead of taking the
    # high byte would show.
    yy, xx = np.mgrid[0:100, 0:150]
    low = ((xx * 7 + yy * 13) % 256).astype(np.uint16)[:, :, None]
    rgb16 = np.asarray(coffee.resize((150, 100), Image.BILINEAR)).astype(np.uint16) * 256 + low
    _save_png16(rgb16, 2, os.path.join(img_dir, 'coffee-rgb16.png'))
    # 16-bit RGBA and greyscale + alpha PNGs (PIL opens them as RGBA and LA from the high bytes).
    alpha16 = (np.linspace(0, 65535, 75)[None, :, None] * np.ones((50, 1, 1))).astype(np.uint16)
    _save_png16(np.dstack([rgb16[::2, ::2], alpha16]), 6, os.path.join(img_dir, 'coffee-rgba16.png'))
    grey16 = (np.asarray(camera.convert('L').resize((96, 96), Image.BILINEAR)).astype(np.uint16) * 256
              + ((np.arange(96)[:, None] * 5 + np.arange(96)[None, :] * 3) % 256).astype(np.uint16))
    _save_png16(np.dstack([grey16, (grey16 // 2)]), 4, os.path.join(img_dir, 'camera-la16.png'))
    # 16-bit greyscale PNG (mode I;16): PIL's convert('RGB') clips the samples at 255, so the
    # values here are twice the 8-bit camera image (half of them clip).
    g16 = np.asarray(camera.convert('L').resize((160, 160), Image.BILINEAR)).astype(np.uint16) * 2
    Image.fromarray(g16).save(os.path.join(img_dir, 'camera-grey16.png'))
    # EXIF Orientation 6: PIL (and so torchvision's loader) does not rotate.
    exif = Image.Exif()
    exif[0x0112] = 6
    chelsea.save(os.path.join(img_dir, 'chelsea-exif6.jpg'), quality=85, exif=exif)
    return made


def _save_png16(arr, colour_type, path):
    # Pillow cannot write these 16-bit PNGs; write the PNG by hand (filter 0, zlib).
    import struct
    import zlib
    h, w, _ = arr.shape
    raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0))
    png += chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)


def byte_table():
    # torchvision's ToTensor + Normalize of every byte value, per channel (float32).
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (1, 1, 3))
    t = T.Normalize(MEAN, STD)(T.ToTensor()(Image.fromarray(ramp, 'RGB')))
    return t[:, 0, :]


def check_lossless(u8, tensor, table):
    rebuilt = torch.stack([table[c][torch.from_numpy(u8[:, :, c].astype(np.int64))] for c in range(3)])
    assert rebuilt.dtype == tensor.dtype == torch.float32
    assert torch.equal(rebuilt, tensor), 'table[u8] differs from the torchvision tensor'


def save_u8(name, u8):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(u8))
    with open(os.path.join(OUT, 'refs', name), 'wb') as f:
        f.write(gzip.compress(buf.getvalue(), compresslevel=9, mtime=0))


# Train crops (top, left, height, width) as RandomResizedCrop's get_params could return them:
# a shrinking and an enlarging box, one flipped.
TRAIN_CASES = [
    ('rocket-adobergb.jpg', (37, 101, 301, 389), False),
    ('retina-1411.jpg', (200, 150, 1000, 1100), True),
    ('hopper.jpg', (300, 180, 150, 120), False),
    ('coffee-cmyk.jpg', (10, 20, 250, 200), True),
]


# Bare resizes of random 8-bit images (Image.resize(..., BILINEAR)): shrinking, enlarging, one
# axis only, and both ways at once, on sizes small enough to store inputs and outputs.
RESAMPLE_CASES = [((31, 23), (9, 7)), ((7, 5), (29, 19)), ((40, 12), (40, 33)), ((17, 30), (5, 30)), ((33, 9), (12, 26)), ((1, 13), (3, 2))]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    made = make_images(sys.argv[1])
    os.makedirs(os.path.join(OUT, 'refs'), exist_ok=True)
    table = byte_table()
    pre = T.Compose([T.Resize(256), T.CenterCrop(224)])
    post = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    full = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    manifest = {
        'made_with': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'pillow': PIL.__version__},
        'mean': MEAN,
        'std': STD,
        'table': [[float(v) for v in table[c]] for c in range(3)],
        'eval': [],
        'train': [],
    }
    for name in sorted(os.listdir(os.path.join(OUT, 'images'))):
        img = pil_loader(os.path.join(OUT, 'images', name))
        u8 = np.asarray(pre(img))
        check_lossless(u8, full(img), table)
        ref = name.rsplit('.', 1)[0] + '.eval.npy.gz'
        save_u8(ref, u8)
        mode = Image.open(os.path.join(OUT, 'images', name)).mode
        manifest['eval'].append({'image': name, 'pil_mode': mode, 'width': img.width, 'height': img.height,
                                 'size': 224, 'resize': 256, 'ref': ref})
    for name, (top, left, h, w), flip in TRAIN_CASES:
        img = pil_loader(os.path.join(OUT, 'images', name))
        crop = F.resized_crop(img, top, left, h, w, [224, 224], T.InterpolationMode.BILINEAR)
        if flip:
            crop = F.hflip(crop)
        u8 = np.asarray(crop)
        check_lossless(u8, post(crop), table)
        ref = name.rsplit('.', 1)[0] + '.train.npy.gz'
        save_u8(ref, u8)
        manifest['train'].append({'image': name, 'box': {'top': top, 'left': left, 'height': h, 'width': w},
                                  'flip': flip, 'size': 224, 'ref': ref})
    manifest['resample'] = []
    rng = np.random.default_rng(18)
    for i, ((sw, sh), (dw, dh)) in enumerate(RESAMPLE_CASES):
        src = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        out = np.asarray(Image.fromarray(src, 'RGB').resize((dw, dh), Image.BILINEAR))
        save_u8(f'resample-{i}.in.npy.gz', src)
        save_u8(f'resample-{i}.out.npy.gz', out)
        manifest['resample'].append({'from': [sw, sh], 'to': [dw, dh], 'input': f'resample-{i}.in.npy.gz', 'ref': f'resample-{i}.out.npy.gz'})
    manifest['sources'] = made
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
