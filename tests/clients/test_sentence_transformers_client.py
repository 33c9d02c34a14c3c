"""sentence-transformers over our RobertaModel gives the embeddings it gives over transformers' (same weights,
the real roberta-base tokenizer, mean pooling, a padded batch)."""
import pytest
import torch

from test_modeling_helpers import twins

st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers: pip install 'roberta[clients]'")
from sentence_transformers import models  # noqa: E402


def test_embeddings_equal_over_ours_and_transformers(tmp_path, roberta_base_dir):
    import transformers

    ours, theirs = twins("RobertaModel", vocab_size=50265, max_position_embeddings=514)
    theirs.save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(roberta_base_dir).save_pretrained(tmp_path)

    def encoder(model):
        module = models.Transformer(str(tmp_path), max_seq_length=32)
        module.model = model  # the module's model (auto_model) is whatever class it is given
        return st.SentenceTransformer(modules=[module, models.Pooling(32, "mean")], device="cpu")

    mine = encoder(ours)
    assert type(mine[0].auto_model).__module__.startswith("roberta.")
    texts = ["Hello world", "A much longer sentence, so the batch needs padding.", "x"]
    torch.testing.assert_close(mine.encode(texts, convert_to_tensor=True),
                               encoder(theirs).encode(texts, convert_to_tensor=True), atol=1e-5, rtol=1e-4)
