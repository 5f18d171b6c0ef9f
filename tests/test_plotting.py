"""Saving a plot leaves matplotlib's global state alone: no pyplot, no backend switch.

A library that calls ``matplotlib.use`` or creates figures through ``pyplot`` changes the
backend and the open figures of whoever imported it (a notebook, a GUI); drawing on a bare
``matplotlib.figure.Figure`` does neither.
"""

import re

from .helpers import ROOT, run_clean

GLOBAL_STATE = re.compile(
    r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot"
)


def test_save_loss_plot_keeps_pyplot_unloaded_and_the_backend_unchanged(tmp_path):
    run_clean(
        f"""
        import sys
        from pathlib import Path

        import matplotlib

        from jaxnets.experiments._script import save_loss_plot

        out = Path({str(tmp_path)!r})
        save_loss_plot([1.0, 0.1, 0.001], out / "fresh.png", "loss", "step")
        assert "matplotlib.pyplot" not in sys.modules
        matplotlib.use("svg")  # the caller's own choice, which must survive
        save_loss_plot([1.0, 0.5], out / "chosen.png", "loss", "step")
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
        assert (out / "fresh.png").stat().st_size > 0 and (out / "chosen.png").stat().st_size > 0
        """
    )


# The PyTorch tutorials as written draw with pyplot; they run only as processes of their own.
TUTORIAL_SCRIPTS = {ROOT / "parity" / "torch_ref" / "script.py"}


def test_no_library_module_switches_the_backend_or_imports_pyplot():
    sources = [*ROOT.glob("jaxnets/**/*.py"), *ROOT.glob("parity/**/*.py")]
    assert sources and TUTORIAL_SCRIPTS <= set(sources)
    sources = [p for p in sources if p not in TUTORIAL_SCRIPTS]
    offenders = [str(p.relative_to(ROOT)) for p in sources if GLOBAL_STATE.search(p.read_text())]
    assert offenders == []
