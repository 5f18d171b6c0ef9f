"""The parity report's and the benchmark's plots keep matplotlib's global state as it was (see
tests/test_plotting.py for why)."""

from ..helpers import run_clean


def test_parity_and_bench_plots_keep_pyplot_unloaded_and_the_backend_unchanged(tmp_path):
    run_clean(
        f"""
        import sys
        from pathlib import Path
        from types import SimpleNamespace

        import matplotlib
        import numpy as np

        from parity import bench, bench_cases, report

        matplotlib.use("svg")  # the caller's own choice, which must survive
        out = Path({str(tmp_path)!r})
        losses = np.array([1.0, 0.5, 0.25])
        result = SimpleNamespace(
            experiment="demo",
            dtype="float32",
            torch_losses=losses,
            jax_losses=losses * (1 + 1e-7),
            float64_reference=losses,
        )
        report_path = report.write_plot(result, out)
        timings = [
            bench.Timing(
                bench_cases.Case("demo", "s", size, 2, 1.0, None, None, None),
                {{"jax": [1.0, 1.5], "eager": [2.0, 2.5]}},
                {{}},
                {{}},
            )
            for size in (1, 4)
        ]
        bench_path = bench.write_plot({{"demo": timings}}, out / "sweep.png")
        assert "matplotlib.pyplot" not in sys.modules
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert report_path.stat().st_size > 0 and bench_path.stat().st_size > 0
        """
    )


def test_plots_drawn_on_one_figure_equal_plots_drawn_alone(tmp_path):
    """``write_plots`` redraws one figure: each file must show what a fresh figure shows, after
    a log scale, a linear scale, a float64 reference line and none."""
    from types import SimpleNamespace

    import matplotlib.image
    import numpy as np

    from parity import report

    def result(name, dtype, torch_losses, jax_losses, reference=None):
        return SimpleNamespace(
            experiment=name,
            dtype=dtype,
            torch_losses=np.asarray(torch_losses),
            jax_losses=np.asarray(jax_losses),
            float64_reference=None if reference is None else np.asarray(reference),
        )

    steps = np.arange(50)
    decay = 1e6 * 0.5**steps
    results = [
        result("wide", "float32", decay, decay * (1 + 1e-6), decay),
        result("narrow", "float64", 2 + np.sin(steps), 2 + np.sin(steps)),
        result("short", "float32", [3.0, 2.0, 1.5], [3.0, 2.0, 1.5 + 1e-7], [3.0, 2.0, 1.5]),
        result("exact", "float64", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
    ]
    together = report.write_plots(results, tmp_path / "together")
    alone = [report.write_plot(r, tmp_path / "alone") for r in results]
    assert [p.name for p in together] == [p.name for p in alone]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b))
