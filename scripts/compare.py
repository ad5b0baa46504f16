#!/usr/bin/env python3
"""Side-by-side table of rfnet-native bench-engine and the PyTorch baseline.

usage: compare.py OUT_DIR   (reads OUT_DIR/engine-*.json, OUT_DIR/torch-baseline.json and the
                             diffusers-eager rows of OUT_DIR/rows.jsonl -- scripts/torch_refiner.py's
                             SDXL refiner -- as scripts/gpu-check.sh writes them)

The ratio is rfnet-native's median over PyTorch's: below 1 rfnet-native is faster.
The first-version target of issue 4 is sd21/f16/denoise50 <= 1.5.
"""
import glob
import json
import os
import sys

CALLS = [("text encoder", "text"), ("unet, batch 2", "unet"), ("vae decode", "vae"), ("denoise: 50", "denoise50"),
         ("refiner unet, batch 2", "unet"), ("refine: 15 of 50 ", "refine15")]


def main():
    out = sys.argv[1]
    torch_path = os.path.join(out, "torch-baseline.json")
    base = {}
    if os.path.exists(torch_path):
        with open(torch_path) as f:
            base = {r["name"]: r["median_ms"] for r in json.load(f)["rows"]}
    rows_path = os.path.join(out, "rows.jsonl")
    if os.path.exists(rows_path):
        with open(rows_path) as f:
            for line in f:
                r = json.loads(line) if line.strip() else {}
                if r.get("engine") == "diffusers-eager":
                    base[f"{r['model']}/{r['dtype']}/{r['call']}"] = r["ms"]
    print(f"{'model/dtype/call':28s} {'rfnet ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for path in sorted(glob.glob(os.path.join(out, "engine-*.json"))):
        with open(path) as f:
            eng = json.load(f)
        for t in eng["timings"]:
            key = next((k for prefix, k in CALLS if t["name"].startswith(prefix)), None)
            if key is None:
                continue
            name = f"{eng['model']}/{eng['dtype']}/{key}"
            ref = base.get(name)
            ratio = f"{t['median_ms'] / ref:7.2f}" if ref else "      -"
            ref_s = f"{ref:10.1f}" if ref else "         -"
            print(f"{name:28s} {t['median_ms']:10.1f} {ref_s} {ratio}")


if __name__ == "__main__":
    main()
