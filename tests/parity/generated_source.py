"""What every generated port's source must be: ruff-clean under the project's rules, formatted,
and importing only jax, flax, jaxnets and the standard library."""

from __future__ import annotations

import ast
import shutil
import subprocess

ALLOWED_IMPORTS = {"__future__", "math", "collections", "jax", "flax", "jaxnets"}


def assert_clean(source: str) -> None:
    """Raise AssertionError naming what is wrong with a generated module's text."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= ALLOWED_IMPORTS, f"imports {imported - ALLOWED_IMPORTS}\n{source}"
    assert "Any" not in source, source
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff (the dev extra) checks the generated source"
    common = ["--line-length", "100", "--stdin-filename", "port.py"]
    lint = subprocess.run(
        [ruff, "check", "--select", "E,F,I,B,UP,NPY", "--target-version", "py310", *common, "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, f"{lint.stdout}{lint.stderr}\n{source}"
    formatted = subprocess.run(
        [ruff, "format", "--check", *common, "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert formatted.returncode == 0, f"not ruff-formatted:\n{source}"
