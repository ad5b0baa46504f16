#!/usr/bin/env python3
"""Golden fixtures for rfnet-native's Stable Diffusion parity tests.

Runs in the reference environment (diffusers v0.21.4 + open_clip v2.20.0 on Debian's PyTorch,
CPU; see ../shared/refenv/README.md):

    source /tmp/refenv/env.sh
    /usr/bin/python3 testdata/gen/make_fixtures.py --out testdata

It writes, all from fixed seeds:

  tokenizer/tiny/                 a small made-up BPE vocabulary (diffusers tokenizer layout) and the
                                  same merges as a bpe_*.txt.gz file (OpenAI layout)
  tokenizer/real_vocab_ids.json   token ids of 57 varied prompts under the released CLIP vocabulary
                                  (--clip-vocab, default ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz)
  models/tiny-sd1/                diffusers folder (fp16; text encoder fp32): SD 1.x shape (8 heads, legacy attention_head_dim,
                                  1x1-conv transformer projections, CLIP text model with quick-GELU);
                                  its VAE uses the pre-0.14 attention names query/key/value/proj_attn
  models/tiny-sd1.safetensors     the same weights in the original single-file layout (bf16)
  models/tiny-sd2/                SD 2.x-base shape (per-block head list, linear projections, GELU
                                  text model conditioned on its penultimate layer), bf16 weights
  models/tiny-sd2.safetensors     single file (fp16) with OpenCLIP text names (fused in_proj, one extra final
                                  block, text_projection and logit_scale, as the released files have)
  models/tiny-sd2-v/              the tiny-sd2 weights with the SD 2.x-v configs (upcast attention,
                                  v-prediction)
  parity/*.json, *.safetensors    one text-to-image run per (model, scheduler, prompt case): token ids,
                                  text embeddings, initial noise, the latent after every step, the
                                  decoded image
  parity/*-components.safetensors single UNet, VAE-encoder and VAE-decoder calls per model
  rfnet/losses.*                  RFNet's single-object box loss and overall loss (suppression + reference
                                  attention) on the tiny SD 2.x UNet in float64, with their gradients with
                                  respect to the latent (our own PyTorch code of the algorithm notes' formulas)

The text encoder is a small torch module with the Hugging Face CLIPTextModel parameter names
(transformers is not in the reference environment); for SD 2.x it is checked against open_clip's
TextTransformer on the same weights. The single-file checkpoints come from diffusers'
scripts/convert_diffusers_to_original_stable_diffusion.py and are checked by converting them back
with diffusers' convert_from_ckpt helpers.
"""
import argparse
import gzip
import json
import math
import os
import shutil
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       PNDMScheduler, UNet2DConditionModel)

REFENV = os.environ.get("REFENV", "/tmp/refenv")
sys.path.insert(0, os.path.join(REFENV, "diffusers", "scripts"))
import convert_diffusers_to_original_stable_diffusion as to_original  # noqa: E402
import open_clip  # noqa: E402
from open_clip.tokenizer import SimpleTokenizer  # noqa: E402
from open_clip.transformer import TextTransformer  # noqa: E402



def load_ckpt_converters():
    """diffusers' original-to-diffusers UNet and VAE converters (convert_from_ckpt.py). That module
    imports transformers, which the reference environment lacks, so its top-level functions are
    compiled on their own; the two converters use nothing else."""
    import ast
    import re as _re
    path = os.path.join(REFENV, "diffusers", "src", "diffusers", "pipelines", "stable_diffusion", "convert_from_ckpt.py")
    tree = ast.parse(open(path).read())
    wanted = {"shave_segments", "renew_resnet_paths", "renew_vae_resnet_paths", "renew_attention_paths",
              "renew_vae_attention_paths", "assign_to_checkpoint", "conv_attn_to_linear",
              "convert_ldm_unet_checkpoint", "convert_ldm_vae_checkpoint"}
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    import typing
    ns = {"torch": torch, "re": _re, "logger": None, **{k: getattr(typing, k) for k in typing.__all__}}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), path, "exec"), ns)
    return type("convert_from_ckpt", (), {"convert_ldm_unet_checkpoint": staticmethod(ns["convert_ldm_unet_checkpoint"]),
                                           "convert_ldm_vae_checkpoint": staticmethod(ns["convert_ldm_vae_checkpoint"])})


convert_from_ckpt = load_ckpt_converters()
torch.set_grad_enabled(False)


