"""Every file we read, corrupted or holding bad values, gives a clear error naming the file and the culprit
(tensor or key): never a silent wrong load, a hang, a huge allocation or a raw traceback from deep inside.

One table per kind of file. Each row: an id, a function that corrupts a freshly saved folder, the exception
type, and a regex that must match the message (it names the file, and the tensor/key/token at fault).
"""
import json
import struct

import pytest
import torch

from roberta import RobertaConfig, RobertaModel, RobertaTokenizer, RobertaTokenizerFast
from roberta.loading import CheckpointError

TINY = dict(vocab_size=24, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
            max_position_embeddings=16, type_vocab_size=1, layer_norm_eps=1e-5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(**TINY)).save_pretrained(folder)
    return folder


@pytest.fixture
def folder(model_dir, tmp_path):
    """A fresh copy of the saved tiny model to corrupt."""
    for f in model_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    return tmp_path


# ---- safetensors -------------------------------------------------------------------------------------------
def read_st(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path, header, data):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def edit_header(edit):
    """A corruption that rewrites model.safetensors' header with `edit(header)`, keeping the data bytes."""
    def corrupt(folder):
        path = folder / "model.safetensors"
        header, data = read_st(path)
        write_st(path, edit(header) or header, data)
    return corrupt


def set_entry(name, **fields):
    def edit(header):
        header[name].update(fields)
    return edit


LN_W, LN_B = "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"  # (8,) each: 32 bytes in float32


def overlap(header):  # LayerNorm.bias points at LayerNorm.weight's bytes (same size, so only overlap can tell)
    header[LN_B]["data_offsets"] = list(header[LN_W]["data_offsets"])


def append_garbage(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes() + b"\0" * 16)


SAFETENSORS_CASES = [
    ("negative offset", edit_header(set_entry(LN_W, data_offsets=[-32, 0])),
     r"model\.safetensors: tensor 'embeddings\.LayerNorm\.weight': data_offsets must be \[begin, end\] with non-negative"),
    ("end before begin", edit_header(lambda h: h[LN_W].update(data_offsets=h[LN_W]["data_offsets"][::-1])),
     r"tensor 'embeddings\.LayerNorm\.weight': data_offsets \[\d+, \d+\] end before they begin"),
    ("overlapping offsets", edit_header(overlap),
     r"model\.safetensors: tensor 'embeddings\.LayerNorm\.(weight|bias)' overlaps tensor 'embeddings\.LayerNorm\.(weight|bias)'"),
    ("dtype label not matching the bytes", edit_header(set_entry(LN_W, dtype="F16")),
     r"tensor 'embeddings\.LayerNorm\.weight': dtype F16 and shape \[8\] need 16 bytes but data_offsets .* span 32"),
    ("span shorter than the shape", edit_header(set_entry(LN_W, shape=[9])),
     r"tensor 'embeddings\.LayerNorm\.weight': dtype F32 and shape \[9\] need 36 bytes but .* span 32"),
    ("unknown dtype", edit_header(set_entry(LN_W, dtype="F128")),
     r"tensor 'embeddings\.LayerNorm\.weight' has unsupported dtype 'F128'"),
    ("shape not a list of ints", edit_header(set_entry(LN_W, shape=["8"])),
     r"tensor 'embeddings\.LayerNorm\.weight': shape must be a list of non-negative integers"),
    ("entry not an object", edit_header(lambda h: h.update({LN_W: [1, 2]})),
     r"tensor 'embeddings\.LayerNorm\.weight': header entry must be an object"),
    ("header is a JSON list", edit_header(lambda h: [h]),
     r"model\.safetensors is corrupt: its safetensors header must be a JSON object, got list"),
    ("bad __metadata__", edit_header(lambda h: h.update({"__metadata__": {"format": 1}})),
     r"model\.safetensors is corrupt: __metadata__ must be an object of strings"),
    ("bytes after the last tensor", append_garbage,
     r"model\.safetensors: 16 bytes after the last tensor belong to no tensor"),
    ("header length past the end", lambda f: (f / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}"),
     r"model\.safetensors is truncated or not a safetensors file"),
]


@pytest.mark.parametrize("corrupt, message", [c[1:] for c in SAFETENSORS_CASES], ids=[c[0] for c in SAFETENSORS_CASES])
def test_corrupt_safetensors(folder, corrupt, message):
    corrupt(folder)
    with pytest.raises(CheckpointError, match=message):
        RobertaModel.from_pretrained(folder)


