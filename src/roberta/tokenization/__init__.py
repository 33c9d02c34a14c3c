"""RoBERTa tokenizers: pure-Python `RobertaTokenizer` and `tokenizers`-backed `RobertaTokenizerFast`,
sharing one implementation of special tokens, truncation, padding and `BatchEncoding`."""
from .added_tokens import AddedToken
from .batch_encoding import BatchEncoding
from .fast import RobertaTokenizerFast
from .slow import RobertaTokenizer

__all__ = ["RobertaTokenizer", "RobertaTokenizerFast", "BatchEncoding", "AddedToken"]
