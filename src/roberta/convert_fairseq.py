"""Convert an original fairseq RoBERTa checkpoint (model.pt + dict.txt) to the Hugging Face folder format.

    python -m roberta.convert_fairseq --checkpoint model.pt --dict dict.txt --out DIR \
        [--encoder-json encoder.json --vocab-bpe vocab.bpe] [--classification-head mnli]

Weights are renamed through one declarative table (FAIRSEQ_RENAMES), checked against the model's keys
(nothing missing, nothing left over), and saved with `save_pretrained` (config.json + model.safetensors).
Unlike transformers' script this needs no fairseq install: the hyperparameters come from the checkpoint's
`args` / `cfg` and the tensor shapes. With GPT-2's encoder.json and vocab.bpe it also writes the tokenizer
(vocab.json = GPT-2 tokens renumbered in dict.txt order after <s> <pad> </s> <unk>, then <mask>).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import re
import sys

import torch

from roberta._io import atomic_write_text
from roberta.config import RobertaConfig
from roberta.loading import CheckpointError, rename_keys

logger = logging.getLogger(__name__)

_ENC = r"^(?:encoder|decoder)\."  # fairseq < 0.9 called the encoder "decoder"
_LAYER = _ENC + r"sentence_encoder\.layers\.(\d+)\."
# fairseq key (regex) -> Hugging Face key, applied in order, first match wins per key part.
FAIRSEQ_RENAMES = (
    (_ENC + r"sentence_encoder\.embed_tokens\.", "roberta.embeddings.word_embeddings."),
    (_ENC + r"sentence_encoder\.embed_positions\.", "roberta.embeddings.position_embeddings."),
    (_ENC + r"sentence_encoder\.(?:emb_layer_norm|layernorm_embedding)\.", "roberta.embeddings.LayerNorm."),
    (_LAYER + r"self_attn\.q_proj\.", r"roberta.encoder.layer.\1.attention.self.query."),
    (_LAYER + r"self_attn\.k_proj\.", r"roberta.encoder.layer.\1.attention.self.key."),
    (_LAYER + r"self_attn\.v_proj\.", r"roberta.encoder.layer.\1.attention.self.value."),
    (_LAYER + r"self_attn\.out_proj\.", r"roberta.encoder.layer.\1.attention.output.dense."),
    (_LAYER + r"self_attn_layer_norm\.", r"roberta.encoder.layer.\1.attention.output.LayerNorm."),
    (_LAYER + r"fc1\.", r"roberta.encoder.layer.\1.intermediate.dense."),
    (_LAYER + r"fc2\.", r"roberta.encoder.layer.\1.output.dense."),
    (_LAYER + r"final_layer_norm\.", r"roberta.encoder.layer.\1.output.LayerNorm."),
    (_ENC + r"lm_head\.dense\.", "lm_head.dense."),
    (_ENC + r"lm_head\.layer_norm\.", "lm_head.layer_norm."),
    (_ENC + r"lm_head\.weight$", "lm_head.decoder.weight"),
    (_ENC + r"lm_head\.bias$", "lm_head.bias"),
    (r"^classification_heads\.[^.]+\.dense\.", "classifier.dense."),
    (r"^classification_heads\.[^.]+\.out_proj\.", "classifier.out_proj."),
)
# Bookkeeping entries of fairseq state dicts that carry no weights.
_IGNORED = re.compile(r"(^|\.)(version|_float_tensor)$")
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary() ids 0..3


def load_fairseq_checkpoint(path: str, trust_checkpoint: bool = False) -> dict:
    """torch.load the model.pt safely: tensors, containers and argparse.Namespace only (unless trusted)."""
    try:
        if trust_checkpoint:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors and argparse.Namespace (e.g. an omegaconf config); "
            f"it was not unpickled. If you trust the file, pass --trust-checkpoint (runs its pickle code). "
            f"Details: {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint: {err}") from None


def _hyperparameters(checkpoint: dict) -> dict:
    """The model args of a fairseq checkpoint (old: `args` Namespace; newer: `cfg["model"]`), as a dict."""
    args = checkpoint.get("args")
    if args is None and isinstance(checkpoint.get("cfg"), dict):
        args = checkpoint["cfg"].get("model")
    if args is None:
        return {}
    return dict(args) if isinstance(args, dict) else vars(args)


def build_config(state: dict, hparams: dict, head: str | None = None, num_heads: int | None = None) -> RobertaConfig:
    """RobertaConfig from tensor shapes plus the few settings only the args know (heads, activation)."""
    if hparams.get("encoder_normalize_before"):
        raise ValueError("this checkpoint is pre-LayerNorm (encoder_normalize_before=True); RoBERTa's post-LN "
                         "architecture cannot represent it")
    def find(suffix):
        found = [v for k, v in state.items() if k.endswith(suffix)]
        if not found:
            raise ValueError(f"no '*{suffix}' tensor in the checkpoint: not a fairseq RoBERTa model")
        return found[0]

    embed, positions = find("sentence_encoder.embed_tokens.weight"), find("sentence_encoder.embed_positions.weight")
    layers = {int(m.group(1)) for k in state if (m := re.search(r"sentence_encoder\.layers\.(\d+)\.", k))}
    fc1 = find("layers.0.fc1.weight")
    hidden = embed.shape[1]
    heads = num_heads or hparams.get("encoder_attention_heads")
    if heads is None:
        heads = max(1, hidden // 64)  # every released RoBERTa uses 64-dim heads
        logger.warning("checkpoint does not record encoder_attention_heads; assuming %d (64-dim heads)", heads)
    config = RobertaConfig(
        vocab_size=embed.shape[0], hidden_size=hidden, num_hidden_layers=len(layers), num_attention_heads=heads,
        intermediate_size=fc1.shape[0], hidden_act=hparams.get("activation_fn", "gelu"),
        # fairseq's learned positions have max_positions + padding_idx + 1 rows (514 for 512 tokens)
        max_position_embeddings=positions.shape[0], type_vocab_size=1, layer_norm_eps=1e-5,  # torch's LayerNorm default
    )
    if head is not None:
        config.num_labels = state[f"classification_heads.{head}.out_proj.weight"].shape[0]
    return config


def convert_state_dict(state: dict, head: str | None = None) -> dict[str, torch.Tensor]:
    """fairseq names -> Hugging Face names for RobertaForMaskedLM (head=None) or ForSequenceClassification."""
    heads = {k.split(".")[1] for k in state if k.startswith("classification_heads.")}
    if head is not None and head not in heads:
        raise ValueError(f"classification head {head!r} not in the checkpoint; it has: {sorted(heads) or 'none'}")
    keep = {}
    for key, value in state.items():
        if _IGNORED.search(key) or (key.startswith("classification_heads.") and key.split(".")[1] != head):
            continue
        if head is not None and re.match(_ENC + r"lm_head\.", key):
            continue  # a classifier does not carry the LM head
        keep[key] = value
    renames = rename_keys(keep, FAIRSEQ_RENAMES)
    unmapped = [k for k, new in renames.items() if new == k]
    if unmapped:
        raise ValueError(f"fairseq keys with no Hugging Face counterpart (unknown architecture?): {unmapped[:10]}")
    out = {renames[k]: v for k, v in keep.items()}
    word = out["roberta.embeddings.word_embeddings.weight"]
    out["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, word.shape[1], dtype=word.dtype)  # unused by RoBERTa
    return out


def build_vocab(dict_lines: list[str], encoder: dict[str, int]) -> dict[str, int]:
    """vocab.json: fairseq id -> GPT-2 token. dict.txt line i ("<gpt2 id> <count>") is fairseq id 4 + i."""
    decoder = {i: tok for tok, i in encoder.items()}
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for line in dict_lines:
        if not line.strip() or line.startswith("#fairseq"):
            continue
        symbol = line.rsplit(" ", 1)[0] if " " in line else line.strip()
        token = decoder[int(symbol)] if symbol.isdigit() else symbol  # madeupword0000 etc. stay literal
        vocab.setdefault(token, len(vocab))
    vocab.setdefault("<mask>", len(vocab))  # the masked_lm task appends <mask> last
    return vocab


def _read_dict(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def convert(checkpoint: str, dict_path: str, out: str, *, classification_head: str | None = None,
            encoder_json: str | None = None, vocab_bpe: str | None = None, num_heads: int | None = None,
            trust_checkpoint: bool = False):
    """Convert and save; returns the loaded model (RobertaForMaskedLM or RobertaForSequenceClassification)."""
    from roberta.modeling import RobertaForMaskedLM, RobertaForSequenceClassification

    ckpt = load_fairseq_checkpoint(checkpoint, trust_checkpoint)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{checkpoint} is not a fairseq checkpoint (no 'model' state dict)")
    hparams = _hyperparameters(ckpt)
    state = ckpt["model"]
    converted = convert_state_dict(state, classification_head)
    config = build_config(state, hparams, classification_head, num_heads)
    dict_lines = [line for line in _read_dict(dict_path) if line.strip() and not line.startswith("#fairseq")]
    expected_vocab = len(SPECIALS) + len(dict_lines) + 1  # + <mask>
    if expected_vocab != config.vocab_size:
        raise ValueError(f"{dict_path} gives {expected_vocab} tokens (4 specials + {len(dict_lines)} lines + <mask>) "
                         f"but the checkpoint's embedding has {config.vocab_size} rows; wrong dict.txt?")
    if "lm_head.decoder.weight" in converted:
        tied = torch.equal(converted["lm_head.decoder.weight"], converted["roberta.embeddings.word_embeddings.weight"])
        config.tie_word_embeddings = tied and not hparams.get("untie_weights_roberta", False)
        if config.tie_word_embeddings:
            del converted["lm_head.decoder.weight"]
    cls = RobertaForSequenceClassification if classification_head else RobertaForMaskedLM
    with torch.device("meta"):
        model = cls(config)
    expected = set(model.state_dict()) - set(getattr(model, "_tied_weights_keys", []) if config.tie_word_embeddings else [])
    expected.discard("lm_head.decoder.bias")  # always the same tensor as lm_head.bias
    missing, extra = sorted(expected - set(converted)), sorted(set(converted) - expected)
    if missing or extra:
        raise ValueError(f"converted weights do not fit {cls.__name__}: missing {missing}, unexpected {extra}")
    model.load_state_dict({k: v.float().contiguous() for k, v in converted.items()}, strict=False, assign=True)
    model.tie_weights()
    model._init_buffers(torch.device("cpu"))
    model.eval()
    model.save_pretrained(out)
    if encoder_json and vocab_bpe:
        with open(encoder_json, encoding="utf-8") as f:
            vocab = build_vocab(dict_lines, json.load(f))
        _save_tokenizer(out, vocab, vocab_bpe, config.max_position_embeddings - config.pad_token_id - 1)
    else:
        logger.info("no --encoder-json/--vocab-bpe given: wrote weights and config only (no tokenizer files)")
    logger.info("converted %s -> %s (%s)", checkpoint, out, cls.__name__)
    return model


def _save_tokenizer(out: str, vocab: dict, vocab_bpe: str, model_max_length: int) -> None:
    with open(vocab_bpe, encoding="utf-8") as f:
        merges = f.read()
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    atomic_write_text(os.path.join(out, "vocab.json"), json.dumps(vocab, ensure_ascii=False))
    atomic_write_text(os.path.join(out, "merges.txt"), merges)
    atomic_write_text(os.path.join(out, "special_tokens_map.json"), json.dumps(specials, indent=2) + "\n")
    tok_config = {"tokenizer_class": "RobertaTokenizer", "model_max_length": model_max_length,
                  "add_prefix_space": False, "errors": "replace", **specials}
    atomic_write_text(os.path.join(out, "tokenizer_config.json"), json.dumps(tok_config, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roberta.convert_fairseq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="fairseq model.pt")
    parser.add_argument("--dict", required=True, dest="dict_path", help="fairseq dict.txt")
    parser.add_argument("--out", required=True, help="output folder (Hugging Face format)")
    parser.add_argument("--classification-head", default=None, help="convert this classification head (e.g. mnli) "
                        "into RobertaForSequenceClassification instead of the MLM head")
    parser.add_argument("--encoder-json", default=None, help="GPT-2 encoder.json, to also write the tokenizer")
    parser.add_argument("--vocab-bpe", default=None, help="GPT-2 vocab.bpe (becomes merges.txt)")
    parser.add_argument("--num-heads", type=int, default=None, help="attention heads, if the checkpoint lacks args")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle arbitrary objects in model.pt (runs code from the file; only for files you trust)")
    args = parser.parse_args(argv)
    if bool(args.encoder_json) != bool(args.vocab_bpe):
        parser.error("--encoder-json and --vocab-bpe go together")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        convert(args.checkpoint, args.dict_path, args.out, classification_head=args.classification_head,
                encoder_json=args.encoder_json, vocab_bpe=args.vocab_bpe, num_heads=args.num_heads,
                trust_checkpoint=args.trust_checkpoint)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
