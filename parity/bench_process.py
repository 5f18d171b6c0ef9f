"""``python -m parity.bench --whole-process``: time to result, the tutorials as whole processes.

A user runs a script and waits for the process: interpreter start, imports, initialisation,
compilation, training, the printout and the loss plot. Per-step timings (the rest of
``parity.bench``) leave all but the training out. Here each jaxnets script
(``python -m jaxnets.experiments.<name>``) runs against its PyTorch tutorial as written
(``python -m parity.torch_ref.<name>``, which prints the same lines and saves its plot with
pyplot) as separate processes, in a rotating order so that load drifting during the benchmark hits
each alike. The jaxnets script runs twice per repeat:

* ``cold``: with an empty persistent compilation cache (a fresh directory each run), the first run
  on a new machine or after a jaxnets upgrade;
* ``warm``: with the cache that an untimed run populated, every later run.

``parity`` (``python -m parity``, every experiment in both frameworks and both dtypes) is timed
cold and warm as well; it has no PyTorch counterpart. Output goes to ``os.devnull`` for every
process alike. Ratios are taken per repeat (the runs of one repeat are neighbours in time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaxnets import compile_cache

# name -> (the jaxnets command's module, the PyTorch tutorial's module or None)
CASES: dict[str, tuple[str, str | None]] = {
    "mlp": ("jaxnets.experiments.mlp", "parity.torch_ref.mlp"),
    "cnn": ("jaxnets.experiments.cnn", "parity.torch_ref.cnn"),
    "linear": ("jaxnets.experiments.linear_regression", "parity.torch_ref.linear"),
    "parity": ("parity", None),
}
KINDS = ("torch", "cold", "warm")


@dataclass
class ProcessTiming:
    """Wall-clock seconds of each kind of run, one entry per repeat."""

    name: str
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, kind: str) -> list[float]:
        """torch's time over ``kind``'s, per repeat (> 1: the jaxnets process finished first)."""
        return [t / j for t, j in zip(self.seconds["torch"], self.seconds[kind], strict=True)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "seconds": self.seconds}
        out["median_seconds"] = {k: float(np.median(v)) for k, v in self.seconds.items()}
        if "torch" in self.seconds:
            out["median_ratio"] = {k: float(np.median(self.ratio(k))) for k in ("cold", "warm")}
        return out


def command(module: str, workdir: Path, tag: str) -> list[str]:
    """The process of one run: ``python -m module`` writing its outputs under ``workdir``."""
    if module == "parity":
        outputs = ["--json", str(workdir / f"{tag}.json"), "--plots", str(workdir / tag)]
    else:
        outputs = ["--plot", str(workdir / f"{tag}.png")]
    return [sys.executable, "-m", module, *outputs]


def run_process(argv: Sequence[str], cache_dir: Path | None) -> float:
    """Seconds from launch to exit of ``argv``, its output discarded; fails loudly if it fails."""
    env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV_OFF}
    if cache_dir is not None:
        env[compile_cache.ENV_DIR] = str(cache_dir)
    start = time.perf_counter()
    result = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
    return seconds


def time_case(name: str, repeats: int, workdir: Path) -> ProcessTiming:
    """``repeats`` rotations of the case's runs, after one untimed run of each command (which
    populates the warm cache and brings the files each process reads into the page cache)."""
    jax_module, torch_module = CASES[name]
    kinds = [k for k in KINDS if torch_module is not None or k != "torch"]
    warm_cache = workdir / f"{name}-cache"
    run_process(command(jax_module, workdir, f"{name}-jax"), warm_cache)
    if torch_module is not None:
        run_process(command(torch_module, workdir, f"{name}-torch"), None)
    timing = ProcessTiming(name, {k: [] for k in kinds})
    for repeat in range(repeats):
        for kind in kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]:
            if kind == "torch":
                argv = command(torch_module, workdir, f"{name}-torch")
                seconds = run_process(argv, None)
            elif kind == "warm":
                seconds = run_process(command(jax_module, workdir, f"{name}-jax"), warm_cache)
            else:
                cold_cache = Path(tempfile.mkdtemp(prefix="cold-", dir=workdir))
                try:
                    seconds = run_process(command(jax_module, workdir, f"{name}-jax"), cold_cache)
                finally:
                    shutil.rmtree(cold_cache, ignore_errors=True)
            timing.seconds[kind].append(seconds)
        print(f"  {name} repeat {repeat + 1}/{repeats}", file=sys.stderr, flush=True)
    return timing


def _cell(values: Sequence[float]) -> str:
    return f"{np.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def table(timings: Sequence[ProcessTiming]) -> str:
    """A markdown table: seconds median [min-max] per kind, and torch over jaxnets per repeat."""
    rows = [
        "| process | torch tutorial s | jaxnets cold s | jaxnets warm s | torch/cold "
        "| torch/warm |",
        "|---|---|---|---|---|---|",
    ]
    for t in timings:
        cells = [_cell(t.seconds[k]) if k in t.seconds else "-" for k in KINDS]
        ratios = [_cell(t.ratio(k)) if "torch" in t.seconds else "-" for k in ("cold", "warm")]
        rows.append(f"| {t.name} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(rows)


def run(names: Sequence[str], repeats: int) -> list[ProcessTiming]:
    """Time each case in ``names`` (keys of :data:`CASES`) ``repeats`` times."""
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown whole-process case(s) {unknown}; choose from {list(CASES)}")
    with tempfile.TemporaryDirectory(prefix="jaxnets-whole-process-") as tmp:
        return [time_case(name, repeats, Path(tmp)) for name in names]
