#!/usr/bin/env python3
"""RFNet's stage 2 in PyTorch, as the authors' code runs it: the twin that
rfnet-native's RFNet speed is measured against (issue 21) and whose final
latents tests/fixtures compare with ours (testdata/torch-rfnet/).

What it runs, step by step as pipeline/rfnet does (the algorithm notes'
sections in brackets):
  * initial noise: torch.randn on CPU generators, background seed and one
    foreground seed per object, blended inside the centered box [6];
  * one single-object run per object: a steering loop before every DDIM step
    [7.3] (forward of diffusers' UNet batch 1, cond only, stopped right after
    the softmax of the last layer the loss reads; the box loss [7.2]; the
    latent gradient by torch.autograd; z -= sqrt(1 - abar_t) * grad), then the
    classifier-free guidance pass, which saves the cond half's word-token
    attention at the object key and the steering keys;
  * the saliency [7.7], the SAM-free mask [8.2], the alignment shift and the
    shifted trajectories and maps [9.1], the composition [9.2];
  * the overall run [10]: suppression + reference constraint, frozen steps;
  * VAE decodes of every object's image and of the scene.
Attention processors compute the probabilities explicitly (diffusers'
AttnProcessor arithmetic) at the layers the losses and masks read and keep them
on the graph; every other layer keeps diffusers' default processor
(AttnProcessor2_0's fused attention on torch >= 2).

It does not redo stage 1, SAA or tokenization: the spec comes from an RFNet
out-dir of rfnet-native (run.json: prompts and the effective config;
geometry.json: boxes, single-object boxes, token positions and word tokens),
and the token ids of the prompts from --tokens (a JSON object prompt -> 77 ids,
as `rfnet-native tokenize` prints them). Without --tokens the text embeddings
are random (seeded): enough for timing on random weights, where the text does
not change the work.

CPU comparison (reference environment, fp32; testdata/gen/make_torch_rfnet.py
does it all):
    source /tmp/refenv/env.sh
    /usr/bin/python3 scripts/torch_rfnet.py --model testdata/models/tiny-sd2 \\
        --run-dir OUT --tokens tokens.json --out result.safetensors
GPU timing (scripts/gpu-check.sh's rfnet step; random SD 2.1-base weights):
    python3 scripts/torch_rfnet.py --random sd21-base --run-dir testdata/torch-rfnet/spec \\
        --config testdata/torch-rfnet/scene2-512.json --device cuda --dtype fp16 \\
        --time forced,default --rows rows.jsonl
(The spec's token positions come from the tiny model's tokenizer and the text
embeddings are random: on random weights neither changes the work timed.)

Writes (--out X.safetensors): "latents" (final), "object.J.latents",
"object.J.mask" and "object.J.aligned_mask" (latent grid), "composed" (C[0]);
X.json beside it: the trace (one row per steering iteration: stage, object,
step, iteration, loss (unscaled), step_size, grad_norm, suppression, reference)
and the shifts. With --time, one timed scene per mode; --rows FILE appends the
JSON rows {"engine": "torch-rfnet", "model", "dtype", "call", "ms", "tflops",
"peak_gib"} for calls rfnet_scene2_<mode> (the whole stage 2 of one scene) and
guidance (median steering pass: forward to the stop and backward).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Optional packages that diffusers v0.21.4 imports when present and whose
# current releases need a newer huggingface_hub (as scripts/torch_baseline.py).
for _name in ("transformers", "accelerate", "peft"):
    sys.modules.setdefault(_name, None)

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.models import attention_processor as ap  # noqa: E402


def _zero_initialized_scores():
    """Debian's torch 1.13 CPU baddbmm(empty, q, kᵀ, beta=0) leaks NaNs of the
    uninitialized input for small matrices (shared/refenv/README.md): pass a
    zero tensor instead, which gives exactly scale·q·kᵀ."""
    original = ap.Attention.get_attention_scores

    def scores(self, query, key, attention_mask=None):
        if attention_mask is None:
            dtype = torch.float32 if self.upcast_attention else query.dtype
            attention_mask = torch.zeros(query.shape[0], query.shape[1], key.shape[1], dtype=dtype, device=query.device)
        return original(self, query, key, attention_mask)

    ap.Attention.get_attention_scores = scores


_zero_initialized_scores()

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


# ---------------------------------------------------------------------------
# Text encoder: transformers' CLIPTextModel parameter names, last hidden state
# after the final layer norm (the diffusers folders of SD 2.x already drop the
# last block). transformers is not in the reference environment.
# ---------------------------------------------------------------------------

class _Attn(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q = split(self.q_proj(x)) * (d // self.heads) ** -0.5
        w = q @ split(self.k_proj(x)).transpose(-1, -2) + mask
        o = w.softmax(-1) @ split(self.v_proj(x))
        return self.out_proj(o.transpose(1, 2).reshape(b, n, d))


class _MLP(nn.Module):
    def __init__(self, d, hidden, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(d, hidden), nn.Linear(hidden, d), act

    def forward(self, x):
        h = self.fc1(x)
        h = h * torch.sigmoid(1.702 * h) if self.act == "quick_gelu" else F.gelu(h)
        return self.fc2(h)


class _Layer(nn.Module):
    def __init__(self, d, heads, hidden, act):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn, self.mlp = _Attn(d, heads), _MLP(d, hidden, act)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class _Embeddings(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        self.token_embedding, self.position_embedding = nn.Embedding(vocab, d), nn.Embedding(77, d)


class _Encoder(nn.Module):
    def __init__(self, d, layers, heads, hidden, act):
        super().__init__()
        self.layers = nn.ModuleList(_Layer(d, heads, hidden, act) for _ in range(layers))


class _TextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.embeddings = _Embeddings(c["vocab_size"], d)
        self.encoder = _Encoder(d, c["num_hidden_layers"], c["num_attention_heads"], c["intermediate_size"], c["hidden_act"])
        self.final_layer_norm = nn.LayerNorm(d, eps=c.get("layer_norm_eps", 1e-5))


class CLIPText(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.text_model = _TextModel(cfg)

    def forward(self, ids):
        m = self.text_model
        x = m.embeddings.token_embedding(ids) + m.embeddings.position_embedding(torch.arange(ids.shape[1], device=ids.device))
        mask = torch.full((ids.shape[1], ids.shape[1]), torch.finfo(x.dtype).min, device=ids.device).triu(1)
        for layer in m.encoder.layers:
            x = layer(x, mask)
        return m.final_layer_norm(x)


def load_text_encoder(folder):
    from safetensors.torch import load_file
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    enc = CLIPText(cfg)
    sd = load_file(os.path.join(folder, "model.safetensors"))
    sd = {k: v.float() for k, v in sd.items() if "position_ids" not in k}
    missing, unexpected = enc.load_state_dict(sd, strict=False)
    if missing or unexpected:
        sys.exit(f"torch_rfnet: {folder}/model.safetensors: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return enc.eval()


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    clip_sample=False, set_alpha_to_one=False, steps_offset=1)
RANDOM_MODELS = {
    "sd21-base": dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True),
    "sd15": dict(cross_attention_dim=768, attention_head_dim=8),
}
RANDOM_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                  layers_per_block=2, latent_channels=4, sample_size=512)


def on_device(device):
    """Builds modules on the GPU where torch can (>= 2.0): random
    initialization of 865M parameters takes seconds on the CPU."""
    import contextlib
    if device != "cpu" and hasattr(torch.device, "__enter__"):
        return torch.device(device)
    return contextlib.nullcontext()


def load_models(args, dt):
    if args.random:
        torch.manual_seed(0)
        with on_device(args.device):
            unet = UNet2DConditionModel(sample_size=64, **RANDOM_MODELS[args.random])
            vae = AutoencoderKL(**RANDOM_VAE)
        return unet.to(args.device, dt).eval(), vae.to(args.device, dt).eval(), SD_SCHEDULER, None
    unet = UNet2DConditionModel.from_pretrained(os.path.join(args.model, "unet"), low_cpu_mem_usage=False)
    vae = AutoencoderKL.from_pretrained(os.path.join(args.model, "vae"), low_cpu_mem_usage=False)
    with open(os.path.join(args.model, "scheduler", "scheduler_config.json")) as f:
        sc = json.load(f)
    text = load_text_encoder(os.path.join(args.model, "text_encoder")) if args.tokens else None
    return unet.to(args.device, dt).eval(), vae.to(args.device, dt).eval(), sc, text


def module_name(key):
    """RFNet's attention key (part.block.attention.transformer) -> the attn2 module's name."""
    part, block, attn, tb = key.split(".")
    if part == "mid":
        return f"mid_block.attentions.{attn}.transformer_blocks.{tb}.attn2"
    return f"{part}_blocks.{block}.attentions.{attn}.transformer_blocks.{tb}.attn2"


class Stop(Exception):
    """Ends a steering pass's forward after the last layer the loss reads."""


