"""Helpers shared by tests in several directories."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_clean(code: str, *, timeout: float = 120) -> None:
    """Run ``code`` (dedented) in a fresh interpreter at the project root and fail with its
    stderr unless it exits 0: for checks of global state that this process has already
    changed, such as which modules are imported."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
