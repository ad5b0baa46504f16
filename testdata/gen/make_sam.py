#!/usr/bin/env python3
"""Golden fixtures for rfnet-native's Segment Anything (sam/) parity tests.

Runs the original SAM code (github.com/facebookresearch/segment-anything, its segment_anything/
folder extracted with `git archive` and put on PYTHONPATH) in the reference environment's PyTorch
(Debian's python3-torch, CPU; see ../shared/refenv/README.md) with Debian's Pillow:

    source /tmp/refenv/env.sh
    PYTHONPATH=/work/refsrc/segment-anything:$PYTHONPATH /usr/bin/python3 testdata/gen/make_sam.py --out testdata/sam

It writes, all from fixed seeds:

  tiny-sam/config.json        a tiny SAM-shaped model (128² input, patch 16, 3 encoder blocks with
  tiny-sam/model.safetensors  windows of 3 over the 8x8 grid, so windows need padding, and global
                              attention at block 1; 32-wide prompt/mask side) in transformers' SamModel
                              layout: its key names and its config.json sections vision_config,
                              prompt_encoder_config and mask_decoder_config
  sam-vit-base-manifest.json  the tensor names and shapes of facebook/sam-vit-base in that layout
                              (build_sam_vit_b's state dict, renamed), for the full-size loading test
  images/*.png                three small RGB test images (square, wide, tall)
  cases.json                  the prompt cases: image, points, labels
  parity.safetensors          per case (tensor names prefixed "<case>/"): the PIL resize of the image
                              ("resized", HWC uint8 values), the processor's pixel values, the scaled
                              points, the image embeddings, low-resolution logits, IoU predictions,
                              and the masks post-processed to the input size (logits)
  resize.json                 SHA-256 of PIL's bilinear resizes to the released 1024 longest side (and two
                              other sizes), for a bit-exact check of the Go resize at full size

Where transformers' SamModel and SamProcessor (v4.29.2, the version RFNet's authors pin) differ from
the original code, the fixtures follow transformers, since the released weights are used through it:

  * pixels are divided by 255 first and then normalized with the ImageNet mean and std
    (SamProcessor), where the original normalizes 0..255 values with mean and std times 255;
  * the two-way transformer's per-block layer norms (norm1..norm4) use eps 1e-6
    (mask_decoder_config.layer_norm_eps), where the original uses torch's default 1e-5; its final
    norm (norm_final_attn) keeps 1e-5 in both.

The key names come from the rules of transformers' models/sam/convert_sam_to_hf.py (substring
replacements applied in order, then the hypernetwork MLPs' layers renumbered); the mapping below is
written from those rules and checked to round-trip.
"""
import argparse
import hashlib
import json
import os
import re
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from segment_anything.build_sam import build_sam_vit_b
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

