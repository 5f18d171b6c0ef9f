"""The executable code blocks of the documentation pages, shared by the build and the tests.

A page's ``{runpython}`` blocks run in order in one namespace, so a later block may use what an
earlier one defined, as a reader running the page top to bottom would. Nothing here imports
Sphinx: ``tests/test_docs.py`` runs the same blocks with the same settings without a build.
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from pathlib import Path

# A MyST directive fence: three or more backticks or colons, then ``{runpython}``; the block
# ends at the same fence. Option lines (``:output:``) at the top are not code.
_FENCE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{runpython\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)


def configure() -> None:
    """The settings every page's code runs under, in the build and in the tests alike.

    The parity runs that the pages embed need them (float64 available, full-precision matmuls),
    and they are global to the process, so the examples run under them too: that way an
    example behaves the same whichever page the build happens to read first.
    """
    from parity import runner

    runner.configure()


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
    return [split_options(m.group("body"))[1] for m in _FENCE.finditer(page)]


class BlockError(Exception):
    """A page's code block raised: the message holds the block's traceback."""


def run(code: str, namespace: dict, name: str = "<page>") -> str:
    """Execute ``code`` in ``namespace`` and return what it printed.

    Raises:
      BlockError: whatever the code raised (``SystemExit`` included), with its traceback
        limited to the block's own frames and below.
    """
    out = io.StringIO()
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
