"""Fast CPU inference (issue 15): bf16 and int8 against float32, transformers and ONNX Runtime, one process.

Prints the CPU's features first (torch's capability queries), then:
1. GEMM ceiling: plain torch.mm of the encoder layer's six matmul shapes (32x128 token rows; q, k, v, attention
   output, FFN in, FFN out) in float32 and bf16, times the layer count: the time no forward can beat.
2. RobertaModel forward at BxT (default 32x128), roberta-base shape (hidden 768, 12 heads, FFN 3072, vocab 50265;
   --layers of them, random weights shared by both libraries): ours float32 (packed), ours bf16 as
   from_pretrained(dtype=bfloat16) packs it on this CPU, ours bf16 forced to the no-native-bf16 path
   (float32 compute), transformers float32 and bf16. Interleaved rounds (order rotated each round), the median
   per variant, and the fraction of the same run's GEMM ceiling.
   With --emulate-cpu avx2 (or avx512_core), the same comparison again in a child process started with oneDNN and
   ATen limited to that ISA (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2): there bf16 matmuls are emulated
   (transformers' bf16 Linear ~4x slower than float32 on Zen 4) and our bf16 model takes its no-native path by
   itself; the section prints the CPU features the child sees, a bf16-vs-fp32 F.linear check, and the issue's
   no-native ratios (ours bf16 / ours fp32 >= 1.0x, ours bf16 / transformers bf16 >= 3x).
3. fill-mask pipeline at batch 32 on bench_pipelines' mixed-length workload (5-200 words, one <mask>): ours
   float32, ours int8 (quantization_config="int8"), and ONNX Runtime int8 (`roberta export --quantize int8` of the
   same model, run by a minimal fill-mask loop: same tokenizer, the same length-sorted batches as our pipeline
   cuts, top-5 at the mask), both as the exported fill-mask graph (logits at every position) and as the exported
   encoder with our LM head on the mask rows only (also with plain slices of 32, as a simple loop would). Sentences per second; top-1 agreement with our float32 pipeline; the process's
   peak RSS while each case ran; and a table ready for BENCHMARKS.md.
   Memory: the exports run in child processes; each case is loaded, warmed up, timed and dropped in turn, every
   round (one model or ORT session at a time); the full-logits ORT session runs without its memory arena (see
   ort_fill_mask). Peak RSS at --layers 2 --sentences 32: ~3.2 GB (the full-logits ORT case; ours ~1 GB).

The clock is this process's CPU time (time.process_time): on a shared machine wall time mostly measures waiting
for a core. One torch (and ONNX Runtime) thread by default.

    python bench/bench_cpu.py                                  # 4 layers, 32x128, 256 sentences
    python bench/bench_cpu.py --layers 4 --rounds 2 --sentences 128 --skip forward   # the int8 fill-mask figures
    python bench/bench_cpu.py --layers 2 --rounds 1 --sentences 32 --skip forward    # a quick check (~1.5 min)
    python bench/bench_cpu.py --layers 12 --rounds 5 --sentences 2000
    python bench/bench_cpu.py --layers 4 --rounds 3 --skip fill-mask --emulate-cpu avx2   # + no-native bf16
    python bench/bench_cpu.py --layers 1 --batch 8 --rounds 3 --skip fill-mask --emulate-cpu avx2  # check (~2 min)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402  (bench/, beside this script)
BASE = REPO.parent / "shared" / "data" / "roberta-base"
CLOCK = time.process_time


def cpu_features() -> str:
    name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                platform.processor() or platform.machine()) if os.path.exists("/proc/cpuinfo") else platform.machine()
    flags = {n.removeprefix("_is_").removesuffix("_supported"): getattr(torch.cpu, n)()
             for n in dir(torch.cpu) if n.startswith("_is_") and n.endswith("_supported")}
    from roberta.modeling.fused import native_bf16

    return (f"CPU: {name}, {os.cpu_count()} cores visible; torch {torch.__version__} capability "
            f"{torch.backends.cpu.get_cpu_capability()}; features {', '.join(k for k, v in sorted(flags.items()) if v)}"
            f" (absent: {', '.join(k for k, v in sorted(flags.items()) if not v) or 'none'}); native bf16 for "
            f"roberta: {native_bf16()}; {torch.get_num_threads()} torch thread(s)")


def rounds(fns: dict, n: int, warmup: int = 1) -> dict:
    """Median CPU seconds per callable, interleaved (order rotated every round)."""
    times = _timing.interleaved(fns, n, clock=CLOCK, warmup=warmup)
    return {k: statistics.median(v) for k, v in times.items()}


def gemm_ceiling(rows: int, layers: int, n: int) -> dict:
    """Seconds for the encoder's matmuls as plain torch.mm calls, per dtype."""
    shapes = [(768, 768)] * 4 + [(768, 3072), (3072, 768)]
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        xs = {k: torch.randn(rows, k, dtype=dtype) for k in (768, 3072)}
        ws = [torch.randn(k, m, dtype=dtype) for k, m in shapes]

        def layer():
            for (k, _), w in zip(shapes, ws):
                torch.mm(xs[k], w)
        out[dtype] = rounds({"gemm": layer}, n)["gemm"] * layers
    return out


