"""Assisted decoding (assistant_model=) and prompt lookup decoding (prompt_lookup_num_tokens=): token for token
equal to transformers 4.57.6 on identical tiny random weights (greedy and seeded sampling, the global RNG consumed
the same way), equal to plain greedy search where they must be, and transformers' limits as clear errors."""
import pytest
import torch

from test_modeling_helpers import batch, twins

from roberta.generation.candidates import PromptLookupCandidates

DECODER = dict(is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1)
OUT = dict(return_dict_in_generate=True, output_scores=True, output_logits=True, pad_token_id=1)


@pytest.fixture(scope="module")
def models():
    """{"main": (ours, theirs), "random": (ours, theirs) of another random model, usable as an assistant}."""
    return {"main": twins("RobertaForCausalLM", **DECODER), "random": twins("RobertaForCausalLM", seed=1, **DECODER)}


def prompt():
    return batch()[0][:1]  # (1, 9): assisted decoding takes one row, as in transformers


def repeating_prompt():
    return torch.tensor([[0, 5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6]])  # its last bigram occurred twice before


def run_both(models, ids, assistant=None, seed=0, **kw):
    """generate on both main models (with the matching assistant) from one RNG state -> (ours, theirs)."""
    (ours, theirs) = models["main"]
    helpers = {"same": models["main"], "random": models["random"], None: (None, None)}[assistant]
    torch.manual_seed(seed)
    want = theirs.generate(ids, assistant_model=helpers[1], **kw)
    after = torch.rand(3)
    torch.manual_seed(seed)
    got = ours.generate(ids, assistant_model=helpers[0], **kw)
    assert torch.equal(torch.rand(3), after), "generate consumed the global RNG differently"
    return got, want


def assert_same(got, want):
    assert got.sequences.tolist() == want.sequences.tolist()
    for name in ("scores", "logits"):
        assert len(getattr(got, name)) == len(getattr(want, name))
        for a, b in zip(getattr(got, name), getattr(want, name)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("assistant", ["same", "random"])  # every candidate accepted / (almost) none accepted
def test_assisted_greedy_equals_transformers_and_plain_greedy(models, assistant):
    kw = dict(max_new_tokens=8, eos_token_id=None, repetition_penalty=1.2, **OUT)
    got, want = run_both(models, prompt(), assistant, **kw)
    assert_same(got, want)
    assert len(got.scores) == 8
    greedy = models["main"][0].generate(prompt(), **kw)
    assert_same(got, greedy)


def test_assisted_outputs_per_token_equal_plain_greedy(models):
    # attentions / hidden states come as one entry per generated token, as greedy search records them
    ours = models["main"][0]
    kw = dict(max_new_tokens=5, eos_token_id=None, output_attentions=True, output_hidden_states=True, **OUT)
    got = ours.generate(prompt(), assistant_model=ours, **kw)
    greedy = ours.generate(prompt(), **kw)
    for name in ("attentions", "hidden_states"):
        assert len(getattr(got, name)) == len(getattr(greedy, name)) == 5
        for step_a, step_b in zip(getattr(got, name), getattr(greedy, name)):
            for a, b in zip(step_a, step_b):
                assert a.shape == b.shape
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert got.past_key_values.get_seq_length() == 9 + 5 - 1  # the last token is not in the cache yet


@pytest.mark.parametrize("assistant", ["same", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_speculative_sampling_equals_transformers(models, assistant, seed):
    for ours_or_theirs in (*models["main"], *models["random"]):
        ours_or_theirs.generation_config.assistant_confidence_threshold = 0.0  # see README: no threshold tuning
    try:
        got, want = run_both(models, prompt(), assistant, seed=seed, do_sample=True, top_k=0, max_new_tokens=8,
                             eos_token_id=None, temperature=0.8, **OUT)
    finally:
        for ours_or_theirs in (*models["main"], *models["random"]):
            ours_or_theirs.generation_config.assistant_confidence_threshold = 0.4
    assert_same(got, want)


def test_heuristic_schedule_learns_the_same_length(models):
    for m in (*models["random"],):
        m.generation_config.num_assistant_tokens_schedule = "heuristic"
        m.generation_config.num_assistant_tokens = 5
    try:
        got, want = run_both(models, prompt(), "random", max_new_tokens=10, eos_token_id=None, **OUT)
        assert_same(got, want)
        learned = [m.generation_config.num_assistant_tokens for m in models["random"]]
        assert learned[0] == learned[1] != 5
    finally:
        for m in models["random"]:
            m.generation_config.num_assistant_tokens_schedule = "constant"
            m.generation_config.num_assistant_tokens = 20


@pytest.mark.parametrize("num_tokens", [2, 3])
def test_prompt_lookup_equals_transformers_and_plain_greedy(models, num_tokens):
    kw = dict(max_new_tokens=8, eos_token_id=-1, **OUT)  # transformers' prompt lookup needs an EOS id
    got, want = run_both(models, repeating_prompt(), prompt_lookup_num_tokens=num_tokens, **kw)
    assert_same(got, want)
    assert_same(got, models["main"][0].generate(repeating_prompt(), **kw))


@pytest.mark.parametrize("seed", [0, 3])
def test_prompt_lookup_sampling_equals_transformers(models, seed):
    got, want = run_both(models, repeating_prompt(), seed=seed, prompt_lookup_num_tokens=2, do_sample=True,
                         max_new_tokens=6, eos_token_id=-1, **OUT)
    assert_same(got, want)


def test_prompt_lookup_candidates():
    ids = torch.tensor([[3, 5, 6, 9, 4, 5, 6, 7, 8, 5, 6]])
    source = PromptLookupCandidates(num_tokens=3, max_ngram=2, max_length=30, eos=torch.tensor([99]), processors=[],
                                    vocab_size=100)
    assert source.get(ids)[0][0, 11:].tolist() == [9, 4, 5]  # what followed the first earlier "5 6"
    source.eos = torch.tensor([4])
    assert source.get(ids)[0][0, 11:].tolist() == [9]  # never an EOS, nor what follows it
    source.eos = torch.tensor([9])
    assert source.get(ids)[0].shape == (1, 11)  # the first match starts with EOS: no candidates
    assert source.get(torch.tensor([[1, 2, 3]]))[0].shape == (1, 3)  # no earlier occurrence
    with pytest.raises(ValueError, match="must be positive"):
        PromptLookupCandidates(0, 2, 30, None, [], 100)


def test_assisted_limits_are_transformers(models):
    ours = models["main"][0]
    ids = batch()[0][:2]
    with pytest.raises(ValueError, match="only supported for batch_size = 1"):
        ours.generate(ids, assistant_model=ours, max_new_tokens=2)
    with pytest.raises(ValueError, match="num_return_sequences has to be 1"):
        ours.generate(prompt(), assistant_model=ours, do_sample=True, num_return_sequences=2, max_new_tokens=2)
    with pytest.raises(ValueError, match="requires `use_cache=True`"):
        ours.generate(prompt(), prompt_lookup_num_tokens=2, use_cache=False, max_new_tokens=2)
    with pytest.raises(TypeError, match="assistant_model must be one of roberta's"):
        ours.generate(prompt(), assistant_model=models["main"][1], max_new_tokens=2)
