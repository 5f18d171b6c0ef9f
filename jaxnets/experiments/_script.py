"""Command-line plumbing shared by the experiment scripts: options, dtype, and the loss plot."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


def parser(
    description: str, *, steps: int, steps_name: str = "steps", lr: float
) -> argparse.ArgumentParser:
    """The options every experiment script takes; callers add their own.

    Args:
      description: the ``--help`` description.
      steps: default of the steps option.
      steps_name: its name, ``steps`` or ``epochs``.
      lr: default learning rate.

    Returns:
      An ``argparse.ArgumentParser`` with ``--<steps_name>``, ``--lr``, ``--seed``, ``--dtype``
      and ``--plot``.

    >>> args = parser("demo", steps=5, steps_name="epochs", lr=0.1).parse_args(["--lr", "0.5"])
    >>> args.epochs, args.lr, args.seed, args.dtype, args.plot
    (5, 0.5, 0, 'float32', None)
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        f"--{steps_name}", type=int, default=steps, help=f"{steps_name} (default {steps})"
    )
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument("--seed", type=int, default=0, help="jax.random seed for data and params")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--plot", type=Path, default=None, help="save the loss curve to this PNG")
    return p


def setup_dtype(name: str) -> jnp.dtype:
    """Enable x64 when float64 is asked for (it must happen before arrays are created).

    Args:
      name: ``"float32"`` or ``"float64"``.

    Returns:
      The dtype, ``jnp.float32`` or ``jnp.float64``.

    >>> setup_dtype("float32") is jnp.float32
    True
    """
    if name == "float64":
        jax.config.update("jax_enable_x64", True)
    return DTYPES[name]


def save_loss_plot(
    losses: Sequence[float] | jax.Array, path: Path, title: str, xlabel: str
) -> Path:
    """Plot a loss curve, on a log scale when it spans more than two decades.

    Args:
      losses: ``(steps,)`` loss values.
      path: the PNG to write (parent directories are created).
      title: the plot title.
      xlabel: the x-axis label.

    Returns:
      ``path``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_loss_plot([1.0, 0.1, 0.001], Path(tmp) / "loss.png", "demo", "Step")
    ...     path.name, path.stat().st_size > 0
    ('loss.png', True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(values)
    positive = values[values > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel="Loss")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
