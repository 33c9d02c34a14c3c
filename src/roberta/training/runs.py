"""A training run's claim on its output folder, and how it stops when asked to.

Output folder rules (checked before anything is written):
- an empty or missing folder starts a new run;
- a folder that holds anything else (an earlier run's checkpoints or model, or unrelated files) is refused,
  unless the caller resumes (`--resume`: continue the newest checkpoint there) or overwrites (`--overwrite`:
  delete the earlier run's checkpoint-* folders and train_log.jsonl, then start afresh; other files stay
  until the final save replaces them);
- resuming where no checkpoint exists starts afresh only when the folder holds nothing but a train log (a
  run stopped before its first checkpoint), so a resume can never write over a finished model.
Every run has an id, recorded in each checkpoint's trainer_state.json; pruning (`save_total_limit`) deletes
only checkpoints that carry this run's id.

Debris: a save killed outright (SIGKILL, power loss) leaves hidden temp entries of our own naming
(`.checkpoint-N.*`, `.stale-checkpoint-N`, `.final.*`, `.tmp-save-*`, `.tmp-*`); the next run in that folder
deletes them before it starts. Nothing else is ever deleted.

Stopping: while the training loop runs, SIGINT and SIGTERM ask it to stop after the current step; it saves a
checkpoint and raises TrainingInterrupted (a KeyboardInterrupt). A second signal stops at once (the save in
progress, if any, is abandoned cleanly: temp folders are removed on the way out).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import threading
import uuid
from pathlib import Path

from roberta._io import atomic_write_text

logger = logging.getLogger(__name__)

DEBRIS_RE = re.compile(r"^\.(checkpoint-\d+\..+|stale-checkpoint-\d+|final\..+|tmp-save-.+|tmp-.+)$")
_CHECKPOINT_RE = re.compile(r"^checkpoint-\d+$")
LOG_NAME = "train_log.jsonl"


class OutputDirInUse(FileExistsError):
    """The output folder holds something this run would overwrite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after saving `checkpoint`; resume from it to continue."""

    def __init__(self, signum: int, step: int, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name}: stopped at step {step}, saved {checkpoint}; "
                         "run again with --resume (resume_from_checkpoint=True) to continue")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not DEBRIS_RE.match(p.name))


def check_output_dir(output_dir, resume, overwrite: bool) -> bool:
    """Refuse a folder this run would damage (module doc); return True when the run should start afresh."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output folder {folder} is a file")
    names = _contents(folder) if folder.is_dir() else []
    checkpoints = [n for n in names if _CHECKPOINT_RE.match(n)]
    if resume and resume is not True:  # an explicit checkpoint: it may live in another folder
        inside = Path(resume).resolve().parent == folder.resolve()
        if inside or not names or overwrite:
            return False
        raise OutputDirInUse(f"output folder {folder} already holds files ({_listing(names)}) and the checkpoint to "
                             f"resume, {resume}, is not in it: choose an empty --output-dir, or pass --overwrite")
    if resume is True and checkpoints:
        return False
    if not names or overwrite or (resume is True and names == [LOG_NAME]):
        return True
    if resume is True:
        raise OutputDirInUse(f"nothing to resume: output folder {folder} holds no checkpoint-N ({_listing(names)}); "
                             "pass --overwrite to start a new run there, or choose another --output-dir")
    raise OutputDirInUse(f"output folder {folder} is not empty ({_listing(names)}): refusing to write over an earlier "
                         "run. Pass --resume to continue it, --overwrite to start a new run there (deletes its "
                         "checkpoints), or choose another --output-dir")


def _listing(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def sweep_debris(output_dir) -> list[str]:
    """Delete temp entries of our own naming that a killed save left behind; return their names."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if DEBRIS_RE.match(path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        logger.warning("removed debris of an interrupted save in %s: %s", folder, ", ".join(removed))
    return removed


def clear_previous_run(output_dir) -> None:
    """--overwrite: delete an earlier run's checkpoints and train log (nothing else) before a new run."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if _CHECKPOINT_RE.match(path.name) and path.is_dir():
            stale = path.with_name(f".stale-{path.name}")  # renamed first: a crash here leaves only debris
            os.replace(path, stale)
            shutil.rmtree(stale, ignore_errors=True)
            logger.warning("--overwrite: deleted the earlier run's %s", path)
    (folder / LOG_NAME).unlink(missing_ok=True)


def truncate_log(path: Path, step: int) -> None:
    """Drop log entries after `step` (a resumed run redoes those steps and logs them again)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by a kill
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and entry["step"] <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


class GracefulStop:
    """While active (main thread only), SIGINT/SIGTERM set `signum` instead of killing; a second one raises."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        self.signum = signum
        logger.warning("%s received: finishing this step, saving a checkpoint, then stopping "
                       "(send it again to stop at once)", signal.Signals(signum).name)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
