#!/usr/bin/env python3
"""Golden cases for pipeline/infotext: AUTOMATIC1111's own writing and reading of infotexts.

Needs only Python 3 and a checkout of AUTOMATIC1111/stable-diffusion-webui (v1.10; none of its
dependencies: the functions are taken out of the file and run on their own):

    python3 testdata/gen/make_infotext.py --webui PATH/TO/stable-diffusion-webui --out testdata/infotext/a1111.json

From that checkout's modules/infotext_utils.py it takes re_param, re_imagesize, quote, unquote,
restore_old_hires_fix_params and parse_generation_parameters, with stand-ins for the web UI's settings
(styles ignored, nothing skipped, no version back-compatibility). Then, for each case below:

  written  pairs of values: the text is built the way processing.py's create_infotext builds it
           (prompt, "\\nNegative prompt: ..." when there is one, "\\n", the pairs as "Key: quote(value)"
           joined by ", ", the whole stripped), then parsed
  text     a text as some tool wrote it, parsed

and it writes the text and A1111's dict for each, plus the dict A1111 makes of an empty text (the
defaults it fills in for keys a text lacks).
"""
import argparse
import ast
import json
import re
import types

WRITTEN = [
    {"name": "plain sd", "prompt": "a mouse hunting a lion", "negative": "", "fields": [
        ["Steps", "50"], ["Sampler", "DDIM"], ["CFG scale", "7.5"], ["Seed", "1"], ["Size", "512x512"],
        ["Model hash", "abcdef0123"], ["Model", "v2-1_512-ema-pruned"], ["Method", "sd"]]},
    {"name": "dpm with schedule type", "prompt": "a drop of water on the International Space Station", "negative": "blurry",
     "fields": [["Steps", "25"], ["Sampler", "DPM++ 2M"], ["Schedule type", "Uniform"], ["CFG scale", "7"],
                ["Seed", "18446744073709551615"], ["Size", "768x512"], ["Model hash", "0123456789"], ["Model", "stable-diffusion-2-1"]]},
    {"name": "punctuation everywhere",
     "prompt": 'a cat, "Tom": chased by a mouse\nsecond line: with a colon, and a comma',
     "negative": 'blurry, lowres\n"bad": hands',
     "fields": [["Steps", "4"], ["Sampler", "Euler"], ["CFG scale", "1"], ["Size", "64x64"],
                ["Model hash", "ffffffffff"], ["Model", "tiny-sd1"], ["Method", "rfnet"],
                ["Init latents", "C:\\noise, v2.safetensors"],
                ["Overall prompt", 'a kitchen floor, a cat "Tom" fleeing: a mouse'],
                ["Objects", '["a cat, fleeing in panic", "a mouse: tiny \\"but\\" determined"]'],
                ["Object seeds", "[20, 21]"]]},
    {"name": "quotes without commas stay bare", "prompt": 'say "hi"', "negative": "",
     "fields": [["Steps", "1"], ["Sampler", "PLMS"], ["CFG scale", "7.5"], ["Overall prompt", 'say "hi" twice'], ["Model", "it's \\ a name"]]},
    {"name": "control characters and unicode", "prompt": "café 東京 🐭", "negative": "",
     "fields": [["Steps", "2"], ["Sampler", "DDIM"], ["CFG scale", "7.5"],
                ["Overall prompt", "tab\there, bell\x07, nul\x00, del\x7f, sep\u2028: café 東京 🐭"],
                ["Objects", '["line\\none", "cr\\rtwo"]']]},
    {"name": "newline in a value", "prompt": "p", "negative": "n",
     "fields": [["Steps", "3"], ["Sampler", "Euler"], ["CFG scale", "2.5"], ["Overall prompt", "one\ntwo\n\nthree"]]},
    {"name": "no prompt", "prompt": "", "negative": "only negative, with a comma",
     "fields": [["Steps", "3"], ["Sampler", "Euler"], ["CFG scale", "2.5"], ["Size", "8x8"]]},
]