# transformers' SamImageProcessor defaults (ImageNet statistics, 1/255 rescale).
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# Ordered substring rules of convert_sam_to_hf.py: original name piece -> transformers name piece.
RULES = [
    ("iou_prediction_head.layers.0", "iou_prediction_head.proj_in"),
    ("iou_prediction_head.layers.1", "iou_prediction_head.layers.0"),
    ("iou_prediction_head.layers.2", "iou_prediction_head.proj_out"),
    ("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
    ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
    ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
    ("mask_downscaling.0", "mask_embed.conv1"),
    ("mask_downscaling.1", "mask_embed.layer_norm1"),
    ("mask_downscaling.3", "mask_embed.conv2"),
    ("mask_downscaling.4", "mask_embed.layer_norm2"),
    ("mask_downscaling.6", "mask_embed.conv3"),
    ("point_embeddings", "point_embed"),
    ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
    ("image_encoder", "vision_encoder"),
    ("neck.0", "neck.conv1"),
    ("neck.1", "neck.layer_norm1"),
    ("neck.2", "neck.conv2"),
    ("neck.3", "neck.layer_norm2"),
    ("patch_embed.proj", "patch_embed.projection"),
    (".norm", ".layer_norm"),
    ("blocks", "layers"),
]
HYPER = re.compile(r".*output_hypernetworks_mlps\.(\d+)\.layers\.(\d+).*")
HYPER_HF = {0: "proj_in", 1: "layers.0", 2: "proj_out"}
SHARED_PE = "shared_image_embedding.positional_embedding"
PROMPT_PE = "prompt_encoder.shared_embedding.positional_embedding"


def to_hf(name):
    for old, new in RULES:
        if old in name:
            name = name.replace(old, new)
    m = HYPER.match(name)
    if m:
        n = int(m.group(2))
        name = name.replace("layers.%d" % n, HYPER_HF[n])
    return name


# The inverse, for the round-trip check. The forward rules are plain substring replacements that
# only ever meet one part of the model each; undoing them needs that part named (transformers'
# "layers" and ".layer_norm" occur all over the decoder), so each inverse rule carries its scope.
INVERSE = [
    ("vision_encoder.layers.", "vision_encoder.blocks."),
    ("patch_embed.projection", "patch_embed.proj"),
    ("neck.conv1", "neck.0"), ("neck.layer_norm1", "neck.1"), ("neck.conv2", "neck.2"), ("neck.layer_norm2", "neck.3"),
    ("mask_embed.conv1", "mask_downscaling.0"), ("mask_embed.layer_norm1", "mask_downscaling.1"),
    ("mask_embed.conv2", "mask_downscaling.3"), ("mask_embed.layer_norm2", "mask_downscaling.4"),
    ("mask_embed.conv3", "mask_downscaling.6"),
    ("mask_decoder.upscale_conv1", "mask_decoder.output_upscaling.0"),
    ("mask_decoder.upscale_layer_norm", "mask_decoder.output_upscaling.1"),
    ("mask_decoder.upscale_conv2", "mask_decoder.output_upscaling.3"),
    ("prompt_encoder.point_embed.", "prompt_encoder.point_embeddings."),
    ("shared_embedding.positional_embedding", "pe_layer.positional_encoding_gaussian_matrix"),
    (".layer_norm", ".norm"),
    ("vision_encoder", "image_encoder"),
]


def from_hf(name):
    m = re.match(r"(.*(?:output_hypernetworks_mlps\.\d+|iou_prediction_head)\.)(proj_in|layers\.0|proj_out)(\..*)", name)
    if m:
        n = {"proj_in": 0, "layers.0": 1, "proj_out": 2}[m.group(2)]
        name = "%slayers.%d%s" % (m.group(1), n, m.group(3))
    for new, old in INVERSE:  # in order: the scoped rules take their norms before ".layer_norm" does
        name = name.replace(new, old)
    return name


def convert(state):
    """Original state dict -> transformers' names (pixel_mean/std are not weights there)."""
    out = {}
    for name, t in state.items():
        if name in ("pixel_mean", "pixel_std"):
            continue
        hf = to_hf(name)
        if from_hf(hf) != name:
            raise SystemExit("mapping does not round-trip: %s -> %s -> %s" % (name, hf, from_hf(hf)))
        if hf in out:
            raise SystemExit("two names map to %s" % hf)
        out[hf] = t.detach().clone().contiguous()
    # SamModel holds the positional matrix once, as shared_image_embedding, which its prompt encoder
    # shares; stored files name it either way (the Go loader accepts both).
    out[SHARED_PE] = out.pop(PROMPT_PE)
    return out


TINY = dict(image_size=128, patch_size=16, hidden_size=32, depth=3, heads=2, window=3, global_attn=[1],
            out_chans=32, mask_in_chans=16, dec_layers=2, dec_heads=2, dec_mlp=64, iou_hidden=32)


def build_tiny():
    t = TINY
    grid = t["image_size"] // t["patch_size"]
    enc = ImageEncoderViT(img_size=t["image_size"], patch_size=t["patch_size"], embed_dim=t["hidden_size"],
                          depth=t["depth"], num_heads=t["heads"], mlp_ratio=4, out_chans=t["out_chans"],
                          qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                          window_size=t["window"], global_attn_indexes=t["global_attn"])
    prompt = PromptEncoder(embed_dim=t["out_chans"], image_embedding_size=(grid, grid),
                           input_image_size=(t["image_size"], t["image_size"]), mask_in_chans=t["mask_in_chans"])
    dec = MaskDecoder(num_multimask_outputs=3,
                      transformer=TwoWayTransformer(depth=t["dec_layers"], embedding_dim=t["out_chans"],
                                                    mlp_dim=t["dec_mlp"], num_heads=t["dec_heads"]),
                      transformer_dim=t["out_chans"], iou_head_depth=3, iou_head_hidden_dim=t["iou_hidden"])
    apply_transformers_eps(dec)
    return enc, prompt, dec


def apply_transformers_eps(dec):
    # transformers' SamTwoWayAttentionBlock builds layer_norm1..4 with layer_norm_eps (1e-6); the
    # original uses torch's default 1e-5. The final norm is nn.LayerNorm's default in both.
    for layer in dec.transformer.layers:
        for n in (layer.norm1, layer.norm2, layer.norm3, layer.norm4):
            n.eps = 1e-6


def randomize(modules, gen):
    """Random weights where the original initializes constants (layer norms, zero position terms),
    so that every tensor's layout matters to the result."""
    for mod in modules:
        for name, p in mod.named_parameters():
            with torch.no_grad():
                if p.ndim == 1 and name.endswith("weight") and is_norm(mod, name):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
                elif p.ndim == 1 and name.endswith("bias") and is_norm(mod, name):
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))
                elif "rel_pos" in name or name == "pos_embed":
                    p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def is_norm(mod, pname):
    owner = mod.get_submodule(pname.rsplit(".", 1)[0]) if "." in pname else mod
    return isinstance(owner, torch.nn.LayerNorm) or type(owner).__name__ == "LayerNorm2d"