def forward_setup(args):
    """The forward benchmark's pieces: transformers' float32 RobertaModel (roberta-base shape, random weights), a
    loader of ours from the same weights as users load it, the inputs, and the FLOPs of the encoder's matmuls."""
    import transformers

    from roberta.config import RobertaConfig
    from roberta.modeling import RobertaModel, fused

    B, T = args.batch, args.seq
    flops = 2 * B * T * (4 * 768 * 768 + 2 * 768 * 3072) * args.layers
    config = transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                                        num_hidden_layers=args.layers, pad_token_id=1)
    torch.manual_seed(0)
    theirs32 = transformers.RobertaModel(config, add_pooling_layer=False).eval()
    folder = tempfile.TemporaryDirectory()
    saved = RobertaModel(RobertaConfig(**config.to_dict())).eval()
    saved.load_state_dict(theirs32.state_dict(), strict=False)  # the same weights (and a pooler: every key found)
    saved.save_pretrained(folder.name)

    def theirs(dtype):
        model = transformers.RobertaModel(config, add_pooling_layer=False).eval()
        model.load_state_dict(theirs32.state_dict())
        return model.to(dtype)

    def ours(dtype, native=None):
        """As users load it: from_pretrained(dtype=bfloat16) keeps the embeddings and LayerNorms float32 and packs
        the encoder's weights in this process's kind (or, with native=False, in the no-native-bf16 kind)."""
        before = fused._NATIVE_BF16
        if native is not None:
            fused._NATIVE_BF16 = native
        model = RobertaModel.from_pretrained(folder.name, dtype=dtype)
        model.pack_weights()  # what from_pretrained (bf16) and the pipelines (fp32) do on CPU
        fused._NATIVE_BF16 = before
        model.pooler = None  # transformers' side has none
        return model

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50265, (B, T), generator=gen)
    mask = torch.ones_like(ids)
    mask[::3, T * 3 // 4:] = 0  # a third of the rows padded by a quarter

    def call(model):
        def run():
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=mask)
        return run
    return theirs, ours, call, flops, folder


def bench_forward(args) -> list[str]:
    B, T = args.batch, args.seq
    theirs, ours, call, flops, folder = forward_setup(args)
    ceiling = gemm_ceiling(B * T, args.layers, args.rounds)
    models = {"ours fp32": ours(torch.float32), "ours bf16": ours(torch.bfloat16),
              "ours bf16, fp32 compute": ours(torch.bfloat16, native=False),
              "transformers fp32": theirs(torch.float32), "transformers bf16": theirs(torch.bfloat16)}
    folder.cleanup()
    med = rounds({k: call(m) for k, m in models.items()}, args.rounds)
    lines = [f"GEMM ceiling ({B * T} rows x {args.layers} layers): fp32 {ceiling[torch.float32]:.2f} s "
             f"({flops / ceiling[torch.float32] / 1e9:.0f} GFLOP/s), bf16 {ceiling[torch.bfloat16]:.2f} s "
             f"({flops / ceiling[torch.bfloat16] / 1e9:.0f} GFLOP/s)"]
    for k, t in med.items():
        dtype = torch.bfloat16 if "bf16" in k and "fp32 compute" not in k else torch.float32
        lines.append(f"{k:26s} {t:7.2f} s  {flops / t / 1e9:5.0f} GFLOP/s  {ceiling[dtype] / t:5.1%} of the "
                     f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} GEMM ceiling")
    lines.append(f"ours bf16 / transformers bf16: {med['transformers bf16'] / med['ours bf16']:.2f}x; "
                 f"ours bf16 / ours fp32: {med['ours fp32'] / med['ours bf16']:.2f}x; "
                 f"ours bf16 (fp32 compute) / ours fp32: {med['ours fp32'] / med['ours bf16, fp32 compute']:.2f}x; "
                 f"ours bf16 (fp32 compute) / transformers bf16: "
                 f"{med['transformers bf16'] / med['ours bf16, fp32 compute']:.2f}x")
    return lines


