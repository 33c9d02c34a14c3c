"""roberta._io: atomic writes that come out like open(path, "w") would leave them (umask modes, symlinks kept)."""
from __future__ import annotations

import os
import stat

import pytest

from roberta._io import atomic_open, atomic_write_text, make_temp_dir


@pytest.fixture
def umask():
    """Set the process umask for one test (and put the old one back)."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, want_file, want_dir", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                        (0o002, 0o664, 0o775)])
def test_new_files_and_folders_follow_the_umask(tmp_path, umask, mask, want_file, want_dir):
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert mode(tmp_path / "a.json") == want_file  # not mkstemp's 0600
    assert mode(make_temp_dir(".x.", tmp_path)) == want_dir  # not mkdtemp's 0700


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "shared.txt"
    target.write_text("old")
    os.chmod(target, 0o664)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o664


def test_symlink_is_written_through_not_replaced(tmp_path):
    real = tmp_path / "store" / "config.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "config.json"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["config.json"]  # the temp went beside the target


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "real.txt")
    atomic_write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "real.txt").read_text() == "x"


def test_symlink_or_path_to_a_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "d")
    with pytest.raises(IsADirectoryError, match="symlink to the folder"):
        atomic_write_text(tmp_path / "link", "x")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write_text(tmp_path / "d", "x")


def test_failure_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_visible_temp_name_for_long_writes(tmp_path, umask):
    umask(0o022)
    target, partial = tmp_path / "out.jsonl", tmp_path / "out.jsonl.partial"
    with atomic_open(target, temp_path=partial) as f:
        f.write("line\n")
        f.flush()
        assert partial.read_text() == "line\n" and not target.exists()
    assert target.read_text() == "line\n" and not partial.exists() and mode(target) == 0o644


def test_checkpoints_and_final_model_are_readable_by_others(tmp_path, umask):
    """Training outputs (checkpoint folder, final model, config, tokenizer): 0644 files and 0755 folders under
    umask 022, as transformers leaves them, not the 0600/0700 of temp files (safetensors also writes 0600)."""
    import torch

    from roberta import RobertaConfig, RobertaForMaskedLM
    from roberta.tokenization import RobertaTokenizerFast
    from roberta.training import checkpoint
    from test_training_helpers import tokenizer_dir

    umask(0o022)
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=384, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=34)
    model = RobertaForMaskedLM(config)
    tok = RobertaTokenizerFast.from_pretrained(str(tokenizer_dir()))
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ckpt = checkpoint.save_checkpoint(tmp_path / "run", 1, model, optimizer, scheduler, None,
                                      {"global_step": 1}, [], tokenizer=tok)
    final = checkpoint.save_pretrained_atomic(model, tok, tmp_path / "run")
    for folder in (ckpt, final):
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert {"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json",
                "tokenizer_config.json", "special_tokens_map.json"} <= set(names)
        assert {name: oct(mode(folder / name)) for name in names} == {name: oct(0o644) for name in names}
        assert mode(folder) == 0o755
    tok.save_pretrained(tmp_path / "tok")  # config and tokenizer files go through roberta._io directly
    config.save_pretrained(tmp_path / "tok")
    assert {p.name: oct(mode(p)) for p in (tmp_path / "tok").iterdir()} == \
        {p.name: oct(0o644) for p in (tmp_path / "tok").iterdir()}


def test_save_pretrained_files_get_umask_permissions(tmp_path):
    """safetensors' save_file creates 0600 files; a saved model folder must be readable by colleagues."""
    import stat

    from roberta.config import RobertaConfig
    from roberta.modeling import RobertaForMaskedLM

    old = os.umask(0o022)
    try:
        config = RobertaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=20)
        RobertaForMaskedLM(config).save_pretrained(tmp_path / "model")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "model").iterdir()}
    assert modes["model.safetensors"] == 0o644 and modes["config.json"] == 0o644, modes
