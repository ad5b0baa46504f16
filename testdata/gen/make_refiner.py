#!/usr/bin/env python3
"""Golden fixtures for the SDXL refiner's models (issue 23): a tiny random refiner-shaped model in
both layouts and single calls of its text encoder, UNet and VAE.

Runs in the reference environment (diffusers v0.21.4 + open_clip v2.20.0 on Debian's PyTorch, CPU;
see ../shared/refenv/README.md), after make_fixtures.py (it reuses that script's tokenizer vocabulary,
text-model layers and random fills):

    source /tmp/refenv/env.sh
    /usr/bin/python3 testdata/gen/make_refiner.py --out testdata

It writes, all from fixed seeds:

  models/tiny-sdxl-refiner/              diffusers folder shaped like stabilityai/stable-diffusion-xl-refiner-1.0:
                                         text_encoder_2/ (CLIPTextModelWithProjection, GELU, a non-square
                                         text_projection), tokenizer_2/ (the tiny vocabulary, padding with "!"),
                                         unet/ (the refiner's block types, addition_embed_type "text_time",
                                         per-block transformer_layers_per_block, linear projections),
                                         vae/ (scaling_factor 0.13025, force_upcast), scheduler/ (Euler); fp16
                                         weights (the text encoder fp32; every value is exact in both)
  models/tiny-sdxl-refiner.safetensors   the same weights in the original single-file layout (fp16), with
                                         the names of sd_xl_refiner_1.0.safetensors
  parity/tiny-sdxl-refiner-components.safetensors
                                         token ids, prompt embeddings and pooled embeddings of three prompts
                                         (plain, empty, past 77 tokens); one UNet call with time ids and
                                         pooled embeddings; a VAE encode (posterior mean) and decode

The text encoder is a small torch module with transformers' CLIPTextModelWithProjection parameter
names (transformers is not in the reference environment); it is checked against open_clip's
TextTransformer on the single file's weights. The single file is made with diffusers' own name maps
(scripts/convert_diffusers_to_original_stable_diffusion.py for the UNet and VAE, with the SDXL script's
label_emb entries added, and scripts/convert_diffusers_to_original_sdxl.py for the OpenCLIP text
encoder; that script leaves text_projection under its diffusers name, so it is stored as the matrix
the original code multiplies by, x @ P, as the released file has it) and checked by converting it back
with diffusers' convert_from_ckpt.py: every tensor must return unchanged.
"""
import argparse
import ast
import contextlib
import json
import math
import os
import shutil
import sys
import types

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402  (also applies its torch 1.13 attention workaround)

REFENV = fx.REFENV
sys.path.insert(0, os.path.join(REFENV, "diffusers", "scripts"))
import convert_diffusers_to_original_sdxl as sdxl_to_original  # noqa: E402
import convert_diffusers_to_original_stable_diffusion as to_original  # noqa: E402
from open_clip.transformer import TextTransformer  # noqa: E402

NAME = "tiny-sdxl-refiner"
PROMPTS = {
    "plain": "a photo of an astronaut riding a horse on the moon",
    "empty": "",  # the refiner encodes an empty negative prompt as text (force_zeros_for_empty_prompt false)
    "long": fx.LONG_PROMPT,
}

# The refiner's text encoder, scaled down: width 32 in 2 heads, 3 layers, projection to 24 (the
# released one projects 1280 to 1280; a non-square projection shows a transposed matrix).
TEXT = dict(width=32, layers=3, heads=2, projection_dim=24)
# stabilityai/stable-diffusion-xl-refiner-1.0's unet/config.json, scaled down: heads of 8 channels
# (the refiner's are 64) and transformer_layers_per_block as a per-block list (the refiner's is 4
# everywhere) so that down, mid and up blocks each get their own. The time ids keep their 256
# channels: SDXL's conditioner fixes that width whatever the model's size, and a single file does
# not record it (convert_from_ckpt.py assumes 256 as well).
UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 16, 32, 32),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=[2, 2, 4, 4], transformer_layers_per_block=[1, 2, 3, 2], cross_attention_dim=TEXT["width"],
    use_linear_projection=True, norm_num_groups=8, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=5 * 256 + TEXT["projection_dim"])
