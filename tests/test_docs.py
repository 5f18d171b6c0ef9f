"""The documentation's promises, checked without building it (the build is a separate step).

Every public name of the API modules is on an API page, every side-by-side source the pages
name exists, every code block on the pages is one the build runs, and those blocks run; the
docstring examples of the ``parity`` modules that the API pages show run too (pytest's
``--doctest-modules`` covers ``jaxnets`` only).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import pagecode  # noqa: E402 - lives in docs/_ext

PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def _page_name(path: Path) -> str:
    return path.relative_to(DOCS).with_suffix("").as_posix()


def _api_text() -> str:
    return "".join(path.read_text() for path in sorted((DOCS / "api").glob("*.md")))


def _autodoc_entries(text: str) -> list[tuple[str, str, set[str]]]:
    """``(directive, target, options)`` of every autodoc directive in ``text``."""
    entries = []
    pattern = r"^\.\. (auto\w+):: (\S+)\n((?:[ \t]+:.*\n?)*)"
    for match in re.finditer(pattern, text, re.MULTILINE):
        options = set(re.findall(r":([\w-]+):", match.group(3)))
        entries.append((match.group(1), match.group(2), options))
    return entries


def _documented(module_name: str, name: str, entries) -> bool:
    """Whether autodoc would describe ``module_name.name``: named by its own directive, or a
    class or function (autodoc's ``:members:`` leaves out imported data and submodules) of an
    ``automodule`` with ``:members:`` and ``:undoc-members:`` and no exclusions."""
    full = f"{module_name}.{name}"
    if any(target == full for _, target, _ in entries):
        return True
    value = getattr(importlib.import_module(module_name), name)
    if inspect.ismodule(value):
        return any(d == "automodule" and t == value.__name__ for d, t, _ in entries)
    whole_module = any(
        d == "automodule"
        and t == module_name
        and {"members", "undoc-members"} <= options
        and "exclude-members" not in options
        for d, t, options in entries
    )
    return whole_module and callable(value)


@pytest.mark.parametrize("module_name", pagecode.API_MODULES)
def test_api_pages_cover_every_public_name(module_name):
    if importlib.util.find_spec(module_name) is None:
        pytest.skip(f"{module_name} is not in this checkout")
    entries = _autodoc_entries(_api_text())
    missing = [
        name
        for name in pagecode.public_names(module_name)
        if not _documented(module_name, name, entries)
    ]
    assert not missing, f"{module_name}: no API page describes {missing}"


def test_coverage_check_sees_a_missing_name():
    entries = _autodoc_entries(".. autofunction:: parity.check_port\n")
    assert _documented("parity", "check_port", entries)
    assert not _documented("parity", "assert_port", entries)
    # automodule without :undoc-members: would drop names that have no docstring
    entries = _autodoc_entries(".. automodule:: jaxnets.losses\n   :members:\n")
    assert not _documented("jaxnets.losses", "mse_loss", entries)


@pytest.mark.parametrize("page", PAGES, ids=_page_name)
def test_every_code_block_is_run_by_the_build(page):
    """A plain fenced block would be shown without being run: examples are ``{runpython}``."""
    assert pagecode.plain_fences(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES, ids=_page_name)
def test_side_by_side_sources_exist(page):
    for path, name in pagecode.side_by_side_sources(page.read_text()):
        assert pagecode.python_object_source(REPO / path, name).strip()


@pytest.mark.slow
def test_page_examples_run():
    """Every ``{runpython}`` block, page by page, in a fresh interpreter with the build's
    settings (the build runs them too; this finds a broken example without a build)."""
    pages = [str(p) for p in PAGES if pagecode.blocks(p.read_text())]
    assert pages
    script = (
        "import sys; from pathlib import Path; import pagecode; pagecode.configure()\n"
        "for page in sys.argv[1:]:\n"
        "    pagecode.run_page(Path(page))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *pages],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{DOCS / '_ext'}{os.pathsep}{REPO}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_a_broken_example_fails():
    page = "```{runpython}\n:output:\nx = 1\n```\n\n```{runpython}\nx.nonexistent\n```\n"
    (first, second) = pagecode.blocks(page)
    namespace: dict = {}
    assert pagecode.run(first, namespace) == ""
    with pytest.raises(pagecode.BlockError, match="AttributeError"):
        pagecode.run(second, namespace)


@pytest.mark.parametrize(
    "module_name", ["parity.compare", "parity.port.load", "parity.port.check", "parity.port.report"]
)
def test_parity_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
