"""`roberta run`: a task pipeline over lines of input, one JSON line out per line in.

    echo "The capital of France is <mask>." | roberta run --task fill-mask
    roberta run --task question-answering --model ./my-squad-model --input questions.jsonl --output answers.jsonl

Compatible with the flags of transformers v4's `transformers run` (--task, --model, --tokenizer, --input,
--output, --device), plus --dtype, --batch-size, --top-k, --on-error and --progress. Differences on purpose: the
trailing newline is not part of an input, output is JSON lines (not a printed Python list), inputs are batched
and streamed (a chunk of batch-size x 8 lines at a time, flushed after each chunk), a bad line costs only
itself (--on-error), and --output is written as OUTPUT.partial, renamed onto OUTPUT once complete.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys

from roberta._io import atomic_open, utf8_problem, write_target

from . import SUPPORTED_TASKS, TASK_ALIASES, get_supported_tasks, normalize_task

_CHUNK_BATCHES = 8  # lines read ahead = batch size x this: enough to sort by length, small enough to stream
_LINE_ERRORS = (ValueError, KeyError, TypeError, IndexError)  # what a bad input line raises (not a broken setup)
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
    parser.add_argument("--dtype", default=None, choices=["auto", "float32", "float16", "bfloat16", "fp32", "fp16",
                                                          "bf16"],
                        help="weights dtype (default: as saved, float32 for most models); bfloat16 keeps the "
                             "embeddings, LayerNorms and LM head float32; auto on CPU: bfloat16 where the CPU has "
                             "native bf16 (AVX512-BF16/AMX), else float32")
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
    parser.add_argument("--on-error", default="record", choices=["record", "skip", "stop"],
                        help="a line that fails: record writes {\"line\": N, \"error\": ...} in its place (default; "
                             "output stays one line per input), skip leaves it out, stop ends the run with exit 2 "
                             "(no --output file written). Exit code 1 when lines were recorded or skipped")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr (default: when stderr is a terminal)")
    parser.set_defaults(func=run_command)
    return parser


def run_command(args) -> int:
    try:
        task, call_kwargs = task_options(args)
        check_output(args.output, args.input)
        pipe = build_pipeline(args, task)
        source = open_input(args.input)
    except Exception as err:  # a bad model path, id, dtype, flag or input file: one line, no traceback
        return fail(err)
    with source as lines:
        chunks = (run_chunk(pipe, task, call_kwargs, chunk) for chunk in read_chunks(lines, args.batch_size))
        try:
            return write_results(args, chunks)
        except UsageError as err:  # --on-error stop
            return fail(err)


def task_options(args) -> tuple[str, dict]:
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


def build_pipeline(args, task):
    """The pipeline `roberta run`'s flags ask for (--model, --tokenizer, --device, --dtype, --batch-size, ...)."""
    from . import pipeline

    dtype = args.dtype
    if dtype == "auto" and str(args.device) in ("cpu", "-1"):  # the fastest precision this CPU runs within the gates
        from roberta.quantization import fastest_cpu_dtype

        dtype = fastest_cpu_dtype()
    return pipeline(task, model=args.model, tokenizer=args.tokenizer, device=args.device, dtype=dtype,
                    batch_size=args.batch_size, pack_weights=args.pack_weights,
                    quantization_config=getattr(args, "quantize", None))


def open_input(path):
    """The input lines as bytes: stdin, or the file at `path` (a UsageError naming the problem if it cannot be
    read). Each line is decoded on its own (read_chunks), so bytes that are not UTF-8 cost only their line."""
    if path is None:
        return contextlib.nullcontext(getattr(sys.stdin, "buffer", sys.stdin))  # a test's StringIO: str lines
    try:
        return open(path, "rb")
    except OSError as err:
        raise UsageError(f"cannot read --input: {err}") from None


def read_chunks(source, batch_size: int):
    """Numbered lines, batch_size x _CHUNK_BATCHES at a time: lists of (line number, line).

    Bytes that are not UTF-8 stay in the line as surrogate escapes (as Python's own stdin keeps them under
    the C locale; JSON carries them to Ray's actors as \\udcXX) for _parse to report that line alone, rather
    than a decoder error ending the run. A byte-order mark opening the input is dropped.
    """
    lines = enumerate(_decoded(source), start=1)
    while chunk := list(itertools.islice(lines, batch_size * _CHUNK_BATCHES)):
        yield chunk


def _decoded(source):
    for index, line in enumerate(source):
        line = line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line
        yield line.removeprefix("\ufeff") if index == 0 else line


