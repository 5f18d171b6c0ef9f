"""Ending a command's process once its work is done."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_now(status: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with ``status`` without the interpreter's
    teardown.

    Tearing down unloads XLA (and torch, where imported) and frees every array: 0.2-0.5 s of a
    1.5-2.5 s experiment script, 1.7 s of ``python -m parity``, all of it after the results are
    written. For a command's entry point only: atexit hooks and unflushed files other than
    stdout and stderr are skipped.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
