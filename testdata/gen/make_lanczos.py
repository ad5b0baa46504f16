#!/usr/bin/env python3
"""Reference Lanczos resizes for pipeline.ResizeLanczos: Pillow's Image.resize((w, h), Image.LANCZOS)
of make_refiner_img2img.py's input images, up and down, on one axis and on both.

    /usr/bin/python3 testdata/gen/make_lanczos.py --out testdata   (Debian's python3-pil, 9.4)

writes refiner/lanczos-<source>-to-<W>x<H>.png (8-bit RGB).
"""
import argparse
import os

import PIL
import PIL.Image

SIZES = {"refiner-input-64x48.png": [(96, 80), (40, 24), (64, 100), (30, 48), (128, 96)],  # 128x96: twice the size, as RFNet takes 512² to 1024²,
         "refiner-input-48x64.png": [(7, 9)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    out = ap.parse_args().out
    for src, sizes in SIZES.items():
        im = PIL.Image.open(os.path.join(out, "refiner", src)).convert("RGB")
        for w, h in sizes:
            name = f"lanczos-{src[len('refiner-input-'):-len('.png')]}-to-{w}x{h}.png"
            im.resize((w, h), PIL.Image.LANCZOS).save(os.path.join(out, "refiner", name))
            print(name, "Pillow", PIL.__version__)


if __name__ == "__main__":
    main()
