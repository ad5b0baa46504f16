#!/usr/bin/env python3
"""diffusers' SDXL refiner timed beside `rfnet-native bench-engine --refiner` (issue 23), run by
scripts/gpu-check.sh's torch group on the GPU machine:

    PYTHONPATH=bin/gpu/refenv python3 scripts/torch_refiner.py --rows "$RFNET_GPU_ROWS"

and on a CPU, at a tiny size, to check that it runs (the reference environment; see
../shared/refenv/README.md):

    source /tmp/refenv/env.sh
    /usr/bin/python3 scripts/torch_refiner.py --tiny --device cpu

With random weights (fp16 on cuda; --tiny is fp32 on the CPU), diffusers v0.21.4, eager, its default
attention processor (AttnProcessor2_0 on torch >= 2.0), it times:

  unet      one call of UNet2DConditionModel with the released refiner's config
            (stabilityai/stable-diffusion-xl-refiner-1.0's unet/config.json: addition_embed_type
            "text_time", 4 transformer layers per block, linear projections), batch 2 (classifier-free
            guidance) at a 128x128 latent -- bench-engine's "refiner unet, batch 2" row;
  refine15  StableDiffusionXLImg2ImgPipeline on a 1024x1024 image at its defaults (strength 0.3 of
            50 Euler steps: 15 steps with guidance 5, aesthetic scores 6 and 2.5), the text encoder,
            VAE encode and decode included -- bench-engine's "refine:" row.

The text encoder (the refiner has only text_encoder_2) is a small torch module with transformers'
CLIPTextModelWithProjection parameter names and the released config (1280 wide, 32 layers, 20 heads,
GELU, a 1280x1280 projection): transformers is not in the reference environment, and its current
releases need a newer huggingface_hub than diffusers v0.21.4 runs with. The tokenizer is a stand-in
that gives 77 ids whatever the prompt (the cost of tokenizing is not what is compared). The VAE keeps
the released force_upcast, so diffusers decodes in fp32 as the engine does for a VAE that has it.

Prints rows like torch_baseline.py and, with --rows FILE, appends JSON lines
{"engine": "diffusers-eager", "model": "sdxl-refiner", "dtype", "call", "ms", "tflops", "peak_gib"}
(the $RFNET_GPU_ROWS record of gpu-check.sh).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types

if os.environ.get("DIFFUSERS_SRC"):
    sys.path.insert(0, os.path.join(os.environ["DIFFUSERS_SRC"], "src"))

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Hidden from diffusers as in torch_baseline.py (their current releases need a newer huggingface_hub);
# importlib.util.find_spec then reports them missing.
for _name in ("transformers", "accelerate", "peft"):
    sys.modules.setdefault(_name, None)

import diffusers  # noqa: E402
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import Attention  # noqa: E402

# torch 1.13's CPU baddbmm propagates NaN from the ignored beta=0 input (the refenv README's workaround).
_orig_scores = Attention.get_attention_scores


def _scores(self, query, key, attention_mask=None):
    if attention_mask is None:
        dtype = torch.float32 if self.upcast_attention else query.dtype
        attention_mask = torch.zeros(query.shape[0], query.shape[1], key.shape[1], dtype=dtype, device=query.device)
    return _orig_scores(self, query, key, attention_mask)


Attention.get_attention_scores = _scores

# The SDXL img2img pipeline's module imports three names from transformers (type hints only): a stub
# with those names stands in while it is imported.
sys.modules["transformers"] = types.SimpleNamespace(CLIPTextModel=object, CLIPTextModelWithProjection=object,
                                                    CLIPTokenizer=object, __name__="transformers")
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (  # noqa: E402
    StableDiffusionXLImg2ImgPipeline)
sys.modules["transformers"] = None

# stabilityai/stable-diffusion-xl-refiner-1.0: unet/config.json, text_encoder_2/config.json, vae/config.json
# (the SDXL autoencoder) and scheduler/scheduler_config.json, as in testdata/gen/make_refiner.py and
# internal/randckpt/manifests/sdxl-refiner-*.json.
FULL = dict(
    unet=dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(384, 768, 1536, 1536),
              down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
              attention_head_dim=(6, 12, 24, 24), transformer_layers_per_block=4, cross_attention_dim=1280,
              use_linear_projection=True, norm_num_groups=32, addition_embed_type="text_time",
              addition_embed_type_num_heads=64, addition_time_embed_dim=256,
              projection_class_embeddings_input_dim=5 * 256 + 1280),
    text=dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, projection_dim=1280),
    vae=dict(block_out_channels=(128, 256, 512, 512), norm_num_groups=32),
    image=1024)
# --tiny: the same architecture, scaled down (as make_refiner.py's), at a 64x64 image.
TINY = dict(
    unet=dict(FULL["unet"], sample_size=8, block_out_channels=(16, 16, 32, 32), attention_head_dim=(2, 2, 4, 4),
              transformer_layers_per_block=(1, 2, 3, 2), cross_attention_dim=32, norm_num_groups=8,
              projection_class_embeddings_input_dim=5 * 256 + 24),
    text=dict(hidden_size=32, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2, projection_dim=24),
    vae=dict(block_out_channels=(8, 8, 16, 16), norm_num_groups=4),
    image=64)
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 prediction_type="epsilon", steps_offset=1, timestep_spacing="leading", interpolation_type="linear")
PROMPT = "a photo of a cat in a sunny garden"  # bench-engine --refiner's


class CLIPLayer(nn.Module):
    def __init__(self, d, ff, heads):
        super().__init__()
        self.heads = heads
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = nn.Module()
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self.self_attn, n, nn.Linear(d, d))
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x, mask):
        a = self.self_attn
        h = self.layer_norm1(x)
        b, n, d = h.shape
        q, k, v = (p(h).view(b, n, self.heads, d // self.heads).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        w = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5 + mask
        x = x + a.out_proj((w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.layer_norm2(x))))


class CLIPTextModelWithProjection(nn.Module):
    """transformers' CLIPTextModelWithProjection parameter names; forward returns what SDXL's
    encode_prompt reads: [0] the projected pooled embedding (final layer norm at the highest id, the
    end-of-text token) and .hidden_states (the embeddings and every layer's output)."""

    def __init__(self, cfg):
        super().__init__()
        self.config = types.SimpleNamespace(**cfg)  # the pipeline reads config.projection_dim
        d = cfg["hidden_size"]
        self.text_model = nn.Module()
        self.text_model.embeddings = nn.Module()
        self.text_model.embeddings.token_embedding = nn.Embedding(49408, d)
        self.text_model.embeddings.position_embedding = nn.Embedding(77, d)
        self.text_model.encoder = nn.Module()
        self.text_model.encoder.layers = nn.ModuleList(
            CLIPLayer(d, cfg["intermediate_size"], cfg["num_attention_heads"]) for _ in range(cfg["num_hidden_layers"]))
        self.text_model.final_layer_norm = nn.LayerNorm(d)
        self.text_projection = nn.Linear(d, cfg["projection_dim"], bias=False)

    @property
    def dtype(self):
        return self.text_projection.weight.dtype

    @property
    def device(self):  # DiffusionPipeline.device asks its first module
        return self.text_projection.weight.device

    def forward(self, ids, output_hidden_states=True):
        m = self.text_model
        n = ids.shape[1]
        x = m.embeddings.token_embedding(ids) + m.embeddings.position_embedding(torch.arange(n, device=ids.device))
        mask = torch.full((n, n), torch.finfo(x.dtype).min, device=ids.device, dtype=x.dtype).triu(1)
        hidden = [x]
        for layer in m.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        pooled = m.final_layer_norm(x)[torch.arange(ids.shape[0], device=ids.device), ids.argmax(-1)]
        return _Output([self.text_projection(pooled)], hidden)


class _Output(tuple):
    """transformers' output: indexable, with .hidden_states."""

    def __new__(cls, items, hidden):
        t = super().__new__(cls, items)
        t.hidden_states = tuple(hidden)
        return t


class StandInTokenizer:
    """What encode_prompt asks of a CLIPTokenizer: 77 ids (start, one id a word, end, padding with "!"
    as the refiner's tokenizer_2 does), tokenize, batch_decode and no added tokens."""
    model_max_length = 77
    added_tokens_encoder = {}

    def tokenize(self, text):
        return text.split()

    def __call__(self, prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"):
        prompts = [prompts] if isinstance(prompts, str) else prompts
        rows = [[49406] + [256 + sum(map(ord, w)) % 40000 for w in p.split()][:75] + [49407] for p in prompts]
        width = 77 if padding == "max_length" else max(map(len, rows))
        return types.SimpleNamespace(input_ids=torch.tensor([r + [0] * (width - len(r)) for r in rows]))

    def batch_decode(self, ids):
        return ["" for _ in ids]


def build(cfg, device, dtype):
    """The random pipeline, built on the device (torch >= 2.0: initializing the UNet's 2.3G parameters
    takes minutes on the CPU, seconds there)."""
    ctx = torch.device(device) if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
    with ctx:
        unet = UNet2DConditionModel(**cfg["unet"])
        text = CLIPTextModelWithProjection(cfg["text"])
        b = cfg["vae"]["block_out_channels"]
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(b),
                            up_block_types=("UpDecoderBlock2D",) * len(b), block_out_channels=b, layers_per_block=2,
                            latent_channels=4, norm_num_groups=cfg["vae"]["norm_num_groups"],
                            sample_size=cfg["image"], scaling_factor=0.13025, force_upcast=True)
    for m in (unet, text, vae):
        m.to(device, dtype).eval()
    pipe = StableDiffusionXLImg2ImgPipeline(vae=vae, text_encoder=None, text_encoder_2=text, tokenizer=None,
                                            tokenizer_2=StandInTokenizer(), unet=unet,
                                            scheduler=EulerDiscreteScheduler(**SCHEDULER), requires_aesthetics_score=True,
                                            force_zeros_for_empty_prompt=False, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=("f16", "f32", "bf16"), default=None, help="default f16 on cuda, f32 elsewhere")
    ap.add_argument("--tiny", action="store_true", help="a scaled-down refiner at a 64x64 image (checks that it runs)")
    ap.add_argument("--iters", type=int, default=5, help="timed UNet calls (the median is reported), after one warm-up")
    ap.add_argument("--rows", help="append the rows (JSON lines) to this file")
    a = ap.parse_args()
    cuda = a.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("torch_refiner.py: --device cuda but torch sees no CUDA device (use --device cpu --tiny)")
    name = a.dtype or ("f16" if cuda else "f32")
    dtype = {"f16": torch.float16, "f32": torch.float32, "bf16": torch.bfloat16}[name]
    cfg = TINY if a.tiny else FULL
    torch.backends.cuda.matmul.allow_tf32 = False  # as torch_baseline.py
    torch.manual_seed(0)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn, runs):
        fn()  # warm-up
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        ms = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            sync()
            ms.append((time.perf_counter() - t0) * 1e3)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        return statistics.median(ms), peak

    def add(call, label, ms, peak):
        print(f"{'sdxl-refiner/' + name + '/' + call:40s} {ms:10.3f}   {label}", flush=True)
        if a.rows:
            with open(a.rows, "a") as f:
                f.write(json.dumps({"engine": "diffusers-eager", "model": "sdxl-refiner", "dtype": name, "call": call,
                                    "ms": ms, "tflops": None, "peak_gib": peak}) + "\n")

    with torch.no_grad():
        pipe = build(cfg, a.device, dtype)
        procs = sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()})
        dev = "cpu" if not cuda else torch.cuda.get_device_name()
        print(f"PyTorch {torch.__version__}, diffusers {diffusers.__version__} on {dev}; attention {', '.join(procs)}")
        print(f"{'call':40s} {'median ms':>10s}")
        s = cfg["unet"]["sample_size"]
        z = torch.randn(2, 4, s, s, device=a.device, dtype=dtype)
        ctx = torch.randn(2, 77, cfg["unet"]["cross_attention_dim"], device=a.device, dtype=dtype)
        cond = {"text_embeds": torch.randn(2, cfg["text"]["projection_dim"], device=a.device, dtype=dtype),
                "time_ids": torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 6.0], [1024.0, 1024.0, 0.0, 0.0, 2.5]],
                                         device=a.device, dtype=dtype)}
        t = torch.tensor([500, 500], device=a.device)
        ms, peak = timed(lambda: pipe.unet(z, t, ctx, added_cond_kwargs=cond).sample, a.iters)
        add("unet", f"unet, batch 2 (CFG step), {s}x{s} latent", ms, peak)

        image = torch.rand(1, 3, cfg["image"], cfg["image"], device=a.device, dtype=dtype)
        out, calls = [], []
        hook = pipe.unet.register_forward_hook(lambda m, args, res: calls.append(args[0].shape[0]))

        def refine():
            calls.clear()
            out.append(pipe(PROMPT, image=image, strength=0.3, num_inference_steps=50, output_type="np").images)

        ms, peak = timed(refine, 1)
        hook.remove()
        # What is compared must be what bench-engine runs: 15 UNet calls of batch 2, a whole image.
        img = out[-1]
        if calls != [2] * 15 or img.shape != (1, cfg["image"], cfg["image"], 3) or not np.isfinite(img).all():
            sys.exit(f"torch_refiner.py: refine15 made UNet calls of batch {calls} and images {img.shape}"
                     f" (finite: {np.isfinite(img).all()}); want 15 of batch 2 and (1, {cfg['image']}, {cfg['image']}, 3)")
        add("refine15", f"refine: 15 of 50 Euler steps with CFG (strength 0.3), vae encode+decode, {cfg['image']}x{cfg['image']}",
            ms, peak)


if __name__ == "__main__":
    main()
