"""Copy a pretraining checkpoint into the package as the shipped default model.

Weights are stored in fp16 (half the size; the loader upcasts to the fp32 default for CPU inference) and
config.json keeps dtype float32, the dtype the model is meant to run in. Tokenizer files are copied with
model_max_length set to the block size the model was trained on. The destination is replaced atomically.

Usage: embedded_export.py CHECKPOINT_DIR DEST_DIR [--fp32]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FILES = ("vocab.json", "merges.txt", "tokenizer.json", "special_tokens_map.json")


def export(src: Path, dest: Path, fp16: bool = True) -> Path:
    config = json.loads((src / "config.json").read_text())
    max_len = config["max_position_embeddings"] - config.get("pad_token_id", 1) - 1  # positions start at pad+1
    state = load_file(str(src / "model.safetensors"))
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    config["dtype"] = "float32"
    # a pretraining phase may run without dropout; fine-tuning the shipped model gets RoBERTa's default
    config["hidden_dropout_prob"] = config["attention_probs_dropout_prob"] = 0.1
    config.pop("torch_dtype", None)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in FILES:
        shutil.copyfile(src / name, tmp / name)
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    tok_config["model_max_length"] = max_len
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    replace_dir(tmp, dest)
    return dest


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished folder `tmp` onto `dest`: readers see the old or the new folder, never a half."""
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    args = ap.parse_args(argv)
    out = export(args.checkpoint, args.dest, fp16=not args.fp32)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"exported {args.checkpoint} -> {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