TEXTS = [
    {"name": "a web ui image",
     "text": "masterpiece, a red fox in the snow, (detailed fur:1.2), [blurry]\n"
             "Negative prompt: lowres, bad anatomy, ((extra limbs))\n"
             "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3141592653, Size: 512x768, "
             "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: \"fox: 1a2b3c4d5e6f, snow: 0f0f0f0f0f0f\", Version: v1.10.1"},
    {"name": "too few pairs: all prompt", "text": "a prompt\nSteps: 20, Sampler: Euler"},
    {"name": "prompt only", "text": "  just a prompt, nothing else  "},
    {"name": "empty", "text": ""},
    {"name": "empty value is dropped", "text": "p\nSteps: 20, Sampler: , CFG scale: 7, Seed: 1"},
    {"name": "a key twice", "text": "p\nSteps: 20, Seed: 1, Steps: 30, Size: 64x64"},
    {"name": "quoted but not json", "text": "p\nSteps: 1, Model: \"a\\qb\", Sampler: \"x\" y, CFG scale: \"\", Seed: \"\\\"\""},
    {"name": "surrogate pair escape", "text": "p\nSteps: 1, Model: \"\\ud83d\\ude00, x\", CFG scale: 7"},
    {"name": "unicode white space and words",
     "text": "\u00a0a prompt\u3000\nNegative prompt:\u2003neg\x1c\nSteps:\u3000 20, Sampler:\x1cEuler, Modèle 名: é, Size: ５１２x５１２"},
    {"name": "keys with slashes and dashes", "text": "p\nHires upscaler: Latent, Lora/hashes-x: abc, Steps: 1, ENSD: 31337"},
    {"name": "negative prompt twice and more lines",
     "text": "line one\n  line two  \nNegative prompt: n1\nn2\nNegative prompt: n3\nSteps: 1, Sampler: DDIM, CFG scale: 7"},
    {"name": "windows line ends", "text": "prompt\r\nNegative prompt: neg\r\nSteps: 20, Sampler: Euler, CFG scale: 7\r\n"},
    {"name": "values a1111 would misread, quoted",
     "text": "p\nSteps: 1, Model: \"\", Init latents: \" lead\", Overall prompt: \"\\\"quoted\\\"\", Method: \"trail \""},
    {"name": "a size with a newline", "text": "p\nSteps: 1, Size: \"512x512\\n\", CFG scale: 7"},
]


def load(webui):
    path = f"{webui}/modules/infotext_utils.py"
    tree = ast.parse(open(path, encoding="utf8").read(), path)
    wanted_assign = {"re_param_code", "re_param", "re_imagesize"}
    wanted_def = {"quote", "unquote", "restore_old_hires_fix_params", "parse_generation_parameters"}
    body = [n for n in tree.body
            if isinstance(n, ast.Assign) and {t.id for t in n.targets if isinstance(t, ast.Name)} & wanted_assign
            or isinstance(n, ast.FunctionDef) and n.name in wanted_def]
    found = {t.id for n in body if isinstance(n, ast.Assign) for t in n.targets} | {n.name for n in body if isinstance(n, ast.FunctionDef)}
    missing = (wanted_assign | wanted_def) - found
    if missing:
        raise SystemExit(f"{path}: no {', '.join(sorted(missing))}")
    opts = types.SimpleNamespace(infotext_styles="Ignore", use_old_hires_fix_width_height=False, infotext_skip_pasting=[])
    ns = {"re": re, "json": json,
          "shared": types.SimpleNamespace(opts=opts),
          "infotext_versions": types.SimpleNamespace(backcompat=lambda d: None),
          "processing": types.SimpleNamespace()}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webui", required=True, help="a checkout of AUTOMATIC1111/stable-diffusion-webui")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ns = load(a.webui)
    quote, parse = ns["quote"], ns["parse_generation_parameters"]
    cases = []
    for c in WRITTEN:
        params = ", ".join(f"{k}: {quote(v)}" for k, v in c["fields"])
        negative = f"\nNegative prompt: {c['negative']}" if c["negative"] else ""
        text = f"{c['prompt']}{negative}\n{params}".strip()
        cases.append({"name": c["name"], "kind": "written", "prompt": c["prompt"], "negative_prompt": c["negative"],
                      "fields": c["fields"], "text": text, "a1111": parse(text)})
    for c in TEXTS:
        cases.append({"name": c["name"], "kind": "text", "text": c["text"], "a1111": parse(c["text"])})
    defaults = {k: v for k, v in parse("").items() if k not in ("Prompt", "Negative prompt")}
    with open(a.out, "w", encoding="utf8") as f:
        json.dump({"source": "AUTOMATIC1111/stable-diffusion-webui modules/infotext_utils.py, by testdata/gen/make_infotext.py",
                   "defaults": defaults, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
