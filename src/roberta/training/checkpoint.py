"""Training checkpoints in the Hugging Face layout, written atomically.

    checkpoint-<step>/
        config.json, model.safetensors     model.save_pretrained (loads with transformers too)
        tokenizer files                    when the trainer has a tokenizer
        optimizer.pt, scheduler.pt, scaler.pt (fp16 only)
        rng_state.pt                       per-rank torch/CUDA/python/numpy RNG states + MLM masking generator
        trainer_state.json                 step, epoch, data position in the epoch, log history

A checkpoint is written into a hidden temp folder and renamed into place, so an interrupted save never
leaves a half-written `checkpoint-<step>`.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from roberta._io import make_temp_dir, move_into_place, publish_modes

logger = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _CHECKPOINT_RE.match(p.name)) and (p / "trainer_state.json").is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def capture_rng_state(generator: torch.Generator | None) -> dict:
    """This process's RNG states, in a form torch.load(weights_only=True) can read back."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "collator": generator.get_state() if generator is not None else None,
    }
    return state


def restore_rng_state(state: dict, generator: torch.Generator | None) -> None:
    random.setstate(_as_tuple(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("collator") is not None:
        generator.set_state(state["collator"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(output_dir, step: int, model, optimizer, scheduler, scaler, trainer_state: dict,
                    rng_states: list[dict], tokenizer=None, save_total_limit: int | None = None) -> Path:
    """Write checkpoint-<step> atomically; prune old ones beyond `save_total_limit`. Call on rank 0 only."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"checkpoint-{step}"
    tmp = Path(make_temp_dir(f".checkpoint-{step}.", output_dir))  # 0755 under umask 022, not 0700
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        if scaler is not None and scaler.is_enabled():
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
        torch.save(rng_states, tmp / "rng_state.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
        publish_modes(tmp)  # 0644 files / 0755 folder under umask 022 (safetensors writes 0600)
        if final.exists():  # a rerun over an old output dir: replace the stale checkpoint
            stale = output_dir / f".stale-{final.name}"
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved checkpoint %s", final)
    if save_total_limit:
        for old in list_checkpoints(output_dir)[:-save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def save_pretrained_atomic(model, tokenizer, out_dir) -> Path:
    """model.save_pretrained (+ tokenizer) into `out_dir`, each file moved into place only once complete."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(make_temp_dir(".final.", out_dir))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(tmp)
        for path in tmp.iterdir():
            move_into_place(path, out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved the model to %s", out_dir)
    return out_dir


def load_model_weights(model, folder: str | os.PathLike) -> None:
    """Load model.safetensors (single or sharded) from `folder` into `model` in place."""
    from safetensors.torch import load_file

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(f"no model.safetensors in checkpoint {folder}")
    state = {}
    for name in files:
        state.update(load_file(str(folder / name)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"checkpoint {folder} does not match the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def load_checkpoint(folder, model, optimizer, scheduler, scaler) -> tuple[dict, list[dict]]:
    """Restore model/optimizer/scheduler/scaler from `folder`; return (trainer_state, per-rank RNG states)."""
    folder = Path(folder)
    if not (folder / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{folder} is not a training checkpoint (no trainer_state.json)")
    load_model_weights(model, folder)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True))
    if scaler is not None and (folder / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(folder / "scaler.pt", map_location="cpu", weights_only=True))
    rng = torch.load(folder / "rng_state.pt", map_location="cpu", weights_only=True)
    return json.loads((folder / "trainer_state.json").read_text()), rng
