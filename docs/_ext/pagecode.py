"""What the documentation build and ``tests/test_docs.py`` share, without importing Sphinx.

* The pages' executable code: a page's ``{runpython}`` blocks run in order in one namespace, so
  a later block may use what an earlier one defined, as a reader running the page top to bottom
  would; :func:`configure` gives them the same settings in the build and in the tests.
* The sources shown beside each other (:func:`python_object_source`).
* The modules whose every public name the API pages must describe (:data:`API_MODULES`,
  :func:`public_names`).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import linecache
import re
import textwrap
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

# The modules whose every public name the API pages must describe; the build warns (and so
# fails under -W) for any name missing. A module that does not exist in this checkout is
# skipped.
API_MODULES = (
    "jaxnets.losses",
    "jaxnets.optim",
    "jaxnets.nn",
    "jaxnets.nn.functional",
    "jaxnets.nn.random",
    "jaxnets.data",
    "jaxnets.data.transforms",
    "jaxnets.train",
    "parity",
)

# ----------------------------------------------------------------------------- examples

# A MyST directive fence: three or more backticks or colons, then ``{runpython}``; the block
# ends at the same fence. Option lines (``:output:``) at the top are not code.
_RUNPYTHON = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{runpython\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)


def configure() -> None:
    """The settings every page's code runs under, in the build and in the tests alike.

    The parity runs that the pages embed need them (float64 available, full-precision matmuls),
    and they are global to the process, so the examples run under them too: that way an
    example behaves the same whichever page the build happens to read first.
    """
    import torch

    from parity import runner

    runner.configure()
    # One torch thread: on a machine with other work, torch's threads wait for each other at
    # every operator and the tutorials' small eager loops slow down tenfold or more (the MLP's
    # parity run: 8 s against 100 s at load 5 on 2 cores); one thread is as fast when idle.
    torch.set_num_threads(1)


def split_options(body: str) -> tuple[dict[str, str], str]:
    """``(options, code)`` of a directive body: leading ``:name: value`` lines, then code."""
    options: dict[str, str] = {}
    lines = body.splitlines(keepends=True)
    while lines and (match := re.match(r"^:([\w-]+):\s*(.*?)\s*$", lines[0])):
        options[match.group(1)] = match.group(2)
        lines.pop(0)
    return options, "".join(lines).strip("\n") + "\n"


def blocks(page: str) -> list[str]:
    """The code of every ``{runpython}`` block of a MyST page, in page order."""
    return [split_options(m.group("body"))[1] for m in _RUNPYTHON.finditer(page)]


def plain_fences(page: str) -> list[str]:
    """The info strings of the page's fenced blocks that are not directives (``{name}``):
    blocks that the build would show without running."""
    found = []
    fence: str | None = None
    for line in page.splitlines():
        match = re.match(r"^(`{3,}|:{3,})(.*)$", line)
        if not match:
            continue
        if fence is None:
            fence = match.group(1)
            info = match.group(2).strip()
            if not info.startswith("{"):
                found.append(info)
        elif match.group(1) == fence and not match.group(2).strip():
            fence = None
    return found


class BlockError(Exception):
    """A page's code block raised: the message holds the block's traceback."""


def run(code: str, namespace: dict, name: str = "<page>") -> str:
    """Execute ``code`` in ``namespace`` and return what it printed.

    Raises:
      BlockError: whatever the code raised (``SystemExit`` included), with its traceback
        limited to the block's own frames and below.
    """
    out = io.StringIO()
    # Registered as a source file: tracebacks, and torch.fx's record of each op's line (which
    # parity.generate_port writes beside the code it generates), show the block's lines.
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        compiled = compile(code, name, "exec")
        with contextlib.redirect_stdout(out):
            exec(compiled, namespace)  # noqa: S102 - running the page's example is the point
    except BaseException as err:  # noqa: BLE001 - any failure of an example is reported
        frames = traceback.extract_tb(err.__traceback__)
        # Drop this function's frame: the reader's code starts at the block.
        shown = traceback.format_list(frames[1:]) + traceback.format_exception_only(err)
        raise BlockError("".join(shown).rstrip()) from err
    return out.getvalue()


def run_page(path: Path) -> list[str]:
    """Run every ``{runpython}`` block of the page at ``path`` in one fresh namespace.

    Returns:
      What each block printed, in order.
    """
    namespace: dict = {"__name__": "__docs__"}
    outputs = []
    for index, code in enumerate(blocks(path.read_text())):
        outputs.append(run(code, namespace, f"{path.name}[block {index + 1}]"))
    return outputs


# ------------------------------------------------------------------------ shown sources


def python_object_source(path: Path, dotted: str, *, docstring: bool = False) -> str:
    """The source of the top-level function or class ``dotted`` (``Class.method`` allowed) in
    ``path``, decorators included, dedented; its docstring dropped unless ``docstring``.

    The API reference shows the docstrings; beside the PyTorch original the code reads better
    without them.

    Raises:
      LookupError: ``path`` defines no such function or class.
    """
    lines = path.read_text().splitlines()
    scope: Any = ast.parse("\n".join(lines))
    node = None
    for part in dotted.split("."):
        node = next(
            (
                child
                for child in scope.body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and child.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{path.relative_to(REPO)} defines no {dotted!r}")
        scope = node
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    skip: set[int] = set()
    first = node.body[0]
    if (
        not docstring
        and isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        skip = set(range(first.lineno - 1, first.end_lineno))
    kept = (lines[i] for i in range(start - 1, node.end_lineno) if i not in skip)
    return textwrap.dedent("\n".join(kept))


def side_by_side_sources(page: str) -> list[tuple[str, str]]:
    """``(path, name)`` of every object a page's ``{torch-vs-jax}`` blocks show."""
    found = []
    for match in re.finditer(r"^:(?:torch|jax):\s*(.+)$", page, re.MULTILINE):
        path, *names = match.group(1).split()
        found += [(path, name) for name in names]
    return found


# --------------------------------------------------------------------------- API pages


def public_names(module_name: str) -> list[str]:
    """A module's public names: its ``__all__``, or, without one, the functions and classes it
    defines whose names do not start with an underscore."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module_name
    )
