"""The tutorials as whole scripts: their options, their printout and their loss plot.

``python -m parity.torch_ref.mlp`` (and ``cnn``, ``linear``) runs a tutorial as its author ran it
(seeded) and saves its loss curve with pyplot, as the tutorial draws it. These are the PyTorch
side of ``python -m parity.bench --whole-process``, which times them against the jaxnets scripts
as whole processes: interpreter start, imports, the run, the printout and the plot.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def options(description: str, span: str, default: int, name: str) -> argparse.ArgumentParser:
    """The options every tutorial script takes: ``--steps`` or ``--epochs``, ``--seed``, ``--plot``.

    >>> args = options("demo", "epochs", 100, "linear").parse_args(["--epochs", "3"])
    >>> args.epochs, args.seed, args.plot.name
    (3, 0, 'linear_torch_loss.png')
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{span}", type=int, default=default, help=f"(default {default})")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default 0)")
    parser.add_argument(
        "--plot", type=Path, default=Path(f"{name}_torch_loss.png"), help="the loss curve PNG"
    )
    return parser


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported as the tutorials import it (a headless machine gets Agg)."""
    import matplotlib.pyplot as plt

    return plt


def save_plot(plt: Any, losses: Sequence[float], path: Path, xlabel: str) -> None:
    """The tutorial's plot: ``plt.plot(all_loss)`` with its labels, saved where it is shown."""
    plt.plot(losses)
    plt.xlabel(xlabel)
    plt.ylabel("Loss")
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path)
    print(f"loss curve saved to {path}")


def run_steps(
    run: Callable[..., Any],
    argv: list[str] | None,
    *,
    description: str,
    name: str,
    steps: int,
    line: str,
    xlabel: str,
) -> None:
    """A tutorial whose ``run(seed, steps=...)`` trains: one ``line`` per step (formatted with
    ``t`` and ``loss``), then the plot."""
    args = options(description, "steps", steps, name).parse_args(argv)
    plt = pyplot()
    ref = run(args.seed, steps=args.steps)
    for t, loss in enumerate(ref.losses.tolist()):
        print(line.format(t=t, loss=loss))
    save_plot(plt, ref.losses, args.plot, xlabel)
