#!/usr/bin/env python3
"""PyTorch baseline for scripts/gpu-check.sh, run on the GPU machine.

Times, on the same card and at the same shapes as rfnet-native's benchmarks:
  * matmul, conv2d and scaled-dot-product attention (cuBLAS, cuDNN and
    PyTorch's fused attention) -- the peers of `go test -bench ./cuda`;
  * when diffusers can be imported (a source tree named by DIFFUSERS_SRC, or
    the reference environment's diffusers v0.21.4 and huggingface_hub that
    scripts/gpu-check.sh build stages under bin/gpu/refenv), SD 1.5 and
    SD 2.1-base with random weights, eager, PyTorch's scaled_dot_product_attention
    (diffusers' AttnProcessor2_0): the text encoder (transformers' CLIPTextModel,
    when it imports), one UNet call with classifier-free guidance (batch 2,
    64x64 latent), one VAE decode to 512x512, and a 50-step DDIM loop with
    guidance -- the peers of `rfnet-native bench-engine`, keyed alike
    (model/dtype/call) for scripts/compare.py.

Prints a table and writes JSON to the path given as the first argument,
rewritten after every row, the headline first (SD 2.1 fp16), so a run cut
short by gpu-check's time budget keeps what it measured.
"""
import json
import os
import statistics
import sys
import time

if os.environ.get("DIFFUSERS_SRC"):
    sys.path.insert(0, os.path.join(os.environ["DIFFUSERS_SRC"], "src"))

import torch


def timed(fn, runs=5):
    fn()  # warm-up
    torch.cuda.synchronize()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


def on_gpu():
    """Builds modules on the GPU (torch >= 2.0): random initialization of a
    UNet's 865M parameters takes seconds on the CPU, milliseconds there."""
    import contextlib
    return torch.device("cuda") if hasattr(torch.device, "__enter__") else contextlib.nullcontext()


DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def micro(add):
    dev = "cuda"
    for name, dt in DTYPES.items():
        for label, m, n, k in [("square_1024", 1024, 1024, 1024), ("attn_proj_64x64_320", 4096, 320, 320),
                               ("ff_in_16x16_1280", 256, 10240, 1280), ("cross_kv_77_1024_to_640", 77, 640, 1024)]:
            x = torch.randn(m, k, device=dev, dtype=dt)
            w = torch.randn(n, k, device=dev, dtype=dt)
            med, _ = timed(lambda: x @ w.t(), runs=20)
            add("matmul/" + name + "/" + label, med, 2 * m * n * k / med / 1e9)
        for c, h, o, ks, s, p in [(320, 64, 320, 3, 1, 1), (640, 32, 640, 3, 1, 1), (1280, 16, 1280, 3, 1, 1),
                                  (320, 64, 320, 3, 2, 1), (640, 32, 1280, 1, 1, 0), (128, 256, 128, 3, 1, 1)]:
            x = torch.randn(1, c, h, h, device=dev, dtype=dt)
            w = torch.randn(o, c, ks, ks, device=dev, dtype=dt)
            b = torch.randn(o, device=dev, dtype=dt)
            oh = (h + 2 * p - ks) // s + 1
            med, _ = timed(lambda: torch.nn.functional.conv2d(x, w, b, s, p), runs=20)
            add(f"conv2d/{name}/1x{c}x{h}_k{ks}_s{s}_to{o}", med, 2 * o * oh * oh * c * ks * ks / med / 1e9)
    for name in ("f32", "f16"):
        dt = DTYPES[name]
        for b, n, d in [(16, 4096, 40), (16, 1024, 80), (10, 4096, 64)]:
            q, k, v = (torch.randn(1, b, n, d, device=dev, dtype=dt) for _ in range(3))
            med, _ = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), runs=20)
            add(f"attention/{name}/{b}x{n}x{d}", med, 4 * b * n * n * d / med / 1e9)


# The model runs in order of importance (the step may be cut short): SD 2.1's
# fp16 loop is issue 4's headline ratio; bench-engine runs SD 1.5 in fp16 and fp32.
MODEL_RUNS = [("sd21", "f16"), ("sd15", "f16"), ("sd15", "f32")]


# Optional packages that diffusers v0.21.4 imports when it finds them
# (loaders.py, models/modeling_utils.py) and whose current releases need a
# newer huggingface_hub than the 0.17.3 it runs with: hidden from it, so that
# importlib.util.find_spec reports them missing. The text encoder, the one
# thing transformers is wanted for, is timed in a child process that sees the
# system's transformers and huggingface_hub instead (text_baselines).
HIDDEN_FROM_DIFFUSERS = ("transformers", "accelerate", "peft")

TEXT_CONFIGS = {
    "sd15": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu"),
    "sd21": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16, hidden_act="gelu"),
}


