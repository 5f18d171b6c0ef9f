"""``python -m parity.bench``: jaxnets (jit + scan) against PyTorch eager and ``torch.compile``.

For each experiment the same data and the same number of steps go through

* ``jax``: the experiment module's jitted ``train`` (the whole run is one XLA program);
* ``eager+item``: the tutorial's PyTorch loop as written, ``loss.item()`` every step;
* ``eager``: the same loop keeping the loss tensors instead (no host sync per step): the faster
  PyTorch baseline, and the one the headline ratio uses;
* ``compile``: ``torch.compile`` of the same step (forward, backward and optimiser update in one
  compiled function, ``backward`` traced into the graph via dynamo's ``trace_autograd_ops`` where
  that works), called once per step.

Runs alternate between the four in a rotating order, so load that drifts during the benchmark hits
all of them alike. The first run of each (compilation) and ``--warmup`` more are excluded and
reported apart; ``--repeats`` runs are timed and summarised as median, min, max and IQR. Ratios are
taken per repeat (the runs of one repeat are neighbours in time) and summarised the same way.

The machine's matmul rate (a large float32 matmul, 2048 x 2048 on CPU and 8192 x 8192 on GPU,
both frameworks, the better one) is the yardstick for the achieved FLOP/s column; FLOPs are counted
analytically per experiment (``parity.bench_cases``).

``--device cuda`` runs PyTorch on the GPU and needs JAX's default backend to be the GPU too (and
``--device cpu`` needs it to be the CPU), so that both frameworks always share one device. There
``torch.compile`` defaults to ``mode="reduce-overhead"`` (CUDA graphs), each compiled step's loss is
cloned before the next replay overwrites it, and every timed torch run ends in a device
synchronisation. ``--precision`` sets float32 matmul and convolution precision in both frameworks
alike: ``highest`` (the default: full float32, as the parity suite runs), ``tf32`` (TensorFloat-32
on GPUs that have it; no effect on CPU) or ``default`` (each framework's own default, which differ
on GPUs: JAX allows TF32 in matmuls, PyTorch only in convolutions).

Timings on a shared machine are noisy: read the spread and the load average printed with them,
and rerun on a quiet machine for final numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jaxnets.cli.options import positive_int
from parity import bench_process
from parity.bench_cases import BUILDERS, DEFAULT_SETTINGS, SWEEPABLE, Case

FRAMEWORKS = ("jax", "eager+item", "eager", "compile")
DEFAULT_BATCH_SIZES = (1, 4, 16, 64, 256, 1024, 4096)
# Large enough to reach each device's matmul rate, small enough to time in a moment.
MATMUL_SIZES = {"cpu": 2048, "cuda": 8192}
DEVICES = tuple(MATMUL_SIZES)
# The jax backend name that runs on each torch device.
JAX_BACKENDS = {"cpu": "cpu", "cuda": "gpu"}
PRECISIONS = ("highest", "tf32", "default")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# torch.compile modes that capture CUDA graphs, whose outputs the next replay overwrites.
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")
# The sweep aims each timed run at about this long, at half the matmul rate.
SWEEP_RUN_SECONDS = 0.3


@dataclass
class Runner:
    """``prepare()`` runs untimed before every call of ``run()``; ``run()`` returns losses."""

    prepare: Callable[[], None]
    run: Callable[[], np.ndarray]


@dataclass
class Timing:
    """One case: seconds per run for each framework, first-run (compile) times, loss checks."""

    case: Case
    runs: dict[str, list[float]]
    first_run: dict[str, float]
    loss_rel_diff: dict[str, float]
    torch_graphs: dict[str, int] = field(default_factory=dict)

    def per_step_ms(self, framework: str) -> dict[str, float]:
        return summarise([1e3 * t / self.case.steps for t in self.runs[framework]])

    def ratio(self, slower: str, faster: str = "jax") -> dict[str, float]:
        """``slower`` time over ``faster`` time, repeat by repeat."""
        pairs = zip(self.runs[slower], self.runs[faster], strict=True)
        return summarise([a / b for a, b in pairs])

    def best_ratio(self, slower: str, faster: str = "jax") -> float:
        """Fastest run over fastest run: the runs least disturbed by other load."""
        return min(self.runs[slower]) / min(self.runs[faster])

    def compile_seconds(self, framework: str) -> float:
        return max(0.0, self.first_run[framework] - statistics.median(self.runs[framework]))

    def peak_fraction(self, peak_flops: float, framework: str = "jax") -> float:
        seconds = statistics.median(self.runs[framework])
        return self.case.flops_per_step * self.case.steps / seconds / peak_flops

    def to_json(self, peak_flops: float) -> dict[str, Any]:
        case = self.case
        return {
            "experiment": case.experiment,
            "setting": case.setting,
            "batch_size": case.batch_size,
            "steps": case.steps,
            "note": case.note,
            "flops_per_step": case.flops_per_step,
            "seconds_per_run": self.runs,
            "ms_per_step": {f: self.per_step_ms(f) for f in self.runs},
            "first_run_seconds": self.first_run,
            "compile_seconds": {f: self.compile_seconds(f) for f in self.runs},
            "speedup_of_jax": {f: self.ratio(f) for f in self.runs if f != "jax"},
            "speedup_of_jax_best_runs": {f: self.best_ratio(f) for f in self.runs if f != "jax"},
            "achieved_flops_per_s": {
                f: case.flops_per_step * case.steps / statistics.median(t)
                for f, t in self.runs.items()
            },
            "fraction_of_matmul_peak": {f: self.peak_fraction(peak_flops, f) for f in self.runs},
            "loss_max_rel_diff_vs_jax": self.loss_rel_diff,
            "torch_compile_graphs": self.torch_graphs,
        }


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and the quartiles of ``values``."""
    q1, _, q3 = np.percentile(values, [25, 50, 75])
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "q1": float(q1),
        "q3": float(q3),
        "n": len(values),
    }


