# Sphinx with MyST rather than MkDocs-Material + mkdocstrings: the docstrings are Google style
# with doctest examples, which autodoc + napoleon render as they are; sphinx-build -W turns
# every warning (a broken reference, a docstring docutils cannot parse, a failing example) into
# a failed build; and the pages' generated content (side-by-side sources, parity runs, --help
# text, the benchmark) is a few small directives in _ext/ that call the project's own code.
# The build reads nothing from the network: no intersphinx, no remote assets.
"""Sphinx configuration of the jaxnets documentation."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent)]

import pagecode  # noqa: E402 - needs the path above

# Examples and the embedded parity runs share the process: one set of numerical settings.
pagecode.configure()

project = "jaxnets"
author = "the jaxnets authors"
copyright = "the jaxnets authors"  # noqa: A001 - Sphinx's name

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "jaxnets_docs",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" as fields of the class: NamedTuple fields are documented by autodoc already, and
# attribute directives would describe them twice.
napoleon_use_ivar = True

# The API pages' coverage check reads its module list from pagecode.API_MODULES.

html_theme = "furo"
html_title = "jaxnets"
html_static_path = ["_static"]
html_css_files = ["jaxnets.css"]
pygments_style = "sphinx"