SEED = 23

# The refiner's scheduler/scheduler_config.json.
SCHEDULER_CONFIG = {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.21.4", "beta_end": 0.012,
                    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
                    "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
                    "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
                    "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False}


class CLIPTextModelWithProjection(fx.CLIPTextModel):
    """transformers' CLIPTextModelWithProjection names: text_model.* and text_projection.weight (no
    bias). forward returns what SDXL's encode_prompt reads: hidden_states[-2] (the output of the
    penultimate layer, before the final layer norm) and text_embeds (the final layer norm's output at
    the first end-of-text token, the highest id, projected)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.text_projection = nn.Linear(cfg["hidden_size"], cfg["projection_dim"], bias=False)
        # diffusers' converter reads this buffer; transformers does not save it.
        self.text_model.embeddings.register_buffer("position_ids", torch.arange(77)[None], persistent=False)

    def forward(self, ids):
        m = self.text_model
        x = m.embeddings.token_embedding(ids) + m.embeddings.position_embedding(torch.arange(ids.shape[1]))
        mask = torch.full((ids.shape[1], ids.shape[1]), torch.finfo(x.dtype).min).triu(1)
        hidden = [x]
        for layer in m.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = m.final_layer_norm(x)
        pooled = last[torch.arange(ids.shape[0]), ids.argmax(-1)]
        return hidden[-2], self.text_projection(pooled)


def text_config(vocab):
    cfg = fx.text_config(vocab, TEXT["width"], TEXT["layers"], TEXT["heads"], "gelu")
    cfg.update(architectures=["CLIPTextModelWithProjection"], projection_dim=TEXT["projection_dim"],
               bos_token_id=0, eos_token_id=2, pad_token_id=1)  # the refiner's (legacy) ids: pooled at argmax
    return cfg


def load_converters():
    """diffusers' original-to-diffusers converters (convert_from_ckpt.py) without transformers: the
    module's top-level functions and name tables are compiled on their own, and its text converter is
    given our module as CLIPTextModelWithProjection."""
    import re as _re
    import typing
    path = os.path.join(REFENV, "diffusers", "src", "diffusers", "pipelines", "stable_diffusion", "convert_from_ckpt.py")
    tree = ast.parse(open(path).read())
    funcs = {"shave_segments", "renew_resnet_paths", "renew_attention_paths", "renew_vae_resnet_paths",
             "renew_vae_attention_paths", "assign_to_checkpoint", "conv_attn_to_linear",
             "convert_ldm_unet_checkpoint", "convert_ldm_vae_checkpoint", "convert_open_clip_checkpoint"}
    tables = {"textenc_conversion_lst", "textenc_conversion_map", "textenc_transformer_conversion_lst",
              "protected", "textenc_pattern"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in funcs or
            isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in tables for t in n.targets)]

    class Config(dict):
        __getattr__ = dict.__getitem__

        @classmethod
        def from_pretrained(cls, cfg, local_files_only=False, **kwargs):
            return cls({**cfg, **kwargs})

    ns = {"torch": torch, "re": _re, "logger": None, "CLIPTextConfig": Config,
          "CLIPTextModelWithProjection": CLIPTextModelWithProjection, "CLIPTextModel": None,
          "is_accelerate_available": lambda: False, "init_empty_weights": None, "nullcontext": contextlib.nullcontext,
          **{k: getattr(typing, k) for k in typing.__all__}}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return types.SimpleNamespace(**{k: ns[k] for k in ("convert_ldm_unet_checkpoint", "convert_ldm_vae_checkpoint",
                                                        "convert_open_clip_checkpoint")})


converters = load_converters()


def build_unet():
    unet = UNet2DConditionModel(**UNET)
    fx.randomize(unet, 100 + SEED)
    unet.eval()
    g = torch.Generator().manual_seed(SEED)
    probe = unet(torch.randn((1, 4, 8, 8), generator=g), 500,
                 encoder_hidden_states=torch.randn((1, 77, UNET["cross_attention_dim"]), generator=g),
                 added_cond_kwargs={"text_embeds": torch.randn((1, TEXT["projection_dim"]), generator=g),
                                    "time_ids": torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 6.0]])}).sample
    fx.calibrate(unet.conv_out, probe, 1.0)
    return unet


def build_vae():
    vae = fx.build_vae(200 + SEED)
    # The SDXL autoencoder: the SD architecture with its own latent scale, and fp16 overflow noted.
    cfg = {**vae.config, "scaling_factor": 0.13025, "force_upcast": True}
    again = AutoencoderKL.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
    again.load_state_dict(vae.state_dict())
    return again.eval()


def single_file(unet_sd, vae_sd, text_sd, cfg):
    """The state dicts under sd_xl_refiner_1.0.safetensors' names, by diffusers' own maps."""
    label_emb = [m for m in sdxl_to_original.unet_conversion_map if m[0].startswith("label_emb.")]
    sd_map = list(to_original.unet_conversion_map)  # the SD script's loops fit the refiner's 4 levels; the SDXL one has 3
    to_original.unet_conversion_map[:] = sd_map + label_emb
    try:
        unet_o = to_original.convert_unet_state_dict(dict(unet_sd))
    finally:
        to_original.unet_conversion_map[:] = sd_map
    vae_in = {k.replace("to_q.", "query.").replace("to_k.", "key.").replace("to_v.", "value.")
              .replace("to_out.0.", "proj_attn."): v for k, v in vae_sd.items()}
    vae_o = to_original.convert_vae_state_dict(vae_in)
    text = dict(text_sd)
    projection = text.pop("text_projection.weight")
    text_o = sdxl_to_original.convert_openclip_text_enc_state_dict(text)
    text_o["text_projection"] = projection.T.contiguous()
    # The released file keeps open_clip's logit_scale (its CLIP model without the visual tower).
    text_o["logit_scale"] = torch.tensor(4.60546875)
    return {**{"model.diffusion_model." + k: v for k, v in unet_o.items()},
            **{"first_stage_model." + k: v for k, v in vae_o.items()},
            **{"conditioner.embedders.0.model." + k: v for k, v in text_o.items()}}


def check_single_file(path, unet, vae, text, cfg):
    """Convert the single file back with diffusers' converters: every tensor must return unchanged."""
    ckpt = {k: v.float() for k, v in load_file(path).items()}
    u_back = converters.convert_ldm_unet_checkpoint(dict(ckpt), dict(unet.config))
    for k, v in unet.state_dict().items():
        assert torch.equal(u_back[k], v), ("unet", k)
    assert set(u_back) == set(unet.state_dict()), set(u_back) ^ set(unet.state_dict())
    v_back = converters.convert_ldm_vae_checkpoint(dict(ckpt), dict(vae.config))
    for k, v in vae.state_dict().items():
        assert torch.equal(v_back[k].reshape(v.shape), v), ("vae", k)
    t_back = converters.convert_open_clip_checkpoint(dict(ckpt), cfg, prefix="conditioner.embedders.0.model.",
                                                     has_projection=True)  # load_state_dict is strict
    for k, v in text.state_dict().items():
        assert torch.equal(t_back.state_dict()[k], v), ("text", k)


def open_clip_reference(sd, cfg, ids):
    """open_clip's TextTransformer on the single file's text weights: the penultimate block's output
    (SDXL's prompt embeddings) and the projected pooled output."""
    tt = TextTransformer(context_length=77, vocab_size=cfg["vocab_size"], width=cfg["hidden_size"],
                         heads=cfg["num_attention_heads"], layers=cfg["num_hidden_layers"],
                         output_dim=cfg["projection_dim"], act_layer=nn.GELU)
    prefix = "conditioner.embedders.0.model."
    own = {k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix) and k != prefix + "logit_scale"}
    missing, unexpected = tt.load_state_dict(own, strict=False)
    assert not unexpected and set(missing) <= {"attn_mask"}, (missing, unexpected)
    x = (tt.token_embedding(ids) + tt.positional_embedding).permute(1, 0, 2)
    for r in tt.transformer.resblocks[:-1]:
        x = r(x, attn_mask=tt.attn_mask)
    penultimate = x.permute(1, 0, 2)
    return penultimate, tt(ids)