# --emulate-cpu: environment limits under which oneDNN and ATen run as on a CPU without native bf16
EMULATIONS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},  # an AVX2-only CPU (e.g. EPYC Zen 2/3)
    "avx512_core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},  # AVX-512 without bf16 (Skylake-SP / Cascade Lake)
}


def bench_forward_emulated(args, kind: str) -> list[str]:
    """The bf16 forward comparison re-run in a child process started with EMULATIONS[kind] in its environment;
    -> its report (the CPU features it sees, its times and the issue's no-native-bf16 ratios)."""
    import subprocess

    env = dict(os.environ, **EMULATIONS[kind])
    cmd = [sys.executable, __file__, "--no-native-child", "--layers", str(args.layers), "--batch", str(args.batch),
           "--seq", str(args.seq), "--rounds", str(args.rounds), "--threads", str(args.threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        return [f"the emulated run failed ({done.returncode}): {done.stderr[-2000:]}"]
    return done.stdout.rstrip().splitlines()


def bench_forward_no_native(args) -> list[str]:
    """In the --emulate-cpu child: ours float32, ours bf16 (which takes the no-native path here by itself),
    transformers float32 and bf16, interleaved rounds. (Under the AVX2 limit a plain bf16 torch.mm falls to ~1
    GFLOP/s on one Zen 4 core; transformers' bf16 nn.Linear layers ran ~4x slower than float32, as the issue
    measured on a real AVX2-only EPYC.)"""
    from roberta.modeling import fused

    reason = fused.no_native_bf16_reason()
    lines = [cpu_features(), f"roberta's no-native-bf16 path: {'taken (' + reason + ')' if reason else 'NOT taken'}"]
    operands = {d: (torch.randn(1024, 768, dtype=d), torch.randn(3072, 768, dtype=d))
                for d in (torch.float32, torch.bfloat16)}
    speed = {d: 2 * 1024 * 768 * 3072 / rounds({"linear": lambda: torch.nn.functional.linear(*xw)}, 3)["linear"]
             / 1e9 for d, xw in operands.items()}
    lines.append(f"F.linear 1024x768 -> 3072 here: fp32 {speed[torch.float32]:.0f} GFLOP/s, bf16 "
                 f"{speed[torch.bfloat16]:.0f} GFLOP/s (bf16 {speed[torch.float32] / speed[torch.bfloat16]:.1f}x "
                 f"slower: {'emulated' if speed[torch.bfloat16] < speed[torch.float32] else 'NOT emulated'})")
    theirs, ours, call, flops, folder = forward_setup(args)
    models = {"ours fp32": ours(torch.float32), "ours bf16": ours(torch.bfloat16),
              "transformers fp32": theirs(torch.float32), "transformers bf16": theirs(torch.bfloat16)}
    folder.cleanup()
    med = rounds({k: call(m) for k, m in models.items()}, args.rounds)
    for k, t in med.items():
        lines.append(f"{k:20s} {t:8.2f} s  {flops / t / 1e9:5.0f} GFLOP/s")
    theirs_bf16 = med["transformers bf16"]
    lines.append(f"ours bf16 / ours fp32: {med['ours fp32'] / med['ours bf16']:.2f}x (target >= 1.0x); "
                 f"ours bf16 / transformers bf16: {theirs_bf16 / med['ours bf16']:.1f}x (target >= 3x); "
                 f"transformers bf16 / transformers fp32: {med['transformers fp32'] / theirs_bf16:.3f}x")
    return lines


def memory_mb() -> tuple[int, int]:
    """(resident, peak resident since the last reset_peak()) of this process in MB; (0, 0) off Linux."""
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    except OSError:
        return 0, 0
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def reset_peak() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def export_int8(folder: Path, output: Path, task: str) -> int:
    """`roberta export --quantize int8` in a child process, so the exporter's memory (the traced program, the
    float32 graph, the quantizer's copies) is gone when it exits instead of staying in this process's heap.
    -> the child's peak RSS in MB."""
    import resource
    import subprocess

    cmd = [sys.executable, "-c", "import sys; from roberta.cli import main; sys.exit(main())", "export",
           "--model", str(folder), "--task", task, "--format", "onnx", "--output", str(output), "--quantize", "int8"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"export failed ({done.returncode}): {done.stderr[-2000:]}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024  # the largest child so far


def ort_fill_mask(path: str, tokenizer, threads: int, lm_head=None, same_batches: bool = True):
    """A minimal ONNX Runtime fill-mask: texts sorted by token count, top-5 tokens at the mask. `same_batches`:
    cut into the batches our pipeline runs (roberta.pipelines.base.length_batches: a batch of 32 mixed lengths is
    split where the padding saved outweighs another pass), so the two runtimes multiply the same token rows;
    else plain slices of batch_size (what a simple user loop does). With `lm_head` the graph is the encoder alone
    (last_hidden_state) and the LM head runs in torch on the mask rows only.

    The full fill-mask graph returns (B, T, 50265) float32 logits (~1.7 GB for 32 rows of 270 tokens, and as
    much again for the int32 matmul output before it): ORT's memory arena would keep every such buffer it ever
    grew to (5 GB after two batches of 32), so that session runs without the arena; the encoder-only session,
    whose buffers are (B, T, 3072) at most, keeps it."""
    import numpy as np
    import onnxruntime as ort

    from roberta.pipelines.base import length_batches

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = lm_head is not None
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(texts, batch_size=32):
        ids = tokenizer(texts, truncation=True, max_length=512)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        lengths = [len(ids[i]) for i in order]
        cuts = length_batches(lengths, batch_size) if same_batches else \
            [(start, min(start + batch_size, len(order))) for start in range(0, len(order), batch_size)]
        results = [None] * len(texts)
        for start, stop in cuts:
            rows = order[start:stop]
            input_ids = np.full((len(rows), lengths[stop - 1]), tokenizer.pad_token_id, dtype=np.int64)
            attention_mask = np.zeros_like(input_ids)
            for row, i in enumerate(rows):
                input_ids[row, :len(ids[i])] = ids[i]
                attention_mask[row, :len(ids[i])] = 1
            (out,) = session.run(["logits" if lm_head is None else "last_hidden_state"],
                                 {"input_ids": input_ids, "attention_mask": attention_mask})
            for row, i in enumerate(rows):
                at = int(np.argmax(input_ids[row] == tokenizer.mask_token_id))
                if lm_head is None:
                    scores = out[row, at]
                else:
                    with torch.inference_mode():
                        scores = lm_head(torch.from_numpy(out[row, at])[None])[0].numpy()
                top = np.argsort(-scores)[:5]
                results[i] = [{"token": int(t), "token_str": tokenizer.decode([int(t)])} for t in top]
            del out
        return results
    return run


FILL_MASK_CASES = {  # name -> what the row of the table says it is
    "ours fp32": 'ours float32, `pipeline("fill-mask")`',
    "ours int8": '**ours int8**, `pipeline("fill-mask", quantization_config="int8")`',
    "ORT int8": "ONNX Runtime int8, the exported fill-mask graph (logits at every position), our batches",
    "ORT int8 encoder + head at masks": "ONNX Runtime int8 encoder + our float32 LM head at the masks only, our "
                                        "batches",
    "ORT int8 encoder + head, plain batches": "the same, plain slices of 32 sorted texts (a simple loop)",
}


def bench_fill_mask(args) -> list[str]:
    """Each case is opened (model loaded / ORT session built, then warmed up on a few sentences), timed and
    closed again, round after round: one model or session in memory at a time besides the tokenizer."""
    import gc

    from bench_pipelines import sentences

    from roberta import RobertaConfig, RobertaForMaskedLM, pipeline
    from roberta.tokenization import RobertaTokenizerFast

    texts = sentences(args.sentences)
    warm = sentences(4, seed=1)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        torch.manual_seed(0)
        config = RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                               num_hidden_layers=args.layers, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        RobertaForMaskedLM(config).save_pretrained(folder)
        tokenizer = RobertaTokenizerFast.from_pretrained(BASE)
        tokenizer.save_pretrained(folder)
        gc.collect()
        export_peak = max(export_int8(folder, Path(tmp) / "onnx-int8", "fill-mask"),
                          export_int8(folder, Path(tmp) / "onnx-int8-encoder", "feature-extraction"))

        def lm_head():
            return RobertaForMaskedLM.from_pretrained(folder).lm_head.eval()

        def ours(**kwargs):
            pipe = pipeline("fill-mask", model=str(folder), device=-1, **kwargs)
            return lambda t: pipe(t, batch_size=32)

        opens = {  # name -> a function that loads the case and returns its runner
            "ours fp32": lambda: ours(),
            "ours int8": lambda: ours(quantization_config="int8"),
            "ORT int8": lambda: ort_fill_mask(str(Path(tmp) / "onnx-int8" / "model.onnx"), tokenizer, threads),
            "ORT int8 encoder + head at masks": lambda: ort_fill_mask(
                str(Path(tmp) / "onnx-int8-encoder" / "model.onnx"), tokenizer, threads, lm_head=lm_head()),
            "ORT int8 encoder + head, plain batches": lambda: ort_fill_mask(
                str(Path(tmp) / "onnx-int8-encoder" / "model.onnx"), tokenizer, threads, lm_head=lm_head(),
                same_batches=False),
        }
        times = {k: [] for k in opens}
        peaks = dict.fromkeys(opens, 0)
        outputs = {}
        names = list(opens)
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                gc.collect()
                reset_peak()
                run = opens[name]()
                run(warm)
                t0 = CLOCK()
                outputs[name] = run(texts)
                times[name].append(CLOCK() - t0)
                peaks[name] = max(peaks[name], memory_mb()[1])
                del run
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = [o[0]["token"] for o in outputs["ours fp32"]]
    agree = {k: sum(o[0]["token"] == r for o, r in zip(outputs[k], ref)) for k in med}
    lines = [f"{k:38s} {len(texts) / t:6.1f} sentences/s  top-1 = ours fp32 on {agree[k]}/{len(texts)}  "
             f"peak RSS {peaks[k]} MB" for k, t in med.items()]
    lines.append(f"ours int8 / ours fp32: {med['ours fp32'] / med['ours int8']:.2f}x; ours int8 / ORT int8: "
                 f"{med['ORT int8'] / med['ours int8']:.2f}x; ours int8 / ORT int8 encoder + head at masks: "
                 f"{med['ORT int8 encoder + head at masks'] / med['ours int8']:.2f}x")
    lines.append(f"(ONNX exports ran in child processes, peak RSS {export_peak} MB)")
    lines += ["", "For BENCHMARKS.md:", "",
              f"| fill-mask, batch 32, {len(texts)} mixed-length sentences, {args.layers} layers | sentences/s | "
              "ours int8 is | top-1 = ours fp32 | peak RSS (MB) |", "|---|---:|---:|---:|---:|"]
    for k, t in med.items():
        speedup = "-" if k == "ours int8" else f"{t / med['ours int8']:.2f}x as fast"
        lines.append(f"| {FILL_MASK_CASES[k]} | {len(texts) / t:.1f} | {speedup} | {agree[k]}/{len(texts)} | "
                     f"{peaks[k]} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", choices=["forward", "fill-mask"], action="append", default=[])
    parser.add_argument("--emulate-cpu", choices=sorted(EMULATIONS), action="append", default=[],
                        help="also run the bf16 forward comparison as on a CPU without native bf16, in a child "
                             "process with oneDNN and ATen limited to that ISA (see EMULATIONS)")
    parser.add_argument("--no-native-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.no_native_child:
        print("\n".join(bench_forward_no_native(args)), flush=True)
        return 0
    print(cpu_features(), flush=True)
    if "forward" not in args.skip:
        print(f"\nRobertaModel forward {args.batch}x{args.seq}, roberta-base shape, {args.layers} layers, "
              f"median of {args.rounds} interleaved rounds", flush=True)
        print("\n".join(bench_forward(args)), flush=True)
        import gc

        gc.collect()  # the forward part's models, before the fill-mask part loads its own
    for kind in args.emulate_cpu:
        limits = ", ".join(f"{k}={v}" for k, v in EMULATIONS[kind].items())
        print(f"\nCPU without native bf16, emulated with {limits}: RobertaModel forward {args.batch}x{args.seq}, "
              f"{args.layers} layers, median of {args.rounds} interleaved rounds (child process)", flush=True)
        print("\n".join(bench_forward_emulated(args, kind)), flush=True)
    if "fill-mask" not in args.skip:
        print(f"\nfill-mask pipeline, batch 32, {args.sentences} mixed-length sentences, {args.layers} layers, "
              f"median of {args.rounds} interleaved rounds", flush=True)
        print("\n".join(bench_fill_mask(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
