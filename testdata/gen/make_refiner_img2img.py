#!/usr/bin/env python3
"""Reference SDXL refiner img2img runs (issue 23) on make_refiner.py's tiny refiner, by diffusers
v0.21.4's own StableDiffusionXLImg2ImgPipeline on the CPU.

Runs in the reference environment (../shared/refenv/README.md), after make_refiner.py:

    source /tmp/refenv/env.sh
    /usr/bin/python3 testdata/gen/make_refiner_img2img.py --out testdata

The pipeline is the released one (requires_aesthetics_score, force_zeros_for_empty_prompt false, the
folder's Euler scheduler, torch.Generator().manual_seed(seed) on the CPU). transformers is not in the
environment, so the pipeline module gets a stand-in `transformers` module, and its text_encoder_2
and tokenizer_2 are make_refiner.py's CLIPTextModelWithProjection (the folder's weights) and
open_clip's tokenizer on the tiny vocabulary, padded with "!" and cut to 77 as CLIPTokenizer cuts.

For each case it writes, under refiner/ (not parity/, whose JSON files are the text-to-image runs):
  refiner-<case>.json         the request (prompt, negative prompt, strength, steps, guidance, aesthetic
                              scores, seed, input image) and the token ids
  refiner-<case>.safetensors  cond, uncond [1, 77, D]; pooled, uncond_pooled [1, P]; time_ids,
                              neg_time_ids [1, 5]; timesteps (the steps run); init_latents (the encoded
                              image's posterior sample, noised to the first timestep); latents (final);
                              image [1, 3, H, W] in [0, 1] (decoded as the pipeline decodes, unclamped)
and the input images refiner-input-<W>x<H>.png (8-bit RGB, smooth colours and noise from a seed).
"""
import argparse
import json
import os
import sys
import types

import numpy as np
import PIL.Image
import torch
from safetensors.torch import load_file, save_file

import diffusers  # noqa: F401  (first: it must find no transformers)
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402
import make_refiner as mr  # noqa: E402

CASES = [
    dict(case="plain", prompt=mr.PROMPTS["plain"], negative="", strength=0.3, steps=10, guidance=5.0, size=(64, 64), seed=7890),
    dict(case="negative", prompt="a rubber duck sailing on a lava field", negative="blurry, low quality, watermark",
         strength=0.5, steps=20, guidance=5.0, size=(64, 48), seed=11),
    dict(case="long", prompt=mr.PROMPTS["long"], negative="", strength=0.3, steps=20, guidance=5.0, size=(48, 64), seed=12),
    dict(case="nocfg", prompt="a snowman building a friend in a blizzard", negative="", strength=0.5, steps=10,
         guidance=1.0, size=(64, 64), seed=13),
]
AESTHETIC, NEGATIVE_AESTHETIC = 6.0, 2.5  # the pipeline's defaults


class Tokenizer:
    """What the pipeline calls of a CLIPTokenizer: __call__ (max_length or longest padding,
    truncation), batch_decode (for its truncation warning), tokenize and added_tokens_encoder (for
    textual inversion, which adds no tokens here)."""

    model_max_length = 77
    added_tokens_encoder = {}

    def __init__(self, tok, pad_id):
        self.tok, self.pad_id = tok, pad_id
        self.sot, self.eot = tok.all_special_ids

    def __call__(self, prompt, padding="max_length", max_length=None, truncation=False, return_tensors="pt"):
        rows = []
        for p in [prompt] if isinstance(prompt, str) else prompt:
            body = self.tok.encode(p)
            if truncation:
                body = body[:max_length - 2]
            rows.append([self.sot] + body + [self.eot])
        n = max_length if padding == "max_length" else max(len(r) for r in rows)
        return types.SimpleNamespace(input_ids=torch.tensor([r + [self.pad_id] * (n - len(r)) for r in rows]))

    def tokenize(self, prompt):
        return [self.tok.decoder[i] for i in self.tok.encode(prompt)]

    def batch_decode(self, ids):
        return [self.tok.decode(row.tolist()) for row in ids]


class TextEncoder(torch.nn.Module):
    """CLIPTextModelWithProjection's call as the pipeline makes it: output[0] is text_embeds,
    output.hidden_states[-2] the penultimate layer's hidden states."""

    def __init__(self, model, cfg):
        super().__init__()
        self.model, self.config = model, types.SimpleNamespace(**cfg)

    @property
    def dtype(self):
        return torch.float32

    @property
    def device(self):  # the pipeline asks its first module, in an order that varies from run to run
        return torch.device("cpu")

    def forward(self, ids, output_hidden_states=True):
        penultimate, pooled = self.model(ids)

        class Output(tuple):
            hidden_states = (penultimate, None)

        return Output((pooled,))


