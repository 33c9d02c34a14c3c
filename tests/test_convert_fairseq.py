"""fairseq RoBERTa checkpoint -> Hugging Face folder: every tensor lands at the right key, outputs match."""
import argparse
import json

import pytest
import torch
import transformers

from roberta.convert_fairseq import build_vocab, convert, main
from roberta.loading import CheckpointError
from test_loading_utils import TINY, Exploit, assert_same_outputs, inputs, ours_cls

LAYERS = TINY["num_hidden_layers"]


def _reference(cls_name, **extra):
    torch.manual_seed(0)
    config = transformers.RobertaConfig(**{**TINY, **extra})
    model = getattr(transformers, cls_name)(config).eval()
    with torch.no_grad():  # fairseq has no token-type embedding; the converter writes zeros
        model.roberta.embeddings.token_type_embeddings.weight.zero_()
    return model


def _fairseq_state(ref):
    """The reference's weights under fairseq's names, written out by hand (independent of the converter table)."""
    r = ref.roberta
    sd = {
        "encoder.sentence_encoder.embed_tokens.weight": r.embeddings.word_embeddings.weight,
        "encoder.sentence_encoder.embed_positions.weight": r.embeddings.position_embeddings.weight,
        "encoder.sentence_encoder.emb_layer_norm.weight": r.embeddings.LayerNorm.weight,
        "encoder.sentence_encoder.emb_layer_norm.bias": r.embeddings.LayerNorm.bias,
        "encoder.version": torch.tensor([2.0]),
    }
    for i, layer in enumerate(r.encoder.layer):
        p = f"encoder.sentence_encoder.layers.{i}."
        for fs, mod in [("self_attn.q_proj", layer.attention.self.query), ("self_attn.k_proj", layer.attention.self.key),
                        ("self_attn.v_proj", layer.attention.self.value), ("self_attn.out_proj", layer.attention.output.dense),
                        ("self_attn_layer_norm", layer.attention.output.LayerNorm), ("fc1", layer.intermediate.dense),
                        ("fc2", layer.output.dense), ("final_layer_norm", layer.output.LayerNorm)]:
            sd[p + fs + ".weight"], sd[p + fs + ".bias"] = mod.weight, mod.bias
    if hasattr(ref, "lm_head"):
        h = ref.lm_head
        sd.update({"encoder.lm_head.dense.weight": h.dense.weight, "encoder.lm_head.dense.bias": h.dense.bias,
                   "encoder.lm_head.layer_norm.weight": h.layer_norm.weight, "encoder.lm_head.layer_norm.bias": h.layer_norm.bias,
                   "encoder.lm_head.weight": h.decoder.weight, "encoder.lm_head.bias": h.bias})
    if hasattr(ref, "classifier"):
        c = ref.classifier
        sd.update({"classification_heads.mnli.dense.weight": c.dense.weight, "classification_heads.mnli.dense.bias": c.dense.bias,
                   "classification_heads.mnli.out_proj.weight": c.out_proj.weight,
                   "classification_heads.mnli.out_proj.bias": c.out_proj.bias,
                   "classification_heads.other.dense.weight": torch.ones(3), "classification_heads.other.out_proj.weight": torch.ones(3)})
    return {k: v.detach().clone() for k, v in sd.items()}


def _write(tmp_path, state, args=None, cfg=None):
    ckpt = {"model": state}
    if args is not None:
        ckpt["args"] = argparse.Namespace(**args)
    if cfg is not None:
        ckpt["cfg"] = cfg
    torch.save(ckpt, tmp_path / "model.pt")
    (tmp_path / "dict.txt").write_text("".join(f"{i + 10} {1000 - i}\n" for i in range(TINY["vocab_size"] - 5)))
    return tmp_path / "model.pt", tmp_path / "dict.txt"


ARGS = {"encoder_attention_heads": TINY["num_attention_heads"], "activation_fn": "gelu", "encoder_normalize_before": False}


def test_mlm_conversion(tmp_path):
    ref = _reference("RobertaForMaskedLM")
    state = _fairseq_state(ref)
    model_pt, dict_txt = _write(tmp_path, state, args=ARGS)
    assert main(["--checkpoint", str(model_pt), "--dict", str(dict_txt), "--out", str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["max_position_embeddings"], config["type_vocab_size"], config["layer_norm_eps"]) == (40, 1, 1e-5)
    assert (config["num_attention_heads"], config["num_hidden_layers"], config["intermediate_size"]) == (4, LAYERS, 37)
    # every tensor by identity of values with its fairseq source
    theirs = transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    assert torch.equal(theirs.roberta.encoder.layer[1].attention.self.key.weight,
                       state["encoder.sentence_encoder.layers.1.self_attn.k_proj.weight"])
    assert torch.equal(theirs.roberta.encoder.layer[0].output.LayerNorm.bias,
                       state["encoder.sentence_encoder.layers.0.final_layer_norm.bias"])
    assert torch.equal(theirs.lm_head.bias, state["encoder.lm_head.bias"])
    assert torch.equal(theirs.roberta.embeddings.position_embeddings.weight,
                       state["encoder.sentence_encoder.embed_positions.weight"])
    batch = inputs("RobertaForMaskedLM")
    assert_same_outputs(theirs, ref, batch)
    assert_same_outputs(ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "hf"), ref, batch)