def _timed(runner: Runner) -> tuple[float, np.ndarray]:
    runner.prepare()
    start = time.perf_counter()
    losses = runner.run()
    return time.perf_counter() - start, losses


def alternate(
    runners: dict[str, Runner], *, repeats: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, float], dict[str, np.ndarray]]:
    """Time ``runners`` round-robin, rotating the order each round.

    Returns per-runner run times, the first (compiling) run's time and that run's losses.
    """
    first, losses = {}, {}
    for name, runner in runners.items():
        first[name], losses[name] = _timed(runner)
    names = list(runners)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, _ = _timed(runners[name])
            if round_index >= warmup:
                runs[name].append(seconds)
    return runs, first, losses


def synchronizer(device: str) -> Callable[[], None]:
    """Waits for the torch device's queued work: a CUDA run is timed to its end, not its launch."""
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def torch_loop(
    step: Callable[..., torch.Tensor], args: Sequence[tuple[Any, ...]], steps: int, *, item: bool
) -> Callable[[], np.ndarray]:
    """The training loop: ``item`` syncs each loss to a Python float as the tutorials do;
    otherwise the losses stay tensors (on the device) until the end, which waits for them all."""

    def run() -> np.ndarray:
        if item:
            return np.asarray([step(*args[t % len(args)]).item() for t in range(steps)])
        losses = [step(*args[t % len(args)]) for t in range(steps)]
        return torch.stack(losses).reshape(steps, -1)[:, 0].cpu().numpy()

    return run


def _dynamo_counts() -> tuple[int, int]:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())


def compiled_loop(case: Case, mode: str = "default") -> Callable[[], np.ndarray]:
    """``torch.compile(mode=mode)`` of the case's step, run like the eager loop without per-step
    syncs.

    Where the case allows it (``case.trace_backward``), ``backward`` is traced into the graph
    (dynamo's ``trace_autograd_ops``), so forward, backward and update compile as one graph;
    otherwise dynamo breaks the graph at ``backward`` (forward and backward still compiled
    through AOTAutograd, the optimiser step as its own graph). Under a CUDA-graph mode each call
    starts a new graph step and its loss is cloned, because the next replay reuses its memory.
    """
    # A fresh cache per case: the sweep builds the same step function at several shapes, and
    # dynamo would otherwise turn to dynamic shapes or hit its recompile limit.
    torch._dynamo.reset()
    compiled = torch.compile(case.torch_step, mode=None if mode == "default" else mode)
    if mode in CUDAGRAPH_MODES:

        def step(*args: Any) -> torch.Tensor:
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(*args).clone()

    else:
        step = compiled
    loop = torch_loop(step, case.compiled_args, case.steps, item=False)

    def run() -> np.ndarray:
        with torch._dynamo.config.patch(trace_autograd_ops=case.trace_backward):
            return loop()

    return run


