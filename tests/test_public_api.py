"""The public names a transformers user swaps in all resolve, and `import roberta` stays light."""
import subprocess
import sys

import roberta


def test_every_public_name_resolves():
    for name in roberta.__all__:
        assert getattr(roberta, name).__name__ == name


def test_unknown_name_is_a_clear_attribute_error():
    try:
        roberta.RobertaForNothing
    except AttributeError as err:
        assert "RobertaForNothing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_torch():
    code = "import sys, roberta; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
