"""Run transformers 4.57.6's own RoBERTa tests against transformers itself and against our classes.

    python scripts/run_transformers_tests.py                       # both files, both targets
    python scripts/run_transformers_tests.py --suite modeling --target ours -k test_model
    python scripts/run_transformers_tests.py --json results.json   # machine-readable counts and failures

The tests are read from ../shared/reference/transformers-4.57-tests (or --tests-dir), never copied here. Each
(file, target) runs in its own pytest process with scripts/transformers_tests_plugin.py loaded, which substitutes
our classes for the names the RoBERTa test module imports (see its docstring): nothing is attached to our classes.

Prints passed / failed / skipped per file for transformers and for ours, how many of the tests that pass on
transformers pass on ours, and each test that passes on transformers but not on ours with the first line of its
failure. --min-fraction F exits 1 when that share is below F for any file run on both targets.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
DEFAULT_TESTS = REPO.parent / "shared" / "reference" / "transformers-4.57-tests"
SUITES = {
    "modeling": "tests/models/roberta/test_modeling_roberta.py",
    "tokenization": "tests/models/roberta/test_tokenization_roberta.py",
}
TARGETS = ("transformers", "ours")


def run_one(tests_dir: Path, test_file: str, target: str, extra: list[str], timeout: int) -> dict:
    """One pytest process over `test_file` for `target` -> the plugin's results dict."""
    with tempfile.TemporaryDirectory(prefix="roberta-tf-tests-") as tmp:
        results = os.path.join(tmp, "results.json")
        env = dict(os.environ,
                   ROBERTA_TESTS_TARGET=target, ROBERTA_TESTS_RESULTS=results,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")])),
                   PYTHONDONTWRITEBYTECODE="1",  # the reference folder is read-only
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        cmd = [sys.executable, "-m", "pytest", test_file, "-q", "-p", "transformers_tests_plugin",
               "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(tests_dir), "-c", os.devnull,
               "-W", "ignore", "--tb=line", "-o", "addopts="]
        try:
            import pytest_timeout  # noqa: F401  (a per-test limit, so one hang cannot stall the run)
            cmd += ["--timeout", str(timeout)]
        except ImportError:
            pass
        proc = subprocess.run(cmd + extra, cwd=tests_dir, env=env, capture_output=True, text=True)
        if not os.path.exists(results):
            raise RuntimeError(f"pytest wrote no results for {test_file} on {target} (exit {proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        with open(results, encoding="utf-8") as f:
            return json.load(f)


def counts(outcomes: dict) -> dict[str, int]:
    tally = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome, _ in outcomes.values():
        tally[outcome] += 1
    return tally


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--target", choices=[*TARGETS, "both"], default="both")
    parser.add_argument("--tests-dir", type=Path, default=DEFAULT_TESTS)
    parser.add_argument("-k", dest="keyword", help="only tests matching this pytest -k expression")
    parser.add_argument("--timeout", type=int, default=300, help="per-test limit in seconds (pytest-timeout)")
    parser.add_argument("--json", type=Path, help="write counts and per-test outcomes here")
    parser.add_argument("--min-fraction", type=float, default=None,
                        help="exit 1 if ours passes less than this share of the tests that pass on transformers")
    args = parser.parse_args(argv)

    if not (args.tests_dir / "tests" / "models" / "roberta").is_dir():
        print(f"transformers' tests not found at {args.tests_dir} (expected tests/models/roberta/ there)",
              file=sys.stderr)
        return 2
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    targets = list(TARGETS) if args.target == "both" else [args.target]
    extra = ["-k", args.keyword] if args.keyword else []

    report, below = {}, False
    for suite in suites:
        report[suite] = {}
        for target in targets:
            result = run_one(args.tests_dir, SUITES[suite], target, extra, args.timeout)
            report[suite][target] = dict(result, counts=counts(result["outcomes"]))
            c = report[suite][target]["counts"]
            print(f"{suite:13s} {target:13s} passed {c['passed']:4d}  failed {c['failed']:4d}  "
                  f"skipped {c['skipped']:4d}", flush=True)
        if len(targets) == 2:
            theirs, ours = (report[suite][t]["outcomes"] for t in TARGETS)
            reference = [t for t, (outcome, _) in theirs.items() if outcome == "passed"]
            lost = {t: ours.get(t, ["missing", "not run on ours"]) for t in reference
                    if ours.get(t, [None])[0] != "passed"}
            share = (len(reference) - len(lost)) / len(reference) if reference else 1.0
            report[suite]["share"] = share
            report[suite]["passes_on_transformers_not_ours"] = lost
            print(f"{suite:13s} ours passes {len(reference) - len(lost)} of the {len(reference)} tests that pass on "
                  f"transformers ({100 * share:.1f}%)")
            for test, (outcome, reason) in sorted(lost.items()):
                print(f"    {outcome:8s} {test.split('::', 1)[-1]}: {reason}")
            if args.min_fraction is not None and share < args.min_fraction:
                below = True
        kept = sorted({name for t in targets for name in report[suite][t].get("kept", [])})
        if kept:
            print(f"{suite:13s} not substituted (roberta has no such name): {', '.join(kept)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