def hf_config(t):
    grid = t["image_size"] // t["patch_size"]
    return {
        "architectures": ["SamModel"],
        "model_type": "sam",
        "initializer_range": 0.02,
        "vision_config": {
            "hidden_size": t["hidden_size"], "output_channels": t["out_chans"],
            "num_hidden_layers": t["depth"], "num_attention_heads": t["heads"], "num_channels": 3,
            "image_size": t["image_size"], "patch_size": t["patch_size"], "hidden_act": "gelu",
            "layer_norm_eps": 1e-6, "qkv_bias": True, "mlp_ratio": 4.0, "mlp_dim": 4 * t["hidden_size"],
            "use_abs_pos": True, "use_rel_pos": True, "window_size": t["window"],
            "global_attn_indexes": t["global_attn"], "num_pos_feats": t["out_chans"] // 2,
        },
        "prompt_encoder_config": {
            "hidden_size": t["out_chans"], "image_size": t["image_size"], "patch_size": t["patch_size"],
            "image_embedding_size": grid, "mask_input_channels": t["mask_in_chans"], "num_point_embeddings": 4,
            "hidden_act": "gelu", "layer_norm_eps": 1e-6,
        },
        "mask_decoder_config": {
            "hidden_size": t["out_chans"], "hidden_act": "relu", "mlp_dim": t["dec_mlp"],
            "num_hidden_layers": t["dec_layers"], "num_attention_heads": t["dec_heads"],
            "attention_downsample_rate": 2, "num_multimask_outputs": 3, "iou_head_depth": 3,
            "iou_head_hidden_dim": t["iou_hidden"], "layer_norm_eps": 1e-6,
        },
    }


# ---- SamProcessor v4.29.2, the parts the fixtures need -------------------------------------------

def preprocess_shape(h, w, longest):
    scale = longest * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def pil_resize(img, longest):
    """transformers' resize: the uint8 array through PIL's bilinear filter (no reducing_gap)."""
    h, w = img.shape[:2]
    nh, nw = preprocess_shape(h, w, longest)
    return np.array(Image.fromarray(img).resize((nw, nh), resample=Image.BILINEAR))


def pixel_values(img, size):
    resized = pil_resize(img, size)
    x = (resized * (1 / 255)).astype(np.float32)  # rescale: float64 product, then float32
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    h, w = x.shape[:2]
    x = np.pad(x, ((0, size - h), (0, size - w), (0, 0)))  # zeros at the bottom and right
    return resized, torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def scale_points(points, h, w, size):
    nh, nw = preprocess_shape(h, w, size)
    p = np.array(points, dtype=np.float64)
    p[:, 0] *= nw / w
    p[:, 1] *= nh / h
    return p


def post_process(low_res, size, resized_hw, original_hw):
    m = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    m = m[..., : resized_hw[0], : resized_hw[1]]
    return F.interpolate(m, original_hw, mode="bilinear", align_corners=False)


# ---- images and cases ---------------------------------------------------------------------------