def time_case(
    case: Case,
    *,
    repeats: int,
    warmup: int,
    with_compile: bool = True,
    device: str = "cpu",
    compile_mode: str = "default",
) -> Timing:
    """Time one case in every framework, alternating; see the module docstring.

    ``device`` is the torch device the case was built on; ``compile_mode`` goes to
    ``torch.compile``.
    """
    sync = synchronizer(device)

    def prepare() -> None:
        case.reset()
        sync()

    runners = {
        "jax": Runner(lambda: None, case.run_jax),
        "eager+item": Runner(
            prepare, torch_loop(case.torch_step, case.eager_args, case.steps, item=True)
        ),
        "eager": Runner(
            prepare, torch_loop(case.torch_step, case.eager_args, case.steps, item=False)
        ),
    }
    if with_compile:
        runners["compile"] = Runner(prepare, compiled_loop(case, compile_mode))
    before = _dynamo_counts()
    runs, first, losses = alternate(runners, repeats=repeats, warmup=warmup)
    graphs: dict[str, Any] = {}
    if with_compile:
        after = _dynamo_counts()
        graphs = {
            "graphs": after[0] - before[0],
            "graph_breaks": after[1] - before[1],
            "backward_traced_into_graph": case.trace_backward,
        }
    # Large batches of the sum-of-squares MLP diverge at the tutorial's learning rate; only the
    # steps that are finite in both runs are compared.
    with np.errstate(invalid="ignore", over="ignore"):
        scale = float(np.nanmax(np.abs(np.where(np.isfinite(losses["jax"]), losses["jax"], 0))))
        rel = {}
        for name, value in losses.items():
            if name != "jax":
                diff = np.abs(value - losses["jax"])
                finite = diff[np.isfinite(diff)]
                rel[name] = float(finite.max()) / (scale or 1.0) if finite.size else math.nan
    return Timing(case, runs, first, rel, graphs)


class MatmulPeak:
    """The device's matmul rate: an ``n x n`` float32 matmul in each framework, the best ever seen.

    It is measured again before every case and the best rate kept, so that a quiet moment
    anywhere in the run sets the yardstick and a loaded one cannot lower it (fractions of it
    are then conservative). Each timed run waits for the product on the device and copies
    nothing back, so a GPU's rate is not a transfer's.

    Args:
      device: the torch device (``"cpu"`` or ``"cuda"``); JAX uses its default device.
      size: ``n``; by default ``MATMUL_SIZES[device]``.
    """

    def __init__(self, device: str = "cpu", size: int | None = None) -> None:
        self.size = n = size or MATMUL_SIZES[device]
        rng = np.random.default_rng(0)
        a_np, b_np = (rng.standard_normal((n, n), np.float32) for _ in range(2))
        a_jax, b_jax = jnp.asarray(a_np), jnp.asarray(b_np)
        a_torch, b_torch = (torch.from_numpy(a).to(device) for a in (a_np, b_np))
        matmul = jax.jit(jnp.matmul)
        sync = synchronizer(device)

        def torch_matmul() -> np.ndarray:
            product = a_torch @ b_torch
            sync()
            return np.asarray(product.shape)

        self._runners = {
            "jax": Runner(
                lambda: None, lambda: np.asarray(matmul(a_jax, b_jax).block_until_ready().shape)
            ),
            "torch": Runner(lambda: None, torch_matmul),
        }
        self.rates = {"jax": 0.0, "torch": 0.0}

    def measure(self, repeats: int) -> None:
        runs, _, _ = alternate(self._runners, repeats=repeats, warmup=0)
        for name, times in runs.items():
            self.rates[name] = max(self.rates[name], 2.0 * self.size**3 / min(times))

    @property
    def flops(self) -> float:
        return max(self.rates.values())

    def describe(self) -> str:
        return (
            f"matmul {self.size}x{self.size} float32 (best seen): "
            f"jax {self.rates['jax'] / 1e9:.1f} GFLOP/s, torch {self.rates['torch'] / 1e9:.1f} "
            f"GFLOP/s; peak = {self.flops / 1e9:.1f} GFLOP/s"
        )


