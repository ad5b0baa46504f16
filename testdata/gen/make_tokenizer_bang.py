#!/usr/bin/env python3
"""Token ids of prompts with "!" under the two tokenizers of Stable Diffusion 2.x, for clip's split tests.

SD 2.x pads with "!" (id 0). diffusers' SD 2.x pipelines tokenize with transformers' CLIPTokenizer,
loaded from the model's tokenizer/ folder, whose special_tokens_map.json names "!" as pad_token; that
makes "!" a special token, which transformers cuts out of the raw prompt before cleaning and BPE, so
every "!" becomes id 0. open_clip's SimpleTokenizer, which SD 2.x's text encoder was trained with,
has no such cut: "!!" and "!!!" are BPE words of their own (diffusers issue #4153).

This script runs both on a list of prompts with "!" in every position (and a few without one) and
writes testdata/tokenizer/bang_ids.json: for each vocabulary ("tiny": testdata/tokenizer/tiny;
"released": OpenAI's CLIP vocabulary) and prompt, the 77 ids of

  diffusers_sd2   transformers' CLIPTokenizer on an SD 2.x tokenizer/ folder (pad "!")
  open_clip_sd2   open_clip's tokenize() (it pads with 0, SD 2.x's "!")
  diffusers_sd1   transformers' CLIPTokenizer on an SD 1.x tokenizer/ folder (pad "<|endoftext|>")

The tokenizer folders are built in a temporary folder from the vocabulary files, with the
special_tokens_map.json and tokenizer_config.json of stabilityai/stable-diffusion-2-1's tokenizer/
(bos, eos and unk as AddedToken objects, pad_token "!" in the map and "<|endoftext|>" in the
config; the map wins when transformers loads them); the SD 1.x folder differs only in the map's
pad_token.

Sources (pure Python; git archive of each tag, on Debian's python3 with python3-regex, python3-numpy,
python3-packaging, python3-filelock, python3-requests, python3-tqdm, python3-yaml and python3-torch):

  huggingface/transformers  v4.33.3  src/        (the slow CLIPTokenizer, the one diffusers' SD pipelines use)
  huggingface/huggingface_hub v0.17.3 src/       (imported by transformers)
  mlfoundations/open_clip   v2.20.0  src/open_clip/tokenizer.py
  rspeer/python-ftfy        v6.1.1   ftfy/       (both tokenizers call ftfy.fix_text; the refenv's
  jquast/wcwidth            0.2.6    wcwidth/     no-op shim would hide what it changes)

    PYTHONPATH=FTFY:WCWIDTH:TRANSFORMERS/src:HFHUB/src /usr/bin/python3 testdata/gen/make_tokenizer_bang.py \\
        --open-clip OPEN_CLIP/src/open_clip/tokenizer.py --clip-vocab ../shared/data/clip --out testdata/tokenizer

(FTFY and WCWIDTH are the folders that hold ftfy/ and wcwidth/.) Checked by clip/split_test.go.

The Rust `tokenizers` package, which every pip install of transformers brings, is not available
here. Without it transformers defines its own AddedToken, and CLIPTokenizer cannot work with that
one: in v4.33 it has no __str__, so str(bos_token) is the dataclass repr and no special token is
found in the vocabulary (bos and eos become new ids, eos_token_id None); from v4.34 on it is
unhashable and CLIPTokenizer fails to load. with_rust_added_token_str gives the v4.33 class the
__str__ of the Rust class (the token's content), the one thing the slow tokenizer needs from it.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile

PROMPTS = [
    # "!" alone, in runs, and spaced
    "!",
    "!!",
    "!!!",
    "! !! !!!",
    "  !  ",
    "!!!!!!!!!!",
    # at the start, the end, inside and between words
    "!wow",
    "wow!",
    "wow!!",
    "wow!!!",
    "hello!world",
    "hello!!world",
    "a!b!c",
    "!hello world!",
    "yes! no! maybe!",
    "a ! b",
    "a !! b !!! c",
    # next to other punctuation
    "?!",
    "!?",
    "?!?!",
    "wow?!",
    "...!",
    "!...",
    "!,",
    "(!)",
    "[!!]",
    "'!'",
    '"!"',
    "!'s",
    "it's!",
    "don't!!",
    "!-!",
    "100%!",
    "#1!",
    "a!.b",
    # next to the other special tokens, spelled in capitals, and as open_clip spells them
    "<|endoftext|>!",
    "!<|endoftext|>",
    "wow!<|endoftext|>",
    "a <|startoftext|>! b",
    "!<|ENDOFTEXT|>!",
    "a <start_of_text> b <end_of_text>!",
    # what cleaning changes: case, white space, full-width and curly forms, ligatures, accents
    "WOW!!! LOUD!",
    "tabs\t!\tand\nnewlines!\r\n!",
    "a\u00a0!\u00a0b",
    "\uff01",
    "wow\uff01\uff01",
    "\u201cquoted!\u201d",
    "\ufb01ne!",
    "caf\u00e9!",
    "\u732b!",
    "\U0001f600!",
    "!\U0001f680!",
    "\u00a1hola!",
    # prompts of the kind people write
    "photo, 4k, 8K, ultra-detailed, trending on ArtStation!!!",
    "A Cat, chased by a MOUSE!!! (4k; oil-painting) -- it's 8K?",
    "a cute puppy!!, highly detailed!!!, masterpiece!",
    "(masterpiece:1.2)!, [background]!!",
    # long: cut at 77
    "!" * 100,
    "wow! " * 40,
    "a very long prompt " + "with many repeated words and commas! " * 12,
    # without "!"
    "a mouse hunting a lion",
    "A PHOTO OF AN ASTRONAUT RIDING A HORSE ON MARS",
    "e-mail: someone@example.com, url: https://example.com/a_b?c=d#e",
    "brackets [square] {curly} <angle> (round)",
    "ellipsis... and more.... and ?.?.",
    "\u4e00\u53ea\u732b\u5728\u8349\u5730\u4e0a",
    "\u0441\u043e\u0431\u0430\u043a\u0430 \u0432 \u043b\u0435\u0441\u0443",
    "",
]

# The AddedToken fields of stabilityai/stable-diffusion-2-1's tokenizer files.
ADDED = {"lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def declare_sources():
    """transformers checks the versions of huggingface_hub and safetensors through their installed
    metadata, which a source tree lacks: declare them in a temporary folder on sys.path.
    huggingface_hub's version is its own; safetensors is only checked, never imported, by the
    tokenizers."""
    import huggingface_hub
    dist = tempfile.mkdtemp()
    for name, version in [("huggingface_hub", huggingface_hub.__version__), ("safetensors", "0.3.3")]:
        try:
            importlib.metadata.version(name)
            continue
        except importlib.metadata.PackageNotFoundError:
            pass
        info = os.path.join(dist, f"{name}-{version}.dist-info")
        os.makedirs(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sys.path.insert(0, dist)


def with_rust_added_token_str():
    """str(AddedToken) is its content, as for the Rust class (see the module comment)."""
    from transformers import tokenization_utils_base
    if tokenization_utils_base.AddedToken.__str__ is object.__str__:
        tokenization_utils_base.AddedToken.__str__ = lambda self: self.content


def sd_tokenizer_folder(dest, vocab_dir, pad):
    """A diffusers tokenizer/ folder: vocab_dir's vocab.json and merges.txt with the special-token
    files of stabilityai/stable-diffusion-2-1 (pad "!"), or of SD 1.x with pad "<|endoftext|>"."""
    os.makedirs(dest)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(vocab_dir, name), dest)
    special = {"bos_token": {"content": "<|startoftext|>", **ADDED}, "eos_token": {"content": "<|endoftext|>", **ADDED},
               "pad_token": pad, "unk_token": {"content": "<|endoftext|>", **ADDED}}
    with open(os.path.join(dest, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    config = {"add_prefix_space": False,
              "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", **ADDED},
              "do_lower_case": True,
              "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", **ADDED},
              "errors": "replace", "model_max_length": 77, "pad_token": "<|endoftext|>",
              "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
              "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>", **ADDED}}
    with open(os.path.join(dest, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return dest


def diffusers_ids(tok, prompt):
    """The call of diffusers' StableDiffusionPipeline._encode_prompt, without the tensor conversion."""
    return tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--open-clip", required=True, help="open_clip v2.20.0's src/open_clip/tokenizer.py")
    ap.add_argument("--clip-vocab", required=True,
                    help="folder with bpe_simple_vocab_16e6.txt.gz and tokenizer/ (vocab.json, merges.txt)")
    ap.add_argument("--tiny", default=os.path.join(os.path.dirname(__file__), "..", "tokenizer", "tiny"),
                    help="the tiny test vocabulary (vocab.json, merges.txt, bpe_tiny.txt.gz)")
    ap.add_argument("--out", required=True, help="folder to write bang_ids.json into")
    args = ap.parse_args()

    declare_sources()
    import ftfy
    import transformers
    from transformers import CLIPTokenizer
    assert transformers.__version__ == "4.33.3", transformers.__version__
    assert ftfy.__version__ == "6.1.1", ftfy.__version__
    with_rust_added_token_str()
    # tokenizer.py alone: open_clip's __init__ would import its models (and torchvision).
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer", args.open_clip)
    open_clip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(open_clip)

    vocabularies = {
        "tiny": (args.tiny, os.path.join(args.tiny, "bpe_tiny.txt.gz")),
        "released": (os.path.join(args.clip_vocab, "tokenizer"), os.path.join(args.clip_vocab, "bpe_simple_vocab_16e6.txt.gz")),
    }
    out = {"generator": "testdata/gen/make_tokenizer_bang.py", "transformers": transformers.__version__,
           "open_clip": "2.20.0", "ftfy": ftfy.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (folder, bpe) in vocabularies.items():
            sd2 = CLIPTokenizer.from_pretrained(sd_tokenizer_folder(os.path.join(tmp, name, "sd2"), folder, "!"))
            sd1 = CLIPTokenizer.from_pretrained(sd_tokenizer_folder(os.path.join(tmp, name, "sd1"), folder, "<|endoftext|>"))
            assert sd2.pad_token == "!" and sd2.pad_token_id == 0, (sd2.pad_token, sd2.pad_token_id)
            assert sd1.pad_token_id == sd1.eos_token_id, (sd1.pad_token, sd1.pad_token_id)
            assert sd2.fix_text is not None, "transformers did not find ftfy"
            # tokenize() reads the module's tokenizer: point it at this vocabulary.
            open_clip._tokenizer = open_clip.SimpleTokenizer(bpe_path=bpe)
            rows = []
            for p in PROMPTS:
                rows.append({"prompt": p, "diffusers_sd2": diffusers_ids(sd2, p),
                             "open_clip_sd2": open_clip.tokenize(p)[0].tolist(), "diffusers_sd1": diffusers_ids(sd1, p)})
            out[name] = rows
            differ = sum(r["diffusers_sd2"] != r["open_clip_sd2"] for r in rows)
            print(f"{name}: {len(rows)} prompts, {differ} tokenized differently by diffusers and open_clip (SD 2.x)")
    path = os.path.join(args.out, "bang_ids.json")
    with open(path + ".tmp", "w") as f:
        f.write("{\n")
        for key in ("generator", "transformers", "open_clip", "ftfy"):
            f.write(f"{json.dumps(key)}: {json.dumps(out[key])},\n")
        for i, name in enumerate(vocabularies):
            f.write(f"{json.dumps(name)}: [\n")
            f.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in out[name]))
            f.write("\n]" + (",\n" if i + 1 < len(vocabularies) else "\n"))
        f.write("}\n")
    os.replace(path + ".tmp", path)
    print("wrote", path)


if __name__ == "__main__":
    main()
