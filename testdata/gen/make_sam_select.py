#!/usr/bin/env python3
"""Golden fixtures for RFNet's SAM mask selection (rfnet-algorithm.md section 8.1; pipeline/rfnet's SAMMask).

Runs the tiny SAM model of testdata/sam (made by make_sam.py, loaded back here into the original
segment-anything modules) on the test images of testdata/sam/images with 16x16 attention maps, and
follows the reference's sam_refine_attn / select_mask step by step:

    source /tmp/refenv/env.sh
    PYTHONPATH=/work/refsrc/segment-anything:testdata/gen:$PYTHONPATH /usr/bin/python3 testdata/gen/make_sam_select.py --out testdata/sam

The reference smooths with scipy.ndimage.gaussian_filter and opens the box-mode mask with
ndimage.binary_erosion/binary_dilation; scipy is not in the reference environment, so gaussian_filter
(mode "reflect", truncate 4) and the two morphology calls (default cross structure, border 0) are
written out below in numpy. The 64x64 candidates come from torch.nn.functional.interpolate
(bilinear, align_corners=False) on the 0/1 masks as the reference does; the reference takes the
16x16 ones with cv2.resize (INTER_LINEAR on 0/255 uint8), whose non-zero cells are those of the same
interpolate (every weight of a 4x shrink is at least 1/4), so interpolate stands in for cv2 here.

It writes select.json: per case the image, the attention map, the mode, the IoU head's bias shift
(see IOU_SHIFT), and the reference's point,
cell, box, coarse mask, the three candidates (64 strings of 0/1 each), sizes, confidences, coarse
IoUs, scores and the chosen index. The attention maps are Gaussian blobs: one peaking in the corner
cell, and ones searched from fixed seeds for a case where the confidence rule and one where the IoU
rule overrides the largest candidate.
"""
import argparse
import copy
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import make_sam

SIGMA_POINT, SIGMA_BOX = 1.5, 0.1
TH_POINT, TH_BOX = 0.25, 0.05
MIN_CONF, MIN_IOU = 0.85, 0.25
MASK = 64  # the latent grid at 512x512
# The random tiny model's confidences stay near 0, below 0.85 for every candidate, so that rule never
# picks. Cases marked iou_shift run it with this added to the IoU head's output bias (proj_out.bias:
# the single-mask output, then the three candidates), which spreads them around 0.85.
IOU_SHIFT = [0.0, 0.9, 0.6, 0.8]


