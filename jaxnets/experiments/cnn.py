"""Seed 001: the tutorial's ``Net`` (two 3x3 convolutions, three linear layers), L1 loss, SGD.

The tutorial builds ``Net()``, draws ``input = randn(1,1,32,32)`` and ``target = randn(2)``, takes
``nn.L1Loss()``, zeroes the gradients, backpropagates, steps ``optim.SGD(lr=0.01)`` once and runs
the network again. Here the network is an NNX module in NHWC layout with torch's initialisers; its
functional form ``apply(params, x)`` merges a pure parameter dict into the module's graph, and
``train`` repeats the tutorial's step ``steps`` times as one ``lax.scan`` so there is a trajectory
to compare. Batch size is a parameter (the tutorial's is 1).
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import losses, nn, optim, validate
from jaxnets.experiments import _protocol, _script, catalog
from jaxnets.train import Data, fit, init_loop_state, make_runner

DEFAULTS = catalog.get("cnn")
IMAGE = (32, 32, 1)
Params = dict[str, dict[str, jax.Array]]
optimizer = optim.sgd
batch_plan = functools.partial(_protocol.batch_plan, DEFAULTS)


# Stateless, and not an attribute of Net, whose children are torch Net's: conv1 ... fc3.
_FLATTEN = nn.Flatten()


class Net(nnx.Module):
    """conv1(1->6, 3) relu conv2(6->16, 3) relu flatten fc1(->512) relu fc2(->64) relu fc3(->2).

    Takes NHWC images ``(B, 32, 32, 1)`` and returns ``(B, 2)``. The tutorial's
    ``x.view(-1, 16*28*28)`` is ``jaxnets.nn.Flatten``'s: it flattens in torch's ``(C, H, W)``
    order, so fc1's kernel is torch's ``weight.T`` and torch's weights load by layer type.

    Args:
      dtype: parameter dtype.
      rngs: NNX random streams (``params`` is used).

    >>> net = nnx.eval_shape(lambda: Net(rngs=nnx.Rngs(0)))  # shapes only, nothing allocated
    >>> net.conv1.kernel.shape, net.fc1.kernel.shape, net.fc3.kernel.shape
    ((3, 3, 1, 6), (12544, 512), (64, 2))
    """

    def __init__(self, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs):
        self.conv1 = nn.Conv2d(1, 6, 3, dtype=dtype, rngs=rngs)
        self.conv2 = nn.Conv2d(6, 16, 3, dtype=dtype, rngs=rngs)
        self.fc1 = nn.Linear(16 * 28 * 28, 512, dtype=dtype, rngs=rngs)
        self.fc2 = nn.Linear(512, 64, dtype=dtype, rngs=rngs)
        self.fc3 = nn.Linear(64, 2, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.conv1(x))
        x = jax.nn.relu(self.conv2(x))
        x = _FLATTEN(x)
        x = jax.nn.relu(self.fc1(x))
        x = jax.nn.relu(self.fc2(x))
        return self.fc3(x)


# The NNX module ``params`` belong to: torch weights load into it by layer type, and it
# writes trained parameters as a torch ``state_dict``.
MODEL = Net


def param_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """The JAX-layout shape of every parameter, computed without allocating any.

    Returns:
      ``{"conv1": {"kernel": (3, 3, 1, 6), "bias": (6,)}, ...}`` for conv1, conv2, fc1, fc2, fc3.

    >>> shapes = param_shapes()
    >>> sorted(shapes), shapes["conv2"]["kernel"], shapes["fc1"]["kernel"]
    (['conv1', 'conv2', 'fc1', 'fc2', 'fc3'], (3, 3, 6, 16), (12544, 512))
    """
    return jax.tree.map(lambda leaf: tuple(leaf.shape), nn.abstract(Net)[1])


def apply(params: Params, x: ArrayLike) -> jax.Array:
    """Pure forward pass: ``Net`` with ``params`` (a pure dict) on NHWC ``x``.

    Args:
      params: a pure parameter dict shaped like :func:`param_shapes`.
      x: ``(B, 32, 32, 1)`` images.

    Returns:
      ``(B, 2)`` outputs.

    >>> params, data = jax.eval_shape(init, jax.random.key(0))  # shapes only
    >>> jax.eval_shape(apply, params, data.train[0]).shape
    (1, 2)
    """
    return nn.apply_pure(Net, params, x)


def init(
    key: jax.Array, *, batch_size: int = DEFAULTS.batch_size, dtype: jnp.dtype = jnp.float32
) -> tuple[Params, Data]:
    """Draw ``(params, Data((x, target)))``: a torch-initialised ``Net``, standard-normal data.

    Args:
      key: a ``jax.random.key``.
      batch_size: images ``B`` (tutorial: 1).
      dtype: dtype of the parameters and data.

    Returns:
      ``params`` shaped like :func:`param_shapes` and the training arrays ``x: (B, 32, 32, 1)``,
      ``target: (B, 2)``.

    >>> init_2 = lambda key: init(key, batch_size=2)
    >>> params, data = jax.eval_shape(init_2, jax.random.key(0))  # shapes only
    >>> x, target = data.train
    >>> params["fc3"]["kernel"].shape, x.shape, target.shape
    ((64, 2), (2, 32, 32, 1), (2, 2))
    """
    batch_size = validate.positive_int(batch_size, "batch_size")
    key_net, key_x, key_target = jax.random.split(key, 3)
    net = Net(dtype=dtype, rngs=nnx.Rngs(params=key_net))
    params = nnx.to_pure_dict(nnx.state(net, nnx.Param))
    x = jax.random.normal(key_x, (batch_size, *IMAGE), dtype)
    target = jax.random.normal(key_target, (batch_size, 2), dtype)
    return params, Data((x, target))


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``nn.L1Loss()(net(x), target)``: mean absolute error over the batch and both outputs.

    Args:
      params: a pure parameter dict shaped like :func:`param_shapes`.
      batch: ``(x, target)`` with ``x: (B, 32, 32, 1)`` and ``target: (B, 2)``.

    Returns:
      The scalar loss, shape ``()``.

    >>> params, data = jax.eval_shape(init, jax.random.key(0))  # shapes only
    >>> jax.eval_shape(loss_fn, params, data.train).shape
    ()
    """
    x, target = batch
    return losses.l1_loss(apply(params, x), target)