def write_folder(root, unet, vae, text, cfg, merges):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    unet_sd = fx.save_component(unet, os.path.join(root, "unet"), torch.float16)  # as the fp16 variant
    vae_sd = fx.save_component(vae, os.path.join(root, "vae"), torch.float16)
    os.makedirs(os.path.join(root, "text_encoder_2"))
    with open(os.path.join(root, "text_encoder_2", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    text_sd = {k: v.contiguous() for k, v in text.state_dict().items()}
    save_file(text_sd, os.path.join(root, "text_encoder_2", "model.safetensors"), metadata={"format": "pt"})
    fx.write_tokenizer(os.path.join(root, "tokenizer_2"), merges, "!")
    os.makedirs(os.path.join(root, "scheduler"))
    with open(os.path.join(root, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER_CONFIG, f, indent=2)
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionXLImg2ImgPipeline", "_diffusers_version": "0.21.4",
                   "force_zeros_for_empty_prompt": False, "requires_aesthetics_score": True,
                   "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": [None, None],
                   "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": [None, None],
                   "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
    return unet_sd, vae_sd, text_sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    out = ap.parse_args().out
    torch.manual_seed(0)
    merges = fx.learn_merges(fx.CORPUS, fx.N_MERGES)
    tok = fx.SimpleTokenizer(bpe_path=os.path.join(out, "tokenizer", "tiny", "bpe_tiny.txt.gz"))
    vocab = len(tok.encoder)
    pad_id = tok.encoder["!"]

    cfg = text_config(vocab)
    text = CLIPTextModelWithProjection(cfg)
    fx.randomize(text, 300 + SEED)
    text.eval()
    unet, vae = build_unet(), build_vae()
    root = os.path.join(out, "models", NAME)
    unet_sd, vae_sd, text_sd = write_folder(root, unet, vae, text, cfg, merges)
    again = UNet2DConditionModel.from_pretrained(os.path.join(root, "unet")).eval()
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), unet.state_dict().values()))

    sd = single_file(unet_sd, vae_sd, text_sd, cfg)
    path = os.path.join(out, "models", NAME + ".safetensors")
    save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, path)
    check_single_file(path, unet, vae, text, cfg)

    fixtures = {}
    for case, prompt in PROMPTS.items():
        ids = torch.tensor([fx.tokenize(tok, prompt, pad_id)])
        embeds, pooled = text(ids)
        ref_embeds, ref_pooled = open_clip_reference(sd, cfg, ids)
        for got, want in ((embeds, ref_embeds), (pooled, ref_pooled)):
            err = float((got - want).norm() / want.norm())
            assert err < 1e-5, f"{case}: text encoder differs from open_clip: {err}"
        fixtures.update({f"ids_{case}": ids.to(torch.int32), f"embeds_{case}": embeds, f"pooled_{case}": pooled})
    print("text encoder matches open_clip (penultimate layer and projected pooled output)")

    g = torch.Generator().manual_seed(1000 + SEED)
    sample = torch.randn((2, 4, 8, 6), generator=g)  # not square: the odd sizes round up going down
    ctx = torch.randn((2, 77, UNET["cross_attention_dim"]), generator=g)
    pooled = torch.randn((2, TEXT["projection_dim"]), generator=g)
    time_ids = torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 6.0], [768.0, 1024.0, 16.0, 8.0, 2.5]])
    t = torch.tensor([999.0, 333.25])
    image = torch.rand((1, 3, 64, 48), generator=g) * 2 - 1
    s = vae.config.scaling_factor
    fixtures.update({
        "sample": sample, "context": ctx, "text_embeds": pooled, "time_ids": time_ids, "timesteps": t,
        "unet_out": unet(sample, t, encoder_hidden_states=ctx,
                         added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample,
        "image": image, "latents": vae.encode(image).latent_dist.mean * s,
        "decoded": vae.decode(sample[:1] / s).sample})
    os.makedirs(os.path.join(out, "parity"), exist_ok=True)
    save_file({k: v.contiguous() for k, v in fixtures.items()},
              os.path.join(out, "parity", f"{NAME}-components.safetensors"))
    print(f"{NAME}: unet out std {float(fixtures['unet_out'].std()):.3f}, written under {out}")


if __name__ == "__main__":
    main()
