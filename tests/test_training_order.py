"""Our pretraining pipeline can learn word order (issue: the embedded model sat on a bag-of-words plateau).

A synthetic language where the masked token is fixed only by word order: each sequence repeats three random
distinct tokens (`a b c a b c a ...`), so a masked token equals the token three to its left or right. Which
three tokens a sequence uses is known to a bag-of-words model too, so without order the best guess is one of
the three (~1/3); with order it is certain. Our Trainer (sparse MLM logits, our collator at 100% `<mask>`
replacement) must learn it to near 100% in a CPU-minute, and the shuffled-context control (the same model,
the unmasked tokens of each sequence permuted) must stay near the bag-of-words level.
"""
import json

import pytest
import torch

from roberta.config import RobertaConfig
from roberta.modeling import RobertaForMaskedLM
from roberta.training.collator import DataCollatorForLanguageModeling
from roberta.training.mlm_eval import masked_lm_figures
from roberta.training.pretraining import pretrain
from roberta.training.trainer import Trainer, TrainingArguments

SPECIALS = 5  # <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, then the content tokens
CONTENT = 24


class SyntheticTokenizer:
    """The few attributes our collator reads (duck-typed, as transformers' collators allow)."""
    bos_token_id, pad_token_id, eos_token_id, unk_token_id, mask_token_id = 0, 1, 2, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]
    padding_side = "right"

    def __len__(self):
        return SPECIALS + CONTENT


def periodic_sequences(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        period = torch.randperm(CONTENT, generator=g)[:3] + SPECIALS
        length = int(torch.randint(12, 25, (1,), generator=g))
        body = period.repeat(length // 3 + 1)[:length]
        rows.append({"input_ids": torch.cat([torch.tensor([0]), body, torch.tensor([2])])})
    return rows


def shuffle_unmasked(ids: torch.Tensor, attention_mask: torch.Tensor, masked: torch.Tensor, seed: int) -> torch.Tensor:
    """Each row's unmasked content tokens permuted among their own positions (specials and masks stay)."""
    g = torch.Generator().manual_seed(seed)
    out = ids.clone()
    for row in range(ids.shape[0]):
        where = ((attention_mask[row] == 1) & ~masked[row] & (ids[row] >= SPECIALS)).nonzero().squeeze(-1)
        out[row, where] = ids[row, where[torch.randperm(len(where), generator=g)]]
    return out


@torch.no_grad()
def masked_accuracy(model, collator, rows, shuffle: bool) -> float:
    batch = collator(rows)
    where = batch["labels"] != -100
    ids = shuffle_unmasked(batch["input_ids"], batch["attention_mask"], where, 7) if shuffle else batch["input_ids"]
    logits = model(input_ids=ids, attention_mask=batch["attention_mask"]).logits[where]
    return (logits.argmax(-1) == batch["labels"][where]).float().mean().item()


def test_trainer_learns_word_order_and_shuffled_context_does_not(tmp_path):
    torch.manual_seed(0)
    tokenizer = SyntheticTokenizer()
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, max_position_embeddings=40, type_vocab_size=1,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = RobertaForMaskedLM(config)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, mask_replace_prob=1.0,
                                               random_replace_prob=0.0, seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=32, learning_rate=3e-3,
                             weight_decay=0.01, adam_beta2=0.98, max_steps=300, warmup_steps=30, logging_steps=100,
                             seed=0, disable_tqdm=True, device="cpu")
    trainer = Trainer(model, args, train_dataset=periodic_sequences(9600, seed=1), data_collator=collator,
                      task="mlm")
    trainer.train()
    model.eval()
    heldout = periodic_sequences(512, seed=2)
    eval_collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, mask_replace_prob=1.0,
                                                    random_replace_prob=0.0, seed=3)
    in_order = masked_accuracy(model, eval_collator, heldout, shuffle=False)
    eval_collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, mask_replace_prob=1.0,
                                                    random_replace_prob=0.0, seed=3)
    shuffled = masked_accuracy(model, eval_collator, heldout, shuffle=True)
    assert in_order >= 0.95, f"the trainer did not learn word order: held-out accuracy {in_order:.3f}"
    assert shuffled <= 0.6, f"shuffled context should lose the order signal, got accuracy {shuffled:.3f}"

    # The library's probe reads the same: near-perfect accuracy and a large order gain (nats per masked token).
    eval_collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, mask_replace_prob=1.0,
                                                    random_replace_prob=0.0, seed=3)
    figures = masked_lm_figures(model, [eval_collator(heldout)])
    assert abs(figures["accuracy"] - in_order) < 1e-6
    assert figures["order_gain"] > 1.0 and figures["shuffled_loss"] > figures["loss"] + 1.0


def test_pretrain_logs_the_order_probe(tmp_path):
    from test_training_helpers import load_tokenizer, write_corpus

    tok = load_tokenizer()
    train = write_corpus(tmp_path / "train.txt", lines=80, seed=1)
    held = write_corpus(tmp_path / "held.txt", lines=20, seed=2)
    pretrain(train, tok, tmp_path / "out", eval_files=held, max_seq_len=32, hidden_size=16, num_layers=1,
             num_heads=2, batch_size=8, max_steps=4, log_every=2, probe_steps=2, packing="lines",
             mask_replace_prob=1.0, random_replace_prob=0.0, cache_dir=tmp_path / "c", show_progress=False)
    entries = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    probes = [e for e in entries if "probe_order_gain" in e]
    assert [e["step"] for e in probes] == [2, 4]
    assert all(0.0 <= e["probe_accuracy"] <= 1.0 and e["probe_masked_tokens"] > 0 for e in probes)
    with pytest.raises(ValueError, match="probe_steps needs eval_files"):
        pretrain(train, tok, tmp_path / "out2", max_seq_len=32, hidden_size=16, num_layers=1, num_heads=2,
                 max_steps=1, probe_steps=2, cache_dir=tmp_path / "c", show_progress=False)
