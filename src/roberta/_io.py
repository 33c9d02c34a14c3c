"""File writing shared by every part that saves: config, tokenizers, weights, checkpoints, `roberta run`.

Two promises for every file we write:
- atomic: a reader sees the old file or the complete new one, never half of one (temp file beside the
  target, then os.replace);
- ordinary: the result looks as if written by open(path, "w"): permissions from the umask (0644 files,
  0755 folders under umask 022, as transformers gives), or the existing file's mode when replacing one; and
  a symlink at the target is written through (its target is replaced, the link stays), never swapped for a
  plain file.
Temp names start with ".tmp-" (files) or the caller's prefix (folders), so a crash's debris is recognisable.
A temp folder in a folder that several processes write into at once (the tokenized-corpus cache) is made by
held_temp_dir: it carries a lock held while it is written, so that sweep_abandoned_temp_dirs removes a killed
writer's folder and never a live one's.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: no flock; held folders are then never swept (see sweep_abandoned_temp_dirs)
    fcntl = None

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
WRITER_LOCK = ".writer.lock"  # inside a held temp folder: locked while its writer lives
UNLOCKED_GRACE_S = 3600  # a matching folder without a lock (killed before locking, or older code) is stale after this
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), else under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # os.umask can only be read by setting it: restore at once
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def write_target(path: str | os.PathLike) -> str:
    """The file a write to `path` must replace: `path` itself, or the file a symlink there points to."""
    path = os.fspath(path)
    if os.path.islink(path):
        real = os.path.realpath(path)
        if os.path.isdir(real):
            raise IsADirectoryError(f"{path} is a symlink to the folder {real}, not a file")
        if not os.path.isdir(os.path.dirname(real) or "."):
            raise FileNotFoundError(f"{path} is a symlink to {real}, whose folder does not exist")
        return real
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, not a file")
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, temp_path: str | os.PathLike | None = None,
                encoding: str | None = "utf-8", newline: str | None = "\n"):
    """open() for writing whose result replaces `path` only when the block finishes without an exception.

    The data goes to a temp file in the target's folder (`temp_path` when given: a visible name lets a
    reader follow a long write) and is renamed onto the target at the end; on an exception the temp file
    is removed and the target left as it was. Newlines are written as given ("\\n") in text mode.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = write_target(path)
    folder = os.path.dirname(target) or "."
    try:
        keep = stat.S_IMODE(os.stat(target).st_mode)  # replacing a file keeps its mode, as open("w") does
    except FileNotFoundError:
        keep = file_mode()
    if temp_path is None:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.basename(target), dir=folder)
    else:
        tmp = os.fspath(temp_path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            os.chmod(tmp, keep)  # mkstemp makes 0600: give the final file ordinary permissions
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> str:
    """Write `text` to `path` atomically (see atomic_open). Returns the path."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return os.fspath(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> str:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return os.fspath(path)


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Rename a finished file onto `dst` (through a symlink there), with ordinary permissions.

    For files written by other libraries into a temp folder: safetensors' save_file, like mkstemp, creates
    0600 files.
    """
    target = write_target(dst)
    try:
        keep = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        keep = file_mode()
    os.chmod(src, keep)
    os.replace(src, target)
    return os.fspath(dst)


def publish_modes(folder: str | os.PathLike) -> None:
    """Ordinary (umask) permissions on a temp folder's tree before it is renamed into place."""
    dmode, fmode = dir_mode(), file_mode()
    os.chmod(folder, dmode)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), dmode)
        for name in files:
            os.chmod(os.path.join(root, name), fmode)


def find_invalid_utf8(paths) -> str | None:
    """'FILE, line N: not UTF-8 text (...)' for the first of `paths` that does not decode, else None.

    For error messages: decoders report a byte offset in some buffer, not which file and line.
    """
    for path in paths:
        with open(path, "rb") as f:
            for number, line in enumerate(f, start=1):  # b"\n" never occurs inside a UTF-8 sequence
                problem = utf8_problem(line)
                if problem is not None:
                    return f"{os.fspath(path)}, line {number}: {problem}"
    return None


def utf8_problem(data: bytes) -> str | None:
    """'not UTF-8 text (invalid start byte at byte N)' when `data` does not decode, else None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text ({err.reason} at byte {err.start})"
    return None


def make_temp_dir(prefix: str, dir: str | os.PathLike) -> str:
    """A fresh temp folder inside `dir` with ordinary (umask) permissions, for a folder renamed into place.

    tempfile.mkdtemp makes 0700, which would survive the rename and lock colleagues out of a shared folder.
    """
    tmp = tempfile.mkdtemp(prefix=prefix, dir=dir)
    os.chmod(tmp, dir_mode())
    return tmp


def make_save_directory(save_directory: str | os.PathLike) -> str:
    """The folder a save_pretrained writes into, created if needed; a file at that path is refused."""
    save_directory = os.fspath(save_directory)
    if os.path.isfile(save_directory):
        raise ValueError(f"save_directory {save_directory!r} is a file, not a folder")
    os.makedirs(save_directory, exist_ok=True)
    return save_directory


@contextlib.contextmanager
def held_temp_dir(prefix: str, dir: str | os.PathLike):
    """A fresh temp folder (make_temp_dir) holding WRITER_LOCK, flock-ed until the block ends; removed at the
    end unless replace_held_dir moved it into place.

    The OS drops a process's locks when it dies, even by kill -9, so a folder whose lock can be taken is a
    dead writer's. The lock file is locked under another name and then renamed, so it is never seen unlocked
    while its writer lives.
    """
    tmp = make_temp_dir(prefix, dir)
    fd = os.open(os.path.join(tmp, WRITER_LOCK + ".new"), os.O_RDWR | os.O_CREAT, file_mode())
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(os.path.join(tmp, WRITER_LOCK + ".new"), os.path.join(tmp, WRITER_LOCK))
        yield tmp
    finally:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


def replace_held_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename a finished held_temp_dir onto `final` (without its lock file); OSError if `final` is not empty."""
    os.remove(os.path.join(tmp, WRITER_LOCK))  # unlocked-looking but young: sweeps leave it alone meanwhile
    os.replace(tmp, final)


def sweep_abandoned_temp_dirs(folder: str | os.PathLike, name: re.Pattern) -> list[str]:
    """Remove the held_temp_dir folders in `folder` whose names match `name` and whose writer is dead: its lock
    can be taken, or (no lock file) it is older than UNLOCKED_GRACE_S. Logs and returns the names removed."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if not name.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(os.path.join(entry.path, WRITER_LOCK), os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - os.stat(entry.path).st_mtime > UNLOCKED_GRACE_S:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.name)
            continue
        except OSError:  # not ours to judge (permissions): leave it
            continue
        try:
            if _try_lock(fd):  # its writer is dead; holding the lock keeps another sweep out while removing
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
        finally:
            os.close(fd)
    if removed:
        logger.warning("removed %d folder(s) left half-written by interrupted runs in %s: %s", len(removed),
                       os.fspath(folder), ", ".join(removed))
    return removed


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