def load_pipeline(root, tok, pad_id):
    stand_in = types.ModuleType("transformers")
    stand_in.CLIPTextModel, stand_in.CLIPTextModelWithProjection, stand_in.CLIPTokenizer = object, TextEncoder, Tokenizer
    sys.modules["transformers"] = stand_in
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import StableDiffusionXLImg2ImgPipeline
    cfg = json.load(open(os.path.join(root, "text_encoder_2", "config.json")))
    text = mr.CLIPTextModelWithProjection(cfg)
    text.load_state_dict(load_file(os.path.join(root, "text_encoder_2", "model.safetensors")))
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(root, "vae")).eval(),
        text_encoder=None, text_encoder_2=TextEncoder(text.eval(), cfg), tokenizer=None,
        tokenizer_2=Tokenizer(tok, pad_id), unet=UNet2DConditionModel.from_pretrained(os.path.join(root, "unet")).eval(),
        scheduler=EulerDiscreteScheduler.from_pretrained(os.path.join(root, "scheduler")),
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def input_image(path, w, h, seed):
    """Smooth colour ramps plus noise, as 8-bit RGB."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    rgb = torch.stack([x, y, 1 - x * y]) * 0.7 + 0.3 * torch.rand((3, h, w), generator=g)
    arr = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    PIL.Image.fromarray(arr, "RGB").save(path)
    return PIL.Image.open(path).convert("RGB")


def run_case(out, pipe, case, image, image_name):
    record = {}
    encode = pipe.encode_prompt

    def encode_and_record(*args, **kwargs):
        got = encode(*args, **kwargs)
        record.update(cond=got[0], uncond=got[1], pooled=got[2], uncond_pooled=got[3])
        return got

    add_noise = pipe.scheduler.add_noise

    def add_noise_and_record(original, noise, timesteps):
        record["init_latents"] = add_noise(original, noise, timesteps)
        return record["init_latents"]

    time_ids = pipe._get_add_time_ids

    def time_ids_and_record(*args, **kwargs):
        record["time_ids"], record["neg_time_ids"] = time_ids(*args, **kwargs)
        return record["time_ids"], record["neg_time_ids"]

    pipe.encode_prompt, pipe.scheduler.add_noise, pipe._get_add_time_ids = \
        encode_and_record, add_noise_and_record, time_ids_and_record
    latents = pipe(prompt=case["prompt"], negative_prompt=case["negative"], image=image, strength=case["strength"],
                   num_inference_steps=case["steps"], guidance_scale=case["guidance"], aesthetic_score=AESTHETIC,
                   negative_aesthetic_score=NEGATIVE_AESTHETIC, generator=torch.Generator().manual_seed(case["seed"]),
                   output_type="latent").images
    # The pipeline's own decode (fp32: force_upcast changes nothing here), before postprocess clamps.
    decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0] / 2 + 0.5
    tensors = {k: v for k, v in record.items() if v is not None}
    tensors.update(latents=latents, image=decoded,
                   timesteps=pipe.scheduler.timesteps[-int(case["steps"] * case["strength"]):].to(torch.float64))
    name = f"refiner-{case['case']}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "refiner", name + ".safetensors"))
    ids = lambda text: pipe.tokenizer_2(text, max_length=77, truncation=True).input_ids[0].tolist()
    meta = {k: case[k] for k in ("prompt", "negative", "strength", "steps", "guidance", "seed")}
    meta.update(aesthetic_score=AESTHETIC, negative_aesthetic_score=NEGATIVE_AESTHETIC, image=image_name,
                cond_ids=ids(case["prompt"]), uncond_ids=ids(case["negative"]))
    with open(os.path.join(out, "refiner", name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: {len(tensors['timesteps'])} steps, latents std {float(latents.std()):.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata")
    out = ap.parse_args().out
    tok = fx.SimpleTokenizer(bpe_path=os.path.join(out, "tokenizer", "tiny", "bpe_tiny.txt.gz"))
    pipe = load_pipeline(os.path.join(out, "models", mr.NAME), tok, tok.encoder["!"])
    os.makedirs(os.path.join(out, "refiner"), exist_ok=True)
    for i, case in enumerate(CASES):
        w, h = case["size"]
        image_name = f"refiner-input-{w}x{h}.png"
        image = input_image(os.path.join(out, "refiner", image_name), w, h, 100 + w + h)
        run_case(out, pipe, case, image, image_name)


if __name__ == "__main__":
    main()
