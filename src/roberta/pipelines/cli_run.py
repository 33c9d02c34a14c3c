"""`roberta run`: a task pipeline over lines of input, one JSON line out per line in.

    echo "The capital of France is <mask>." | roberta run --task fill-mask
    roberta run --task question-answering --model ./my-squad-model --input questions.jsonl --output answers.jsonl

Compatible with the flags of transformers v4's `transformers run` (--task, --model, --tokenizer, --input,
--output, --device), plus --dtype, --batch-size, --top-k and --progress. Differences on purpose: the trailing
newline is not part of an input, output is JSON lines (not a printed Python list), inputs are batched and
streamed (a chunk of batch-size x 8 lines at a time), and --output is written atomically (temp file + rename).
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile

from . import SUPPORTED_TASKS, TASK_ALIASES, get_supported_tasks, normalize_task

_CHUNK_BATCHES = 8  # lines read ahead = batch size x this: enough to sort by length, small enough to stream
_TOP_K_TASKS = {"fill-mask", "text-classification", "question-answering"}


class UsageError(ValueError):
    """A bad flag combination or input line: reported in one line, exit code 2."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    tasks = get_supported_tasks()
    parser = subparsers.add_parser(
        "run",
        help=f"run a task pipeline over lines of input, one JSON line per input ({', '.join(SUPPORTED_TASKS)})",
        description="Run a task pipeline over lines of text (stdin or --input) and write one JSON line per input "
                    f"(stdout or --output). Tasks: {', '.join(tasks)}. question-answering reads one JSON object "
                    'per line: {"question": ..., "context": ...}; text-classification also accepts '
                    '{"text": ..., "text_pair": ...} lines.',
        epilog='example: echo "The capital of France is <mask>." | roberta run --task fill-mask --top-k 3',
    )
    parser.add_argument("--task", required=True, choices=tasks, metavar="TASK", help=f"one of: {', '.join(tasks)}")
    parser.add_argument("--model", default=None, metavar="PATH_OR_ID",
                        help="model folder or hub id (optional for fill-mask: the embedded default model)")
    parser.add_argument("--tokenizer", default=None, metavar="PATH_OR_ID", help="tokenizer folder or hub id (default: --model)")
    parser.add_argument("--device", default="cpu", help="cpu (default), N or cuda:N (-1 also means cpu)")
    parser.add_argument("--dtype", default=None, choices=["auto", "float32", "float16", "bfloat16"],
                        help="weights dtype (default: as saved, float32 for most models)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="inputs per forward pass (default 8)")
    parser.add_argument("--input", default=None, metavar="FILE", help="input file, one input per line (default: stdin)")
    parser.add_argument("--output", default=None, metavar="FILE", help="output file of JSON lines (default: stdout)")
    parser.add_argument("--top-k", type=int, default=None, metavar="N",
                        help="results per input (fill-mask, text-classification, question-answering)")
    parser.add_argument("--aggregation-strategy", default=None, choices=["none", "simple", "first", "average", "max"],
                        help="token-classification: how tokens are grouped into entities (default none)")
    parser.add_argument("--pooling", default=None, choices=["mean", "cls"],
                        help="feature-extraction: one pooled vector per input instead of per-token vectors")
    parser.add_argument("--no-pack-weights", dest="pack_weights", action="store_false",
                        help="on CPU in float32, do not keep oneDNN-packed weight copies (saves the encoder weights' "
                             "memory, slower at small batches)")
    parser.add_argument("--quantize", default=None, choices=["int8", "int8_weight_only"],
                        help="int8 encoder matmuls (dynamic activations), or int8 weights only (see roberta.quantization)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr (default: when stderr is a terminal)")
    parser.set_defaults(func=run_command)
    return parser


def run_command(args) -> int:
    try:
        task, call_kwargs = _task_options(args)
        pipe = _build(args, task)
    except Exception as err:  # a bad model path, id, dtype or flag: one line, no traceback
        return _fail(err)
    source = sys.stdin if args.input is None else None
    try:
        if args.input is not None:
            source = open(args.input, encoding="utf-8", newline="")
    except OSError as err:
        return _fail(f"cannot read --input: {err}")
    try:
        with source if args.input is not None else contextlib.nullcontext(source):
            return _stream(pipe, task, call_kwargs, source, args)
    except UsageError as err:
        return _fail(err)


def _task_options(args) -> tuple[str, dict]:
    task = normalize_task(args.task)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {args.batch_size})")
    kwargs = {}
    if args.top_k is not None:
        if task not in _TOP_K_TASKS:
            raise UsageError(f"--top-k does not apply to {args.task}")
        if args.top_k < 1:
            raise UsageError(f"--top-k must be at least 1 (got {args.top_k})")
        kwargs["top_k"] = args.top_k
    if args.aggregation_strategy is not None:
        if task != "token-classification":
            raise UsageError(f"--aggregation-strategy applies to token-classification only, not {args.task}")
        kwargs["aggregation_strategy"] = args.aggregation_strategy
    if args.pooling is not None:
        if task != "feature-extraction":
            raise UsageError(f"--pooling applies to feature-extraction only, not {args.task}")
        kwargs["pooling"] = args.pooling
    if args.model is None and task != "fill-mask":
        raise UsageError(f"--model is required for {args.task} (only fill-mask has a default model)")
    return task, kwargs


