"""Property test: for any Unicode string, decode(encode(s)) == s and slow ids == fast ids, on the small
self-trained vocabulary and on the real roberta-base one."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_tokenization_helpers import our_pair, small_vocab_dir  # noqa: F401


def _roundtrip_and_agree(slow, fast, s):
    ids_slow = slow.encode(s, add_special_tokens=False)
    ids_fast = fast.encode(s, add_special_tokens=False)
    assert ids_slow == ids_fast
    assert slow.decode(ids_slow) == s
    assert fast.decode(ids_fast) == s


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=st.text())
def test_property_roundtrip_small_vocab(small_vocab_dir, s):
    slow, fast = _cached_pair(small_vocab_dir)
    _roundtrip_and_agree(slow, fast, s)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=st.text())
def test_property_roundtrip_real_vocab(roberta_base_dir, s):
    slow, fast = _cached_pair(roberta_base_dir)
    _roundtrip_and_agree(slow, fast, s)


_PAIRS = {}


def _cached_pair(directory):
    if directory not in _PAIRS:
        _PAIRS[directory] = our_pair(directory)
    return _PAIRS[directory]


@settings(max_examples=300, deadline=None)
@given(s=st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_property_fast_paths_split_like_the_full_pattern(s):
    from roberta.tokenization.bpe import PRETOKENIZE, pretokenizer_for

    assert pretokenizer_for(s).findall(s) == PRETOKENIZE.findall(s)
