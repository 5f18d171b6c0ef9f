"""Helpers shared by tests in several directories."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_clean(code: str, *, timeout: float = 120) -> None:
    """Run ``code`` (dedented) in a fresh interpreter at the project root and fail with its
    stderr unless it exits 0: for checks of global state that this process has already
    changed, such as which modules are imported."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr


def tiny_experiment(name: str, *, nan_steps=(), nan_data: bool = False):
    """An experiment for command-line tests: least squares in 3 unknowns over 8 samples.

    Its plan visits the samples in order, one per step, so step ``t`` trains on sample
    ``t % 8``: ``nan_steps`` mark those samples, whose loss is then NaN (the data itself stays
    finite); ``nan_data`` puts a NaN in one input.
    """
    import types

    import jax
    import jax.numpy as jnp

    from jaxnets import data, optim
    from jaxnets.experiments import catalog
    from jaxnets.train import Data

    def init(key, *, batch_size=8, dtype=jnp.float32):
        X = jax.random.normal(key, (batch_size, 3), dtype)
        if nan_data:
            X = X.at[2, 1].set(jnp.nan)
        y = X @ jnp.arange(1.0, 4.0, dtype=dtype)
        poison = jnp.zeros((batch_size,), bool).at[jnp.asarray(nan_steps, int)].set(True)
        return {"w": jnp.zeros((3,), dtype)}, Data((X, y, poison))

    def loss_fn(params, batch):
        X, y, poison = batch
        loss = jnp.mean(jnp.square(X @ params["w"] - y))
        return jnp.where(jnp.any(poison), jnp.nan, loss)

    def batch_plan(batch_size=None, *, drop_last=False):
        return data.Plan(1)

    return types.SimpleNamespace(
        DEFAULTS=catalog.Defaults(name, "", "test: least squares", 0.1, steps=10, batch_size=8),
        init=init,
        loss_fn=loss_fn,
        optimizer=optim.sgd,
        batch_plan=batch_plan,
    )


def run_cli(argv, capsys):
    """``jaxnets ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    from jaxnets import cli

    try:
        code = cli.main([str(arg) for arg in argv])
    except SystemExit as exit_:  # argparse's own errors and --help
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