def _zero_initialized_scores():
    """Debian's torch 1.13 computes baddbmm(empty, q, kᵀ, beta=0) for small matrices (our tiny
    SD 1.x heads have 2 channels) with a kernel that multiplies the uninitialized input by beta
    instead of ignoring it, so NaNs in fresh memory leak into the scores at random. diffusers'
    attention uses exactly that call when there is no mask; passing a zero mask instead selects
    beta=1 on zeros, which computes the same scores without touching uninitialized memory."""
    from diffusers.models import attention_processor as ap
    original = ap.Attention.get_attention_scores

    def scores(self, query, key, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.zeros(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype)
        return original(self, query, key, attention_mask)

    ap.Attention.get_attention_scores = scores


_zero_initialized_scores()
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------------------------
# Tokenizer: a small BPE vocabulary learned from our own words.
# --------------------------------------------------------------------------------------------

CORPUS = """a photo of an astronaut riding a horse on the moon, a mouse hunting a lion in the savanna
a drop of water floating on the international space station, a rubber duck sailing on a lava field
an octopus and a seahorse playing chess under the sea, fish swimming in the clouds at sunset
a cat chased by a mouse through a kitchen, a snowman building a friend in a blizzard
oil painting of a lighthouse in a storm, highly detailed, sharp focus, trending, 4k, 8k
blurry, low quality, watermark, text, deformed hands, extra fingers, cartoon, ugly, bad anatomy
the quick brown fox jumps over the lazy dog while the red panda watches from a tree"""

N_MERGES = 300


def byte_symbols():
    keep = [b for b in range(256) if ord("!") <= b <= ord("~") or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    order = keep + [b for b in range(256) if b not in keep]
    return table, order


def learn_merges(text, n):
    """Plain BPE training on the corpus words (end-of-word marked with </w>), most frequent pair first."""
    sym, _ = byte_symbols()
    words = {}
    for w in text.lower().replace(",", " , ").split():
        s = tuple(sym[b] for b in w.encode("utf-8"))
        s = s[:-1] + (s[-1] + "</w>",)
        words[s] = words.get(s, 0) + 1
    merges = []
    for _ in range(n):
        pairs = {}
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def write_tokenizer(out, merges, pad):
    """diffusers tokenizer/ folder for the given merges, vocabulary laid out as CLIP lays out its own."""
    os.makedirs(out, exist_ok=True)
    sym, order = byte_symbols()
    vocab = [sym[b] for b in order] + [sym[b] + "</w>" for b in order] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab)
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": pad,
                   "unk_token": "<|endoftext|>"}, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
                   "pad_token": pad}, f, indent=2)
    return len(vocab)


def write_bpe_gz(path, merges):
    """OpenAI's bpe_simple_vocab layout: a version line, then one merge per line."""
    data = "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges)  # no final newline: open_clip
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(data.encode("utf-8"))


def tokenize(tok, text, pad_id):
    """open_clip's tokenization with the padding id of the model family (the reference for our ids)."""
    sot, eot = tok.all_special_ids  # open_clip names them <start_of_text>, <end_of_text>
    body = tok.encode(text)[:75]
    ids = [sot] + body + [eot]
    return ids + [pad_id] * (77 - len(ids))


# --------------------------------------------------------------------------------------------
# Text encoder with Hugging Face CLIPTextModel parameter names.
# --------------------------------------------------------------------------------------------

