"""pytest plugin used by run_transformers_tests.py: runs transformers' own RoBERTa tests against our classes.

Loaded with `-p transformers_tests_plugin` (scripts/ on PYTHONPATH). Environment:
  ROBERTA_TESTS_TARGET   "ours" substitutes our classes; "transformers" runs the tests unchanged (baseline).
  ROBERTA_TESTS_RESULTS  a JSON file this plugin writes: {test id: [outcome, one-line reason]}.

How the substitution works (nothing is attached to our classes): while pytest imports a RoBERTa test module
(tests/models/roberta/test_*.py), every name that module imports from transformers' RoBERTa-facing modules
(`from transformers import RobertaModel, ...`, `from transformers.models.roberta.modeling_roberta import ...`)
is served from the matching `roberta` module when ours has that name; the transformers attributes are put back
as soon as the module is imported. The common testers (test_modeling_common.py, ...) are imported before that
window, so they keep transformers' own helpers, as a user's other code would. Names we do not have stay
transformers' and are listed in the header line.

Also: `direct_transformers_import(<repo>/src/transformers)` (which expects a source checkout) returns the installed
transformers package, and the markers upstream registers in its own conftest are registered here.
"""
from __future__ import annotations

import ast
import importlib
import json
import os
import sys

import pytest

TARGET = os.environ.get("ROBERTA_TESTS_TARGET", "transformers")
RESULTS = os.environ.get("ROBERTA_TESTS_RESULTS")

# transformers module -> our module serving the same names
SUBSTITUTES = {
    "transformers": "roberta",
    "transformers.models.roberta": "roberta",
    "transformers.models.roberta.configuration_roberta": "roberta.config",
    "transformers.models.roberta.modeling_roberta": "roberta.modeling",
    "transformers.models.roberta.tokenization_roberta": "roberta.tokenization.slow",
    "transformers.models.roberta.tokenization_roberta_fast": "roberta.tokenization.fast",
}
# imported before the substitution window so they keep transformers' names
COMMON_TESTERS = ("tests.test_modeling_common", "tests.test_configuration_common", "tests.test_pipeline_mixin",
                  "tests.generation.test_utils", "tests.test_tokenization_common")
MARKERS = ("slow", "torch_compile_test", "torch_export_test", "order", "flash_attn_test", "flash_attn_3_test",
           "generate", "is_pipeline_test", "is_staging_test", "accelerate_tests", "not_device_test",
           "bitsandbytes", "is_flaky", "timeout", "skip_if_not_implemented", "training_ci", "tensor_parallel_ci")

_outcomes: dict[str, list[str]] = {}
_substituted: set[str] = set()
_kept: set[str] = set()


def _installed_transformers(*args, **kwargs):
    return importlib.import_module("transformers")


def pytest_configure(config):
    for name in MARKERS:
        config.addinivalue_line("markers", f"{name}: marker used by transformers' tests")
    import transformers.utils
    import transformers.utils.import_utils

    transformers.utils.direct_transformers_import = _installed_transformers
    transformers.utils.import_utils.direct_transformers_import = _installed_transformers


def _imported_names(path: str) -> list[tuple[str, str]]:
    """(module, name) for every `from <module> import <name>` in the test file that SUBSTITUTES covers."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in SUBSTITUTES for alias in node.names]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    path = str(getattr(collector, "path", ""))
    is_roberta_module = isinstance(collector, pytest.Module) and os.sep + os.path.join("models", "roberta") in path
    if TARGET != "ours" or not is_roberta_module:
        yield
        return
    for name in COMMON_TESTERS:
        importlib.import_module(name)
    saved = []
    for module_name, name in _imported_names(path):
        theirs = importlib.import_module(module_name)
        ours = importlib.import_module(SUBSTITUTES[module_name])
        if not hasattr(ours, name):
            _kept.add(f"{module_name}.{name}")
            continue
        saved.append((theirs, name, theirs.__dict__.get(name, saved)))
        setattr(theirs, name, getattr(ours, name))
        _substituted.add(name)
    try:
        yield
    finally:
        for theirs, name, old in reversed(saved):
            if old is saved:
                delattr(theirs, name)
            else:
                setattr(theirs, name, old)


def pytest_report_header(config):
    if TARGET != "ours":
        return "transformers' RoBERTa tests on transformers itself"
    return "transformers' RoBERTa tests on roberta (our classes substituted at import of each RoBERTa test module)"


def pytest_runtest_logreport(report):
    """One outcome per test: failed if any phase failed, skipped if skipped, else passed (xfail counts as skipped)."""
    entry = _outcomes.get(report.nodeid)
    if report.failed:
        reason = report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") else str(report.longrepr)
        if entry is None or entry[0] != "failed":
            _outcomes[report.nodeid] = ["failed", reason.strip().splitlines()[0][:300] if reason.strip() else ""]
    elif report.skipped and entry is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else getattr(report, "wasxfail", "")
        _outcomes[report.nodeid] = ["skipped", str(reason)[:300]]
    elif report.passed and report.when == "call" and entry is None:
        _outcomes[report.nodeid] = ["passed", ""]


def pytest_collectreport(report):
    if report.failed:
        _outcomes[report.nodeid or "collection"] = ["failed", f"collection error: {str(report.longrepr)[-300:]}"]


def pytest_sessionfinish(session):
    if RESULTS and not hasattr(session.config, "workerinput"):  # under xdist only the controller writes
        with open(RESULTS, "w", encoding="utf-8") as f:
            json.dump({"outcomes": _outcomes, "substituted": sorted(_substituted), "kept": sorted(_kept)}, f,
                      indent=1)


def pytest_terminal_summary(terminalreporter):
    if TARGET == "ours" and _substituted:
        terminalreporter.write_line(f"substituted with roberta's: {', '.join(sorted(_substituted))}")
    if _kept:
        terminalreporter.write_line(f"kept transformers' (roberta has no such name): {', '.join(sorted(_kept))}")
