"""Directives that build the documentation's content from the code itself.

* ``torch-vs-jax``: a PyTorch original beside its port, read from the sources at build time.
* ``runpython``: an example executed while the page is read; a failing example fails the build.
* ``parity-run``: ``parity.runner.run`` on one experiment, shown with ``parity.report``'s table
  and plots.
* ``float32-rule``: why float32 is judged against float64, drawn from a real parity run.
* ``argparse-help``: a command's ``--help``, from its parser.
* ``bench-report``: ``python -m parity.bench``'s JSON rendered with ``parity.bench``'s own table
  and plot.
* a check, once everything is read, that the API pages describe every public name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pagecode
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

REPO = pagecode.REPO
# Generated images live under the ignored build tree, inside the source directory, because
# Sphinx resolves image paths against the source directory.
GENERATED = "_build/generated"


def _generated_dir(srcdir: str | Path) -> Path:
    directory = Path(srcdir) / GENERATED
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _image(path: Path, srcdir: str | Path, alt: str) -> nodes.image:
    return nodes.image(uri="/" + path.relative_to(srcdir).as_posix(), alt=alt)


# ------------------------------------------------------------------------- torch-vs-jax


class TorchVsJax(SphinxDirective):
    """Two columns: the PyTorch original and the jaxnets port, each ``path name [name ...]``.

    ``:torch:`` and ``:jax:`` name a file relative to the repository and the functions or
    classes to show from it, in order.
    """

    has_content = False
    option_spec = {
        "torch": directives.unchanged_required,
        "jax": directives.unchanged_required,
        "docstrings": directives.flag,
    }

    def _column(self, side: str, title: str) -> nodes.container:
        path_text, *names = self.options[side].split()
        path = REPO / path_text
        self.env.note_dependency(str(path))
        column = nodes.container(classes=["tvj-column", f"tvj-{side}"])
        caption = nodes.paragraph(classes=["tvj-caption"])
        caption += nodes.strong(text=title)
        caption += nodes.Text(" ")
        caption += nodes.literal(text=f"{path_text}: {', '.join(names)}")
        column += caption
        for name in names:
            try:
                code = pagecode.python_object_source(
                    path, name, docstring="docstrings" in self.options
                )
            except (OSError, LookupError, SyntaxError) as err:
                raise self.error(f"torch-vs-jax: {err}") from err
            block = nodes.literal_block(code, code, language="python")
            column += block
        return column

    def run(self) -> list[nodes.Node]:
        for side in ("torch", "jax"):
            if side not in self.options:
                raise self.error(f"torch-vs-jax needs :{side}:")
        grid = nodes.container(classes=["torch-vs-jax"])
        grid += self._column("torch", "PyTorch")
        grid += self._column("jax", "jaxnets")
        return [grid]


# ---------------------------------------------------------------------------- runpython


class RunPython(SphinxDirective):
    """Show the code, run it in the page's namespace, optionally show what it printed.

    The page's blocks share one namespace (created when the page is read), so they run like
    a script read top to bottom; ``tests/test_docs.py`` runs them the same way.
    """

    has_content = True
    option_spec = {"output": directives.flag}

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content) + "\n"
        namespace = self.env.temp_data.setdefault("runpython-namespace", {"__name__": "__docs__"})
        index = self.env.temp_data["runpython-count"] = (
            self.env.temp_data.get("runpython-count", 0) + 1
        )
        try:
            printed = pagecode.run(code, namespace, f"{self.env.docname}[block {index}]")
        except pagecode.BlockError as err:
            raise self.error(f"example {index} of {self.env.docname} failed:\n{err}") from err
        out: list[nodes.Node] = [nodes.literal_block(code, code, language="python")]
        if "output" in self.options:
            out.append(nodes.literal_block(printed, printed, language="text", classes=["output"]))
        return out


# ---------------------------------------------------------------------------- parity runs

# One run per experiment and settings for the whole build: the parity-rules page reuses the
# run its tutorial page made.
_RUNS: dict[tuple, list] = {}


def parity_results(name: str, steps: int | None = None, batch_size: int | None = None) -> list:
    """``parity.runner.run`` of ``name`` in float64 and float32 (seed 0), once per build."""
    key = (name, steps, batch_size)
    if key not in _RUNS:
        from parity import runner
        from parity.experiments import EXPERIMENTS

        logger.info(f"parity run: {name} (steps {steps or 'default'})")
        _RUNS[key] = runner.run(
            EXPERIMENTS[name],
            seed=0,
            steps=steps,
            batch_size=batch_size,
            dtypes=("float64", "float32"),
        )
    return _RUNS[key]


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else directives.positive_int(text)


class ParityRun(SphinxDirective):
    """The parity verdict of one experiment, computed while the page is built: the table
    ``python -m parity`` prints and its plot per dtype. A failed verdict fails the build."""

    required_arguments = 1
    option_spec = {"steps": _int_or_none, "batch-size": _int_or_none}

    def run(self) -> list[nodes.Node]:
        from parity import report
        from parity.experiments import EXPERIMENTS

        name = self.arguments[0]
        if name not in EXPERIMENTS:
            raise self.error(f"parity-run: unknown experiment {name!r}")
        steps, batch_size = self.options.get("steps"), self.options.get("batch-size")
        results = parity_results(name, steps, batch_size)
        for result in results:
            if not result.passed:
                logger.warning(
                    f"parity failed for {name} {result.dtype}: {result.failures()}",
                    location=(self.env.docname, self.lineno),
                )
        text = report.table(results)
        intro = nodes.paragraph()
        intro += nodes.Text("Generated when this page was built, by ")
        command = f"python -m parity {name}"
        if steps is not None:
            command += f" --steps {steps}"
        intro += nodes.literal(text=command)
        lesson = EXPERIMENTS[name].__class__.__name__ == "LessonExperiment"
        intro += nodes.Text(
            " (seed 0, float64 and float32) on the machine that built it: the table it prints"
            + (
                "; each named value is a row of the comparison."
                if lesson
                else " and its plots (both loss curves above, |Δloss| per step below)."
            )
        )
        out: list[nodes.Node] = [intro, nodes.literal_block(text, text, classes=["parity-table"])]
        directory = _generated_dir(self.env.srcdir)
        figures = nodes.container(classes=["parity-plots"])
        for result in [] if lesson else results:
            # A lesson's "trajectory" is its list of loss values, not a training run.
            path = report.write_plot(result, directory)
            figures += _image(path, self.env.srcdir, f"{name} {result.dtype} parity plot")
        if figures.children:
            out.append(figures)
        return out


class Float32Rule(SphinxDirective):
    """The float32 rule drawn from a real run: both float32 trajectories' distance from the
    float64 run, their distance from each other, the rule's bound and a fixed tolerance."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        import numpy as np
        from matplotlib.figure import Figure

        from parity import compare

        name = self.arguments[0]
        (result,) = [r for r in parity_results(name) if r.dtype == "float32"]
        torch32, jax32 = result.torch_losses, result.jax_losses
        exact = result.float64_reference
        torch_drift = np.abs(torch32 - exact)
        jax_drift = np.abs(jax32 - exact)
        between = np.abs(jax32 - torch32)
        bound = compare.F32_DRIFT_FACTOR * torch_drift.max() + compare.F32_LOSS_FLOOR * abs(
            exact[0]
        )
        fixed = 1e-5 * np.abs(torch32)
        steps = np.arange(len(exact))

        fig = Figure(figsize=(8, 7))
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.semilogy(steps, exact, color="k", label="float64 (torch; jaxnets agrees to 1e-8)")
        top.semilogy(steps, torch32, label="PyTorch float32", alpha=0.7)
        top.semilogy(steps, jax32, linestyle="--", label="jaxnets float32")
        top.set(ylabel="loss", title=f"{name}: the float32 runs against the float64 run")
        tiny = np.finfo(np.float64).tiny
        bottom.semilogy(steps, np.maximum(torch_drift, tiny), label="|L_torch32 - L_64|")
        bottom.semilogy(steps, np.maximum(jax_drift, tiny), label="|L_jax32 - L_64|")
        bottom.semilogy(steps, np.maximum(between, tiny), label="|L_jax32 - L_torch32|", alpha=0.6)
        bottom.axhline(bound, color="k", linestyle="--", label="rule: bound on |L_jax32 - L_64|")
        bottom.semilogy(steps, fixed, color="r", linestyle=":", label="a fixed 1e-5·|L_torch32|")
        bottom.set(xlabel="step", ylabel="absolute difference")
        shown = (torch_drift, jax_drift, between, fixed)
        floor = min(x[x > 0].min() for x in shown)
        top_value = max(bound, *(x.max() for x in shown))
        bottom.set_ylim(floor / 3, top_value * 30)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        path = _generated_dir(self.env.srcdir) / f"float32_rule_{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")

        over_fixed = int(np.sum(between > fixed))
        figures = (
            f"{name}, {len(exact)} steps, float32, seed 0:\n"
            f"  max|L_torch32 - L_64|  = {torch_drift.max():.3g}\n"
            f"  max|L_jax32   - L_64|  = {jax_drift.max():.3g}"
            f"   (rule: <= {bound:.3g} at every step; {result.loss_check.detail})\n"
            f"  max|L_jax32 - L_torch32| = {between.max():.3g};"
            f" above a fixed 1e-5·|L_torch32| at {over_fixed} of {len(exact)} steps\n"
            f"  last step: L_64 = {exact[-1]:.3g}, L_torch32 = {torch32[-1]:.3g},"
            f" L_jax32 = {jax32[-1]:.3g}"
        )
        return [
            _image(path, self.env.srcdir, f"{name}: float32 against float64"),
            nodes.literal_block(figures, figures),
        ]