class Capture:
    """diffusers' AttnProcessor for one cross-attention layer that hands its
    probabilities [B, heads, N, 77] to the watcher (on the autograd graph)."""

    def __init__(self, key, watch):
        self.key, self.watch = key, watch

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        b, n, _ = hidden_states.shape
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        v = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(q, k, None)
        self.watch.seen(self.key, probs.view(b, attn.heads, n, -1))
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        return attn.to_out[1](attn.to_out[0](out))


class Watch:
    """What the current pass keeps: probabilities of the keys in want; with
    stop, the forward ends once all of them are seen."""

    def __init__(self):
        self.want, self.stop, self.maps = set(), False, {}

    def begin(self, want, stop):
        self.want, self.stop, self.maps = set(want), stop, {}

    def seen(self, key, probs):
        if key in self.want:
            self.maps[key] = probs
            if self.stop and len(self.maps) == len(self.want):
                raise Stop()


def install(unet, keys, watch):
    names = {module_name(k): k for k in keys}
    procs = {}
    for name, proc in unet.attn_processors.items():
        base = name[: -len(".processor")]
        procs[name] = Capture(names[base], watch) if base in names else proc
    missing = set(names) - {n[: -len(".processor")] for n in procs}
    if missing:
        sys.exit(f"torch_rfnet: attention keys {sorted(names[m] for m in missing)} are not cross-attention layers of this UNet")
    unet.set_attn_processor(procs)


