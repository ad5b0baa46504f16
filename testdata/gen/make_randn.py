#!/usr/bin/env python3
"""Writes testdata/rng/randn.json: torch.randn(n) on the CPU for small and
odd sizes, so rng's Go generator can be compared with torch's both on its
16-value Box-Muller blocks (n >= 16) and on its scalar path (n < 16).

Needs only PyTorch (Debian's python3-torch 1.13 works):
    /usr/bin/python3 testdata/gen/make_randn.py --out testdata
"""
import argparse
import json
import os

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="testdata")
args = ap.parse_args()

cases = []
for seed in [0, 1, 42, 123456789, 2**32 - 1, 2**40 + 7]:
    for n in list(range(1, 18)) + [31, 33, 64, 100]:
        g = torch.Generator().manual_seed(seed)
        cases.append({"seed": seed, "n": n, "values": torch.randn(n, generator=g).tolist()})
# A latent-shaped draw (SD's [1, 4, H/8, W/8] at 8x8 and 8x24 pixels) takes the same path as its numel.
for shape in [(1, 4, 1, 1), (1, 4, 1, 3)]:
    g = torch.Generator().manual_seed(7)
    cases.append({"seed": 7, "n": int(torch.Size(shape).numel()), "shape": list(shape),
                  "values": torch.randn(shape, generator=g).flatten().tolist()})

path = os.path.join(args.out, "rng", "randn.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
print("wrote", path, len(cases), "cases")