def write_results(args, chunks) -> int:
    """Write chunks of (line number, JSON text or None, error or None) rows in order, under --on-error, to
    --output (stdout, or PATH.partial renamed onto PATH when complete); return the exit code.

    Both engines write through here (the local one chunk by chunk as they are computed, Ray's when its actors
    are done), so their output and exit codes are the same. --on-error stop raises UsageError (exit 2)."""
    bar = _progress(args)
    failed: list[str] = []
    try:
        with _open_output(args.output) as out:
            for chunk in chunks:
                count = 0
                for number, text, error in chunk:
                    count += 1
                    if error is not None:
                        if args.on_error == "stop":
                            raise UsageError(f"{where(args, number)}: {error}")
                        failed.append(f"{where(args, number)}: {error}")
                        if args.on_error == "skip":
                            print(f"roberta run: skipped line {number}: {error}", file=sys.stderr)
                            continue
                        text = json.dumps({"line": number, "error": error}, ensure_ascii=False)
                    out.write(text + "\n")
                out.flush()  # a reader sees each chunk's results as soon as they exist
                if bar is not None:
                    bar.update(count)
    except BrokenPipeError:  # `roberta run ... | head`: the reader left, nothing more to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    finally:
        if bar is not None:
            bar.close()
    if failed:
        how = "recorded as {\"line\", \"error\"} objects" if args.on_error == "record" else "left out"
        print(f"roberta run: {len(failed)} input line(s) failed, {how} (first: {failed[0]})", file=sys.stderr)
        return 1
    return 0


def run_chunk(pipe, task, call_kwargs, chunk):
    """(line number, result as JSON text or None, error message or None) per (line number, line) of `chunk`,
    in order.

    The chunk runs as one batched call; when that fails, lines that fail on their own get an error and the
    others are run again without them, so one bad line costs only itself.
    """
    items, errors = {}, {}
    for number, text in chunk:
        try:
            items[number] = _parse(task, text, number)
        except UsageError as err:
            errors[number] = str(err).split(": ", 1)[1]  # the "line N: " prefix is added by the caller
    results = _try_batch(pipe, items, call_kwargs)
    if results is None:
        params = {**pipe._defaults, **pipe._sanitize_parameters(**call_kwargs)}
        for number, item in list(items.items()):
            try:
                pipe.preprocess(item, params)  # the usual culprit, and cheap: tokenization only
            except _LINE_ERRORS as err:
                errors[number] = _message(err)
                del items[number]
        results = _try_batch(pipe, items, call_kwargs)
    if results is None:  # a failure after preprocessing: find the culprit(s) line by line
        results = {}
        for number, item in items.items():
            try:
                results[number] = next(iter(pipe(iter([item]), **call_kwargs)))
            except _LINE_ERRORS as err:
                errors[number] = _message(err)
    for number, _ in chunk:
        error = errors.get(number)
        yield number, None if error is not None else json.dumps(results[number], ensure_ascii=False,
                                                                default=jsonable), error


def _try_batch(pipe, items: dict, call_kwargs) -> dict | None:
    try:
        return dict(zip(items, pipe(iter(items.values()), **call_kwargs)))
    except _LINE_ERRORS:
        return None


def _message(err: Exception) -> str:
    text = str(err).strip()
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    return text.splitlines()[0] if text else type(err).__name__


def where(args, number: int) -> str:
    """'FILE, line N' (or '<stdin>, line N') for messages about one input line."""
    return f"{args.input if args.input is not None else '<stdin>'}, line {number}"


def _parse(task, line: str, number: int):
    """One input line -> one pipeline input (the trailing newline is not part of the text)."""
    text = line[:-1] if line.endswith("\n") else line
    text = text[:-1] if text.endswith("\r") else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes from read_chunks: bytes that are not UTF-8
        raise UsageError(f"line {number}: {utf8_problem(text.encode('utf-8', 'surrogateescape'))}") from None
    if task == "question-answering" or (task == "text-classification" and text.lstrip().startswith("{")):
        try:
            item = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"line {number}: not a JSON object ({err.msg})") from None
        if not isinstance(item, dict):
            raise UsageError(f"line {number}: expected a JSON object, got {type(item).__name__}")
        return item
    return text


def _open_output(path):
    """stdout; or a file written as PATH.partial (follow its progress there) renamed onto PATH at the end.

    Any failure removes PATH.partial and leaves an existing PATH as it was: a file at PATH is always a
    complete result. A symlink at PATH is written through; /dev/null or a FIFO is written directly.
    """
    if path is None:
        return contextlib.nullcontext(sys.stdout)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        return open(path, "w", encoding="utf-8")
    check_output(path)
    return atomic_open(path, "w", temp_path=write_target(path) + ".partial")


def check_output(path, input_path=None) -> None:
    """Refuse an --output that cannot be written, or that is the --input file (renaming the results onto
    it would destroy the input), before the model loads."""
    if path is None:
        return
    try:
        target = write_target(path)
    except OSError as err:
        raise UsageError(f"cannot write --output: {err}") from None
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write --output: folder {folder!r} does not exist")
    if input_path is not None and os.path.isfile(target) and os.path.exists(input_path) \
            and os.path.samefile(target, input_path):
        raise UsageError(f"--output {path} is the --input file: the results would replace the input")


def _progress(args):
    if not (args.progress or sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(unit=" lines", file=sys.stderr, desc=args.task)


def jsonable(value):
    """json.dumps' default for what pipelines return beside plain Python: numpy scalars and arrays, tensors."""
    if hasattr(value, "tolist"):  # numpy scalars and tensors
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def fail(err) -> int:
    """Report `err` in one line on stderr (no traceback); exit code 2."""
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