def gaussian_filter(a, sigma, truncate=4.0):
    """scipy.ndimage.gaussian_filter for a 2-D float64 array, mode 'reflect' (d c b a | a b c d)."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * x * x / (sigma * sigma))
    k /= k.sum()
    out = a.astype(np.float64)
    for axis in (0, 1):  # scipy's order: axis 0, then 1
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="symmetric")
        acc = np.zeros_like(out)
        for j in range(2 * r + 1):
            sl = [slice(None), slice(None)]
            sl[axis] = slice(j, j + out.shape[axis])
            acc += k[j] * p[tuple(sl)]
        out = acc
    return out


def cross_morph(m, erode):
    """ndimage.binary_erosion / binary_dilation, one iteration, the 4-connected cross, border 0."""
    p = np.pad(m, 1, constant_values=False)
    nb = [p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]]
    return np.logical_and.reduce(nb) if erode else np.logical_or.reduce(nb)


def preprocess_mask(smooth, th, n_erode_dilate=0):
    n = smooth - smooth.min()
    with np.errstate(invalid="ignore"):
        n /= n.max()
    m = n > th
    for _ in range(n_erode_dilate):
        m = cross_morph(m, True)
    for _ in range(n_erode_dilate):
        m = cross_morph(m, False)
    return m


def binary_mask_to_box(mask, w_scale, h_scale):
    ys, xs = np.where(mask)
    height, width = mask.shape
    ymin, ymax = max(ys.min() - 1, 0), min(ys.max() + 1, height)
    xmin, xmax = max(xs.min() - 1, 0), min(xs.max() + 1, width)
    return [int(xmin * w_scale), int(ymin * h_scale), int(xmax * w_scale), int(ymax * h_scale)]


def load_tiny(path):
    enc, prompt, dec = make_sam.build_tiny()
    hf = load_file(os.path.join(path, "model.safetensors"))
    hf[make_sam.PROMPT_PE] = hf.pop(make_sam.SHARED_PE)
    state = {make_sam.from_hf(k): v for k, v in hf.items()}
    for prefix, m in (("image_encoder.", enc), ("prompt_encoder.", prompt), ("mask_decoder.", dec)):
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        m.load_state_dict(own)
        m.eval()
    return enc, prompt, dec


def run_sam(model, img, points=None, box=None):
    enc, prompt, dec = model
    size = make_sam.TINY["image_size"]
    h, w = img.shape[:2]
    resized, px = make_sam.pixel_values(img, size)
    emb = enc(px[None])
    pts = boxes = None
    if points is not None:
        p = make_sam.scale_points(points, h, w, size)
        pts = (torch.tensor(p, dtype=torch.float32)[None], torch.ones(1, len(points), dtype=torch.int64))
    if box is not None:
        b = make_sam.scale_points([box[:2], box[2:]], h, w, size).reshape(1, 4)
        boxes = torch.tensor(b, dtype=torch.float32)
    sparse, dense = prompt(points=pts, boxes=boxes, masks=None)
    low, iou = dec(image_embeddings=emb, image_pe=prompt.get_dense_pe(), sparse_prompt_embeddings=sparse,
                   dense_prompt_embeddings=dense, multimask_output=True)
    masks = make_sam.post_process(low, size, resized.shape[:2], (h, w)) > 0
    return masks[0], iou[0].numpy()


def refine(model, img, attn, use_box):
    """sam_refine_attn with the reference's parameters; returns everything it computes."""
    h, w = img.shape[:2]
    ah, aw = attn.shape
    smooth = gaussian_filter(attn, SIGMA_BOX if use_box else SIGMA_POINT)
    r, c = np.unravel_index(smooth.argmax(), smooth.shape)
    out = {"cell": [int(r), int(c)], "point": [int(c) * w // aw, int(r) * h // ah]}
    if use_box:
        coarse = preprocess_mask(smooth, TH_BOX, 1)
        box = binary_mask_to_box(coarse, 1, 1)
        box = [box[0] * w // aw, box[1] * h // ah, box[2] * w // aw, box[3] * h // ah]
        out["box"] = box
        masks, conf = run_sam(model, img, box=box)
    else:
        coarse = preprocess_mask(smooth, TH_POINT)
        masks, conf = run_sam(model, img, points=[out["point"]])
    cand = F.interpolate(masks[None].float(), (MASK, MASK), mode="bilinear").bool()[0]
    small = F.interpolate(cand[None].float(), (ah, aw), mode="bilinear").bool()[0].numpy()
    cand = cand.numpy()
    inter = (coarse[None] & small).sum(axis=(1, 2))
    union = (coarse[None] | small).sum(axis=(1, 2))
    ious = inter / (union + 1e-6)
    sizes = cand.sum(axis=(1, 2))
    smax = sizes.max()
    scores = sizes - (conf < MIN_CONF) * smax - (ious < MIN_IOU) * smax
    out.update({
        "coarse": ["".join("1" if v else "0" for v in row) for row in coarse],
        "candidates": [["".join("1" if v else "0" for v in row) for row in m] for m in cand],
        "sizes": [int(s) for s in sizes], "confidences": [float(v) for v in conf],
        "coarse_ious": [float(v) for v in ious], "scores": [int(s) for s in scores],
        "index": int(np.argmax(scores)),
    })
    return out


def blob(rng, n=16):
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    a = np.zeros((n, n))
    for _ in range(rng.integers(1, 4)):
        cy, cx, s = rng.uniform(0, n), rng.uniform(0, n), rng.uniform(1, 4)
        a += rng.uniform(0.2, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return a + 0.02 * rng.random((n, n))


def classify(res):
    """Which rule alone moved the choice away from the largest candidate (None: neither or both)."""
    largest = int(np.argmax(res["sizes"]))
    if res["index"] == largest:
        return None
    low_conf = res["confidences"][largest] < MIN_CONF
    low_iou = res["coarse_ious"][largest] < MIN_IOU
    if low_conf and not low_iou:
        return "confidence"
    if low_iou and not low_conf:
        return "iou"
    return None


def shift_iou(model):
    """The tiny model with IOU_SHIFT added to its IoU head's output bias."""
    enc, prompt, dec = model
    dec = copy.deepcopy(dec)
    dec.iou_prediction_head.layers[-1].bias += torch.tensor(IOU_SHIFT)
    return enc, prompt, dec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/sam")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    model = load_tiny(os.path.join(args.out, "tiny-sam"))
    images = {n: np.array(Image.open(os.path.join(args.out, "images", n + ".png")).convert("RGB"))
              for n in make_sam.IMAGES}

    cases = []
    corner = np.zeros((16, 16))
    corner[0, 0], corner[0, 1], corner[1, 0] = 1.0, 0.5, 0.4
    for name in ("square", "tall"):
        cases.append({"name": name + "-corner", "image": name, "box": False, "attention": corner})
    shifted = shift_iou(model)
    rng = np.random.default_rng(81)
    found = {}
    for i in range(200):
        a = blob(rng)
        for name in make_sam.IMAGES:
            for use_box in (False, True):
                for shift in (False, True):
                    res = refine(shifted if shift else model, images[name], a, use_box)
                    key = (classify(res), use_box)
                    if key[0] and key not in found:
                        found[key] = {"name": "%s-%s-%s" % (name, key[0], "box" if use_box else "point"),
                                      "image": name, "box": use_box, "iou_shift": shift, "attention": a}
        if len(found) == 4:
            break
    cases += [found[k] for k in sorted(found, key=str)]
    a = blob(np.random.default_rng(5))
    cases.append({"name": "wide-box", "image": "wide", "box": True, "attention": a})
    cases.append({"name": "wide-point-shifted", "image": "wide", "box": False, "iou_shift": True, "attention": a})

    out = []
    for c in cases:
        shift = c.get("iou_shift", False)
        res = refine(shifted if shift else model, images[c["image"]], c["attention"], c["box"])
        print("%-24s index %d sizes %s conf %s ious %s" % (c["name"], res["index"], res["sizes"],
              [round(v, 3) for v in res["confidences"]], [round(v, 3) for v in res["coarse_ious"]]))
        out.append(dict(name=c["name"], image=c["image"], box=c["box"], iou_shift=IOU_SHIFT if shift else None,
                        attention=[[float(v) for v in row] for row in c["attention"]], want=res))
    with open(os.path.join(args.out, "select.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