# XLA:CPU's copy insertion otherwise copies fc1's 25 MB kernel at the top of every scanned step:
# the update writes the buffer that the input gradient still reads, and only region analysis sees
# that the read is scheduled first. Measured at batch 1: 4.3 -> 1.7 ms per step. It is an option
# of this program, not a global flag, because it slows other programs (the mlp's step 0.25 ->
# 0.36 ms). Backends other than CPU do not read it.
COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def check_inputs(params: Params, x: ArrayLike, target: ArrayLike) -> None:
    """Raise one clear error for wrong parameter keys/shapes or wrong input shapes.

    Args:
      params: must match :func:`param_shapes`.
      x: ``(B, 32, 32, 1)`` floating images.
      target: ``(B, 2)`` floating targets.

    Returns:
      ``None``; raises ``ValueError`` (structure, shapes) or ``TypeError`` (dtypes).

    >>> params, data = jax.eval_shape(init, jax.random.key(0))  # shapes only
    >>> check_inputs(params, *data.train)
    >>> try:
    ...     check_inputs(params, jnp.zeros((1, 28, 28, 1), jnp.float32), data.train[1])
    ... except ValueError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    shape mismatch: x: expected shape (B=1, 32, 32, 1), got (1, 28, 28, 1) ...
    """
    expected = param_shapes()
    problems = []
    try:
        got = jax.tree.map(lambda leaf: tuple(jnp.shape(leaf)), params)
    except Exception:  # noqa: BLE001 - any non-tree input is reported below
        got = None
    if got != expected:
        problems.append(f"params must have the structure and shapes {expected}, got {got}")
    spec = {"x": (x, ("B", *IMAGE)), "target": (target, ("B", 2))}
    try:
        validate.shapes(spec)
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise ValueError("; ".join(problems))
    validate.floating(
        {"x": x, "target": target, **{f"params[{k!r}]": v["kernel"] for k, v in params.items()}}
    )


