"""Resolve a local folder or a Hugging Face hub id to a file on disk.

The one place that talks to huggingface_hub. Config, tokenizers and model loading all call
`resolve_file`, so offline mode (HF_HUB_OFFLINE=1 or local_files_only=True), cache_dir, revision and
token behave the same everywhere.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit


class ResolveError(OSError):
    """A path or hub id could not give the file asked for."""


def is_local(path_or_id: str | os.PathLike) -> bool:
    return os.path.isdir(os.fspath(path_or_id))


def resolve_file(
    path_or_id: str | os.PathLike,
    filename: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    required: bool = True,
    subfolder: str = "",
) -> str | None:
    """Return the local path of `filename` inside a folder or hub repo (or its `subfolder`), or None if
    absent and not required."""
    path_or_id = os.fspath(path_or_id)
    if subfolder and is_local(path_or_id):
        path_or_id = os.path.join(path_or_id, subfolder)
        if not is_local(path_or_id):
            raise ResolveError(f"subfolder {subfolder!r} not found: {path_or_id!r} is not a folder")
    if is_local(path_or_id):
        candidate = os.path.join(path_or_id, filename)
        if os.path.isfile(candidate):
            return candidate
        if required:
            present = sorted(os.listdir(path_or_id))
            raise ResolveError(f"{filename} not found in folder {path_or_id!r} (it holds: {', '.join(present) or 'nothing'})")
        return None
    if os.path.exists(path_or_id):
        raise ResolveError(f"{path_or_id!r} is a file, not a model folder or hub id")
    if path_or_id.count("/") > 1 or path_or_id.startswith((".", "/", "~")) or not path_or_id.strip():
        raise ResolveError(f"{path_or_id!r} is neither an existing folder nor a valid hub id (like 'FacebookAI/roberta-base')")

    shown = f"{subfolder}/{filename}" if subfolder else filename  # for messages
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}
    unreachable = None if offline else hub_unreachable()
    try:
        return hf_hub_download(
            repo_id=path_or_id,
            filename=filename,
            cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
            revision=revision,
            subfolder=subfolder or None,
            local_files_only=offline or unreachable is not None,  # no 30 s of "Retrying" per file
            token=token,
        )
    except LocalEntryNotFoundError:
        if not required and _repo_cached(path_or_id, cache_dir, revision):
            return None
        where = "offline mode is on (HF_HUB_OFFLINE / local_files_only)" if offline else \
            f"the hub could not be reached ({unreachable or 'connection failed'})"
        if required:
            raise ResolveError(
                f"{shown} of {path_or_id!r} is not in the local hub cache and {where}. "
                f"Pass a local folder, or download it first."
            ) from None
        return None
    except EntryNotFoundError:  # after LocalEntryNotFoundError, which subclasses it
        if required:
            raise ResolveError(f"{shown} not found in hub repo {path_or_id!r} (revision {revision or 'main'})") from None
        return None
    except RepositoryNotFoundError:
        raise ResolveError(f"{path_or_id!r} is not a local folder and no hub repo of that name was found") from None


_PROBE_TTL_S = 60.0
_probes: dict[tuple[str, int], tuple[float, str | None]] = {}


def hub_unreachable() -> str | None:
    """Why the hub endpoint cannot be reached (one TCP connect, at most 3 s, remembered for a minute), or None.

    huggingface_hub retries a failed connection five times with back-off (~25 s) for every file, so a model
    load with no network took minutes. Behind a proxy the direct probe means nothing: we skip it there.
    """
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                             "ALL_PROXY", "all_proxy")):
        return None
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    if not url.hostname:
        return None
    key = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    now = time.monotonic()
    if key in _probes and now - _probes[key][0] < _PROBE_TTL_S:
        return _probes[key][1]
    try:
        socket.create_connection(key, timeout=3).close()
        reason = None
    except OSError as err:
        reason = f"{key[0]}:{key[1]}: {err.strerror or err}"
    _probes[key] = (now, reason)
    return reason


def _repo_cached(repo_id: str, cache_dir, revision) -> bool:
    """True when a snapshot of repo_id is in the cache, so a missing optional file is really absent."""
    from huggingface_hub import constants

    root = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    repo = root / ("models--" + repo_id.replace("/", "--"))
    return (repo / "snapshots").is_dir()


def upload_folder(folder: str | os.PathLike, repo_id: str, *, commit_message: str = "Upload model",
                  private: bool | None = None, token: str | bool | None = None, revision: str | None = None,
                  create_pr: bool = False):
    """Upload a saved folder to the hub repo `repo_id` (created if it does not exist) through huggingface_hub's
    HfApi, as transformers' push_to_hub does. -> huggingface_hub's CommitInfo."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model").repo_id
    return api.upload_folder(repo_id=repo_id, folder_path=os.fspath(folder), commit_message=commit_message,
                             revision=revision, create_pr=create_pr, repo_type="model")