# --------------------------------------------------------------------------------- output


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['median']:.3g} [{stats['min']:.3g}-{stats['max']:.3g}]"


def _name_width(timings: Sequence[Timing]) -> int:
    return max([len("experiment"), *(len(timing.case.name) for timing in timings)])


def table(timings: Sequence[Timing], peak_flops: float) -> str:
    """One row per case: ms per step (median [min-max]), speed-ups of jax, jax's share of peak."""
    width = _name_width(timings)
    header = (
        f"{'experiment':{width}} {'steps':>5} | {'jax ms/step':>20} {'eager+item':>20} "
        f"{'eager':>20} {'compile':>20} | {'x eager+item':>16} {'x eager':>16} "
        f"{'x compile':>16} | {'jax %peak':>9}"
    )
    lines = [header, "-" * len(header)]
    for timing in timings:
        cells = [_cell(timing.per_step_ms(f)) if f in timing.runs else "-" for f in FRAMEWORKS]
        ratios = [_cell(timing.ratio(f)) if f in timing.runs else "-" for f in FRAMEWORKS[1:]]
        lines.append(
            f"{timing.case.name:{width}} {timing.case.steps:>5} | "
            + " ".join(f"{c:>20}" for c in cells)
            + " | "
            + " ".join(f"{r:>16}" for r in ratios)
            + f" | {100 * timing.peak_fraction(peak_flops):8.1f}%"
        )
    return "\n".join(lines)


def compile_table(timings: Sequence[Timing], peak_flops: float) -> str:
    """Speed-ups from the fastest runs, first-run overhead (tracing + compilation), torch.compile's
    graphs, and how closely each framework's losses follow jax's (same data, same steps)."""
    width = _name_width(timings)
    lines = [
        f"{'experiment':{width}} | {'best: x eager+item':>17} {'x eager':>8} {'x compile':>9} "
        f"{'%peak':>6} | {'jax compile s':>13} {'torch.compile s':>15} {'graphs':>6} "
        f"{'breaks':>6} {'bwd in graph':>12} | max|loss - jax|/max|loss|"
    ]
    for timing in timings:
        best = [f"{timing.best_ratio(f):.3g}" if f in timing.runs else "-" for f in FRAMEWORKS[1:]]
        fastest = min(timing.runs["jax"])
        best_peak = timing.case.flops_per_step * timing.case.steps / fastest / peak_flops
        graphs = timing.torch_graphs
        diffs = ", ".join(f"{value:.1e}" for value in timing.loss_rel_diff.values())
        compile_s = timing.compile_seconds("compile") if "compile" in timing.runs else math.nan
        lines.append(
            f"{timing.case.name:{width}} | {best[0]:>17} {best[1]:>8} {best[2]:>9} "
            f"{100 * best_peak:5.1f}% | {timing.compile_seconds('jax'):13.2f} {compile_s:15.2f} "
            f"{graphs.get('graphs', '-'):>6} {graphs.get('graph_breaks', '-'):>6} "
            f"{str(graphs.get('backward_traced_into_graph', '-')):>12} | {diffs}"
        )
    return "\n".join(lines)