class Attn(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        b, n, d = x.shape
        h = self.heads
        split = lambda t: t.view(b, n, h, d // h).transpose(1, 2)
        q = split(self.q_proj(x)) * (d // h) ** -0.5
        w = q @ split(self.k_proj(x)).transpose(-1, -2) + mask
        o = w.softmax(-1) @ split(self.v_proj(x))
        return self.out_proj(o.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, d, hidden, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(d, hidden), nn.Linear(hidden, d), act

    def forward(self, x):
        h = self.fc1(x)
        h = h * torch.sigmoid(1.702 * h) if self.act == "quick_gelu" else F.gelu(h)
        return self.fc2(h)


class Layer(nn.Module):
    def __init__(self, d, heads, hidden, act):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn, self.mlp = Attn(d, heads), MLP(d, hidden, act)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        self.token_embedding, self.position_embedding = nn.Embedding(vocab, d), nn.Embedding(77, d)


class Encoder(nn.Module):
    def __init__(self, d, layers, heads, hidden, act):
        super().__init__()
        self.layers = nn.ModuleList(Layer(d, heads, hidden, act) for _ in range(layers))


class TextModel(nn.Module):
    def __init__(self, vocab, d, layers, heads, hidden, act):
        super().__init__()
        self.embeddings = Embeddings(vocab, d)
        self.encoder = Encoder(d, layers, heads, hidden, act)
        self.final_layer_norm = nn.LayerNorm(d)


class CLIPTextModel(nn.Module):
    """text_model.* as in transformers; forward returns last_hidden_state (after final_layer_norm)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.text_model = TextModel(cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"],
                                    cfg["num_attention_heads"], cfg["intermediate_size"], cfg["hidden_act"])

    def forward(self, ids):
        m = self.text_model
        x = m.embeddings.token_embedding(ids) + m.embeddings.position_embedding(torch.arange(ids.shape[1]))
        mask = torch.full((ids.shape[1], ids.shape[1]), torch.finfo(x.dtype).min).triu(1)
        for layer in m.encoder.layers:
            x = layer(x, mask)
        return m.final_layer_norm(x)


def text_config(vocab, width, layers, heads, act):
    return {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": vocab,
            "hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": layers,
            "num_attention_heads": heads, "max_position_embeddings": 77, "hidden_act": act,
            "layer_norm_eps": 1e-5, "projection_dim": width, "torch_dtype": "float32"}


def openclip_penultimate(sd, cfg, ids):
    """SD 2.x's FrozenOpenCLIPEmbedder on our converted weights: every block but the last, then ln_final."""
    tt = TextTransformer(context_length=77, vocab_size=cfg["vocab_size"], width=cfg["hidden_size"],
                         heads=cfg["num_attention_heads"], layers=cfg["num_hidden_layers"] + 1,
                         output_dim=cfg["hidden_size"], act_layer=nn.GELU)
    prefix = "cond_stage_model.model."
    own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix) and k != prefix + "logit_scale"}
    missing, unexpected = tt.load_state_dict(own, strict=False)
    assert not unexpected and set(missing) <= {"attn_mask"}, (missing, unexpected)
    x = tt.token_embedding(ids) + tt.positional_embedding
    x = x.permute(1, 0, 2)
    for r in tt.transformer.resblocks[:-1]:
        x = r(x, attn_mask=tt.attn_mask)
    return tt.ln_final(x.permute(1, 0, 2))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def randomize(module, seed):
    """Every parameter random and non-trivial (norm scales around 1), on a scale that keeps
    activations near unit size, rounded to values exact in bf16 and fp16 so that every stored
    dtype holds the same numbers."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters()):
        if p.dim() >= 2:
            fan_in = p[0].numel() if "embedding" not in name else 1
            v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
        elif name.endswith("weight"):
            v = 1 + 0.2 * torch.randn(p.shape, generator=g)
        else:
            v = 0.1 * torch.randn(p.shape, generator=g)
        v = v.to(torch.bfloat16).float()
        v[v.abs() < 2.0 ** -14] = 0
        p.copy_(v)


COMMON_BLOCKS = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 16, 16, 32),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, norm_num_groups=8)

VARIANTS = {
    "tiny-sd1": dict(unet=dict(attention_head_dim=8, cross_attention_dim=32),
                     text=dict(width=32, layers=2, heads=2, act="quick_gelu"), pad="<|endoftext|>",
                     prediction="epsilon", dtype=torch.float16, text_dtype=torch.float32, single_dtype=torch.bfloat16, seed=1),
    "tiny-sd2": dict(unet=dict(attention_head_dim=[2, 2, 4, 4], cross_attention_dim=32, use_linear_projection=True),
                     text=dict(width=32, layers=3, heads=2, act="gelu"), pad="!",
                     prediction="epsilon", dtype=torch.bfloat16, text_dtype=torch.bfloat16, single_dtype=torch.float16, seed=2),
}
# tiny-sd2-v: tiny-sd2's weights, SD 2.x-v configs.
V_OVERRIDES = dict(upcast_attention=True)

SCHEDULER_CONFIG = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.21.4", "beta_end": 0.012,
                    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
                    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
                    "steps_offset": 1, "trained_betas": None}


def calibrate(layer, out, target):
    """Scale a model's output layer so that its output has standard deviation `target` (a random
    network's output is far from unit scale, and the samplers amplify that into overflow)."""
    s = float(out.std())
    for p in layer.parameters():
        v = (p / s * target).to(torch.bfloat16).float()
        v[v.abs() < 2.0 ** -14] = 0
        p.copy_(v)


def build_vae(seed):
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=64,
                        block_out_channels=(8, 8, 16, 16), norm_num_groups=8,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    randomize(vae, seed)
    vae.eval()
    g = torch.Generator().manual_seed(seed)
    calibrate(vae.decoder.conv_out, vae.decode(torch.randn((1, 4, 8, 8), generator=g)).sample, 0.5)
    calibrate(vae.quant_conv, vae.encode(torch.randn((1, 3, 64, 64), generator=g)).latent_dist.mean, 1.0)
    return vae


def save_component(model, folder, dtype, old_vae_names=False):
    os.makedirs(folder, exist_ok=True)
    model.save_config(folder)
    sd = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    if old_vae_names:
        sd = {k.replace("to_q.", "query.").replace("to_k.", "key.").replace("to_v.", "value.")
              .replace("to_out.0.", "proj_attn."): v for k, v in sd.items()}
    save_file(sd, os.path.join(folder, "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    return sd


def write_variant(out, name, spec, merges, tiny_vocab):
    root = os.path.join(out, "models", name)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    seed = spec["seed"]
    unet = UNet2DConditionModel(**COMMON_BLOCKS, **spec["unet"])
    randomize(unet, 100 + seed)
    unet.eval()
    g = torch.Generator().manual_seed(seed)
    probe = unet(torch.randn((1, 4, 8, 8), generator=g), 500,
                 encoder_hidden_states=torch.randn((1, 77, spec["unet"]["cross_attention_dim"]), generator=g)).sample
    calibrate(unet.conv_out, probe, 1.0)
    vae = build_vae(200 + seed)
    t = spec["text"]
    tcfg = text_config(tiny_vocab, t["width"], t["layers"], t["heads"], t["act"])
    text = CLIPTextModel(tcfg)
    randomize(text, 300 + seed)
    text.eval()

    unet_sd = save_component(unet, os.path.join(root, "unet"), spec["dtype"])
    vae_sd = save_component(vae, os.path.join(root, "vae"), spec["dtype"], old_vae_names=(name == "tiny-sd1"))
    os.makedirs(os.path.join(root, "text_encoder"))
    with open(os.path.join(root, "text_encoder", "config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
    text_sd = {k: v.to(spec["text_dtype"]).contiguous() for k, v in text.state_dict().items()}
    save_file(text_sd, os.path.join(root, "text_encoder", "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(os.path.join(root, "tokenizer"), merges, spec["pad"])
    os.makedirs(os.path.join(root, "scheduler"))
    sched = dict(SCHEDULER_CONFIG)
    if spec["prediction"] != "epsilon":
        sched["prediction_type"] = spec["prediction"]
    with open(os.path.join(root, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(sched, f, indent=2)
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.21.4",
                   "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                   "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [None, None],
                   "feature_extractor": [None, None], "requires_safety_checker": False}, f, indent=2)

    single = write_single_file(out, name, unet_sd, vae_sd, text_sd, spec, tcfg, unet, vae)
    return unet, vae, text, tcfg, single


def write_single_file(out, name, unet_sd, vae_sd, text_sd, spec, tcfg, unet, vae):
    """The reference converter, fed the VAE with the attention names it expects."""
    f32 = lambda sd: {k: v.float() for k, v in sd.items()}
    unet_o = {"model.diffusion_model." + k: v for k, v in to_original.convert_unet_state_dict(f32(unet_sd)).items()}
    vae_in = {k.replace("to_q.", "query.").replace("to_k.", "key.").replace("to_v.", "value.")
              .replace("to_out.0.", "proj_attn."): v for k, v in f32(vae_sd).items()}
    vae_o = {"first_stage_model." + k: v for k, v in to_original.convert_vae_state_dict(vae_in).items()}
    text_f = f32(text_sd)
    if spec["text"]["act"] == "gelu":
        text_o = to_original.convert_text_enc_state_dict_v20({"transformer." + k: v for k, v in text_f.items()})
        text_o = {"cond_stage_model.model." + k: v for k, v in text_o.items()}
        # The released SD 2.x files also hold the last OpenCLIP block (unused: SD 2.x reads the
        # penultimate layer), the text projection and logit_scale.
        g = torch.Generator().manual_seed(400 + spec["seed"])
        last = f"cond_stage_model.model.transformer.resblocks.{tcfg['num_hidden_layers']}."
        for k, v in list(text_o.items()):
            if ".resblocks.0." in k:
                text_o[k.replace("cond_stage_model.model.transformer.resblocks.0.", last)] = \
                    (torch.randn(v.shape, generator=g) * 0.1).to(torch.bfloat16).float()
        w = tcfg["hidden_size"]
        text_o["cond_stage_model.model.text_projection"] = (torch.randn(w, w, generator=g) / math.sqrt(w)).to(torch.bfloat16).float()
        text_o["cond_stage_model.model.logit_scale"] = torch.tensor(4.60546875)
    else:
        text_o = {"cond_stage_model.transformer." + k: v for k, v in text_f.items()}
    sd = {**unet_o, **vae_o, **text_o}
    path = os.path.join(out, "models", name + ".safetensors")
    save_file({k: v.to(spec["single_dtype"]).contiguous() for k, v in sd.items()}, path)
    check_single_file(path, unet, vae, spec)
    return sd


def check_single_file(path, unet, vae, spec):
    """Convert the single file back with diffusers' converters: every tensor must return unchanged."""
    ckpt = {k: v.float() for k, v in load_file(path).items()}
    u_cfg = dict(unet.config)
    u_back = convert_from_ckpt.convert_ldm_unet_checkpoint(ckpt, {**u_cfg, "layers_per_block": 2})
    for k, v in unet.state_dict().items():
        assert torch.equal(u_back[k], v), ("unet", k)
    v_back = convert_from_ckpt.convert_ldm_vae_checkpoint(ckpt, dict(vae.config))
    for k, v in vae.state_dict().items():
        assert torch.equal(v_back[k].reshape(v.shape), v), ("vae", k)


def make_v_variant(out):
    src, dst = os.path.join(out, "models", "tiny-sd2"), os.path.join(out, "models", "tiny-sd2-v")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)
    for comp in ("unet", "vae"):
        w = os.path.join(dst, comp, "diffusion_pytorch_model.safetensors")
        os.remove(w)
        os.symlink(os.path.join("..", "..", "tiny-sd2", comp, "diffusion_pytorch_model.safetensors"), w)
    w = os.path.join(dst, "text_encoder", "model.safetensors")
    os.remove(w)
    os.symlink(os.path.join("..", "..", "tiny-sd2", "text_encoder", "model.safetensors"), w)
    cfg_path = os.path.join(dst, "unet", "config.json")
    cfg = json.load(open(cfg_path))
    cfg.update(V_OVERRIDES)
    json.dump(cfg, open(cfg_path, "w"), indent=2)
    s_path = os.path.join(dst, "scheduler", "scheduler_config.json")
    s = json.load(open(s_path))
    s["prediction_type"] = "v_prediction"
    json.dump(s, open(s_path, "w"), indent=2)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(dst, "unet"))
    return unet.eval()


# --------------------------------------------------------------------------------------------
# Text-to-image runs
# --------------------------------------------------------------------------------------------

SCHEDULERS = {"ddim": DDIMScheduler, "pndm": PNDMScheduler, "euler": EulerDiscreteScheduler,
              "dpm++2m": DPMSolverMultistepScheduler}

LONG_PROMPT = ("a mouse hunting a lion in the savanna, " * 12).strip(", ")
CASES = [
    dict(case="plain", prompt="a photo of an astronaut riding a horse on the moon", negative=""),
    dict(case="negative", prompt="a rubber duck sailing on a lava field",
         negative="blurry, low quality, watermark"),
    dict(case="punctuation", prompt="A Cat, chased by a MOUSE!!! (4k; oil-painting) -- it's 8K?", negative="text"),
    dict(case="long", prompt=LONG_PROMPT, negative=""),
]
STEPS, GUIDANCE = 6, 7.5


def run_case(out, model_name, sched_name, case, unet, vae, text, tok, pad_id, prediction, seed):
    cfg = dict(SCHEDULER_CONFIG)
    cfg["prediction_type"] = prediction
    sched = SCHEDULERS[sched_name].from_config(cfg)
    ids_c = tokenize(tok, case["prompt"], pad_id)
    ids_u = tokenize(tok, case["negative"], pad_id)
    cond = text(torch.tensor([ids_c]))
    uncond = text(torch.tensor([ids_u]))
    sched.set_timesteps(STEPS)
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn((1, 4, 8, 8), generator=g) * sched.init_noise_sigma
    init = latents.clone()
    ctx = torch.cat([uncond, cond])
    trace = [latents]
    for t in sched.timesteps:
        x = sched.scale_model_input(torch.cat([latents] * 2), t)
        noise = unet(x, t, encoder_hidden_states=ctx).sample
        nu, nc = noise.chunk(2)
        latents = sched.step(nu + GUIDANCE * (nc - nu), t, latents).prev_sample
        trace.append(latents)
    image = vae.decode(latents / vae.config.scaling_factor).sample
    image = (image / 2 + 0.5).clamp(0, 1)
    base = f"{model_name}-{sched_name}-{case['case']}"
    if not (torch.isfinite(torch.cat(trace)).all() and torch.isfinite(image).all()):
        sys.exit(f"{base}: the reference run produced non-finite values")
    save_file({"cond": cond[0].contiguous(), "uncond": uncond[0].contiguous(), "init_latents": init.contiguous(),
               "latents_trace": torch.cat(trace).contiguous(), "image": image[0].half().contiguous(),
               "timesteps": sched.timesteps.double().contiguous()},
              os.path.join(out, "parity", base + ".safetensors"))
    meta = dict(model=model_name, scheduler=sched_name, prompt=case["prompt"], negative_prompt=case["negative"],
                steps=STEPS, guidance=GUIDANCE, seed=seed, prediction=prediction, cond_ids=ids_c, uncond_ids=ids_u,
                truncated=len(tok.encode(case["prompt"])) > 75)
    with open(os.path.join(out, "parity", base + ".json"), "w") as f:
        json.dump(meta, f, indent=1)


def component_fixtures(out, name, unet, vae, seed):
    """Single calls, for localizing a mismatch: the UNet at an integer and a fractional timestep (the
    Euler and DPM schedules pass fractional ones), and the VAE encoder's posterior mean."""
    g = torch.Generator().manual_seed(1000 + seed)
    sample = torch.randn((2, 4, 8, 8), generator=g)
    ctx = torch.randn((2, 77, unet.config.cross_attention_dim), generator=g)
    t = torch.tensor([500.0, 333.25])
    image = torch.rand((1, 3, 64, 64), generator=g) * 2 - 1
    save_file({"sample": sample, "context": ctx, "timesteps": t,
               "unet_out": unet(sample, t, encoder_hidden_states=ctx).sample.contiguous(),
               "image": image, "latents": (vae.encode(image).latent_dist.mean * vae.config.scaling_factor).contiguous(),
               "decoded": vae.decode(sample[:1] / vae.config.scaling_factor).sample.contiguous()},
              os.path.join(out, "parity", f"{name}-components.safetensors"))


# Prompts for the real-vocabulary tokenizer test: plain, punctuation, capitals, numbers, contractions,
# accents and other scripts, emoji, repeated spaces, special-token text, and prompts past 77 tokens.
REAL_PROMPTS = [
    "a mouse hunting a lion",
    "a drop of water on the International Space Station",
    "Costumed children knocking door-to-door on October 31st",
    "a tank abandoned on a beach for 50 years",
    "a man brave as a lion",
    "a rubber duck sailing on a lava field",
    "an octopus and a seahorse playing chess",
    "fish swimming in clouds",
    "a cat chased by a mouse",
    "a snowman building a friend in a blizzard",
    "A PHOTO OF AN ASTRONAUT RIDING A HORSE ON MARS",
    "photo, 4k, 8K, ultra-detailed, trending on ArtStation!!!",
    "it's a dog's life; they're here, we've won, I'm sure, you'll see, he'd go",
    "1234567890 + 3.14159 = pi? (no)",
    "e-mail: someone@example.com, url: https://example.com/a_b?c=d#e",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe",
    "\u4e00\u53ea\u732b\u5728\u8349\u5730\u4e0a",
    "\u0441\u043e\u0431\u0430\u043a\u0430 \u0432 \u043b\u0435\u0441\u0443",
    "\u03ba\u03b1\u03c4\u03ac\u03c3\u03c4\u03b7\u03bc\u03b1 \u03bc\u03b5 \u03ba\u03b1\u03c6\u03ad",
    "\u0642\u0637\u0629 \u062a\u0646\u0627\u0645",
    "\U0001F600 a smiling face \U0001F436\U0001F431 and a rocket \U0001F680",
    "   lots    of     spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "under_score snake_case CamelCase kebab-case",
    "quotes \"double\" and 'single' and `backtick`",
    "brackets [square] {curly} <angle> (round)",
    "slashes / back\\slash | pipe ~ tilde ^ caret",
    "percent 100% dollar $5 euro \u20ac10 pound \u00a37",
    "hyphenated-compound-words and em\u2014dash en\u2013dash",
    "ellipsis... and more.... and ?!?!",
    "", " ",
    "a", "A", "!", "!!", "...", "0", "00", "x" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a watercolor painting of a fox, by Studio Ghibli, highly detailed, golden hour, bokeh",
    "negative: blurry, lowres, jpeg artifacts, bad hands, extra limbs, watermark, signature",
    "masterpiece, best quality, (detailed:1.2), [background], {lighting}",
    "a very long prompt " + "with many repeated words and commas, " * 20,
    "a green frog wearing a tiny crown sitting on a lily pad in the rain",
    "Mount Everest at dawn, seen from Kala Patthar, 8848 m",
    "a steampunk airship over Victorian London in 1888",
    "The Great Wave off Kanagawa, ukiyo-e woodblock print",
    "Mona Lisa as a cyberpunk hacker, neon, rain",
    "a bowl of ramen with chopsticks, top-down view",
    "an isometric 3D render of a cozy room",
    "x-ray of a robot's hand",
    "the word 'HELLO' written in the sand",
    "DNA double helix made of glass",
    "1980s polaroid of a diner at night",
    "a 'quoted' \"phrase\" with o'clock and rock'n'roll",
]


def real_vocab_fixture(out, bpe):
    """Token ids of REAL_PROMPTS under the released CLIP vocabulary, for both padding conventions."""
    tok = SimpleTokenizer(bpe_path=bpe)
    rows = []
    for p in REAL_PROMPTS:
        rows.append({"prompt": p, "sd1": tokenize(tok, p, tok.all_special_ids[1]), "sd2": tokenize(tok, p, 0),
                     "tokens": len(tok.encode(p))})
    with open(os.path.join(out, "tokenizer", "real_vocab_ids.json"), "w") as f:
        json.dump(rows, f, ensure_ascii=False, indent=0)


# --------------------------------------------------------------------------------------------
# RFNet guidance losses (our own PyTorch implementation of §7.2 and §10.2-10.4 of the algorithm
# notes) on the tiny SD 2.x UNet, in float64, with their gradients with respect to the latent.
# --------------------------------------------------------------------------------------------

GUIDANCE_KEYS = ["mid.0.0.0", "up.1.0.0", "up.1.1.0", "up.1.2.0"]


def attention_key(name):
    """diffusers module name of an attn2 processor -> RFNet's key (part.block.attention.transformer)."""
    parts = name.split(".")
    if parts[0] == "mid_block":
        return "mid.0.%s.%s" % (parts[2], parts[4])
    return "%s.%s.%s.%s" % (parts[0].split("_")[0], parts[1], parts[3], parts[5])


def capture_cross_attention(unet, store):
    """Processors that keep every cross-attention probability tensor [B, heads, N, 77] (on the graph)."""
    from diffusers.models.attention_processor import AttnProcessor

    class Capture:
        def __init__(self, key):
            self.key = key

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
            b, n, _ = hidden_states.shape
            q = attn.head_to_batch_dim(attn.to_q(hidden_states))
            k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
            v = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
            probs = attn.get_attention_scores(q, k, None)
            store[self.key] = probs.view(b, attn.heads, n, -1)
            out = attn.batch_to_head_dim(torch.bmm(probs, v))
            return attn.to_out[1](attn.to_out[0](out))

    procs = {}
    for name in unet.attn_processors:
        procs[name] = Capture(attention_key(name)) if "attn2" in name else AttnProcessor()
    unet.set_attn_processor(procs)


def raster(box, h, w):
    """§6.3: corner and size rounded half-to-even (Python's round), clamped."""
    xa, ya = round(box[0] * w), round(box[1] * h)
    xb, yb = xa + round((box[2] - box[0]) * w), ya + round((box[3] - box[1]) * h)
    m = torch.zeros(h, w, dtype=torch.float64)
    m[max(ya, 0):min(yb, h), max(xa, 0):min(xb, w)] = 1
    return m.flatten()


def top_mean(v, k):
    return v.topk(k, dim=-1).values.mean(-1)


def grid_of(n):
    s = int(round(n ** 0.5))
    return s, s


def box_term(A, tokens, m, fg_p, bg_p, w_fg, w_bg):
    n, inside = m.numel(), int(m.sum())
    k_fg, k_bg = max(1, math.floor(fg_p * inside)), max(1, math.floor(bg_p * (n - inside)))
    term = 0
    for tau in tokens:
        a = A[:, :, tau]  # [heads, N]
        if w_fg:
            term = term + (w_fg * (1 - top_mean(a * m, k_fg))).sum()
        if w_bg:
            term = term + (w_bg * top_mean(a * (1 - m), k_bg)).sum()
    return term / len(tokens)


def so_loss(store, tokens, box):
    total = 0
    for key in GUIDANCE_KEYS:
        A = store[key][0]
        total = total + box_term(A, tokens, raster(box, *grid_of(A.shape[1])), 0.2, 0.2, 1.0, 4.0)
    return total / len(GUIDANCE_KEYS)


def overall_loss(store, phrases, refs):
    """L_sup (gamma 10, overall_bg_top_p 0.2) + L_ref (guid 15 x weight 2, eps 1e-5), over P phrases and the keys."""
    total = 0
    for key in GUIDANCE_KEYS:
        A = store[key][0]
        h, w = grid_of(A.shape[1])
        for p in phrases:
            m = torch.stack([raster(b, h, w) for b in p["boxes"]]).max(0).values
            total = total + box_term(A, p["tokens"], m, 0.2, 0.2, 0, 10.0)
            lp = 0
            for b, ref_name in zip(p["boxes"], p["refs"]):
                mb = raster(b, h, w)
                a = A[:, :, p["word"]] * mb
                a = a / (a.sum(-1, keepdim=True) + 1e-5)
                r = refs[ref_name + "/" + key] * mb
                r = r / (r.sum(-1, keepdim=True) + 1e-5)
                lp = lp + (a - r).abs().sum(-1).mean()
            total = total + 15.0 * 2.0 * lp / len(p["boxes"])
    return total / (len(phrases) * len(GUIDANCE_KEYS))


def loss_fixture(out, unet_path):
    unet = UNet2DConditionModel.from_pretrained(unet_path).double().eval()
    store = {}
    capture_cross_attention(unet, store)
    g = torch.Generator().manual_seed(77)
    z = torch.randn((1, 4, 16, 16), generator=g, dtype=torch.float64)
    ctx_so = torch.randn((1, 77, unet.config.cross_attention_dim), generator=g, dtype=torch.float64)
    ctx_all = torch.randn((1, 77, unet.config.cross_attention_dim), generator=g, dtype=torch.float64)
    t = 801.0
    so = {"tokens": [7, 8], "box": [0.3, 0.35, 0.7, 0.8]}
    phrases = [{"tokens": [5, 6], "word": 6, "boxes": [[0.05, 0.4, 0.4, 0.9]], "refs": ["ref0"]},
               {"tokens": [9, 10, 11], "word": 11, "boxes": [[0.45, 0.1, 0.95, 0.7], [0.5, 0.6, 0.8, 0.95]], "refs": ["ref1", "ref2"]}]
    refs = {}
    with torch.no_grad():
        unet(z, t, encoder_hidden_states=ctx_all)
    for ref in ("ref0", "ref1", "ref2"):
        for key in GUIDANCE_KEYS:
            heads, n = store[key].shape[1], store[key].shape[2]
            refs[ref + "/" + key] = torch.rand((heads, n), generator=g, dtype=torch.float64) * 0.1
    results = {"z": z, "context_so": ctx_so, "context_all": ctx_all}
    results.update(refs)
    for name, ctx, fn in (("so", ctx_so, lambda: so_loss(store, so["tokens"], so["box"])),
                          ("overall", ctx_all, lambda: overall_loss(store, phrases, refs))):
        with torch.enable_grad():
            zz = z.clone().requires_grad_(True)
            unet(zz, t, encoder_hidden_states=ctx)
            loss = fn()
            grad, = torch.autograd.grad(loss, [zz])
        results["loss_" + name] = loss.detach().reshape(1)
        results["grad_" + name] = grad
        print(f"rfnet {name} loss {float(loss):.6f}")
    os.makedirs(os.path.join(out, "rfnet"), exist_ok=True)
    save_file({k: v.contiguous() for k, v in results.items()}, os.path.join(out, "rfnet", "losses.safetensors"))
    with open(os.path.join(out, "rfnet", "losses.json"), "w") as f:
        json.dump({"model": "tiny-sd2", "timestep": t, "keys": GUIDANCE_KEYS, "so": so, "phrases": phrases}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    ap.add_argument("--clip-vocab", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                           "data", "clip", "bpe_simple_vocab_16e6.txt.gz"),
                    help="the released CLIP BPE file, for the real-vocabulary tokenizer fixture")
    args = ap.parse_args()
    out = args.out
    torch.manual_seed(0)

    merges = learn_merges(CORPUS, N_MERGES)
    tok_dir = os.path.join(out, "tokenizer", "tiny")
    shutil.rmtree(tok_dir, ignore_errors=True)
    vocab_size = write_tokenizer(tok_dir, merges, "<|endoftext|>")
    gz = os.path.join(tok_dir, "bpe_tiny.txt.gz")
    write_bpe_gz(gz, merges)
    tok = SimpleTokenizer(bpe_path=gz)
    assert len(tok.encoder) == vocab_size
    real_vocab_fixture(out, args.clip_vocab)

    shutil.rmtree(os.path.join(out, "parity"), ignore_errors=True)
    os.makedirs(os.path.join(out, "parity"))
    runs = []
    for name, spec in VARIANTS.items():
        unet, vae, text, tcfg, single = write_variant(out, name, spec, merges, vocab_size)
        pad_id = tok.all_special_ids[1] if spec["pad"] == "<|endoftext|>" else tok.encoder[spec["pad"]]
        if spec["text"]["act"] == "gelu":
            ids = torch.tensor([tokenize(tok, CASES[2]["prompt"], pad_id)])
            ref = openclip_penultimate(single, tcfg, ids)
            got = text(ids)
            err = float((ref - got).norm() / ref.norm())
            assert err < 1e-5, f"text encoder differs from open_clip: {err}"
            print(f"{name}: text encoder matches open_clip's penultimate layer (rel. error {err:.2e})")
        runs.append((name, unet, vae, text, pad_id, spec["prediction"]))
        if name == "tiny-sd2":
            runs.append(("tiny-sd2-v", make_v_variant(out), vae, text, pad_id, "v_prediction"))

    for i, (name, unet, vae, _, _, _) in enumerate(runs):
        component_fixtures(out, name, unet, vae, i)
    loss_fixture(out, os.path.join(out, "models", "tiny-sd2", "unet"))
    seed = 0
    for name, unet, vae, text, pad_id, prediction in runs:
        for i, sched_name in enumerate(SCHEDULERS):
            for case in (CASES[i % len(CASES)], CASES[(i + 1) % len(CASES)]):
                seed += 1
                run_case(out, name, sched_name, case, unet, vae, text, tok, pad_id, prediction, seed)
                print(f"{name} {sched_name} {case['case']}")


if __name__ == "__main__":
    main()