def _build(args, task):
    from . import pipeline

    return pipeline(task, model=args.model, tokenizer=args.tokenizer, device=args.device, dtype=args.dtype,
                    batch_size=args.batch_size, pack_weights=args.pack_weights,
                    quantization_config=getattr(args, "quantize", None))


def _stream(pipe, task, call_kwargs, source, args) -> int:
    out, tmp_path = _open_output(args.output)
    bar = _progress(args)
    ok = False
    try:
        lines = enumerate(source, start=1)
        chunk_size = args.batch_size * _CHUNK_BATCHES
        while True:
            chunk = list(itertools.islice(lines, chunk_size))
            if not chunk:
                break
            items = [_parse(task, text, number) for number, text in chunk]
            try:
                results = list(pipe(iter(items), **call_kwargs))
            except (ValueError, KeyError, TypeError) as err:
                raise UsageError(_locate(pipe, items, chunk, call_kwargs) or str(err)) from None
            out.write("".join(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n" for r in results))
            out.flush()
            if bar is not None:
                bar.update(len(chunk))
        ok = True
    except BrokenPipeError:  # `roberta run ... | head`: the reader left, nothing more to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        ok = True
        return 0
    finally:
        if bar is not None:
            bar.close()
        if out is not sys.stdout:
            out.close()
        if tmp_path is not None:
            if ok:
                os.replace(tmp_path, args.output)
            else:
                os.unlink(tmp_path)
    return 0


def _parse(task, line: str, number: int):
    """One input line -> one pipeline input (the trailing newline is not part of the text)."""
    text = line[:-1] if line.endswith("\n") else line
    text = text[:-1] if text.endswith("\r") else text
    if task == "question-answering" or (task == "text-classification" and text.lstrip().startswith("{")):
        try:
            item = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"line {number}: not a JSON object ({err.msg})") from None
        if not isinstance(item, dict):
            raise UsageError(f"line {number}: expected a JSON object, got {type(item).__name__}")
        return item
    return text


def _locate(pipe, items, chunk, call_kwargs) -> str | None:
    """Name the input line that made the chunk fail, by preprocessing each line alone."""
    params = {**pipe._defaults, **pipe._sanitize_parameters(**call_kwargs)}
    for item, (number, _) in zip(items, chunk):
        try:
            pipe.preprocess(item, params)
        except (ValueError, KeyError, TypeError) as err:
            return f"line {number}: {err}"
    return None


def _open_output(path):
    """stdout, or a temp file beside `path` that replaces it only when every line was written."""
    if path is None:
        return sys.stdout, None
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a FIFO: write through, never replace it
        return open(path, "w", encoding="utf-8"), None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write --output: folder {folder!r} does not exist")
    fd, tmp_path = tempfile.mkstemp(prefix=".roberta-run-", suffix=".tmp", dir=folder)
    return os.fdopen(fd, "w", encoding="utf-8"), tmp_path


def _progress(args):
    if not (args.progress or sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(unit=" lines", file=sys.stderr, desc=args.task)


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and tensors
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _fail(err) -> int:
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, KeyError) and message.startswith(("'", '"')):
        message = message[1:-1]
    print(f"roberta run: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """`python -m roberta.pipelines.cli_run --task ...`: the `run` subcommand alone."""
    parser = argparse.ArgumentParser(prog="roberta")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return run_command(parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["add_parser", "run_command", "TASK_ALIASES"]
