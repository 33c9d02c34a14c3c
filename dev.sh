#!/usr/bin/env bash
# One entry point for a fresh clone: `bash dev.sh demo` or `bash dev.sh test`.
# Needs only python3 (3.11+). Creates .venv, installs torch==2.13.0 first (an unpinned torch pulls
# several GB of CUDA wheels), then this package.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

setup() {  # $1: pip extras, comma-separated ("" for the runtime alone)
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(echo "${1:-runtime}" | tr , -)"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q torch==2.13.0
    if [ -n "${1:-}" ]; then
      "$VENV/bin/python" -m pip install -q -e ".[$1]"
      case ",$1," in *,tf,*)
        # transformers' TF classes (the TF reference tests) need tf-keras; its wheel requires the `tensorflow`
        # distribution, which would install a second TensorFlow over tensorflow-cpu, hence --no-deps.
        "$VENV/bin/python" -m pip install -q --no-deps tf-keras==2.21.0 ;;
      esac
    else
      "$VENV/bin/python" -m pip install -q -e .
    fi
    touch "$stamp"
  fi
}

ensure_browser() {  # tests/test_serve_browser.py drives Debian's chromium headless through its chromedriver
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "dev.sh: chromium and chromedriver are missing (apt-get install chromium chromium-driver as root);" \
         "the browser test will be skipped" >&2
  fi
}

case "${1:-}" in
  demo)
    setup ""
    echo "I love using <mask> for NLP tasks!" | "$VENV/bin/roberta" run --task fill-mask --device cpu
    ;;
  test)
    setup "test,clients,flax,tf,serve,ray,onnx,trainer"   # the whole suite: every optional extra
    ensure_browser
    # The newest `tokenizers` beside the venv (transformers 4.57 pins an older one): our tokenizers are
    # tested under it in a subprocess (tests/test_tokenization_robustness.py).
    if [ ! -d "$VENV/newest-tokenizers/tokenizers" ]; then
      "$VENV/bin/python" -m pip install -q --no-deps --upgrade --target "$VENV/newest-tokenizers" tokenizers
    fi
    shift
    "$VENV/bin/python" -m pytest -q -n 2 --dist loadgroup "$@"
    ;;
  *)
    echo "usage: bash dev.sh demo|test [pytest args]" >&2
    exit 2
    ;;
esac
