"""The registry: for each experiment, how to run the torch original and feed its arrays to JAX.

An adapter only maps names and layouts; running, converting and judging are shared in
``parity.runner``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxnets.experiments import cnn, custom_backward, linear_regression, mlp
from parity import convert
from parity.torch_ref import Reference
from parity.torch_ref import cnn as cnn_ref
from parity.torch_ref import custom as custom_ref
from parity.torch_ref import linear as linear_ref
from parity.torch_ref import mlp as mlp_ref


@dataclass(frozen=True)
class Experiment:
    """How one tutorial is run both ways.

    ``run_torch(seed, dtype, steps, batch_size, device, **overrides)`` returns a ``Reference``;
    ``batch(ref)`` turns its inputs into the JAX batch; ``train(params, batch, steps)`` is the
    jaxnets training run; ``loss_fn(params, batch)`` gives the first-step gradients.
    """

    name: str
    summary: str
    default_steps: int
    steps_meaning: str
    batch_size_option: bool
    run_torch: Callable[..., Reference]
    layout: convert.Layout
    template: Callable[[], Any]
    batch: Callable[[Reference], tuple[Any, ...]]
    train: Callable[[Any, tuple[Any, ...], int], tuple[Any, Any]]
    loss_fn: Callable[[Any, Any], Any]


def _mlp_torch(seed, dtype, steps, batch_size, device, **overrides):
    if batch_size is not None:
        overrides["n"] = batch_size
    return mlp_ref.run(seed, dtype=dtype, steps=steps, device=device, **overrides)


@dataclass(frozen=True)
class LessonExperiment:
    """A tutorial of lessons rather than a training run: named results compared one by one.

    ``run_torch(seed, dtype, device)`` returns ``(inputs, results, vector_backward_error)``;
    ``lessons(inputs)`` is the jaxnets side; ``vector_error(inputs)`` its failure message.
    ``loss_keys`` name the results that are loss values (the JSON's loss lists).
    """

    name: str
    summary: str
    run_torch: Callable[..., tuple[dict, dict, str]]
    lessons: Callable[[dict], dict]
    vector_error: Callable[[dict], str]
    loss_keys: tuple[str, ...]
    batch_size_option: bool = False
    default_steps: int = 1


EXPERIMENTS: dict[str, Experiment | LessonExperiment] = {
    "linear": Experiment(
        name="linear",
        summary="seed 002: y = w*x, per-sample SGD, 100 epochs x 3 samples",
        default_steps=100,
        steps_meaning="epochs (3 updates each)",
        batch_size_option=False,
        run_torch=lambda seed, dtype, steps, batch_size, device, **kw: linear_ref.run(
            seed, dtype=dtype, epochs=steps, device=device, **kw
        ),
        layout=convert.LINEAR_LAYOUT,
        template=lambda: {"w": (1,)},
        batch=lambda ref: (ref.inputs["xs"], ref.inputs["ys"]),
        train=lambda params, batch, steps: linear_regression.train(
            params["w"], *batch, epochs=steps
        ),
        loss_fn=lambda params, batch: linear_regression.loss_fn(
            params["w"], (batch[0][0], batch[1][0])
        ),
    ),
    "mlp": Experiment(
        name="mlp",
        summary="seed 000: 64x1000 -> 100 -> 10 ReLU net, sum of squares, manual SGD 1e-6",
        default_steps=500,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=_mlp_torch,
        layout=convert.MLP_LAYOUT,
        template=lambda: None,
        batch=lambda ref: (ref.inputs["X"], ref.inputs["y"]),
        train=lambda params, batch, steps: mlp.train(params, *batch, steps=steps),
        loss_fn=mlp.loss_fn,
    ),
    "cnn": Experiment(
        name="cnn",
        summary="seed 001: Net (2 conv + 3 fc), L1 loss, SGD lr 0.01",
        default_steps=100,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=lambda seed, dtype, steps, batch_size, device, **kw: cnn_ref.run(
            seed, dtype=dtype, steps=steps, batch_size=batch_size or 1, device=device, **kw
        ),
        layout=convert.NET_LAYOUT,
        template=cnn.param_shapes,
        batch=lambda ref: (convert.nchw_to_nhwc(ref.inputs["input"]), ref.inputs["target"]),
        train=lambda params, batch, steps: cnn.train(params, *batch, steps=steps),
        loss_fn=cnn.loss_fn,
    ),
    "custom": Experiment(
        name="custom",
        summary="seed 004: binary weights via straight-through sign, clipped grads, L2 in backward",
        default_steps=100,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=lambda seed, dtype, steps, batch_size, device, **kw: custom_ref.run(
            seed,
            dtype=dtype,
            steps=steps,
            device=device,
            **({"n": batch_size} if batch_size else {}),
            **kw,
        ),
        layout=convert.CUSTOM_LAYOUT,
        template=lambda: None,
        batch=lambda ref: (ref.inputs["X"], ref.inputs["y"]),
        train=lambda params, batch, steps: custom_backward.train(params, *batch, steps=steps),
        loss_fn=custom_backward.loss_fn,
    ),
}


def params_template(experiment: Experiment, reference: Reference) -> Any:
    """The jaxnets shapes the converted params must have; raw-tensor experiments take torch's."""
    template = experiment.template()
    if template is None:
        template = {
            rule.path[-1]: np.shape(reference.params[key])
            for key, rule in experiment.layout.items()
        }
    return template


def to_device(tree: Any) -> Any:
    """NumPy leaves to JAX arrays, keeping their dtype (float32 stays float32 under x64)."""
    if isinstance(tree, dict):
        return {k: to_device(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(to_device(v) for v in tree)
    return jnp.asarray(tree)
