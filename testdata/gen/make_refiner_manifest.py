#!/usr/bin/env python3
"""Tensor manifests of the full-size SDXL refiner 1.0 (stabilityai/stable-diffusion-xl-refiner-1.0), in
the format of ../shared/data/checkpoint-manifests (see its README): every tensor name with its dtype
and shape, for the diffusers folder and for the single file sd_xl_refiner_1.0.safetensors.

Runs in the reference environment (diffusers v0.21.4 on Debian's PyTorch, CPU; see
../shared/refenv/README.md), after make_fixtures.py's environment is set up:

    source /tmp/refenv/env.sh
    /usr/bin/python3 testdata/gen/make_refiner_manifest.py --out internal/randckpt/manifests

It also writes those configs as diffusers saves them (--configs, default
testdata/models/sdxl-refiner-1.0-configs/{unet,vae,text_encoder_2}/config.json and
scheduler/scheduler_config.json), which the Go variant SDXLRefiner() is checked against.

The released configs below (unet/, text_encoder_2/, vae/config.json of the refiner repository) are
given to diffusers' own classes (UNet2DConditionModel, AutoencoderKL; the text encoder is
make_refiner.py's CLIPTextModelWithProjection, transformers not being in the environment) with every
parameter on torch's meta device, so nothing is allocated; the names and shapes are those of their
state dicts, and the single file's come from make_refiner.py's conversion (diffusers' own name maps)
of the same state dicts. They are derived from the configs, not read from the released files, which
may hold extra non-model keys (a loader ignores what lies outside its prefixes). Weights are listed
as F16, as in the released fp16 files.
"""
import argparse
import contextlib
import json
import os
import sys

import torch
import torch.nn as nn

from diffusers import AutoencoderKL, UNet2DConditionModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_refiner as mr  # noqa: E402

# stabilityai/stable-diffusion-xl-refiner-1.0, unet/config.json (the keys that are not diffusers' defaults).
UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[384, 768, 1536, 1536],
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    attention_head_dim=[6, 12, 24, 24], transformer_layers_per_block=4, cross_attention_dim=1280,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2560, norm_num_groups=32, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0)
# text_encoder_2/config.json (OpenCLIP ViT-bigG/14's text tower as CLIPTextModelWithProjection).
TEXT = {"architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model", "vocab_size": 49408,
        "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 20,
        "max_position_embeddings": 77, "hidden_act": "gelu", "layer_norm_eps": 1e-5, "projection_dim": 1280,
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "torch_dtype": "float16"}
# vae/config.json (the SDXL autoencoder).
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=[128, 256, 512, 512],
           down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, norm_num_groups=32,
           sample_size=1024, scaling_factor=0.13025, force_upcast=True)


@contextlib.contextmanager
def on_meta():
    """Every parameter registered meanwhile moves to the meta device before its initializer runs
    (as accelerate's init_empty_weights does; accelerate is not in the environment)."""
    original = nn.Module.register_parameter

    def register(module, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def manifest(sd):
    return {k: {"dtype": "F16", "shape": list(v.shape)} for k, v in sorted(sd.items())}


def write(path, obj, nested):
    """One tensor per line, sorted by name, as the shared manifests are laid out."""
    line = lambda k, v: f'{json.dumps(k)}: {{"dtype": "{v["dtype"]}", "shape": {json.dumps(v["shape"])}}}'
    with open(path, "w") as f:
        if nested:
            f.write("{\n" + ",\n".join(f'  {json.dumps(c)}: {{\n' + ",\n".join("    " + line(k, v) for k, v in m.items())
                                       + "\n  }" for c, m in sorted(obj.items())) + "\n}\n")
        else:
            f.write("{\n" + ",\n".join("  " + line(k, v) for k, v in obj.items()) + "\n}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="internal/randckpt/manifests")
    ap.add_argument("--configs", default="testdata/models/sdxl-refiner-1.0-configs",
                    help="where the configs go as diffusers writes them, for the Go variant's test")
    args = ap.parse_args()
    out = args.out
    with on_meta():
        unet = UNet2DConditionModel(**UNET)
        vae = AutoencoderKL(**VAE)
        text = mr.CLIPTextModelWithProjection(TEXT)
    unet_sd, vae_sd, text_sd = unet.state_dict(), vae.state_dict(), text.state_dict()
    # diffusers accepted every key: the built models' configs say back what was given.
    for model, cfg in ((unet, UNET), (vae, VAE)):
        for k, v in cfg.items():
            got = model.config[k]
            assert (list(got) if isinstance(got, (list, tuple)) else got) == v, (k, got, v)
    unet.save_config(os.path.join(args.configs, "unet"))
    vae.save_config(os.path.join(args.configs, "vae"))
    for name, cfg in (("text_encoder_2/config.json", TEXT), ("scheduler/scheduler_config.json", mr.SCHEDULER_CONFIG)):
        os.makedirs(os.path.dirname(os.path.join(args.configs, name)), exist_ok=True)
        with open(os.path.join(args.configs, name), "w") as f:
            json.dump(cfg, f, indent=2)
    single = mr.single_file(unet_sd, vae_sd, text_sd, TEXT)
    single["conditioner.embedders.0.model.logit_scale"] = torch.empty((), device="meta")
    folder = {"text_encoder_2/model.safetensors": manifest(text_sd),
              "unet/diffusion_pytorch_model.safetensors": manifest(unet_sd),
              "vae/diffusion_pytorch_model.safetensors": manifest(vae_sd)}
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "sdxl-refiner-diffusers.json"), folder, True)
    write(os.path.join(out, "sdxl-refiner-single-file.json"), manifest(single), False)
    count = lambda sd: sum(v.numel() for v in sd.values())
    print(f"unet {len(unet_sd)} tensors, {count(unet_sd)} parameters; vae {len(vae_sd)}, {count(vae_sd)}; "
          f"text {len(text_sd)}, {count(text_sd)}; single file {len(single)} tensors")


if __name__ == "__main__":
    main()
