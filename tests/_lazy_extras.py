"""One check for every optional extra: `import roberta` does not import it, and reaching for it when it is
missing raises an ImportError that names the `pip install` fixing it. Runs in a fresh interpreter, since
this test process may well have imported the extra already."""
from __future__ import annotations

import subprocess
import sys


def missing_extra_message(access: str, eager: list[str], blocked: str, before: str = "") -> str:
    """`import roberta` (then the `before` statements), assert none of `eager` was imported, make `blocked`
    unimportable, run the `access` statement: the ImportError's message it raised ('' if none)."""
    code = (f"import sys, roberta\n{before}\n"
            f"assert not [m for m in {eager!r} if m in sys.modules], 'imported by import roberta'\n"
            f"sys.modules[{blocked!r}] = None\n"
            f"try:\n    {access}\nexcept ImportError as e:\n    print(e)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