def test_gap_between_tensors_is_refused(folder):
    """A tensor moved past a hole: every tensor still fits the file, but bytes belong to none."""
    header, data = read_st(folder / "model.safetensors")
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    begin, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [begin + 4, end + 4]
    write_st(folder / "model.safetensors", header, data[:begin] + b"\0" * 4 + data[begin:])
    with pytest.raises(CheckpointError, match=rf"4 bytes before tensor '{last}' belong to no tensor"):
        RobertaModel.from_pretrained(folder)


def test_valid_edge_cases_still_load(folder):
    """Zero-size tensors, a misaligned data start and a reordered header are all valid files."""
    header, data = read_st(folder / "model.safetensors")
    header["zero"] = {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}
    header = dict(reversed(list(header.items())))
    blob = json.dumps(header).encode() + b" "  # 1 more byte: the data start is no longer 4-byte aligned
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    model = RobertaModel.from_pretrained(folder)
    torch.manual_seed(0)
    expected = RobertaModel(RobertaConfig(**TINY)).state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


# ---- sharded checkpoints -----------------------------------------------------------------------------------
@pytest.fixture
def sharded(model_dir, tmp_path):
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(**TINY)).save_pretrained(tmp_path, max_shard_size=2000)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    return tmp_path


def edit_index(edit):
    def corrupt(folder):
        path = folder / "model.safetensors.index.json"
        index = json.loads(path.read_text())
        path.write_text(json.dumps(edit(index) or index))
    return corrupt


def point_first_at(target):
    def edit(index):
        first = sorted(index["weight_map"])[0]
        index["weight_map"][first] = target
    return edit


def duplicate_across_shards(folder):
    """Put a tensor of shard 1 into shard 2 as well (with other values)."""
    from safetensors.torch import load_file, save_file

    shards = sorted(folder.glob("model-*.safetensors"))
    first, second = load_file(shards[0]), load_file(shards[1])
    name = next(iter(first))
    second[name] = first[name] + 1
    save_file(second, shards[1], metadata={"format": "pt"})


SHARD_CASES = [
    ("parent folder", edit_index(point_first_at("../elsewhere.safetensors")),
     r"model\.safetensors\.index\.json names shard '\.\./elsewhere\.safetensors', which is outside the model folder"),
    ("absolute path", edit_index(point_first_at("/etc/passwd")),
     r"names shard '/etc/passwd', which is outside the model folder"),
    ("nested parent", edit_index(point_first_at("sub/../../x.safetensors")), r"which is outside the model folder"),
    ("shard name not a string", edit_index(point_first_at(7)), r"index\.json: weight_map values must be shard file names, got 7"),
    ("weight_map missing", edit_index(lambda i: {"metadata": {}}), r"index\.json has no 'weight_map' object"),
    ("index is a JSON list", edit_index(lambda i: [i]), r"index\.json must hold a JSON object, got list"),
    ("tensor in two shards", duplicate_across_shards, r"tensor '.+' is stored in two shards, .*model-00001-of-.* and .*model-00002-of-"),
]


@pytest.mark.parametrize("corrupt, message", [c[1:] for c in SHARD_CASES], ids=[c[0] for c in SHARD_CASES])
def test_corrupt_shard_index(sharded, corrupt, message):
    corrupt(sharded)
    with pytest.raises((CheckpointError, ValueError), match=message):
        RobertaModel.from_pretrained(sharded)


# ---- config.json -------------------------------------------------------------------------------------------
def edit_config(**values):
    def corrupt(folder):
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **values}))
    return corrupt


CONFIG_CASES = [
    ("a JSON list", lambda f: (f / "config.json").write_text("[1, 2]"), ValueError, r"config\.json must hold a JSON object, got list"),
    ("not JSON", lambda f: (f / "config.json").write_text("{'a': 1}"), ValueError, r"config\.json is not a valid JSON file"),
    ("a million layers", edit_config(num_hidden_layers=1_000_000), ValueError,
     r"config\.json: num_hidden_layers=1000000 is beyond any real RoBERTa"),
    ("1e6 layers (a float)", edit_config(num_hidden_layers=1e6), ValueError,
     r"config\.json: num_hidden_layers must be a non-negative integer, got 1000000\.0"),
    ("a billion positions", edit_config(max_position_embeddings=10**9), ValueError,
     r"config\.json: max_position_embeddings=1000000000 is beyond any real RoBERTa"),
    ("layer_norm_eps 0", edit_config(layer_norm_eps=0), ValueError, r"config\.json: layer_norm_eps must be a positive number"),
    ("layer_norm_eps negative", edit_config(layer_norm_eps=-1e-5), ValueError, r"config\.json: layer_norm_eps must be a positive"),
    ("pad_token_id past the vocabulary", edit_config(pad_token_id=24), ValueError,
     r"config\.json: pad_token_id=24 is not a token of the vocabulary \(ids 0\.\.23\)"),
    ("hidden_size a string", edit_config(hidden_size="8"), ValueError, r"config\.json: hidden_size must be a positive integer, got '8'"),
    ("heads not dividing hidden", edit_config(num_attention_heads=3), ValueError,
     r"config\.json: The hidden size \(8\) is not a multiple of the number of attention heads \(3\)"),
    ("unknown activation", edit_config(hidden_act="gelu9"), ValueError, r"config\.json: hidden_act 'gelu9' is not supported"),
    ("wrong model_type", edit_config(model_type="bert"), ValueError, r"config\.json is a config for model_type 'bert'"),
    ("id2label a list", edit_config(id2label=["a", "b"]), ValueError, r"config\.json: id2label must be a dict"),
    ("id2label keys not ids", edit_config(id2label={"0": "x", "pos": "y"}), ValueError,
     r"config\.json: id2label keys must be class ids \(0, 1, \.\.\.\), got 'pos'"),  # was: invalid literal for int()
]