# ---------------------------------------------------------------------------
# Geometry on the host (float64 numpy), as pipeline/rfnet's boxes.go, mask.go, compose.go
# ---------------------------------------------------------------------------

def raster(box, h, w):
    """§6.3: corner and size rounded half-to-even separately, clamped; (xa, ya, xb, yb)."""
    xa, ya = round(box[0] * w), round(box[1] * h)
    xb, yb = xa + round((box[2] - box[0]) * w), ya + round((box[3] - box[1]) * h)
    return max(xa, 0), max(ya, 0), min(xb, w), min(yb, h)


def box_mask(box, h, w):
    m = np.zeros((h, w))
    xa, ya, xb, yb = raster(box, h, w)
    m[ya:yb, xa:xb] = 1
    return m.reshape(-1)


def gaussian_blur(g, sigma):
    """scipy.ndimage.gaussian_filter(mode="reflect", truncate=4), separable."""
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * x * x / (sigma * sigma))
    k /= k.sum()

    def reflect(i, n):
        while i < 0 or i >= n:
            if i < 0:
                i = -i - 1
            if i >= n:
                i = 2 * n - i - 1
        return i

    h, w = g.shape
    tmp, out = np.zeros_like(g), np.zeros_like(g)
    for y in range(h):
        for xx in range(w):
            acc = 0.0
            for j in range(2 * r + 1):
                acc += k[j] * g[y, reflect(xx + j - r, w)]
            tmp[y, xx] = acc
    for y in range(h):
        for xx in range(w):
            acc = 0.0
            for j in range(2 * r + 1):
                acc += k[j] * tmp[reflect(y + j - r, h), xx]
            out[y, xx] = acc
    return out


