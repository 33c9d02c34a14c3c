"""DDP on CPU with 2 gloo processes: ranks stay identical and match one process with the same global batch.

Sequence classification with dropout off: no randomness, so the runs must agree to float tolerance.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import tiny_config, tokenizer_dir, write_corpus

VOCAB = 120
STEPS = 4


def _dataset():
    g = torch.Generator().manual_seed(0)
    data = []
    for i in range(48):
        n = int(torch.randint(6, 20, (1,), generator=g))
        ids = [0] + torch.randint(4, VOCAB - 1, (n,), generator=g).tolist() + [2]
        data.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": int(ids[1] % 3)})
    return data


class _Tok:  # what DataCollatorWithPadding needs from a tokenizer
    pad_token_id = 1
    padding_side = "right"


def _train(output_dir, batch_size, grad_accum=1):
    from roberta.modeling import RobertaForSequenceClassification
    from roberta.training.collator import DataCollatorWithPadding
    from roberta.training.trainer import Trainer, TrainingArguments

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(tiny_config(VOCAB, dropout=0.0, num_labels=3))
    args = TrainingArguments(output_dir=str(output_dir), per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=grad_accum, max_steps=STEPS, learning_rate=5e-3,
                             warmup_steps=1, weight_decay=0.01, logging_steps=2, disable_tqdm=True, seed=3,
                             save_steps=2)
    trainer = Trainer(model, args, train_dataset=_dataset(), data_collator=DataCollatorWithPadding(_Tok()))
    trainer.train()
    return model, trainer


def _initial_state():
    from roberta.modeling import RobertaForSequenceClassification

    torch.manual_seed(0)
    return RobertaForSequenceClassification(tiny_config(VOCAB, dropout=0.0, num_labels=3)).state_dict()


def _worker(rank, world_size, port, output_dir, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        model, trainer = _train(output_dir, batch_size=4, grad_accum=2)
        torch.save(model.state_dict(), os.path.join(result_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The tests that open local ports run on one xdist worker, one after the other (dev.sh passes --dist loadgroup),
# so the port one of them picked cannot be taken by the other between picking and binding.
@pytest.mark.xdist_group("local-ports")
def test_two_gloo_processes_match_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"ranks diverged at {name}"
    # one process, same global batch (2 ranks x 4 x 2 accumulation = 16)
    single, _ = _train(tmp_path / "single", batch_size=16)
    initial = _initial_state()
    moved = 0
    for name, value in single.state_dict().items():
        torch.testing.assert_close(rank0[name], value, rtol=0, atol=1e-5, msg=name)
        moved += int(not torch.equal(value, initial[name]))
    assert moved > 10, "training did not change the weights: the comparison would be vacuous"
    # only rank 0 wrote: one log (no duplicated lines) and the checkpoint with both ranks' RNG states
    log = (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == STEPS // 2
    rng = torch.load(tmp_path / "ddp" / "checkpoint-2" / "rng_state.pt", weights_only=True)
    assert len(rng) == 2


def test_split_into_micro_batches_matches_one_batch(tmp_path):
    """Gradient accumulation 4 x 4 gives the same update as one batch of 16 (mean over the whole batch)."""
    accumulated, _ = _train(tmp_path / "a", batch_size=4, grad_accum=4)
    whole, _ = _train(tmp_path / "b", batch_size=16)
    for (name, a), b in zip(accumulated.state_dict().items(), whole.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)


def test_sharded_sampler_is_a_deterministic_partition():
    from roberta.training.distributed import ShardedSampler

    shards = [ShardedSampler(10, rank, 3, seed=1) for rank in range(3)]
    for s in shards:
        s.set_epoch(2)
    parts = [s.indices() for s in shards]
    assert all(len(p) == 4 for p in parts)  # 10 padded to 12: every rank the same count
    assert set(sum(parts, [])) == set(range(10))  # together the ranks cover the data
    again = ShardedSampler(10, 1, 3, seed=1)
    again.set_epoch(2, start=1)
    assert list(again) == parts[1][1:]  # resuming mid-epoch skips the consumed items, same order
    again.set_epoch(3)
    assert again.indices() != parts[1]  # a new order every epoch
    tiny = [ShardedSampler(3, rank, 5).indices() for rank in range(5)]
    assert all(len(p) == 1 for p in tiny)  # fewer items than ranks still gives every rank one



def test_group_by_length_batches_examples_of_alike_length():
    from roberta.training.distributed import ShardedSampler

    lengths = [(7 * i) % 40 for i in range(40)]  # a permutation of 0..39: item i has length lengths[i]
    sampler = ShardedSampler(40, seed=5, lengths=lengths, batch_size=4)
    order = sampler.indices()
    assert sorted(order) == list(range(40))  # every example once per epoch
    batches = [sorted(lengths[i] for i in order[k:k + 4]) for k in range(0, 40, 4)]
    # One mega-batch holds the whole epoch here, so each batch is four consecutive lengths.
    assert sorted(batches) == [list(range(k, k + 4)) for k in range(0, 40, 4)]
    assert batches != sorted(batches, reverse=True)  # the batches themselves come in a shuffled order
    again = ShardedSampler(40, seed=5, lengths=lengths, batch_size=4)
    again.set_epoch(0, start=6)
    assert list(again) == order[6:]  # resumable: f(seed, epoch)
    again.set_epoch(1)
    assert again.indices() != order
    # Two ranks: each rank's micro-batch of 2 comes from the same global batch of 4.
    ranks = [ShardedSampler(40, r, 2, seed=5, lengths=lengths, batch_size=2).indices() for r in range(2)]
    for k in range(0, 20, 2):
        four = sorted(lengths[i] for i in ranks[0][k:k + 2] + ranks[1][k:k + 2])
        assert four == list(range(four[0], four[0] + 4))
    with pytest.raises(ValueError, match="lengths has 3 entries for a dataset of 40"):
        ShardedSampler(40, lengths=[1, 2, 3])


@pytest.mark.xdist_group("local-ports")
def test_torchrun_two_nodes_run_the_pretrain_command(tmp_path):
    """Multi-node as torchrun launches it: two `torchrun --nnodes=2 --node_rank=N` launchers on this machine
    (one process each, rendezvous at 127.0.0.1) run `roberta pretrain`; the job trains with world size 2,
    rank 0 alone logs and saves, and the saved model loads."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    corpus = write_corpus(tmp_path / "corpus.txt", lines=200, seed=4)
    out = tmp_path / "mlm"
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launchers = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
         "--master_addr=127.0.0.1", f"--master_port={port}",
         "-m", "roberta.cli", "pretrain", "--tokenizer", str(tokenizer_dir()), "--train-files", str(corpus),
         "--output-dir", str(out), "--hidden-size", "32", "--num-layers", "2", "--num-heads", "2",
         "--intermediate-size", "64", "--max-seq-len", "32", "--batch-size", "4", "--max-steps", "3",
         "--lr", "1e-3", "--warmup-steps", "1", "--log-every", "1", "--save-steps", "2", "--cache-dir", str(tmp_path / f"cache{node}"),
         "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for node in (0, 1)]
    results = []
    for proc in launchers:
        try:
            stdout, stderr = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in launchers:
                p.kill()
            raise
        results.append((proc.returncode, stdout, stderr))
    for node, (code, _, stderr) in enumerate(results):
        assert code == 0, f"node {node} failed:\n{stderr[-3000:]}"
    summary = json.loads(results[0][1])  # rank 0 prints the final metrics
    assert summary["global_step"] == 3
    assert results[1][1].strip() == ""  # rank 1 prints nothing
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "loss" in row] == [1, 2, 3]  # one line per step: rank 0 alone writes
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["global_step"] == 2
    assert len(torch.load(out / "checkpoint-2" / "rng_state.pt", weights_only=True)) == 2  # both ranks' RNG
    from roberta.modeling import RobertaForMaskedLM

    model = RobertaForMaskedLM.from_pretrained(str(out))
    assert model.config.num_hidden_layers == 2
