"""The table, the JSON and the plots that ``python -m parity`` produces."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parity.runner import Result, SweepRow

# max|dL| and max rel|dg| are jaxnets against torch in the same dtype; the float32 rules
# themselves are judged against the float64 run, as the loss rule column says.
COLUMNS = ("experiment", "dtype", "steps", "max|dL|", "max rel|dg|", "loss rule", "result")


def rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    out = []
    for r in results:
        worst_grad = max(r.grad_rel_diff.values(), default=0.0)
        out.append(
            (
                r.experiment,
                r.dtype,
                str(r.steps),
                f"{float(np.max(np.abs(r.jax_losses - r.torch_losses))):.3g}",
                f"{worst_grad:.3g}",
                r.loss_check.rule,
                "pass" if r.passed else "FAIL",
            )
        )
    return out


def table(results: Sequence[Result]) -> str:
    """A fixed-width table: one row per experiment and dtype, failures spelled out below it."""
    body = rows(results)
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in body]
    for r in results:
        if r.extra:
            figures = ", ".join(f"{k} {v:.4f}" for k, v in r.extra.items())
            lines.append(f"{r.experiment} {r.dtype}: {figures}")
        lines += [f"{r.experiment} {r.dtype} FAILED {msg}" for msg in r.failures()]
        lines += [f"{r.experiment} {r.dtype} note (not a parity rule) {msg}" for msg in r.notes()]
    return "\n".join(lines)


def sweep_table(rows: Sequence[SweepRow]) -> str:
    """:func:`parity.runner.float32_sweep` as a Markdown table (ratios above 1 fail)."""
    lines = [
        "| batch | runs | rule: worst ratio | where | widened | failed "
        "| torch's error alone: worst ratio | where | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.batch_size} | {r.runs} | {r.worst_ratio:.3g} | {r.worst} | {r.widened_runs} "
        f"| {r.failed_runs} | {r.old_worst_ratio:.3g} | {r.old_worst} | {r.old_failed_runs} |"
        for r in rows
    ]
    return "\n".join(lines)


def write_json(results: Sequence[Result], path: Path, settings: dict) -> Path:
    """``{"settings": ..., "passed": bool, "experiments": {name: {dtype: {...}}}}``."""
    experiments: dict[str, dict] = {}
    for r in results:
        experiments.setdefault(r.experiment, {})[r.dtype] = r.to_json()
    doc = {
        "settings": settings,
        "passed": all(r.passed for r in results),
        "experiments": experiments,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def _plain_ticks(ax) -> None:
    """Major ticks only, log-axis labels as plain ``1e-5`` text: minor ticks and mathtext
    labels were two thirds of each plot's time."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())
        if axis.get_scale() == "log":
            axis.set_major_formatter(FuncFormatter(_power_label))


def _power_label(value: float, _position: int) -> str:
    """``1e-6`` for a power of ten (what a log axis labels), ``%.0e`` otherwise."""
    if value > 0:
        exponent = round(math.log10(value))
        if math.isclose(value, 10.0**exponent, rel_tol=1e-9):
            return f"1e{exponent}"
    return f"{value:.0e}"


def write_plot(result: Result, directory: Path) -> Path:
    """Both loss curves overlaid, and ``|dloss|`` per step on a log scale, as
    ``<directory>/<experiment>_<dtype>.png``."""
    return write_plots([result], directory)[0]


def write_plots(results: Sequence[Result], directory: Path) -> list[Path]:
    """:func:`write_plot` for each result, all drawn on one figure: its axes, ticks and labels
    are made once instead of once per file (half of each plot's time)."""
    directory.mkdir(parents=True, exist_ok=True)
    figure = _LossFigure()
    paths = []
    for result in results:
        path = directory / f"{result.experiment}_{result.dtype}.png"
        figure.draw(result, path)
        paths.append(path)
    return paths


class _LossFigure:
    """The figure :func:`write_plots` redraws for every result."""

    def __init__(self):
        # A bare Figure, not pyplot: the caller's backend and open figures stay as they are.
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(7, 6))
        self.top, self.bottom = self.figure.subplots(2, 1, sharex=True)
        (self.torch_line,) = self.top.plot([], label="PyTorch", linewidth=2.5, alpha=0.6)
        (self.jax_line,) = self.top.plot([], label="jaxnets", linestyle="--")
        (self.reference_line,) = self.top.plot(
            [], label="float64 reference", linestyle=":", color="k"
        )
        (self.differences,) = self.bottom.plot([], marker=".", linestyle="none", markersize=3)
        self.bottom.set_yscale("log")
        self.top.set_ylabel("loss")
        self.bottom.set(xlabel="step", ylabel="|loss_jax - loss_torch|")
        # A title at a fixed height: placing it automatically measures every tick label.
        self.title = self.top.set_title("", y=1.0)
        self.bottom.set_title("", y=1.0)
        for ax in (self.top, self.bottom):
            ax.grid(alpha=0.3)
            _plain_ticks(ax)
        # Fixed margins: a tight bounding box draws the figure twice (a third of each plot's time).
        self.figure.subplots_adjust(left=0.11, right=0.98, top=0.95, bottom=0.08, hspace=0.08)

    def draw(self, result: Result, path: Path) -> None:
        torch_l, jax_l = np.asarray(result.torch_losses), np.asarray(result.jax_losses)
        steps = np.arange(len(torch_l))
        self.torch_line.set_data(steps, torch_l)
        self.jax_line.set_data(steps, jax_l)
        reference = result.float64_reference
        self.reference_line.set_visible(reference is not None)
        if reference is not None:
            self.reference_line.set_data(np.arange(len(reference)), reference)
        positive = torch_l[torch_l > 0]
        wide = positive.size and positive.max() / positive.min() > 100
        self.top.set_yscale("log" if wide else "linear")
        _plain_ticks(self.top)  # a new scale brings its own locators and formatters
        diff = np.abs(jax_l - torch_l)
        # Exact agreement has no logarithm; show it at the axis floor instead of dropping the step.
        floor = diff[diff > 0].min() / 10 if np.any(diff > 0) else 1e-300
        self.differences.set_data(steps, np.maximum(diff, floor))
        for ax in (self.top, self.bottom):
            ax.relim(visible_only=True)
            ax.autoscale_view()
        self.title.set_text(f"{result.experiment} ({result.dtype})")
        lines = [self.torch_line, self.jax_line, self.reference_line]
        # Loss curves fall from the top left; "best" placement would search every point (slow).
        self.top.legend(handles=[line for line in lines if line.get_visible()], loc="upper right")
        self.figure.savefig(path, dpi=90)