# ---------------------------------------------------------------------------- argparse-help


@contextlib.contextmanager
def _help_width(columns: int):
    # argparse wraps to the terminal's width, read from COLUMNS: fix it so every build gives
    # the same page, and ask for no colour (Python 3.14 colours help on terminals).
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "NO_COLOR")}
    os.environ["COLUMNS"], os.environ["NO_COLOR"] = str(columns), "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def subcommands(parser) -> dict:
    """``{name: subparser}`` of an ``argparse`` parser's sub-commands (empty if none)."""
    import argparse

    for action in parser._actions:  # argparse offers no public way to list sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class ArgparseHelp(SphinxDirective):
    """``--help`` of a parser built by ``module:function``, or of one of its sub-commands."""

    required_arguments = 1
    option_spec = {"subcommand": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        module_name, _, function = self.arguments[0].partition(":")
        parser = getattr(importlib.import_module(module_name), function)()
        self.env.note_dependency(importlib.import_module(module_name).__file__)
        if "subcommand" in self.options:
            name = self.options["subcommand"]
            choices = subcommands(parser)
            if name not in choices:
                raise self.error(f"{self.arguments[0]} has no sub-command {name!r}")
            parser = choices[name]
        with _help_width(100):
            text = parser.format_help()
        return [nodes.literal_block(text, text, language="text")]


# ---------------------------------------------------------------------------- bench-report


def _timings(entries: list[dict]) -> list:
    """``parity.bench.Timing`` objects back from their JSON, for ``parity.bench``'s table and
    plot (the callables a live case carries are not needed to draw them)."""
    from parity.bench import Timing
    from parity.bench_cases import Case

    out = []
    for entry in entries:
        case = Case(
            experiment=entry["experiment"],
            setting=entry["setting"],
            batch_size=entry["batch_size"],
            steps=entry["steps"],
            flops_per_step=entry["flops_per_step"],
            run_jax=None,
            torch_step=None,
            reset=None,
            note=entry.get("note", ""),
        )
        out.append(
            Timing(
                case=case,
                runs=entry["seconds_per_run"],
                first_run=entry["first_run_seconds"],
                loss_rel_diff=entry.get("loss_max_rel_diff_vs_jax", {}),
                torch_graphs=entry.get("torch_compile_graphs", {}),
            )
        )
    return out


def _loads(values: list[float] | None) -> str:
    return "not recorded" if not values else ", ".join(f"{v:.2f}" for v in values)


def _committed_date(path: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


class BenchReport(SphinxDirective):
    """The machine, the date, ``parity.bench``'s tables and its batch-size sweep plot, from a
    JSON file written by ``python -m parity.bench --json PATH``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from parity import bench

        path = Path(self.env.srcdir) / self.arguments[0]
        self.env.note_dependency(str(path))
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise self.error(f"bench-report: cannot read {path}: {err}") from err
        env = data["environment"]
        date = data.get("date") or env.get("date") or _committed_date(path) or "not recorded"
        peak = data["matmul"]["flops_per_s"]["peak"]
        settings = data.get("settings", {})
        lines = [
            f"date:      {date}",
            f"machine:   {env.get('machine_description') or env['machine']}, "
            f"{env.get('processor') or 'processor not reported'}, {env['cpu_count']} CPUs "
            f"(torch threads {env['torch_threads']})",
            f"devices:   torch {env['torch_device_name']}, jax {', '.join(env['jax_devices'])}",
            f"versions:  python {env['python']}, jax {env['jax']}, torch {env['torch']}",
            f"load avg:  start {_loads(env.get('load_average'))}, "
            f"end {_loads(env.get('load_average_end'))} (1, 5, 15 min)",
            f"settings:  repeats {settings.get('repeats', '?')}, precision "
            f"{settings.get('precision', '?')}, torch.compile mode "
            f"{settings.get('compile_mode', '?')}",
            f"yardstick: {data['matmul']['size']}² float32 matmul, peak {peak / 1e9:.1f} GFLOP/s",
        ]
        header = "\n".join(lines)
        timings = _timings(data["cases"])
        out: list[nodes.Node] = [nodes.literal_block(header, header)]
        busiest = max((env.get(k) or [0.0])[0] for k in ("load_average", "load_average_end"))
        if busiest > env["cpu_count"]:
            # The benchmark itself keeps the cores busy; more runnable work than cores means
            # something else competed, and that slows PyTorch's eager loops far more than one
            # XLA program: such ratios overstate jaxnets' lead.
            out.append(
                nodes.warning(
                    "",
                    nodes.paragraph(
                        text=f"Measured under load (a 1-minute load average of {busiest:.1f} "
                        f"on {env['cpu_count']} CPUs): PyTorch's eager times, and so the "
                        "ratios, are inflated. Replace this file with a measurement on a "
                        "quiet machine before quoting them."
                    ),
                )
            )
        out += [
            nodes.rubric(text="Time per step and speed-ups"),
            nodes.literal_block(text := bench.table(timings, peak), text, classes=["wide"]),
            nodes.rubric(text="Best runs, compilation and agreement"),
            nodes.literal_block(text := bench.compile_table(timings, peak), text, classes=["wide"]),
        ]
        sweeps = {name: _timings(entries) for name, entries in data.get("sweeps", {}).items()}
        if sweeps:
            image = bench.write_plot(sweeps, _generated_dir(self.env.srcdir) / "bench_sweep.png")
            out += [
                nodes.rubric(text="Batch-size sweep"),
                _image(image, self.env.srcdir, "time per step against batch size"),
            ]
        else:
            out.append(nodes.paragraph(text="This measurement has no batch-size sweep."))
        return out


# ---------------------------------------------------------------------------- API coverage


def check_api_coverage(app: Sphinx, env) -> None:
    """Warn (so ``-W`` fails the build) for a public name of a ``pagecode.API_MODULES`` module
    that no page describes."""
    domain = env.get_domain("py")
    described = set(domain.objects) | set(domain.modules)
    for module_name in pagecode.API_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue
        names = pagecode.public_names(module_name)
        missing = [name for name in names if f"{module_name}.{name}" not in described]
        if missing:
            logger.warning(f"API reference: {module_name} has undocumented public names {missing}")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("torch-vs-jax", TorchVsJax)
    app.add_directive("runpython", RunPython)
    app.add_directive("parity-run", ParityRun)
    app.add_directive("float32-rule", Float32Rule)
    app.add_directive("argparse-help", ArgparseHelp)
    app.add_directive("bench-report", BenchReport)
    app.connect("env-check-consistency", check_api_coverage)
    # The parity runs and examples hold process-wide state: read the pages in one process.
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
