"""Load a roberta-base-sized safetensors checkpoint: roberta vs transformers (time and peak memory).

    python bench/bench_loading.py [--repeats 5] [--write]

Time: both loaders in this process, interleaved, after one warm-up each (page cache hot), median of
--repeats. Memory: each loader in a fresh subprocess; the peak resident set during the load minus the
resident set right after imports (VmHWM is reset through /proc/self/clear_refs where Linux allows,
else ru_maxrss is used). --write records the results in BENCHMARKS.md under `## loading`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def _load(which: str, path: str):
    if which == "ours":
        from roberta.modeling import RobertaForMaskedLM
    else:
        from transformers import RobertaForMaskedLM
    return RobertaForMaskedLM.from_pretrained(path)


def child(which: str, path: str) -> None:
    """Run in a fresh process: import, reset the peak, load once, print the peak increase in bytes."""
    import torch  # noqa: F401  (imports are part of the baseline)

    if which == "ours":
        import roberta.loading  # noqa: F401
        import roberta.modeling  # noqa: F401
    else:
        import transformers.models.roberta.modeling_roberta  # noqa: F401
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM (peak RSS) to the current RSS
        reset = True
    except OSError:
        reset = False
    baseline = _rss_kb("VmRSS")
    model = _load(which, path)
    peak = _rss_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Both loaders may leave weights as lazily-read file mappings; a forward pass touches every weight
    # (the MLM decoder reads the whole embedding matrix), so this second figure is the real footprint.
    with torch.no_grad():
        model(torch.tensor([[0, 31414, 232, 2]]))
    used = _rss_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_increase": (peak - baseline) * 1024, "after_forward": (used - baseline) * 1024}))


def make_checkpoint(folder: str) -> int:
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**BASE))
    model.save_pretrained(folder)
    return os.path.getsize(os.path.join(folder, "model.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="record the results in BENCHMARKS.md")
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import logging

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    logging.getLogger("roberta").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        size = make_checkpoint(folder)
        memory = {}
        for which in ("ours", "transformers"):
            out = subprocess.run([sys.executable, __file__, "--child", which, folder], capture_output=True, text=True,
                                 check=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
            memory[which] = json.loads(out.stdout.strip().splitlines()[-1])
        times = {"ours": [], "transformers": []}
        for which in times:  # warm-up: imports and page cache
            _load(which, folder)
        for _ in range(args.repeats):
            for which in times:
                start = time.perf_counter()
                model = _load(which, folder)
                times[which].append(time.perf_counter() - start)
                del model
        # the two models agree (same weights loaded)
        ids = torch.tensor([[0, 31414, 232, 2]])
        with torch.no_grad():
            diff = (_load("ours", folder)(ids).logits - _load("transformers", folder)(ids).logits).abs().max().item()

    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"Machine: {platform.machine()} {os.cpu_count()}-core CPU shared with other jobs, torch {torch.__version__}, "
        f"transformers {transformers.__version__}. Checkpoint: random-init RobertaForMaskedLM at roberta-base size "
        f"(125M params), model.safetensors {size / 1e6:.0f} MB, float32, page cache warm.",
        "",
        "| loader | median load time (s) | peak RSS increase: load | / checkpoint | load + 1 forward | / checkpoint |",
        "|---|---|---|---|---|---|",
    ]
    for which in ("ours", "transformers"):
        load, fwd = memory[which]["peak_increase"], memory[which]["after_forward"]
        lines.append(f"| {'roberta' if which == 'ours' else 'transformers 4.57.6'} | {med[which]:.3f} | "
                     f"{load / 1e6:.0f} MB | {load / size:.2f}x | {fwd / 1e6:.0f} MB | {fwd / size:.2f}x |")
    lines += ["", f"Time ratio roberta / transformers: **{med['ours'] / med['transformers']:.2f}** (median of "
                  f"{args.repeats} interleaved loads each; lower is better). Max |logit difference| between the two "
                  f"loaded models: {diff:.1e}.",
              "", "Both loaders map model.safetensors copy-on-write instead of reading it, so the load itself "
                  "touches little memory; weights come in (from the page cache, shared) on first use, which the "
                  "'load + 1 forward' column includes. Peak RSS is measured in a fresh process per loader, "
                  "relative to the RSS after imports.",
              "", "Command: `python bench/bench_loading.py --write`."]
    report = "\n".join(lines)
    print(report)
    if args.write:
        _write_section(ROOT / "BENCHMARKS.md", "loading", report)


def _write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the `## name` section of BENCHMARKS.md, leaving the other sections alone."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {name}\n\n{body}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(".md.tmp-loading")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
