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
