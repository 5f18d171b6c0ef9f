"""README's "Check your own port" and "Generate a port" run as written, and the output they show
is what they print.

Its code blocks are fenced ```python torch: GitHub highlights them as Python, and
tests/test_readme.py, which runs the ```python blocks without torch, leaves them to this test.
The blocks run in order in one namespace, as a reader pastes them. The pasted output is checked
row by row without its numbers (they move with the platform and torch version): the same
quantities, in the same order, with the same verdicts; a ``...`` line stands for rows left out.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TITLE = "## Check your own port"
COLUMNS = re.compile(r"\s{2,}")


def section() -> str:
    text = README.read_text()
    assert TITLE in text, f"README.md has no {TITLE!r} section"
    return text.split(TITLE, 1)[1].split("\n## ", 1)[0]


def blocks(text: str, tag: str) -> list[str]:
    return re.findall(rf"```{tag}\n(.*?)\n```", text, re.S)


def row_key(line: str) -> tuple[str, ...]:
    """A report row without its numbers: dtype, quantity, name, step and verdict."""
    cells = COLUMNS.split(line.strip())
    return (*cells[:4], cells[-1])


def assert_shown_is_printed(shown: str, printed: str) -> None:
    """Every shown line is printed, in order; table rows compared by :func:`row_key`."""
    printed_lines = [line.rstrip() for line in printed.strip().splitlines()]
    position = 0
    for line in (line.rstrip() for line in shown.strip().splitlines()):
        if line == "...":
            continue
        row = line.startswith(("float64 ", "float32 "))
        for index in range(position, len(printed_lines)):
            candidate = printed_lines[index]
            if (row_key(candidate) == row_key(line)) if row else candidate == line:
                position = index + 1
                break
        else:
            raise AssertionError(f"README shows {line!r}, which the example did not print:\n"
                                 f"{printed}")  # fmt: skip


def test_check_your_own_port_runs_and_prints_what_it_shows():
    text = section()
    code, shown = blocks(text, "python torch"), blocks(text, "text")
    assert len(code) == len(shown) == 2
    # The generic README test must not pick these blocks up: it needs no torch.
    assert not blocks(text, "python")
    namespace: dict = {"__name__": "readme"}
    for block, expected in zip(code, shown, strict=True):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, str(README), "exec"), namespace)
        output = printed.getvalue()
        if expected.startswith("port check"):
            assert_shown_is_printed(expected, output)
        else:  # the first divergence: where, when and in which dtype, before the numbers
            assert output.split(":", 1)[0] == expected.split(":", 1)[0]
    assert namespace["report"].first_divergence.layer == "pool"


GENERATE_TITLE = "## Generate a port"


def test_generate_a_port_runs_and_prints_what_it_shows():
    """The example writes exactly the source shown (run as a script: the torch lines it reads
    for the comments come from the script's own file) and the check passes."""
    text = README.read_text()
    assert GENERATE_TITLE in text, f"README.md has no {GENERATE_TITLE!r} section"
    part = text.split(GENERATE_TITLE, 1)[1].split("\n## ", 1)[0]
    (code,), (shown,) = blocks(part, "python torch"), blocks(part, "text")
    assert not blocks(part, "python")
    filename = "<README: Generate a port>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, filename, "exec"), {"__name__": "__main__"})
    assert printed.getvalue().strip() == shown.strip()
