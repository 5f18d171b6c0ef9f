"""Command-line plumbing shared by the experiment scripts: options, dtype, and the loss plot."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import _process, compile_cache
from jaxnets.experiments import _protocol
from jaxnets.experiments.catalog import Defaults

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


def parser(
    description: str, defaults: Defaults, *, augment: str | None = None
) -> argparse.ArgumentParser:
    """The options every experiment script takes, with the experiment's catalogue defaults.

    Args:
      description: the ``--help`` description.
      defaults: the experiment's catalogue entry.
      augment: what the experiment's augmentation does, for ``--augment``'s help (``None``:
        it has none, and the script takes no ``--augment``).

    Returns:
      An ``argparse.ArgumentParser`` with ``--steps`` or ``--epochs``, ``--lr``, ``--seed``,
      ``--dtype``, ``--plot``, ``--no-cache`` and, when the experiment has one, ``--batch-size``.

    >>> from jaxnets.experiments import catalog
    >>> args = parser("demo", catalog.get("digits")).parse_args(["--lr", "0.5"])
    >>> args.epochs, args.lr, args.seed, args.dtype, args.batch_size, args.plot, args.no_cache
    (10, 0.5, 0, 'float32', 32, None, False)
    """
    p = argparse.ArgumentParser(description=description)
    span = "steps" if defaults.epochs is None else "epochs"
    default = getattr(defaults, span)
    p.add_argument(f"--{span}", type=int, default=default, help=f"{span} (default {default})")
    lr = defaults.learning_rate
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the run (the same run as `jaxnets train`)"
    )
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    if defaults.batch_size is not None:
        size = defaults.batch_size
        p.add_argument("--batch-size", type=int, default=size, help=f"(default {size})")
    if augment is not None:
        p.add_argument("--augment", action="store_true", help=augment)
    p.add_argument("--plot", type=Path, default=None, help="save the loss curve to this PNG")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="compile from scratch: do not read or write the persistent compilation cache "
        "(also JAXNETS_NO_CACHE=1; see jaxnets.compile_cache)",
    )
    return p


def setup(experiment: ModuleType, argv: list[str] | None) -> tuple[argparse.Namespace, Any, Any]:
    """Parse a script's options and draw its start: what every experiment's ``main`` does first.

    The start is :func:`jaxnets.experiments._protocol.start`'s, so ``--seed`` gives the run
    ``jaxnets train --seed`` gives. The plot defaults to ``<module>_loss.png``, and matplotlib
    starts importing in the background. The persistent compilation cache is switched on first,
    unless ``--no-cache``.

    Args:
      experiment: the experiment module.
      argv: the command line (default ``sys.argv[1:]``).

    Returns:
      ``(args, params, data)``.
    """
    augment = getattr(experiment, "augment", None)
    p = parser(
        experiment.__doc__.splitlines()[0],
        experiment.DEFAULTS,
        augment=None if augment is None else augment.__doc__.splitlines()[0],
    )
    p.set_defaults(plot=Path(f"{experiment.__name__.rsplit('.', 1)[-1]}_loss.png"))
    args = p.parse_args(argv)
    _preload_plotting()
    compile_cache.enable(args.no_cache)
    dtype = setup_dtype(args.dtype)
    params, data, _ = _protocol.start(
        experiment, args.seed, batch_size=getattr(args, "batch_size", None), dtype=dtype
    )
    return args, params, data


def run_as_script(main: Callable[[], Any]) -> NoReturn:
    """What an experiment module runs as ``python -m``: ``main()``, then the process ends as
    soon as its output is flushed (:func:`jaxnets._process.exit_now`; the loss plot and the
    compilation cache are written before ``main`` returns). ``main()`` called from Python
    returns as usual; an exception, ``--help`` and argparse's errors leave the ordinary way.
    """
    status = main()
    _process.exit_now(0 if status is None else int(status))


def _import_plotting() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def _preload_plotting() -> None:
    # Every script ends with a plot. Importing matplotlib (a third of a second) on a thread of
    # its own overlaps it with compiling and training, which release the GIL; the plot's own
    # import then finds the modules loaded, or waits for the import in flight.
    threading.Thread(target=_import_plotting, name="import-matplotlib", daemon=True).start()


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
    # A bare Figure, not pyplot: the caller's backend and open figures stay as they are.
    from matplotlib.figure import Figure

    values = np.asarray(losses, dtype=np.float64)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(values)
    positive = values[values > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel="Loss")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