def text_child():
    """--text: times transformers' CLIPTextModel for every MODEL_RUNS entry and
    prints one JSON object per line ({"name", "median_ms"} or {"note"})."""
    torch.backends.cuda.matmul.allow_tf32 = False  # as main()
    try:
        from transformers import CLIPTextConfig, CLIPTextModel
    except Exception as e:  # noqa: BLE001 - any import failure means "no text baseline"
        print(json.dumps({"note": f"transformers not importable ({type(e).__name__}: {e}); no text-encoder baseline"}), flush=True)
        return
    for model, name in MODEL_RUNS:
        dt = DTYPES[name]
        try:
            with torch.no_grad():
                with on_gpu():
                    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **TEXT_CONFIGS[model]))
                text = text.to("cuda", dt).eval()
                ids = torch.randint(0, 49407, (1, 77), device="cuda")
                med, _ = timed(lambda: text(ids).last_hidden_state)
            print(json.dumps({"name": f"{model}/{name}/text", "median_ms": med}), flush=True)
            del text
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"note": f"{model}/{name}/text: {type(e).__name__}: {e}"}), flush=True)


def text_baselines(add, notes):
    """Runs text_child in a process whose PYTHONPATH leaves out the staged
    reference environment (any entry holding a huggingface_hub package) and
    DIFFUSERS_SRC, so transformers gets the hub it was released with."""
    import subprocess
    env = dict(os.environ)
    env.pop("DIFFUSERS_SRC", None)
    keep = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
            if p and not os.path.isdir(os.path.join(p, "huggingface_hub"))]
    env["PYTHONPATH"] = os.pathsep.join(keep)
    try:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--text"], env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        notes.append("text-encoder baseline timed out")
        return
    for line in r.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "note" in rec:
            notes.append(rec["note"])
        else:
            add(rec["name"], rec["median_ms"])
    if r.returncode != 0:
        notes.append(f"text-encoder baseline exited {r.returncode}: {r.stderr.strip()[-400:]}")


def models(add, notes):
    text_baselines(add, notes)
    for name in HIDDEN_FROM_DIFFUSERS:
        sys.modules.setdefault(name, None)
    try:
        import diffusers
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    except Exception as e:  # noqa: BLE001 - any import failure means "no baseline"
        import traceback
        traceback.print_exc()
        notes.append(f"diffusers not importable ({type(e).__name__}: {e}); model baselines skipped")
        return
    configs = {
        "sd15": dict(cross_attention_dim=768, attention_head_dim=8),
        "sd21": dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True),
    }
    vae_cfg = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                   up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                   layers_per_block=2, latent_channels=4, sample_size=512)
    for model, name in MODEL_RUNS:
        unet_cfg = configs[model]
        dt = DTYPES[name]
        key = f"{model}/{name}/"
        with torch.no_grad():
            with on_gpu():
                unet = UNet2DConditionModel(sample_size=64, **unet_cfg).to("cuda", dt).eval()
            procs = sorted({type(p).__name__ for p in unet.attn_processors.values()})
            notes.append(f"{key}: diffusers {diffusers.__version__}, attention processors {', '.join(procs)}")
            ctx = torch.randn(2, 77, unet_cfg["cross_attention_dim"], device="cuda", dtype=dt)
            z = torch.randn(1, 4, 64, 64, device="cuda", dtype=dt)
            t = torch.tensor([500, 500], device="cuda")
            med, _ = timed(lambda: unet(torch.cat([z, z]), t, ctx).sample)
            add(key + "unet", med)

            def loop():
                sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                      clip_sample=False, set_alpha_to_one=False, steps_offset=1)
                sched.set_timesteps(50)
                x = z
                for step in sched.timesteps:
                    eps = unet(torch.cat([x, x]), step, ctx).sample
                    un, co = eps.chunk(2)
                    x = sched.step(un + 7.5 * (co - un), step, x).prev_sample
                return x

            med, _ = timed(loop, runs=1)
            add(key + "denoise50", med)
            del unet
            with on_gpu():
                vae = AutoencoderKL(**vae_cfg).to("cuda", dt).eval()
            med, _ = timed(lambda: vae.decode(z).sample, runs=3)
            add(key + "vae", med)
            del vae
        torch.cuda.empty_cache()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "torch-baseline.json"
    # float32 stays float32 (rfnet-native uses TF32 only when asked).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows, notes = [], []

    def save():
        # Rewritten after every row, atomically: a run cut short keeps what it measured.
        with open(out + ".tmp", "w") as f:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "notes": notes,
                       "rows": [{"name": n, "median_ms": m, "tflops": t} for n, m, t in rows]}, f, indent=1)
        os.replace(out + ".tmp", out)

    def add(name, med, tflops=None):
        rows.append((name, med, tflops))
        print(f"{name:64s} {med:10.3f} {'' if tflops is None else f'{tflops:8.1f}'}")
        save()

    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}")
    print(f"{'call':64s} {'median ms':>10s} {'TFLOP/s':>8s}")
    models(add, notes)
    micro(add)
    for n in notes:
        print("note:", n)
    save()


if __name__ == "__main__":
    if sys.argv[1:] == ["--text"]:
        text_child()
    else:
        main()
