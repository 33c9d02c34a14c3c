"""Training checkpoints in the Hugging Face layout, written atomically.

    checkpoint-<step>/
        config.json, model.safetensors     model.save_pretrained (loads with transformers too)
        tokenizer files                    when the trainer has a tokenizer
        optimizer.pt, scheduler.pt, scaler.pt (fp16 only)
        rng_state.pt                       per-rank torch/CUDA/python/numpy RNG states + MLM masking generator
        trainer_state.json                 step, epoch, data position in the epoch, run id, log history

A checkpoint is written into a hidden temp folder and renamed into place, so an interrupted save never
leaves a half-written `checkpoint-<step>` (a killed one leaves hidden debris, swept by the next run: runs.py);
one is deleted by renaming it away first, for the same reason. Pruning touches only the saving run's
checkpoints. Reading checks every file before anything is applied, and names the file that is damaged, so a
resume can fall back to the checkpoint before a damaged one.
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


_ANY_RUN = object()


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated, corrupted) or does not fit the model; names the file."""


def list_checkpoints(output_dir: str | os.PathLike, run_id=_ANY_RUN) -> list[Path]:
    """checkpoint-<step> folders in `output_dir`, oldest first; with `run_id`, only that run's."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _CHECKPOINT_RE.match(p.name)) and (p / "trainer_state.json").is_file()]
    found = [p for _, p in sorted(found)]
    if run_id is not _ANY_RUN:
        found = [p for p in found if _run_of(p) == run_id]
    return found


def _run_of(folder: Path):
    """The run id recorded in a checkpoint ("?" when unreadable: such a checkpoint belongs to no run)."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        return state.get("run_id") if isinstance(state, dict) else "?"
    except (OSError, ValueError):
        return "?"


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
    """Write checkpoint-<step> atomically; prune this run's oldest beyond `save_total_limit`. Rank 0 only."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"checkpoint-{step}"
    tmp = Path(make_temp_dir(f".checkpoint-{step}.", output_dir))
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
        if final.exists():  # redoing a step after a fall-back resume: replace the (unreadable) old one
            _remove(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved checkpoint %s", final)
    if save_total_limit:
        for old in list_checkpoints(output_dir, run_id=trainer_state.get("run_id"))[:-save_total_limit]:
            _remove(old)
    return final


def _remove(folder: Path) -> None:
    """Delete a checkpoint so that no reader (or a crash halfway) ever sees half of one: rename, then delete."""
    stale = folder.with_name(f".stale-{folder.name}")
    shutil.rmtree(stale, ignore_errors=True)
    os.replace(folder, stale)
    shutil.rmtree(stale, ignore_errors=True)


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


def _read(path: Path, reader):
    """reader(path), with any failure turned into a CheckpointError that names the file."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return reader(path)
    except Exception as err:  # truncated or corrupted: safetensors, pickle, zip and JSON errors all differ
        raise CheckpointError(f"{path} is unreadable ({type(err).__name__}: {str(err).strip() or 'truncated'})") from None


def _json(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _torch(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def read_model_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in model.safetensors (single or sharded) in `folder`."""
    from safetensors.torch import load_file

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read(index, _json).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index} has no weight_map")
        files = sorted(set(weight_map.values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise CheckpointError(f"no model.safetensors in checkpoint {folder}")
    state = {}
    for name in files:
        if Path(name).name != name:
            raise CheckpointError(f"{index} names {name!r}, a path outside the checkpoint folder")
        state.update(_read(folder / name, lambda p: load_file(str(p))))
    return state


def apply_model_weights(model, state: dict, folder) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {folder} does not match the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def load_model_weights(model, folder: str | os.PathLike) -> None:
    """Load model.safetensors (single or sharded) from `folder` into `model` in place."""
    apply_model_weights(model, read_model_weights(folder), folder)


def read_checkpoint(folder) -> dict:
    """Every file of a checkpoint, read and checked before anything is applied (so a bad file changes nothing).

    Raises CheckpointError naming the file that is missing, truncated or corrupted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder} does not exist")
    if not (folder / "trainer_state.json").is_file():
        raise CheckpointError(f"{folder} is not a training checkpoint (no trainer_state.json)")
    parts = {"trainer_state": _read(folder / "trainer_state.json", _json), "model": read_model_weights(folder)}
    for key in ("optimizer", "scheduler", "rng_state"):
        parts[key] = _read(folder / f"{key}.pt", _torch)
    parts["scaler"] = _read(folder / "scaler.pt", _torch) if (folder / "scaler.pt").is_file() else None
    state = parts["trainer_state"]
    if not isinstance(state.get("global_step"), int) or not isinstance(parts["rng_state"], list):
        raise CheckpointError(f"{folder / 'trainer_state.json'} has no global_step, or rng_state.pt no per-rank list")
    return parts


def apply_checkpoint(parts: dict, folder, model, optimizer, scheduler, scaler) -> tuple[dict, list[dict]]:
    """Load what read_checkpoint read into the training objects; return (trainer_state, per-rank RNG states)."""
    apply_model_weights(model, parts["model"], folder)
    try:
        optimizer.load_state_dict(parts["optimizer"])
        scheduler.load_state_dict(parts["scheduler"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{Path(folder) / 'optimizer.pt'} does not fit this model's optimizer: {err}") from None
    if scaler is not None and parts["scaler"] is not None:
        scaler.load_state_dict(parts["scaler"])
    return parts["trainer_state"], parts["rng_state"]


def load_checkpoint(folder, model, optimizer, scheduler, scaler) -> tuple[dict, list[dict]]:
    """Restore model/optimizer/scheduler/scaler from `folder`; return (trainer_state, per-rank RNG states)."""
    return apply_checkpoint(read_checkpoint(folder), folder, model, optimizer, scheduler, scaler)


def newest_readable(output_dir) -> tuple[Path, dict] | None:
    """The newest checkpoint in `output_dir` that reads completely, and its parts; older ones are tried in turn
    (with a warning naming the bad file) when the newest is damaged, e.g. by a crash or a full disk."""
    found = list_checkpoints(output_dir)
    problems = []
    for folder in reversed(found):
        try:
            parts = read_checkpoint(folder)
        except CheckpointError as err:
            logger.warning("cannot resume from %s: %s; trying the checkpoint before it", folder.name, err)
            problems.append(str(err))
            continue
        if problems:
            logger.warning("resuming from %s, the newest readable checkpoint", folder)
        return folder, parts
    if problems:
        raise CheckpointError(f"no readable checkpoint in {output_dir}: " + "; ".join(problems))
    return None