def test_classification_head_and_cfg_dict(tmp_path):
    ref = _reference("RobertaForSequenceClassification", num_labels=3)
    model_pt, dict_txt = _write(tmp_path, _fairseq_state(ref), cfg={"model": ARGS})
    model = convert(str(model_pt), str(dict_txt), str(tmp_path / "hf"), classification_head="mnli")
    assert model.config.num_labels == 3
    batch = inputs("RobertaForSequenceClassification")
    assert_same_outputs(transformers.RobertaForSequenceClassification.from_pretrained(tmp_path / "hf"), ref, batch)
    with pytest.raises(ValueError, match=r"classification head 'rte' not in the checkpoint; it has: \['mnli', 'other'\]"):
        convert(str(model_pt), str(dict_txt), str(tmp_path / "x"), classification_head="rte")


def test_old_decoder_prefix_untied_head_and_inferred_heads(tmp_path):
    ref = _reference("RobertaForMaskedLM", tie_word_embeddings=False, num_attention_heads=1)
    state = {k.replace("encoder.", "decoder.", 1): v for k, v in _fairseq_state(ref).items()}
    state["decoder.lm_head.weight"] = torch.randn_like(state["decoder.lm_head.weight"])  # untied decoder
    with torch.no_grad():
        ref.lm_head.decoder.weight.copy_(state["decoder.lm_head.weight"])
    model_pt, dict_txt = _write(tmp_path, state)  # no args: heads inferred as hidden // 64 -> 1 (min 1)
    model = convert(str(model_pt), str(dict_txt), str(tmp_path / "hf"))
    assert model.config.num_attention_heads == 1 and model.config.tie_word_embeddings is False
    assert_same_outputs(transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "hf"), ref, inputs("RobertaForMaskedLM"))


def test_errors(tmp_path):
    ref = _reference("RobertaForMaskedLM")
    state = _fairseq_state(ref)
    model_pt, dict_txt = _write(tmp_path, {**state, "encoder.sentence_encoder.adapter.weight": torch.ones(1)}, args=ARGS)
    with pytest.raises(ValueError, match="no Hugging Face counterpart.*adapter"):
        convert(str(model_pt), str(dict_txt), str(tmp_path / "o"))
    model_pt, dict_txt = _write(tmp_path, state, args={**ARGS, "encoder_normalize_before": True})
    with pytest.raises(ValueError, match="pre-LayerNorm"):
        convert(str(model_pt), str(dict_txt), str(tmp_path / "o"))
    model_pt, dict_txt = _write(tmp_path, state, args=ARGS)
    dict_txt.write_text("5 1\n")
    with pytest.raises(ValueError, match="gives 6 tokens .* embedding has 99 rows"):
        convert(str(model_pt), str(dict_txt), str(tmp_path / "o"))


def test_checkpoint_with_code_is_not_unpickled(tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "args": Exploit(str(marker))}, tmp_path / "model.pt")
    (tmp_path / "dict.txt").write_text("5 1\n")
    with pytest.raises(CheckpointError, match="was not unpickled.*--trust-checkpoint"):
        convert(str(tmp_path / "model.pt"), str(tmp_path / "dict.txt"), str(tmp_path / "o"))
    assert main(["--checkpoint", str(tmp_path / "model.pt"), "--dict", str(tmp_path / "dict.txt"), "--out", str(tmp_path / "o")]) == 1
    assert "was not unpickled" in capsys.readouterr().err
    assert not marker.exists()


def test_vocab_composition_matches_roberta_base(roberta_base_dir):
    """dict.txt + GPT-2 encoder.json must give roberta-base's vocab.json exactly.

    GPT-2's encoder.json is not in ../shared; the part of it that dict.txt references is recovered from
    vocab.json (fairseq id 4 + i holds dict line i's GPT-2 id), which checks the composition: order,
    the four specials first, literal madeupword entries and <mask> last."""
    vocab = json.loads((roberta_base_dir / "vocab.json").read_text())
    token_of = {i: t for t, i in vocab.items()}
    lines = (roberta_base_dir / "dict.txt").read_text(encoding="utf-8").splitlines()
    encoder = {token_of[4 + i]: int(line.split()[0]) for i, line in enumerate(lines) if line.split()[0].isdigit()}
    assert build_vocab(lines, encoder) == vocab
    assert list(build_vocab(lines, encoder).items())[-1] == ("<mask>", 50264)


def test_tokenizer_files_written(tmp_path, roberta_base_dir):
    ref = _reference("RobertaForMaskedLM")
    model_pt, dict_txt = _write(tmp_path, _fairseq_state(ref), args=ARGS)
    gpt2 = {f"tok{i}": i + 10 for i in range(TINY["vocab_size"] - 5)}
    (tmp_path / "encoder.json").write_text(json.dumps(gpt2))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nt o\n")
    convert(str(model_pt), str(dict_txt), str(tmp_path / "hf"), encoder_json=str(tmp_path / "encoder.json"),
            vocab_bpe=str(tmp_path / "vocab.bpe"))
    vocab = json.loads((tmp_path / "hf" / "vocab.json").read_text())
    assert len(vocab) == TINY["vocab_size"] and vocab["tok0"] == 4 and vocab["<mask>"] == 98
    tok = transformers.RobertaTokenizer.from_pretrained(tmp_path / "hf")
    assert tok.mask_token_id == 98 and tok.model_max_length == 38
