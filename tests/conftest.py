"""Shared fixtures. The real roberta-base tokenizer files live outside the repo, in ../shared."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROBERTA_BASE_DIR = REPO.parent / "shared" / "data" / "roberta-base"


@pytest.fixture(scope="session")
def roberta_base_dir() -> Path:
    """Folder with the real roberta-base vocab.json, merges.txt, tokenizer.json, dict.txt (or skip)."""
    if not (ROBERTA_BASE_DIR / "vocab.json").is_file():
        pytest.skip(f"real roberta-base tokenizer files not found at {ROBERTA_BASE_DIR} (../shared/data/roberta-base)")
    return ROBERTA_BASE_DIR


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_per_worker():
    """pytest runs with -n 2 on 2 cores: one intra-op thread per worker avoids oversubscription
    (measured 25x slower training steps when 2 workers each used 2 threads)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
