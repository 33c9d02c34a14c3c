"""generate(): token-for-token parity with transformers 4.57.6's generate on identical tiny random weights
(greedy, seeded sampling, beam search and beam sampling, every logits processor, EOS lists, dict outputs,
inputs_embeds prompts, cross-attention decoding), the GenerationConfig file round trip, and clear errors."""
import json

import pytest
import torch

from test_modeling_helpers import batch, configs, transformers, twins

import roberta
from roberta.generation import GenerationConfig

DECODER = dict(is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1)
T = 9  # prompt length of batch()


@pytest.fixture(scope="module")
def models():
    return twins("RobertaForCausalLM", **DECODER)


def run_both(ours, theirs, ids, seed=0, **kw):
    """generate on both models from the same global RNG state; -> (ours, theirs)."""
    torch.manual_seed(seed)
    want = theirs.generate(ids, **kw)
    after_theirs = torch.rand(4)
    torch.manual_seed(seed)
    got = ours.generate(ids, **kw)
    assert torch.equal(torch.rand(4), after_theirs), "generate consumed the global RNG differently"
    return got, want


def assert_same_output(got, want):
    if torch.is_tensor(want):
        assert torch.equal(got, want), f"\nours:   {got.tolist()}\ntheirs: {want.tolist()}"
        return
    assert type(got).__name__ == type(want).__name__
    assert torch.equal(got.sequences, want.sequences), f"\nours:   {got.sequences.tolist()}\ntheirs: {want.sequences.tolist()}"
    for name in ("scores", "logits"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if b is not None:
            assert len(a) == len(b)
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)
    if hasattr(want, "beam_indices"):
        assert torch.equal(got.beam_indices, want.beam_indices)
        if want.sequences_scores is None:
            assert got.sequences_scores is None
        else:
            torch.testing.assert_close(got.sequences_scores, want.sequences_scores, atol=1e-4, rtol=1e-4)


def frequent_tokens(ours, ids, **kw):
    """Token ids the model emits early without EOS: used as EOS ids so that rows and beams end at different steps."""
    free = ours.generate(ids, max_new_tokens=4, eos_token_id=None, **kw)
    return sorted({int(free[0, T + 1]), int(free[-1, T + 2])})


# ---- greedy and sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", [None, "left"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_matches_transformers(models, padding, use_cache):
    ours, theirs = models
    ids, mask = batch(padding=padding)
    got, want = run_both(ours, theirs, ids, attention_mask=mask, max_new_tokens=8, use_cache=use_cache)
    assert_same_output(got, want)
    assert got.shape == (3, T + 8)


@pytest.mark.parametrize("options", [
    dict(),  # top_k=50 by default when sampling
    dict(temperature=0.7),
    dict(top_k=5, temperature=1.3),
    dict(top_p=0.8, top_k=0),
    dict(top_k=20, top_p=0.9, temperature=0.6, num_return_sequences=3),
])
def test_seeded_sampling_matches_transformers(models, options):
    ours, theirs = models
    ids, mask = batch(padding="left")
    got, want = run_both(ours, theirs, ids, seed=11, attention_mask=mask, do_sample=True, max_new_tokens=8, **options)
    assert_same_output(got, want)
    assert got.shape[0] == 3 * options.get("num_return_sequences", 1)


def test_sampling_with_own_generator_leaves_global_rng_alone(models):
    ours, _ = models
    ids, _ = batch(padding=None)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    a = ours.generate(ids, do_sample=True, max_new_tokens=6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = ours.generate(ids, do_sample=True, max_new_tokens=6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    greedy = ours.generate(ids, max_new_tokens=6)
    assert torch.equal(ours.generate(ids, do_sample=True, top_k=1, max_new_tokens=6), greedy)  # top_k=1 is greedy


def test_bidirectional_model_without_cache_matches_transformers():
    """is_decoder=False keeps no cache and attends both ways: every step reruns the whole sequence, as there."""
    ours, theirs = twins("RobertaForCausalLM", **{**DECODER, "is_decoder": False})
    ids, mask = batch(padding="left")
    for options in (dict(), dict(num_beams=3)):
        assert_same_output(*run_both(ours, theirs, ids, attention_mask=mask, max_new_tokens=5, **options))


# ---- beam search ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    dict(num_beams=3),
    dict(num_beams=4, num_return_sequences=4, length_penalty=0.0),
    dict(num_beams=3, num_return_sequences=2, early_stopping=True, length_penalty=2.0),
    dict(num_beams=3, early_stopping="never", length_penalty=-1.0),
    dict(num_beams=3, early_stopping="never", length_penalty=1.5, num_return_sequences=3),
])
def test_beam_search_matches_transformers(models, options):
    ours, theirs = models
    ids, mask = batch(padding="left")
    eos = frequent_tokens(ours, ids, attention_mask=mask, num_beams=options["num_beams"])
    kw = dict(attention_mask=mask, max_new_tokens=7, eos_token_id=eos, **options)
    got, want = run_both(ours, theirs, ids, **kw)
    assert_same_output(got, want)
    assert torch.isin(got[:, T:], torch.tensor(eos)).any()  # some hypotheses did finish at an EOS
    dict_kw = dict(kw, return_dict_in_generate=True, output_scores=True, output_logits=True)
    assert_same_output(*run_both(ours, theirs, ids, **dict_kw))


