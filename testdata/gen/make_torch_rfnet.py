#!/usr/bin/env python3
"""Fixtures of testdata/torch-rfnet/: rfnet-native's RFNet stage 2 against its
PyTorch twin scripts/torch_rfnet.py on the tiny SD 2.x model, fp32 on the CPU.

Rerun from the repository root, in the reference environment (see
../shared/refenv/README.md; Go is needed for our side):

    source /tmp/refenv/env.sh
    /usr/bin/python3 testdata/gen/make_torch_rfnet.py

For each case (threshold.config.json: loss thresholds that gate some
iterations; forced.config.json: thresholds 0) it runs `rfnet-native generate`
with testdata/torch-rfnet/plan.json on testdata/models/tiny-sd2 (CPU, fp32),
tokenizes the run's prompts with `rfnet-native tokenize`, and runs
scripts/torch_rfnet.py on the out-dir. It writes CASE.safetensors (final
latents, per-object final latents and masks) and CASE.json (the per-iteration
losses) from the PyTorch side; pipeline/rfnet's TestTorchRFNetParity reruns our
side and compares. spec/run.json and spec/geometry.json keep the threshold
case's prompts, config and geometry (what torch_rfnet.py reads), the spec
scripts/gpu-check.sh times on the GPU.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "torch-rfnet")
MODEL = os.path.join(ROOT, "testdata", "models", "tiny-sd2")
CASES = ["threshold", "forced"]


def main():
    tmp = tempfile.mkdtemp(prefix="torch-rfnet-")
    cli = os.path.join(tmp, "rfnet-native")
    subprocess.run(["go", "build", "-o", cli, "./cmd/rfnet-native"], cwd=ROOT, check=True)
    for case in CASES:
        run_dir = os.path.join(tmp, case)
        subprocess.run([cli, "generate", "--weights", MODEL, "--device", "cpu", "--dtype", "fp32", "--quiet",
                        "--plan", os.path.join(OUT, "plan.json"), "--rfnet-config", os.path.join(OUT, case + ".config.json"),
                        "--out-dir", run_dir], check=True)
        with open(os.path.join(run_dir, "run.json")) as f:
            run = json.load(f)
        prompts = [run["overall_prompt"], run["overall_negative_prompt"], run["so_negative_prompt"]] + run["object_prompts"]
        ids = {}
        for p in prompts:
            out = subprocess.run([cli, "tokenize", "--weights", MODEL, "--prompt", p], check=True, capture_output=True, text=True)
            ids[p] = json.loads(out.stdout)["ids"]
        tokens = os.path.join(tmp, case + "-tokens.json")
        with open(tokens, "w") as f:
            json.dump(ids, f)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "torch_rfnet.py"), "--model", MODEL,
                        "--run-dir", run_dir, "--tokens", tokens, "--out", os.path.join(OUT, case + ".safetensors")], check=True)
        if case == "threshold":
            spec = os.path.join(OUT, "spec")
            os.makedirs(spec, exist_ok=True)
            keep = {k: run[k] for k in ("prompt", "overall_prompt", "overall_negative_prompt", "so_negative_prompt",
                                        "object_prompts", "config")}
            with open(os.path.join(spec, "run.json"), "w") as f:
                json.dump(keep, f, indent=1)
                f.write("\n")
            shutil.copy(os.path.join(run_dir, "geometry.json"), os.path.join(spec, "geometry.json"))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