def bilinear(g, h, w):
    """Half-pixel centers, clamped edges (align_corners=False)."""
    ih, iw = g.shape

    def coord(dst, n_in, n_out):
        src = max((dst + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = int(src)
        return min(i0, n_in - 1), min(i0 + 1, n_in - 1), src - i0

    out = np.zeros((h, w))
    for y in range(h):
        y0, y1, fy = coord(y, ih, h)
        for x in range(w):
            x0, x1, fx = coord(x, iw, w)
            top = g[y0, x0] * (1 - fx) + g[y0, x1] * fx
            bot = g[y1, x0] * (1 - fx) + g[y1, x1] * fx
            out[y, x] = top * (1 - fy) + bot * fy
    return out


def component(m, seed):
    """The 8-connected component of m holding the cell seed (y, x)."""
    h, w = m.shape
    out = np.zeros_like(m)
    if m[seed] == 0:
        return out
    out[seed] = 1
    stack = [seed]
    while stack:
        y, x = stack.pop()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and m[ny, nx] > 0 and out[ny, nx] == 0:
                    out[ny, nx] = 1
                    stack.append((ny, nx))
    return out


def fill_holes(m):
    """Background cells not 4-connected to the border become foreground."""
    h, w = m.shape
    outside = np.zeros_like(m)
    stack = []

    def push(y, x):
        if m[y, x] == 0 and outside[y, x] == 0:
            outside[y, x] = 1
            stack.append((y, x))

    for x in range(w):
        push(0, x)
        push(h - 1, x)
    for y in range(h):
        push(y, 0)
        push(y, w - 1)
    while stack:
        y, x = stack.pop()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < h and 0 <= nx < w:
                push(ny, nx)
    return 1 - outside


def morph(m, erode):
    """3x3 square; outside the grid counts as unset."""
    p = np.pad(m > 0, 1, constant_values=False)
    h, w = m.shape
    win = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    return (win.all(0) if erode else win.any(0)).astype(np.float64)


def extract_mask(sal, so_box, h, w, sigma, tau):
    """§8.2, as mask.go's extractMask."""
    box = box_mask(so_box, h, w).reshape(h, w)
    s = gaussian_blur(sal, sigma)
    lo, hi = s.min(), s.max()
    if hi - lo < 1e-12:
        return box
    s = (s - lo) / (hi - lo)
    up = bilinear(s, h, w)
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    m = (up > tau).astype(np.float64)
    m = component(m, peak)
    m = fill_holes(m)
    m = morph(morph(morph(m, True), False), False)
    xa, ya, xb, yb = raster(so_box, h, w)
    gx, gy = max(2, round(0.1 * (xb - xa))), max(2, round(0.1 * (yb - ya)))
    keep = np.zeros((h, w))
    keep[max(ya - gy, 0):max(yb + gy, 0), max(xa - gx, 0):max(xb + gx, 0)] = 1
    m = m * keep
    area = int((m > 0).sum())
    if area == 0 or area < 0.05 * int((box > 0).sum()):
        return box
    return m


def saliency(saved, key, start):
    """§7.7: the word token's saved map at the object key, mean over steps >= start and heads."""
    acc, n = None, 0
    for s in range(start, len(saved)):
        if key not in saved[s]:
            continue
        v, gh, gw = saved[s][key]
        heads = v.shape[0]
        plane = np.zeros(gh * gw)
        for hh in range(heads):
            plane += v[hh] / heads
        acc = plane if acc is None else acc + plane
        n += 1
    if n == 0:
        return None
    return (acc / n).reshape(gh, gw)


def trunc_div(a, b):
    """Go's integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def shifted(v, h, w, dx, dy):
    """Planes of h×w cells moved by (dx, dy), zero fill; and where content landed."""
    planes = v.reshape(-1, h, w)
    out = np.zeros_like(planes)
    valid = np.zeros((h, w))
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dx) < w and abs(dy) < h:
        out[:, yd, xd] = planes[:, ys, xs]
        valid[yd, xd] = 1
    return out.reshape(v.shape), valid.reshape(-1)


# ---------------------------------------------------------------------------
# Losses (torch, on the graph), as pipeline/rfnet/losses.go
# ---------------------------------------------------------------------------

def top_mean(v, k):
    return v.topk(k, dim=-1).values.mean(-1)


def top_k(p, n):
    return max(1, math.floor(p * n))


def box_term(probs, tokens, mask, fg_p, bg_p, w_fg, w_bg):
    """Σ over heads and tokens of w_fg·(1 - topmean(A⊙M)) + w_bg·topmean(A⊙(1-M)), / |tokens|."""
    rows = probs[0].permute(0, 2, 1)[:, tokens[0]:tokens[0] + len(tokens)].reshape(-1, probs.shape[2])
    n, inside = mask.numel(), int((mask > 0).sum())
    term = None
    if w_fg != 0:
        fg = top_mean(rows * mask, top_k(fg_p, inside))
        term = (fg * -w_fg + w_fg).sum()
    if w_bg != 0:
        bg = (top_mean(rows * (1 - mask), top_k(bg_p, n - inside)) * w_bg).sum()
        term = bg if term is None else term + bg
    return term * (1 / len(tokens))


def ref_term(probs, word, ref, mask_np, eps, dev, dt):
    """§10.3 for one box at one key: masked, normalized inside the box, L1 per head, heads averaged."""
    a = probs[0, :, :, word]  # [heads, N]
    m = torch.tensor(mask_np, device=dev, dtype=dt)
    am = a * m
    an = am / (am.sum(1) + eps).reshape(-1, 1)
    rm = ref * mask_np
    rm = rm / (rm.sum(1, keepdims=True) + eps)
    r = torch.tensor(rm, device=dev, dtype=dt)
    return (an - r).abs().sum(1).mean()


# ---------------------------------------------------------------------------
# Stage 2
# ---------------------------------------------------------------------------

def max_iter(schedule, i):
    return schedule[min(i, len(schedule) - 1)] if schedule else 0


class Stage2:
    def __init__(self, unet, vae, sched_cfg, spec, cfg, device, dt, embed):
        self.unet, self.vae, self.spec, self.c, self.dev, self.dt = unet, vae, spec, cfg, device, dt
        self.sched_cfg = {k: v for k, v in sched_cfg.items() if not k.startswith("_")}
        self.watch = Watch()
        self.steering = cfg["steering_attn_keys"]
        install(unet, self.steering + [cfg["obj_attn_key"]], self.watch)
        self.embed = embed
        self.trace, self.guidance_ms, self.nonfinite = [], [], 0
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def scheduler(self):
        s = DDIMScheduler.from_config(self.sched_cfg)
        s.set_timesteps(self.c["num_inference_steps"])
        return s

    def lat(self, v, ch, h, w):
        return torch.tensor(np.asarray(v).reshape(1, ch, h, w), device=self.dev, dtype=self.dt)

    def steering_pass(self, z, t, cond, loss_fn, step):
        """Forward batch 1 (cond only) to the last layer the loss reads, loss,
        torch.autograd's gradient with respect to z."""
        self.sync()
        t0 = time.perf_counter()
        with torch.enable_grad():
            zt = z.detach().requires_grad_(True)
            self.watch.begin(self.steering, stop=True)
            try:
                self.unet(zt, t, encoder_hidden_states=cond)
            except Stop:
                pass
            parts = loss_fn(step, self.watch.maps)
            loss = parts[0] * self.scale
            (grad,) = torch.autograd.grad(loss, zt)
        self.watch.maps = {}
        lv = float(loss)
        gn = float(grad.double().pow(2).sum().sqrt())
        self.sync()
        self.guidance_ms.append((time.perf_counter() - t0) * 1e3)
        return lv, gn, grad, [None if p is None else float(p) for p in parts[1:]]

    def steer(self, stage, obj, z, cond, uncond, loss_fn, scale, threshold, schedule, max_index, save, save_token, after):
        """pipeline/rfnet's steer: per step the steering iterations (§7.3), then the CFG step."""
        self.scale = scale
        sc = self.scheduler()
        acp = sc.alphas_cumprod
        ctx = torch.cat([uncond, cond])
        latents, saved = [z], []
        last = 10000.0
        for i, t in enumerate(sc.timesteps):
            budget = max_iter(schedule, i)
            if loss_fn is not None and i < max_index and budget > 0:
                n = 0
                # (A non-finite loss ends our run with an error; here, with
                # the threshold at 0 (timing, forced), it keeps the budget's
                # work the same and is counted in the timing line.)
                while (last / scale > threshold or (threshold == 0 and not math.isfinite(last))) and n < budget:
                    lv, gn, grad, parts = self.steering_pass(z, t, cond, loss_fn, i)
                    size = math.sqrt(1 - float(acp[int(t)]))
                    z = z - grad * size
                    last = lv
                    self.nonfinite += not math.isfinite(lv)
                    self.trace.append({"stage": stage, "object": obj, "step": i, "timestep": int(t), "iteration": n,
                                       "step_size": size, "loss": lv / scale, "grad_norm": gn,
                                       "suppression": parts[0], "reference": parts[1]})
                    n += 1
            with torch.no_grad():
                self.watch.begin(save, stop=False)
                out = self.unet(torch.cat([z, z]), t, encoder_hidden_states=ctx).sample
                if save:
                    step_maps = {}
                    for k, p in self.watch.maps.items():
                        gh, gw = self.grids[k]
                        step_maps[k] = (p[1, :, :, save_token].double().cpu().numpy(), gh, gw)
                    saved.append(step_maps)
                self.watch.maps = {}
                u, c = out.chunk(2)
                eps = u + (c - u) * self.c["guidance_scale"]
                z = sc.step(eps, t, z).prev_sample
                if after is not None:
                    z = after(i, z)
            latents.append(z)
        return latents, saved

    def run(self):
        c, s, dev, dt = self.c, self.spec, self.dev, self.dt
        ch, h, w = self.unet.config.in_channels, c["height"] // 8, c["width"] // 8
        levels = len(self.unet.config.block_out_channels)
        self.grids = {}
        for k in self.steering + [c["obj_attn_key"]]:
            part, block = k.split(".")[:2]
            d = {"down": int(block), "mid": levels - 1, "up": levels - 1 - int(block)}[part]
            self.grids[k] = (h >> d, w >> d)
        base = h >> (levels - 1)  # the coarsest attention grid (the middle block's)
        sigma = float(self.scheduler().init_noise_sigma)
        n = ch * h * w
        bg = torch.randn((1, ch, h, w), generator=torch.Generator().manual_seed(c["bg_seed"])).double().numpy().reshape(-1)
        so_uncond = self.embed(s["so_negative_prompt"])
        objs = []
        self.object_latents = []
        for j, o in enumerate(s["objects"]):
            seed = c["fg_seed_start"] + j
            if seed == c["bg_seed"]:
                seed += 12345
            fg = torch.randn((1, ch, h, w), generator=torch.Generator().manual_seed(seed)).double().numpy().reshape(-1)
            m = np.tile(box_mask(o["so_box"], h, w), ch)
            r = c["fg_blending_ratio"]
            zin = bg * (1 - m) + (math.sqrt(1 - r) * bg + math.sqrt(r) * fg) * m
            z0 = self.lat(zin * sigma, ch, h, w)
            cond = self.embed(o["prompt"])
            tokens, so_box = o["so_tokens"], o["so_box"]

            def so_loss(_step, maps, tokens=tokens, so_box=so_box):
                total = None
                for k in self.steering:
                    p = maps[k]
                    gh, gw = self.grids[k]
                    mk = torch.tensor(box_mask(so_box, gh, gw), device=dev, dtype=dt)
                    t_ = box_term(p, tokens, mk, c["fg_top_p"], c["bg_top_p"], c["fg_weight"], c["bg_weight"])
                    total = t_ if total is None else total + t_
                return total * (1 / len(self.steering)), None, None

            lat, saved = self.steer("object", j, z0, cond, so_uncond, so_loss, c["loss_scale"], c["loss_threshold"],
                                    c["max_iter"], c["max_index_step"], [c["obj_attn_key"]] + self.steering,
                                    o["so_word"], None)
            self.object_latents.append(lat[-1])
            with torch.no_grad():
                self.vae.decode(lat[-1] / self.vae.config.scaling_factor)
            sal = saliency(saved, c["obj_attn_key"], c["attn_aggregation_step_start"])
            if sal is None:
                sal = saliency(saved, c["obj_attn_key"], 0)
            mask = extract_mask(sal, o["so_box"], h, w, c["mask_gaussian_sigma"], c["mask_threshold"])
            ys, xs = np.nonzero(mask > 0)
            area = len(xs)
            if area:
                b = o["box"]
                ddx = (b[0] + b[2]) / 2 - xs.sum() / (area * w)
                ddy = (b[1] + b[3]) / 2 - ys.sum() / (area * h)
                if c["horizontal_shift_only"]:
                    ddy = 0.0
                qx, qy = round(ddx * base), round(ddy * base)
            else:
                qx = qy = 0
            sx, sy = trunc_div(qx * w, base), trunc_div(qy * h, base)
            host = [zz.double().cpu().numpy().reshape(-1) for zz in lat]
            shifted_lat, valid = [], None
            for v in host:
                out, valid = shifted(v, h, w, sx, sy)
                shifted_lat.append(out)
            smask, _ = shifted(mask.reshape(-1), h, w, sx, sy)
            ssaved = []
            for step_maps in saved:
                moved = {}
                for k, (v, gh, gw) in step_maps.items():
                    if k not in self.steering:
                        continue
                    mv, _ = shifted(v.reshape(-1), gh, gw, trunc_div(qx * gw, base), trunc_div(qy * gh, base))
                    moved[k] = mv.reshape(v.shape)
                ssaved.append(moved)
            objs.append({"latents": shifted_lat, "valid": valid, "mask": smask, "saved": ssaved,
                         "area": int((smask > 0).sum()), "raw_mask": mask.reshape(-1), "shift": [sx, sy]})
        # Composition (§9.2): largest shifted mask first, stable.
        order = sorted(range(len(objs)), key=lambda j: -objs[j]["area"])
        steps = c["num_inference_steps"]
        C = [bg * sigma] + [np.zeros(n) for _ in range(steps)]
        C[0] = C[0].copy()
        frozen_mask = np.zeros(h * w)
        if c["compose_box_to_bg"]:
            for j in order:
                o = objs[j]
                mm = o["mask"].reshape(h, w)
                ys, xs = np.nonzero(mm > 0)
                if len(xs) == 0:
                    continue
                xa, ya = max(xs.min() - 1, 0), max(ys.min() - 1, 0)
                xb, yb = min(xs.max() + 1, w - 1), min(ys.max() + 1, h - 1)
                rect = np.zeros((h, w))
                rect[ya:yb + 1, xa:xb + 1] = 1
                sel = np.tile((rect * o["valid"].reshape(h, w)).reshape(-1) > 0, ch)
                C[0][sel] = o["latents"][0][sel]
        for j in order:
            o = objs[j]
            sel = np.tile(o["mask"] > 0, ch)
            for st in range(steps + 1):
                C[st][sel] = o["latents"][st][sel]
            frozen_mask[o["mask"] > 0] = 1
        frozen = int(steps * c["frozen_step_ratio"]) if objs else 0
        fm = torch.tensor(frozen_mask.reshape(1, 1, h, w), device=dev, dtype=dt)

        def after(i, z):
            if i < frozen:
                ci = self.lat(C[i + 1], ch, h, w)
                z = ci * fm + z * (1 - fm)
            return z

        phrases = s["phrases"]

        def overall_loss(step, maps):
            sup = ref = None
            for k in self.steering:
                p = maps[k]
                gh, gw = self.grids[k]
                for ph in phrases:
                    if c["suppression_constraint"]:
                        um = np.max([box_mask(s["objects"][j]["box"], gh, gw) for j in ph["objects"]], axis=0)
                        t_ = box_term(p, ph["tokens"], torch.tensor(um, device=dev, dtype=dt), c["fg_top_p"],
                                      c["overall_bg_top_p"], 0, c["suppression_weight"])
                        sup = t_ if sup is None else sup + t_
                    if c["reference_constraint"]:
                        lp = None
                        for j in ph["objects"]:
                            r_ = ref_term(p, ph["word"], objs[j]["saved"][step][k], box_mask(s["objects"][j]["box"], gh, gw),
                                          c["ref_ca_eps"], dev, dt)
                            lp = r_ if lp is None else lp + r_
                        lp = lp * (c["ref_ca_scale"] * c["ref_ca_loss_weight"] / len(ph["objects"]))
                        ref = lp if ref is None else ref + lp
            norm = 1 / (len(phrases) * len(self.steering))
            total = None
            if sup is not None:
                sup = sup * norm
                total = sup
            if ref is not None:
                ref = ref * norm
                total = ref if total is None else total + ref
            return total, sup, ref

        loss = overall_loss if phrases and (c["suppression_constraint"] or c["reference_constraint"]) else None
        z0 = self.lat(C[0], ch, h, w)
        lat, _ = self.steer("overall", None, z0, self.embed(s["overall_prompt"]), self.embed(s["overall_negative_prompt"]),
                            loss, c["overall_loss_scale"], c["overall_loss_threshold"], c["overall_max_iter"],
                            c["overall_max_index_step"], [], 0, after)
        with torch.no_grad():
            self.vae.decode(lat[-1] / self.vae.config.scaling_factor)
        self.sync()
        return {"latents": lat[-1], "objects": objs, "composed": C[0], "frozen": frozen_mask}


# ---------------------------------------------------------------------------
# The spec from an RFNet out-dir
# ---------------------------------------------------------------------------

def read_spec(run_dir, override):
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    with open(os.path.join(run_dir, "geometry.json")) as f:
        geo = json.load(f)
    cfg = dict(run["config"])
    cfg.update(override)
    if cfg.get("scheduler", "ddim") != "ddim":
        sys.exit(f"torch_rfnet: {run_dir}/run.json: scheduler {cfg['scheduler']!r}: only ddim is implemented")
    objects, phrases = [], []
    for j, o in enumerate(geo["objects"]):
        so, ov = o["so_prompt"], o["overall_prompt"]
        objects.append({"name": o["name"], "box": o["box"]["normalized"], "so_box": o["so_box"]["normalized"],
                        "prompt": run["object_prompts"][j], "so_tokens": so["positions"], "so_word": so["word_index"]})
        if phrases and phrases[-1]["text"] == ov["phrase"]:
            phrases[-1]["objects"].append(j)
        else:
            phrases.append({"text": ov["phrase"], "tokens": ov["positions"], "word": ov["word_index"], "objects": [j]})
    spec = {"objects": objects, "phrases": phrases, "overall_prompt": run["overall_prompt"],
            "so_negative_prompt": run["so_negative_prompt"], "overall_negative_prompt": run["overall_negative_prompt"]}
    return spec, cfg


def embedder(args, text, dim, dev, dt):
    cache = {}
    ids_of = None
    if args.tokens:
        with open(args.tokens) as f:
            ids_of = json.load(f)

    def embed(prompt):
        if prompt not in cache:
            if ids_of is not None:
                if prompt not in ids_of:
                    sys.exit(f"torch_rfnet: {args.tokens}: no token ids for {prompt!r}")
                with torch.no_grad():
                    e = text(torch.tensor([ids_of[prompt]], dtype=torch.long))
            else:
                g = torch.Generator().manual_seed(len(cache) + 1)
                e = torch.randn((1, 77, dim), generator=g)
            cache[prompt] = e.to(dev, dt)
        return cache[prompt]

    return embed


def write_result(path, res, engine, h, w):
    from safetensors.torch import save_file
    t = {"latents": res["latents"].detach().float().cpu().contiguous(),
         "composed": torch.tensor(res["composed"], dtype=torch.float32).reshape(1, -1, h, w)}
    for j, o in enumerate(res["objects"]):
        t[f"object.{j}.latents"] = engine.object_latents[j].detach().float().cpu().contiguous()
        t[f"object.{j}.mask"] = torch.tensor(o["raw_mask"], dtype=torch.float32).reshape(h, w)
        t[f"object.{j}.aligned_mask"] = torch.tensor(o["mask"], dtype=torch.float32).reshape(h, w)
    save_file(t, path + ".tmp")
    os.replace(path + ".tmp", path)
    meta = {"trace": engine.trace, "shifts": [o["shift"] for o in res["objects"]],
            "torch": torch.__version__}
    jpath = os.path.splitext(path)[0] + ".json"
    with open(jpath + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    os.replace(jpath + ".tmp", jpath)


def main():
    ap_ = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap_.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="diffusers model folder (unet/, vae/, scheduler/, text_encoder/)")
    src.add_argument("--random", choices=sorted(RANDOM_MODELS), help="random full-size weights of this model")
    ap_.add_argument("--run-dir", required=True, help="rfnet-native RFNet out-dir: run.json and geometry.json")
    ap_.add_argument("--config", help="JSON object of config keys over run.json's config")
    ap_.add_argument("--tokens", help="JSON object: prompt -> its 77 token ids (rfnet-native tokenize)")
    ap_.add_argument("--device", default="cpu")
    ap_.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap_.add_argument("--forced", action="store_true", help="loss thresholds 0: every iteration of the budget runs")
    ap_.add_argument("--out", help="final latents, masks (.safetensors) and trace (.json beside it)")
    ap_.add_argument("--time", help="comma-separated modes (forced, default): one timed scene each, after a warm-up pass")
    ap_.add_argument("--rows", help="append the timing rows (JSON lines) to this file")
    ap_.add_argument("--model-name", default=None, help="the rows' model (default: --random's name, else the folder's)")
    args = ap_.parse_args()
    if args.tokens and args.random:
        sys.exit("torch_rfnet: --tokens needs --model (random weights have no text encoder)")
    dt = DTYPES[args.dtype]
    if args.device == "cpu" and dt == torch.float16:
        sys.exit("torch_rfnet: fp16 needs --device cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    override = {}
    if args.config:
        with open(args.config) as f:
            override = json.load(f)
    spec, cfg = read_spec(args.run_dir, override)
    unet, vae, sched_cfg, text = load_models(args, dt)
    embed = embedder(args, text, unet.config.cross_attention_dim, args.device, dt)
    modes = args.time.split(",") if args.time else ["forced" if args.forced else "default"]
    rows = []
    for mode in modes:
        if mode not in ("forced", "default"):
            sys.exit(f"torch_rfnet: --time: mode {mode!r}: want forced or default")
        c = dict(cfg)
        if mode == "forced":
            c["loss_threshold"] = c["overall_loss_threshold"] = 0
        engine = Stage2(unet, vae, sched_cfg, spec, c, args.device, dt, embed)
        if args.time:
            # Warm-up: one CFG pass and one steering pass (kernels, allocator).
            with torch.no_grad():
                z = torch.randn(1, unet.config.in_channels, c["height"] // 8, c["width"] // 8, device=args.device, dtype=dt)
                e = embed(spec["overall_prompt"])
                unet(torch.cat([z, z]), 500, encoder_hidden_states=torch.cat([e, e]))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        res = engine.run()
        ms = (time.perf_counter() - t0) * 1e3
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
        iters = len(engine.trace)
        print(json.dumps({"mode": mode, "ms": ms, "steering_iterations": iters,
                          "guidance_median_ms": statistics.median(engine.guidance_ms) if engine.guidance_ms else None,
                          "nonfinite_losses": engine.nonfinite}),
              file=sys.stderr, flush=True)
        name = args.model_name or args.random or os.path.basename(os.path.normpath(args.model))
        base = {"engine": "torch-rfnet", "model": name, "dtype": args.dtype, "tflops": None, "peak_gib": peak}
        rows.append(dict(base, call=f"rfnet_scene2_{mode}", ms=ms))
        if mode == "forced" and engine.guidance_ms:
            rows.append(dict(base, call="guidance", ms=statistics.median(engine.guidance_ms)))
        if args.out and len(modes) == 1:
            write_result(args.out, res, engine, c["height"] // 8, c["width"] // 8)
        if args.rows:
            with open(args.rows, "a") as f:
                for r in rows:
                    f.write(json.dumps({k: r[k] for k in ("engine", "model", "dtype", "call", "ms", "tflops", "peak_gib")}) + "\n")
            rows = []


if __name__ == "__main__":
    main()