def test_beam_sampling_matches_transformers(models):
    ours, theirs = models
    ids, mask = batch(padding="left")
    kw = dict(attention_mask=mask, do_sample=True, num_beams=3, num_return_sequences=2, top_k=10, temperature=0.8,
              max_new_tokens=6, eos_token_id=frequent_tokens(ours, ids, attention_mask=mask))
    assert_same_output(*run_both(ours, theirs, ids, seed=5, **kw))


# ---- logits processors and stopping -----------------------------------------------------------------------
def test_repetition_penalty_matches_transformers(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    plain = ours.generate(ids, max_new_tokens=10)
    got, want = run_both(ours, theirs, ids, max_new_tokens=10, repetition_penalty=3.0)
    assert_same_output(got, want)
    assert not torch.equal(got, plain)  # the penalty changed something


def test_no_repeat_ngram_matches_transformers_and_never_repeats(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    got, want = run_both(ours, theirs, ids, max_new_tokens=12, no_repeat_ngram_size=2, num_beams=2)
    assert_same_output(got, want)
    for row in got.tolist():
        bigrams = list(zip(row, row[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_bad_words_match_transformers_and_never_appear(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    free = ours.generate(ids, max_new_tokens=8, eos_token_id=None)
    single = int(free[0, T])  # row 0's first choice
    pair = [int(free[1, T]), int(free[1, T + 1])]  # row 1's first two choices
    got, want = run_both(ours, theirs, ids, max_new_tokens=8, eos_token_id=None, bad_words_ids=[[single], pair])
    assert_same_output(got, want)
    assert single not in got[:, T:].tolist()[0]
    assert got[1, T:T + 2].tolist() != pair


def test_min_new_tokens_and_min_length_hold_back_eos(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    eos = frequent_tokens(ours, ids)
    early = ours.generate(ids, max_new_tokens=8, eos_token_id=eos)
    assert torch.isin(early[:, T:T + 3], torch.tensor(eos)).any()  # without the minimum, EOS comes early
    got, want = run_both(ours, theirs, ids, max_new_tokens=8, eos_token_id=eos, min_new_tokens=5)
    assert_same_output(got, want)
    assert not torch.isin(got[:, T:T + 5], torch.tensor(eos)).any()
    assert_same_output(*run_both(ours, theirs, ids, max_new_tokens=8, eos_token_id=eos, min_length=T + 4))


def test_eos_list_stops_each_row_and_pads(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    eos = frequent_tokens(ours, ids)
    got, want = run_both(ours, theirs, ids, max_new_tokens=8, eos_token_id=eos, pad_token_id=1)
    assert_same_output(got, want)
    for row in got.tolist():
        ends = [i for i in range(T, len(row)) if row[i] in eos]
        if ends:  # everything after a row's first EOS is padding
            assert all(t == 1 for t in row[ends[0] + 1:])
    assert any(any(t in eos for t in row[T:]) for row in got.tolist())


def test_max_length_and_default_length(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    got, want = run_both(ours, theirs, ids, max_length=T + 3, eos_token_id=None)
    assert_same_output(got, want)
    assert got.shape == (3, T + 3)
    default = ours.generate(ids, eos_token_id=None)
    assert default.shape == (3, T + 20)  # 20 new tokens by default, like transformers


def test_greedy_dict_output_with_scores_and_logits(models):
    ours, theirs = models
    ids, mask = batch(padding="left")
    kw = dict(attention_mask=mask, max_new_tokens=5, return_dict_in_generate=True, output_scores=True,
              output_logits=True, repetition_penalty=1.5)
    got, want = run_both(ours, theirs, ids, **kw)
    assert_same_output(got, want)
    assert len(got.scores) == 5 and got.scores[0].shape == (3, 99)
    assert not torch.equal(got.scores[1], got.logits[1])  # scores are processed, logits raw
    # the finished cache in transformers' legacy layout (its return_legacy_cache=True form), equal to theirs
    cache = got.past_key_values
    assert isinstance(cache, tuple) and len(cache) == 2 and cache.get_seq_length() == T + 4
    real = torch.cat([mask, torch.ones(3, 4, dtype=torch.long)], 1).bool()  # the left pads' rows differ by design
    for mine, theirs_layer in zip(cache, want.past_key_values.to_legacy_cache()):
        assert len(mine) == 2
        for a, b in zip(mine, theirs_layer):  # (B, H, S, D)
            torch.testing.assert_close(a.transpose(1, 2)[real], b.transpose(1, 2)[real], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("options", [dict(), dict(num_beams=3, num_return_sequences=2)])
@pytest.mark.parametrize("normalize", [False, True])
def test_compute_transition_scores_matches_transformers(models, options, normalize):
    ours, theirs = models
    ids, mask = batch(padding="left")
    kw = dict(attention_mask=mask, max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
              eos_token_id=frequent_tokens(ours, ids, attention_mask=mask), **options)
    got, want = run_both(ours, theirs, ids, **kw)
    beams = dict(beam_indices=want.beam_indices) if "num_beams" in options else {}
    a = ours.compute_transition_scores(got.sequences, got.scores, normalize_logits=normalize,
                                       **(dict(beam_indices=got.beam_indices) if beams else {}))
    b = theirs.compute_transition_scores(want.sequences, want.scores, normalize_logits=normalize, **beams)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if beams and not normalize:  # summed and length-penalised, they are the sequence scores
        new = (got.beam_indices >= 0).sum(dim=1)
        torch.testing.assert_close(a.sum(dim=1) / new, got.sequences_scores, atol=1e-4, rtol=1e-4)


def test_custom_processor_and_criterion_are_applied(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    ban = int(ours.generate(ids, max_new_tokens=1)[0, T])

    def no_ban(input_ids, scores):
        return scores.index_fill(1, torch.tensor([ban]), float("-inf"))

    def stop_after_three(input_ids, scores):
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= T + 3, dtype=torch.bool)

    got = ours.generate(ids, max_new_tokens=8, logits_processor=[no_ban], stopping_criteria=[stop_after_three])
    assert got.shape == (3, T + 3) and ban not in got[:, T:].flatten().tolist()
    their_proc = transformers.LogitsProcessorList([transformers.NoBadWordsLogitsProcessor([[ban]])])
    assert_same_output(*run_both(ours, theirs, ids, max_new_tokens=6, logits_processor=their_proc))


# ---- prompts: inputs_embeds, left padding, no prompt ------------------------------------------------------
def test_inputs_embeds_prompt_matches_transformers_and_ids_prompt(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    embeds = ours.get_input_embeddings()(ids)
    got, want = run_both(ours, theirs, None, inputs_embeds=embeds, max_new_tokens=6)
    assert_same_output(got, want)
    assert got.shape == (3, 6)  # only the new tokens, as transformers
    assert torch.equal(got, ours.generate(ids, max_new_tokens=6)[:, T:])
    beams = run_both(ours, theirs, None, inputs_embeds=embeds, max_new_tokens=5, num_beams=2)
    assert_same_output(*beams)


def test_inputs_embeds_with_input_ids_matches_transformers(models):
    """Both given (transformers' soft-prompt case): the embeddings feed the first step, the ids are the prompt."""
    ours, theirs = models
    ids, mask = batch(padding="left")
    embeds = ours.get_input_embeddings()(ids) * 1.5
    got, want = run_both(ours, theirs, ids, inputs_embeds=embeds, attention_mask=mask, max_new_tokens=5)
    assert_same_output(got, want)
    assert torch.equal(got[:, :T], ids)


def test_remove_invalid_values():
    from roberta.generation import RemoveInvalidValues
    scores = torch.tensor([[float("nan"), float("inf"), float("-inf"), 1.5]])
    fixed = RemoveInvalidValues()(torch.zeros(1, 0, dtype=torch.long), scores)
    big = torch.finfo(torch.float32).max
    assert fixed.tolist() == [[0.0, big, -big, 1.5]]


def test_remove_invalid_values_generate_matches_transformers(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    assert_same_output(*run_both(ours, theirs, ids, max_new_tokens=4, remove_invalid_values=True, do_sample=True))


def test_left_padded_row_equals_row_alone(models):
    ours, _ = models
    ids, mask = batch(padding="left")
    both = ours.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=None)
    alone = ours.generate(ids[1:2, 3:], max_new_tokens=4, eos_token_id=None)
    assert torch.equal(both[1, 3:], alone[0])


def test_attention_mask_inferred_from_pad_tokens(models):
    ours, theirs = models
    ids, mask = batch(padding="left")
    got, want = run_both(ours, theirs, ids, max_new_tokens=5)  # no mask: pad id 1 != eos 2, so it is inferred
    assert_same_output(got, want)
    assert torch.equal(got, ours.generate(ids, attention_mask=mask, max_new_tokens=5))


def test_dynamic_cache_implementation_is_the_default_cache(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    assert_same_output(*run_both(ours, theirs, ids, max_new_tokens=4, cache_implementation="dynamic"))


def test_no_prompt_starts_from_bos(models):
    ours, theirs = models
    got, want = run_both(ours, theirs, None, max_new_tokens=4)
    assert_same_output(got, want)
    assert got[0, 0] == 0 and got.shape == (1, 5)


# ---- positions --------------------------------------------------------------------------------------------
def test_roberta_positions_equal_greedy_decoding_with_the_forward(models):
    """roberta_positions=True feeds the positions the forward computes itself, so it equals greedy decoding by
    full forward passes (transformers' default generate does not: it feeds 0-based positions)."""
    ours, theirs = models
    ids, _ = batch(padding=None)
    ref = ids
    with torch.no_grad():
        for _ in range(5):
            ref = torch.cat([ref, theirs(input_ids=ref).logits[:, -1].argmax(-1)[:, None]], 1)
    got = ours.generate(ids, max_new_tokens=5, eos_token_id=None, roberta_positions=True)
    assert torch.equal(got, ref)
    assert not torch.equal(ours.generate(ids, max_new_tokens=5, eos_token_id=None), ref)


def test_prepare_inputs_for_generation_feeds_only_new_positions(models):
    ours, _ = models
    ids, mask = batch(padding="left")
    first = ours.prepare_inputs_for_generation(ids, attention_mask=mask)
    assert torch.equal(first["input_ids"], ids)
    assert first["position_ids"][1].tolist() == [1, 1, 1, 0, 1, 2, 3, 4, 5]  # transformers' 0-based positions
    out = ours(**first, use_cache=True)
    grown = torch.cat([ids, ids[:, -1:]], 1)
    mask2 = torch.cat([mask, torch.ones(3, 1, dtype=torch.long)], 1)
    step = ours.prepare_inputs_for_generation(grown, past_key_values=out.past_key_values, attention_mask=mask2,
                                              roberta_positions=True)
    assert step["input_ids"].shape == (3, 1)
    assert step["position_ids"][:, 0].tolist() == [11, 8, 11]  # padding_idx + 1 + real tokens before


# ---- cross-attention decoding -----------------------------------------------------------------------------
def _encoder_decoder(seed=0):
    ours_enc_cfg, their_enc_cfg = configs(**{**DECODER, "is_decoder": False})
    _, their_dec_cfg = configs(add_cross_attention=True, **DECODER)
    torch.manual_seed(seed)
    encoder = transformers.RobertaModel(their_enc_cfg, add_pooling_layer=False).eval()
    decoder = transformers.RobertaForCausalLM(their_dec_cfg).eval()
    ours_dec = roberta.RobertaForCausalLM(roberta.RobertaConfig(**their_dec_cfg.to_dict())).eval()
    ours_dec.load_state_dict(decoder.state_dict())
    ours_enc = roberta.RobertaModel(ours_enc_cfg, add_pooling_layer=False).eval()
    ours_enc.load_state_dict(encoder.state_dict())
    return ours_enc, ours_dec, encoder, decoder


@pytest.mark.parametrize("options", [dict(), dict(num_beams=3, num_return_sequences=2)])
def test_decoder_of_encoder_decoder_matches_transformers_encoder_decoder_model(options):
    """Our encoder + our decoder.generate(encoder_hidden_states=..., roberta_positions=True) equals
    transformers' EncoderDecoderModel.generate on the same weights (it decodes with RoBERTa's positions)."""
    ours_enc, ours_dec, encoder, decoder = _encoder_decoder()
    pair = transformers.EncoderDecoderModel(encoder=encoder, decoder=decoder).eval()
    pair.config.decoder_start_token_id, pair.config.pad_token_id, pair.config.eos_token_id = 0, 1, 2
    src, src_mask = batch(padding="right")
    with torch.no_grad():
        want = pair.generate(input_ids=src, attention_mask=src_mask, max_new_tokens=7, **options)
        hidden = ours_enc(src, attention_mask=src_mask).last_hidden_state
    start = torch.zeros(3, 1, dtype=torch.long)
    got = ours_dec.generate(start, encoder_hidden_states=hidden, encoder_attention_mask=src_mask, max_new_tokens=7,
                            roberta_positions=True, **options)
    assert torch.equal(got, want)


@pytest.mark.parametrize("options", [dict(), dict(num_beams=3), dict(do_sample=True, num_beams=2)])
def test_cross_attention_decoder_matches_transformers_generate(options):
    """Standalone RobertaForCausalLM.generate(encoder_hidden_states=...) equals transformers' with
    use_cache=False. (With its cache, transformers' standalone decoder gives different tokens than without,
    and it fails on encoder_attention_mask; see the README.)"""
    _, ours_dec, _, decoder = _encoder_decoder(seed=1)
    hidden = torch.randn(3, 6, 32, generator=torch.Generator().manual_seed(0))
    ids, mask = batch(padding="left")
    kw = dict(attention_mask=mask, encoder_hidden_states=hidden, max_new_tokens=6, **options)
    torch.manual_seed(2)
    want = decoder.generate(ids, use_cache=False, **kw)
    torch.manual_seed(2)
    got = ours_dec.generate(ids, **kw)
    assert torch.equal(got, want)
    torch.manual_seed(2)
    assert torch.equal(ours_dec.generate(ids, use_cache=False, **kw), got)


# ---- GenerationConfig and generation_config.json ----------------------------------------------------------
def test_generation_config_defaults_come_from_the_model_config(models):
    ours, theirs = models
    assert roberta.GenerationConfig is GenerationConfig
    assert (ours.generation_config.bos_token_id, ours.generation_config.eos_token_id,
            ours.generation_config.pad_token_id) == (0, 2, 1)
    assert ours.generation_config.to_diff_dict() == {
        k: v for k, v in theirs.generation_config.to_diff_dict().items() if k != "transformers_version"}


def test_generation_config_json_round_trip_both_ways(models, tmp_path):
    ours, theirs = models
    ids, _ = batch(padding=None)
    ours.generation_config = GenerationConfig.from_model_config(ours.config)
    ours.generation_config.update(num_beams=3, max_new_tokens=4, length_penalty=0.5, eos_token_id=[2, 7],
                                  no_repeat_ngram_size=2)
    try:
        ours.save_pretrained(tmp_path / "ours")
    finally:
        del ours.__dict__["_generation_config"]
    saved = json.loads((tmp_path / "ours" / "generation_config.json").read_text())
    assert saved["num_beams"] == 3 and saved["eos_token_id"] == [2, 7] and "temperature" not in saved
    back = roberta.RobertaForCausalLM.from_pretrained(tmp_path / "ours")
    theirs_back = transformers.RobertaForCausalLM.from_pretrained(tmp_path / "ours")
    assert back.generation_config.num_beams == theirs_back.generation_config.num_beams == 3
    assert back.generation_config.eos_token_id == theirs_back.generation_config.eos_token_id == [2, 7]
    got, want = run_both(back, theirs_back, ids)  # the saved settings drive both generates
    assert_same_output(got, want)
    assert got.shape == (3, T + 4)
    theirs.generation_config.repetition_penalty = 1.7
    theirs.save_pretrained(tmp_path / "theirs")
    theirs.generation_config.repetition_penalty = 1.0
    assert roberta.RobertaForCausalLM.from_pretrained(tmp_path / "theirs").generation_config.repetition_penalty == 1.7
    given = GenerationConfig(max_new_tokens=2)
    assert roberta.RobertaForCausalLM.from_pretrained(tmp_path / "ours", generation_config=given) \
        .generation_config.max_new_tokens == 2


def test_generation_config_object_and_use_model_defaults(models):
    ours, theirs = models
    ids, _ = batch(padding=None)
    given = GenerationConfig(max_new_tokens=4, num_beams=2)
    theirs_given = transformers.GenerationConfig(max_new_tokens=4, num_beams=2)
    torch.manual_seed(0)
    want = theirs.generate(ids, generation_config=theirs_given, length_penalty=0.3)
    got = ours.generate(ids, generation_config=given, length_penalty=0.3)
    assert torch.equal(got, want)
    assert given.length_penalty == 1.0  # the call works on a copy


def test_generation_config_file_keeps_unknown_keys_and_reads_transformers_files(tmp_path):
    config = GenerationConfig(num_beams=4, my_setting="kept", roberta_positions=True)
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "generation_config.json").read_text())
    assert data == {"num_beams": 4, "my_setting": "kept", "roberta_positions": True}
    back = GenerationConfig.from_pretrained(tmp_path / "generation_config.json")
    assert back == config and back.my_setting == "kept"
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path)  # transformers keeps what it does not know
    assert theirs.num_beams == 4 and theirs.roberta_positions is True
    transformers.GenerationConfig(do_sample=True, top_p=0.7, eos_token_id=[2, 5]).save_pretrained(tmp_path / "t")
    ours = GenerationConfig.from_pretrained(tmp_path / "t")
    assert (ours.do_sample, ours.top_p, ours.eos_token_id, ours.top_k) == (True, 0.7, [2, 5], 50)


def test_invalid_generation_config_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="do_sample"):
        GenerationConfig(temperature=0.5).save_pretrained(tmp_path)
    assert not (tmp_path / "generation_config.json").exists()


# ---- errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_return_sequences=2), ValueError, "needs beam search"),
    (dict(num_beams=2, num_return_sequences=3), ValueError, r"num_return_sequences \(3\) must be <= num_beams \(2\)"),
    (dict(num_beams=0), ValueError, "num_beams must be an int >= 1"),
    (dict(early_stopping="sometimes"), ValueError, "early_stopping must be True, False or 'never'"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be a positive int"),
    (dict(max_length=5), ValueError, "Input length of input_ids is 9, but `max_length` is set to 5"),
    (dict(do_sample=True, temperature=0.0), ValueError, "set do_sample=False"),
    (dict(do_sample=True, top_k=-1), ValueError, "top_k must be a positive int"),
    (dict(do_sample=True, top_p=1.5), ValueError, r"top_p must be a number in \[0, 1\]"),
    (dict(repetition_penalty=0.0), ValueError, "repetition_penalty must be a number > 0"),
    (dict(no_repeat_ngram_size=-2), ValueError, "no_repeat_ngram_size must be a positive int"),
    (dict(bad_words_ids=[3, 4]), ValueError, "bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(bad_words_ids=[[1000]]), ValueError, r"token ids \[1000\] outside the vocabulary of 99"),
    (dict(eos_token_id=2.5), ValueError, "eos_token_id must be an int or a list of ints"),
    (dict(foo=1), ValueError, r"model_kwargs` are not used by the model: \['foo'\]"),
    (dict(position_ids=torch.zeros(3, 9, dtype=torch.long)), ValueError, "computes position_ids"),
    (dict(num_beam_groups=2, num_beams=2), NotImplementedError, r"does not implement \['num_beam_groups'\]"),
    (dict(cache_implementation="static"), NotImplementedError, r"does not implement \['cache_implementation'\]"),
    (dict(streamer=object()), NotImplementedError, "streamer"),
    (dict(encoder_hidden_states=torch.zeros(3, 4, 32)), ValueError, "add_cross_attention=True"),
])
def test_bad_arguments_raise_clear_errors(models, kwargs, error, match):
    ours, _ = models
    with pytest.raises(error, match=match):
        if "max_length" not in kwargs:
            kwargs.setdefault("max_new_tokens", 3)
        ours.generate(batch(padding=None)[0], **kwargs)


def test_bad_prompts_raise_clear_errors(models):
    ours, _ = models
    ids, _ = batch(padding=None)
    with pytest.raises(ValueError, match="integer tensor of shape"):
        ours.generate(ids[0], max_new_tokens=2)
    with pytest.raises(ValueError, match="must cover the same"):
        ours.generate(ids, inputs_embeds=torch.zeros(3, 7, 32), max_new_tokens=2)
    encoder_only, _ = twins("RobertaForCausalLM", is_decoder=False)
    with pytest.raises(ValueError, match="is_decoder=True"):
        encoder_only.generate(inputs_embeds=torch.zeros(3, 9, 32), max_new_tokens=2)
