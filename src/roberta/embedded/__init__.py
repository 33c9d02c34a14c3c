"""The small RoBERTa shipped inside the package, so fill-mask works offline with no model named.

It was pretrained from scratch with RoBERTa's recipe on freely licensed English text from Debian
packages; MODEL_CARD.md next to this file gives the data, recipe and measured figures, and
scripts/build_embedded_model.sh rebuilds it from nothing.
"""
from __future__ import annotations

from pathlib import Path

# What a usable HF-format folder must hold (the fill-mask pipeline loads the model and tokenizer from it).
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

_MODEL_DIR = Path(__file__).resolve().parent / "model"


def default_model_path() -> str:
    """Folder of the shipped model (config, weights and tokenizer files), ready for from_pretrained.

    Raises FileNotFoundError naming the missing files if the package was installed without them.
    """
    missing = [name for name in REQUIRED_FILES if not (_MODEL_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the embedded default model is incomplete: {', '.join(missing)} missing from {_MODEL_DIR}. "
            "Reinstall roberta (the wheel ships these files as package data), rebuild it with "
            "scripts/build_embedded_model.sh, or pass a model path explicitly."
        )
    return str(_MODEL_DIR)


def model_card_path() -> str:
    """Path of MODEL_CARD.md (data, recipe, held-out figures of the shipped model)."""
    return str(Path(__file__).resolve().parent / "MODEL_CARD.md")


__all__ = ["default_model_path", "model_card_path", "REQUIRED_FILES"]