def train(
    params: Params,
    x: ArrayLike,
    target: ArrayLike,
    *,
    steps: int = DEFAULTS.steps,
    learning_rate: float = DEFAULTS.learning_rate,
) -> tuple[Params, jax.Array]:
    """Repeat the tutorial's SGD step ``steps`` times as one jitted ``lax.scan``.

    ``losses[0]`` is the tutorial's first loss and ``apply(final_params, x)`` after ``steps=1``
    is its second forward pass. Arguments are checked before anything is compiled.

    Args:
      params: a pure parameter dict shaped like :func:`param_shapes`.
      x: ``(B, 32, 32, 1)`` images.
      target: ``(B, 2)`` targets.
      steps: optimiser steps.
      learning_rate: SGD learning rate (tutorial: 0.01).

    Returns:
      ``(final_params, losses)``: params of the input shapes and ``losses: (steps,)``.

    >>> params, data = jax.eval_shape(init, jax.random.key(0))  # shapes only
    >>> try:
    ...     train(params, *data.train, steps=0)
    ... except ValueError as err:
    ...     print(err)
    steps must be >= 1, got 0
    """
    check_inputs(params, x, target)
    return fit(
        loss_fn,
        optimizer,
        params,
        (x, target),
        steps=steps,
        learning_rate=learning_rate,
        compiler_options=COMPILER_OPTIONS,
    )


@functools.partial(jax.jit, static_argnames="steps", compiler_options=COMPILER_OPTIONS)
def tutorial_run(
    params: Params, x: jax.Array, target: jax.Array, learning_rate: float, *, steps: int
) -> tuple[jax.Array, jax.Array, jax.Array, Params]:
    """The script's whole run as one compiled program: the tutorial's demo and ``steps`` steps.

    The demo (the output before the step, the loss, the output after one SGD step) is the first
    step of the trajectory, not a run of its own: the step's state is read between a one-step
    chunk and the rest of the run, which continue exactly as one ``train`` call does.

    Args:
      params: a pure parameter dict shaped like :func:`param_shapes`.
      x: ``(B, 32, 32, 1)`` images.
      target: ``(B, 2)`` targets.
      learning_rate: SGD learning rate (traced).
      steps: optimiser steps, ``>= 1``.

    Returns:
      ``(out_before, out_after_one_step, losses, final_params)`` with ``losses: (steps,)``.
    """
    run_chunk = make_runner(loss_fn, optimizer, donate=False)
    batch = (x, target)
    first, (loss, _) = run_chunk(init_loop_state(params, optimizer), batch, learning_rate, length=1)
    state, losses = first, loss
    if steps > 1:
        state, (rest, _) = run_chunk(first, batch, learning_rate, length=steps - 1)
        losses = jnp.concatenate([loss, rest])
    return apply(params, x), apply(first.train.params, x), losses, state.train.params


def main(argv: list[str] | None = None) -> None:
    """Command line: the tutorial's run, printing the network's output before the step, the L1 loss,
    the output after one SGD step, then ``step <t>  loss <loss>`` for ``--steps`` steps, and the
    path of the saved loss curve (``--help`` lists the options).
    """
    args, params, data = _script.setup(sys.modules[__name__], argv)
    x, target = data.train
    check_inputs(params, x, target)
    steps = validate.positive_int(args.steps, "steps")
    run = tutorial_run(params, x, target, validate.learning_rate(args.lr), steps=steps)
    before, after, trajectory, _ = jax.device_get(run)
    print("out before the step:", before.tolist())
    print("L1 loss:", float(trajectory[0]))
    print("out after one SGD step:", after.tolist())
    for t, loss in enumerate(trajectory.tolist()):
        print(f"step {t}  loss {loss}")
    path = _script.save_loss_plot(trajectory, args.plot, "Net: L1 loss", "Step")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    _script.run_as_script(main)