def write_plot(sweeps: dict[str, list[Timing]], path: Path) -> Path:
    """Time per step against batch size, log-log, one panel per swept experiment."""
    # A bare Figure, not pyplot: the caller's backend and open figures stay as they are.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(sweeps), 4.5))
    axes = fig.subplots(1, len(sweeps), squeeze=False)
    for ax, (name, timings) in zip(axes[0], sweeps.items(), strict=True):
        sizes = [t.case.batch_size for t in timings]
        for framework in ("jax", "eager", "compile"):
            if all(framework in t.runs for t in timings):
                stats = [t.per_step_ms(framework) for t in timings]
                median = np.array([s["median"] for s in stats])
                low = median - np.array([s["min"] for s in stats])
                high = np.array([s["max"] for s in stats]) - median
                ax.errorbar(sizes, median, yerr=[low, high], marker="o", capsize=3, label=framework)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("ms per training step (median, min-max)")
        ax.set_title(f"{name}: time per step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def environment(device: str = "cpu") -> dict[str, Any]:
    """What the numbers depend on: versions, cores, threads, devices, precision settings, load."""
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": _processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_device": device,
        "torch_device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "load_average": list(os.getloadavg()),
    }


def _processor() -> str:
    """The CPU's model name (``platform.processor()`` is empty on many Linux machines)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Both frameworks' float32 matmul (and convolution) precision for the block, then restored.

    ``highest``: full float32 everywhere. ``tf32``: TensorFloat-32 allowed in JAX's dots and
    convolutions and in torch's matmuls and cuDNN convolutions (GPUs only; CPUs ignore it).
    ``default``: each framework's own setting, untouched.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    if name == "default":
        yield
        return
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("highest" if name == "highest" else "high")
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        with jax.default_matmul_precision("highest" if name == "highest" else "tensorfloat32"):
            yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


def check_device(device: str) -> str | None:
    """Why the benchmark cannot run on ``device`` here, or ``None`` when it can."""
    if device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)"
    if jax.default_backend() != JAX_BACKENDS[device]:
        hint = (
            "install JAX's CUDA build (pip install -e '.[gpu]', or '.[cuda13]')"
            if device == "cuda"
            else "set JAX_PLATFORMS=cpu"
        )
        return (
            f"--device {device}: JAX's default backend is {jax.default_backend()!r}, so the two "
            f"frameworks would run on different devices; {hint}"
        )
    return None


# ------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m parity.bench",
        description="Time jaxnets (jit + scan) against PyTorch eager and torch.compile.",
    )
    parser.add_argument(
        "experiments",
        nargs="*",
        metavar="EXPERIMENT",
        help=f"subset of {sorted(BUILDERS)} (default: all)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        help="steps per run (linear: epochs); default the tutorial's (cnn batch 64: 20)",
    )
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs after the first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-sizes",
        type=positive_int,
        nargs="+",
        help=f"batch sizes of the sweep (default {' '.join(map(str, DEFAULT_BATCH_SIZES))})",
    )
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="torch's device; JAX's default backend must match it (default cpu)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="highest",
        help="float32 matmul/convolution precision of both frameworks (default highest)",
    )
    parser.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile mode (default: reduce-overhead on cuda, default on cpu)",
    )
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="time whole processes instead: each jaxnets script (cold and warm compilation "
        f"cache) against its PyTorch tutorial as written, and python -m parity "
        f"({', '.join(bench_process.CASES)}; see parity.bench_process)",
    )
    parser.add_argument("--json", type=Path, default=Path("parity-out/bench.json"))
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"run the batch-size sweep ({', '.join(SWEEPABLE)}) and save the plot here",
    )
    return parser


def sweep_steps(case_flops: float, default_steps: int, peak_flops: float) -> int:
    """Steps for one sweep point: about ``SWEEP_RUN_SECONDS`` a run, at least 2, at most the
    default, so that batch 4096 stays feasible on a small machine."""
    target = SWEEP_RUN_SECONDS * 0.5 * peak_flops / case_flops
    return max(2, min(default_steps, math.ceil(target)))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.whole_process:
        unknown = [name for name in args.experiments if name not in bench_process.CASES]
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {list(bench_process.CASES)}")
        return _run_whole_process(args)
    unknown = [name for name in args.experiments if name not in BUILDERS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {sorted(BUILDERS)}")
    problem = check_device(args.device)
    if problem:
        parser.error(problem)
    if args.compile_mode is None:
        args.compile_mode = "reduce-overhead" if args.device == "cuda" else "default"
    with precision(args.precision):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    names = args.experiments or list(BUILDERS)
    env = environment(args.device)
    print(f"load average at start: {env['load_average']}", file=sys.stderr)
    timing_options = {
        "with_compile": not args.no_compile,
        "device": args.device,
        "compile_mode": args.compile_mode,
    }

    peak = MatmulPeak(args.device)
    peak.measure(max(2 * args.repeats, 5))
    timings = []
    for name in names:
        for default_steps, batch_size in DEFAULT_SETTINGS[name]:
            steps = args.steps or default_steps
            case = BUILDERS[name](args.seed, steps, batch_size, args.device)
            print(f"timing {case.name} ({case.steps} steps)", file=sys.stderr, flush=True)
            peak.measure(3)
            timings.append(
                time_case(case, repeats=args.repeats, warmup=args.warmup, **timing_options)
            )
    print(
        f"device: torch {env['torch_device_name']}, jax {env['jax_devices'][0]}; precision "
        f"{args.precision}; torch.compile mode {args.compile_mode}"
    )
    print(peak.describe())
    print(table(timings, peak.flops))
    print()
    print(compile_table(timings, peak.flops))
    print(
        "\nms/step: median [min-max] of the timed runs; x F: F's time over jax's, per repeat "
        "(>1: jax faster); best: fastest run over fastest run, the least disturbed by other "
        "load; eager+item is the tutorial loop as written (loss.item() each step), eager the "
        "same without the per-step sync."
    )

    sweeps: dict[str, list[Timing]] = {}
    if args.plot is not None or args.batch_sizes:
        for name in (n for n in names if n in SWEEPABLE):
            default_steps = args.steps or DEFAULT_SETTINGS[name][0][0]
            sweeps[name] = []
            for batch_size in args.batch_sizes or DEFAULT_BATCH_SIZES:
                probe = BUILDERS[name](args.seed, 1, batch_size, args.device)
                steps = sweep_steps(probe.flops_per_step, default_steps, peak.flops)
                case = BUILDERS[name](args.seed, steps, batch_size, args.device)
                print(f"sweep {case.name} ({steps} steps)", file=sys.stderr, flush=True)
                peak.measure(3)
                sweeps[name].append(
                    time_case(case, repeats=min(args.repeats, 3), warmup=1, **timing_options)
                )
            print(f"\nsweep {name}:")
            print(table(sweeps[name], peak.flops))
    env["load_average_end"] = list(os.getloadavg())
    print(
        f"\nload average: start {env['load_average']}, end {env['load_average_end']} "
        f"on {env['cpu_count']} CPUs; rerun on a quiet machine for final numbers."
    )

    report = {
        "environment": env,
        "settings": vars(args) | {"json": str(args.json), "plot": str(args.plot)},
        "matmul": {"size": peak.size, "flops_per_s": {**peak.rates, "peak": peak.flops}},
        "cases": [t.to_json(peak.flops) for t in timings],
        "sweeps": {n: [t.to_json(peak.flops) for t in ts] for n, ts in sweeps.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"JSON: {args.json}")
    if sweeps and args.plot is not None:
        print(f"plot: {write_plot(sweeps, args.plot)}")
    return 0


def _run_whole_process(args: argparse.Namespace) -> int:
    env = environment()
    print(f"load average at start: {env['load_average']}", file=sys.stderr)
    timings = bench_process.run(args.experiments or list(bench_process.CASES), args.repeats)
    env["load_average_end"] = list(os.getloadavg())
    print(bench_process.table(timings))
    print(
        "\nseconds: median [min-max] over the repeats, launch to exit; torch/F: the PyTorch "
        "tutorial's time over jaxnets' per repeat (>1: jaxnets finished first); cold: an empty "
        "compilation cache, warm: the cache a previous run filled."
        f"\nload average: start {env['load_average']}, end {env['load_average_end']} "
        f"on {env['cpu_count']} CPUs."
    )
    report = {
        "environment": env,
        "settings": {"repeats": args.repeats, "whole_process": True},
        "cases": [t.to_json() for t in timings],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