@pytest.mark.parametrize("corrupt, exc, message", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_json(folder, corrupt, exc, message):
    corrupt(folder)
    with pytest.raises(exc, match=message):
        RobertaModel.from_pretrained(folder)


def test_config_from_dict_and_json_file_refuse_non_objects(tmp_path):
    """`roberta pretrain --config-json` with a JSON list: the config side answers with a clear error."""
    with pytest.raises(ValueError, match=r"a config must be a JSON object / dict of settings, got list"):
        RobertaConfig.from_dict([["hidden_size", 8]])
    (tmp_path / "c.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"c\.json must hold a JSON object, got list"):
        RobertaConfig.from_json_file(tmp_path / "c.json")


def test_huge_positions_cost_nothing_on_the_meta_path():
    """Building on the meta device (what loading does) makes no CPU buffer of max_position_embeddings ids."""
    from roberta.loading import _SkipInitOnMeta

    config = RobertaConfig(**{**TINY, "max_position_embeddings": 1 << 20})
    with torch.device("meta"), _SkipInitOnMeta():
        ids = torch.arange(config.max_position_embeddings)
        model = RobertaModel(config)
    assert ids.is_meta and ids.shape == (1 << 20,) and ids.dtype == torch.int64
    assert model.embeddings.position_ids.is_meta
    with torch.device("meta"), _SkipInitOnMeta():
        assert torch.arange(2, 11, 3).shape == (3,) and torch.arange(0.0, 1.0, 0.25).dtype == torch.float32


# ---- tokenizer files ---------------------------------------------------------------------------------------
VOCAB = ["<s>", "<pad>", "</s>", "<unk>", "l", "o", "w", "e", "r", "n", "\u0120", "\u0120l", "\u0120lo", "\u0120low",
         "er", "<mask>"]
MERGES = ["\u0120 l", "\u0120l o", "\u0120lo w", "e r"]


@pytest.fixture
def tok_dir(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    RobertaTokenizerFast(vocab_file=tmp_path / "vocab.json", merges_file=tmp_path / "merges.txt").save_pretrained(tmp_path)
    return tmp_path


def edit_json(name, edit):
    def corrupt(folder):
        path = folder / name
        data = json.loads(path.read_text())
        path.write_text(json.dumps(edit(data) or data))
    return corrupt


def write(name, text):
    return lambda folder: (folder / name).write_text(text)


def vocab_edit(**changes):
    return edit_json("vocab.json", lambda v: v.update(changes))


def tokenizer_json_vocab(**changes):
    return edit_json("tokenizer.json", lambda t: t["model"]["vocab"].update(changes))


BOTH, SLOW, FAST = (RobertaTokenizer, RobertaTokenizerFast), (RobertaTokenizer,), (RobertaTokenizerFast,)
NO_TOKENIZER_JSON = "no tokenizer.json"
TOKENIZER_CASES = [
    # vocab.json: read by the slow tokenizer, and by the fast one when there is no tokenizer.json
    ("vocab duplicate id", vocab_edit(lo=5), BOTH, r"vocab\.json'?: id 5 is given to two tokens, 'o' and 'lo'"),
    ("vocab id out of range", vocab_edit(l=99), BOTH,
     r"vocab\.json'?: token 'l' has id 99, out of range for a vocabulary of 16 tokens \(ids must be 0\.\.15\)"),
    ("vocab negative id", vocab_edit(l=-1), BOTH, r"vocab\.json'?: token 'l' maps to -1; ids must be non-negative"),
    ("vocab id a string", vocab_edit(l="4"), BOTH, r"vocab\.json'?: token 'l' maps to '4'"),
    ("vocab a JSON list", write("vocab.json", '["a"]'), BOTH, r"vocab\.json'? must be a JSON object mapping token -> id, got list"),
    ("vocab not JSON", write("vocab.json", "{nope"), BOTH, r"vocab file .*vocab\.json' is not valid JSON"),
    ("vocab empty", write("vocab.json", "{}"), BOTH, r"vocab\.json'? is empty"),
    # merges.txt
    ("merge with three symbols", write("merges.txt", "#version: 0.2\n\u0120 l x\n"), BOTH,
     r"merges file .*merges\.txt', line 2: expected two symbols separated by one space"),
    ("merge outside the vocabulary", write("merges.txt", "#version: 0.2\nq z\n"), BOTH,
     r"merges file .*merges\.txt': merge #1 \('q' 'z'\) uses 'q', which is not in the vocabulary"),
    # tokenizer.json: read by the fast tokenizer
    ("tokenizer.json not JSON", write("tokenizer.json", "{"), FAST, r"tokenizer file .*tokenizer\.json' is not valid JSON"),
    ("tokenizer.json not BPE", edit_json("tokenizer.json", lambda t: t["model"].update(type="WordPiece")), FAST,
     r"tokenizer\.json' does not hold a BPE model"),
    ("tokenizer.json duplicate id", tokenizer_json_vocab(lo=5), FAST,
     r"tokenizer\.json' model\.vocab: id 5 is given to two tokens, 'o' and 'lo'"),
    ("tokenizer.json id out of range", tokenizer_json_vocab(l=99), FAST, r"tokenizer\.json' model\.vocab: token 'l' has id 99"),
    ("tokenizer.json merge outside vocab", edit_json("tokenizer.json", lambda t: t["model"]["merges"].append(["q", "z"])),
     FAST, r"tokenizer\.json': merge #5 \('q' 'z'\) uses 'q'"),
    # tokenizer_config.json and friends
    ("tokenizer_config a JSON list", write("tokenizer_config.json", "[]"), BOTH,
     r"tokenizer config .*tokenizer_config\.json' must hold a JSON object, got list"),
    ("model_max_length a string", edit_json("tokenizer_config.json", lambda c: c.update(model_max_length="512")), BOTH,
     r"tokenizer_config\.json': model_max_length must be an integer or null, got '512'"),
    ("padding_side unknown", edit_json("tokenizer_config.json", lambda c: c.update(padding_side="middle")), BOTH,
     r"tokenizer_config\.json': padding_side must be 'right' or 'left', got 'middle'"),
    ("add_prefix_space a string", edit_json("tokenizer_config.json", lambda c: c.update(add_prefix_space="yes")), BOTH,
     r"tokenizer_config\.json': add_prefix_space must be true or false"),
    ("special token a number", edit_json("tokenizer_config.json", lambda c: c.update(mask_token=5)), BOTH,
     r"tokenizer_config\.json': mask_token must be a token string"),
    ("added_tokens_decoder bad id", edit_json("tokenizer_config.json",
                                              lambda c: c.update(added_tokens_decoder={"x": {"content": "a"}})), BOTH,
     r"tokenizer_config\.json': added_tokens_decoder must be an object \{id: \{content: \.\.\.\}\}"),
    ("special_tokens_map a list", write("special_tokens_map.json", "[1]"), BOTH,
     r"special tokens map .*special_tokens_map\.json' must hold a JSON object, got list"),
    ("added_tokens.json bad id", write("added_tokens.json", '{"<x>": "16"}'), BOTH,
     r"added tokens file .*added_tokens\.json': token '<x>' maps to '16'"),
]


@pytest.mark.parametrize("corrupt, classes, message", [c[1:] for c in TOKENIZER_CASES], ids=[c[0] for c in TOKENIZER_CASES])
def test_corrupt_tokenizer_files(tok_dir, corrupt, classes, message):
    corrupt(tok_dir)
    if classes == BOTH:
        (tok_dir / "tokenizer.json").unlink()  # so the fast tokenizer reads vocab.json + merges.txt too
    for cls in classes:
        with pytest.raises(ValueError, match=message):
            cls.from_pretrained(tok_dir)


def test_uncorrupted_tiny_tokenizer_loads(tok_dir):
    """The fixture itself is valid (so each row above fails for its corruption alone)."""
    for cls in (RobertaTokenizer, RobertaTokenizerFast):
        assert cls.from_pretrained(tok_dir)("lower")["input_ids"] == [0, 4, 5, 6, 14, 2]