def make_image(gen, h, w):
    """Smooth colour blobs plus a little noise: structure at several scales, deterministic."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for _ in range(6):
        cy, cx = gen.uniform(0, h), gen.uniform(0, w)
        r = gen.uniform(0.1, 0.4) * max(h, w)
        col = gen.uniform(0, 255, size=3)
        wgt = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - wgt) + col * wgt
    img += gen.normal(0, 12, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


IMAGES = {"square": (96, 96), "wide": (120, 200), "tall": (150, 70)}  # name: (height, width)
CASES = [
    # The first point sits at the top-left corner of RFNet's attention cell (0, 0): pixel (0, 0).
    {"name": "square-corner", "image": "square", "points": [[0, 0]], "labels": [1]},
    {"name": "wide-point", "image": "wide", "points": [[137, 52]], "labels": [1]},
    # The corner of cell (r, c) = (15, 3) in a 70x150 image: (c*W/16, r*H/16) with integer division.
    {"name": "tall-cell-corner", "image": "tall", "points": [[3 * 70 // 16, 15 * 150 // 16]], "labels": [1]},
    {"name": "wide-two-points", "image": "wide", "points": [[40, 90], [150, 30]], "labels": [1, 0]},
]
# The released longest side (both directions), plus a strong shrink (a filter over about 5 pixels)
# and an odd size.
RESIZE_CHECKS = [("square", 1024), ("wide", 1024), ("tall", 1024), ("wide", 37), ("tall", 333)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/sam")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "tiny-sam"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    torch.set_grad_enabled(False)

    gen = torch.Generator().manual_seed(24)
    torch.manual_seed(24)
    enc, prompt, dec = build_tiny()
    randomize([enc, prompt, dec], gen)
    for m in (enc, prompt, dec):
        m.eval()
    state = {}
    for prefix, m in (("image_encoder.", enc), ("prompt_encoder.", prompt), ("mask_decoder.", dec)):
        for k, v in m.state_dict().items():
            state[prefix + k] = v
    hf = convert(state)
    save_file(hf, os.path.join(args.out, "tiny-sam", "model.safetensors"))
    with open(os.path.join(args.out, "tiny-sam", "config.json"), "w") as f:
        json.dump(hf_config(TINY), f, indent=2, sort_keys=True)
        f.write("\n")

    full = build_sam_vit_b()
    manifest = {k: list(v.shape) for k, v in convert(full.state_dict()).items()}
    with open(os.path.join(args.out, "sam-vit-base-manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    del full

    rng = np.random.default_rng(24)
    images = {}
    for name, (h, w) in IMAGES.items():
        images[name] = make_image(rng, h, w)
        Image.fromarray(images[name]).save(os.path.join(args.out, "images", name + ".png"))

    size = TINY["image_size"]
    tensors = {}
    dense_pe = prompt.get_dense_pe()
    for c in CASES:
        img = images[c["image"]]
        h, w = img.shape[:2]
        resized, px = pixel_values(img, size)
        pts = scale_points(c["points"], h, w, size)
        emb = enc(px[None])
        coords = torch.tensor(pts, dtype=torch.float32)[None]
        labels = torch.tensor(c["labels"], dtype=torch.int64)[None]
        sparse, dense = prompt(points=(coords, labels), boxes=None, masks=None)
        low, iou = dec(image_embeddings=emb, image_pe=dense_pe, sparse_prompt_embeddings=sparse,
                       dense_prompt_embeddings=dense, multimask_output=True)
        masks = post_process(low, size, resized.shape[:2], (h, w))
        n = c["name"] + "/"
        tensors[n + "resized"] = torch.from_numpy(resized.astype(np.float32))
        tensors[n + "pixel_values"] = px
        tensors[n + "points"] = torch.from_numpy(pts)
        tensors[n + "image_embeddings"] = emb[0]
        tensors[n + "low_res_logits"] = low[0]
        tensors[n + "iou"] = iou[0]
        tensors[n + "masks"] = masks[0]
        print("%-18s iou %s, mask pixels %s" % (c["name"], [round(float(v), 4) for v in iou[0]],
                                                [int((m > 0).sum()) for m in masks[0]]))
    save_file(tensors, os.path.join(args.out, "parity.safetensors"))
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1)
        f.write("\n")

    sums = []
    for name, longest in RESIZE_CHECKS:
        r = pil_resize(images[name], longest)
        sums.append({"image": name, "longest": longest, "height": r.shape[0], "width": r.shape[1],
                     "sha256": hashlib.sha256(np.ascontiguousarray(r).tobytes()).hexdigest()})
    with open(os.path.join(args.out, "resize.json"), "w") as f:
        json.dump(sums, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
