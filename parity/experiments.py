"""The registry: for each experiment, how to run the torch original and feed its arrays to JAX.

An adapter only maps names and layouts; running, converting and judging are shared in
``parity.runner``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.experiments import (
    autograd_basics,
    cnn,
    custom_backward,
    digits,
    linear_regression,
    mlp,
    module_regression,
)
from parity import convert
from parity.torch_ref import Reference
from parity.torch_ref import autograd as autograd_ref
from parity.torch_ref import cnn as cnn_ref
from parity.torch_ref import custom as custom_ref
from parity.torch_ref import digits as digits_ref
from parity.torch_ref import linear as linear_ref
from parity.torch_ref import mlp as mlp_ref
from parity.torch_ref import module_regression as module_regression_ref


@dataclass(frozen=True)
class Experiment:
    """How one tutorial is run both ways.

    ``run_torch(seed, dtype, steps, batch_size, device, **overrides)`` returns a ``Reference``;
    ``train(params, ref, steps)`` is the jaxnets training run on the reference's data (params
    already converted); ``loss_fn(params, grad_batch(ref))`` gives the first-step gradients;
    ``metrics(final_params, ref)`` computes end-of-run figures to set beside ``ref.metrics``;
    each must agree with torch's to 0.01 and, in a run of the default length, reach its
    ``metric_floors`` entry in both frameworks.
    """

    name: str
    summary: str
    default_steps: int
    steps_meaning: str
    batch_size_option: bool
    run_torch: Callable[..., Reference]
    layout: convert.Layout
    template: Callable[[], Any]
    train: Callable[[Any, Reference, int], tuple[Any, Any]]
    loss_fn: Callable[[Any, Any], Any]
    grad_batch: Callable[[Reference], tuple[Any, ...]]
    metrics: Callable[[Any, Reference], dict[str, float]] | None = None
    metric_floors: dict[str, float] | None = None


def _nnx_shapes(module: type) -> Any:
    """Parameter shapes of an NNX module class, traced without allocating."""
    return jax.tree.map(lambda leaf: tuple(leaf.shape), nn.abstract(module)[1])


def _inputs(*names: str) -> Callable[[Reference], tuple[Any, ...]]:
    return lambda ref: tuple(ref.inputs[name] for name in names)


def _first_loader_batch(*names: str) -> Callable[[Reference], tuple[Any, ...]]:
    """The torch loader's first batch: the first ``batch_size`` indices of epoch 0's order."""

    def first(ref: Reference) -> tuple[Any, ...]:
        index = ref.inputs["orders"][0][: int(ref.inputs["batch_size"])]
        return tuple(ref.inputs[name][index] for name in names)

    return first


def _loader_train(module, x: str, y: str):
    """jaxnets' epoch training on torch's data, batch size and sampler order."""

    def train(params, ref: Reference, steps: int):
        return module.train(
            params,
            ref.inputs[x],
            ref.inputs[y],
            epochs=steps,
            batch_size=int(ref.inputs["batch_size"]),
            orders=ref.inputs["orders"],
        )

    return train


def _with_batch_size(run, name: str = "batch_size"):
    """Adapt a torch ``run`` to the shared signature, passing ``--batch-size`` as ``name``."""

    def run_torch(seed, dtype, steps, batch_size, device, steps_name="steps", **overrides):
        if batch_size is not None and name is not None:
            overrides[name] = batch_size
        return run(seed, dtype=dtype, device=device, **{steps_name: steps}, **overrides)

    return run_torch


def _cnn_batch(ref: Reference) -> tuple[Any, ...]:
    return convert.nchw_to_nhwc(ref.inputs["input"]), ref.inputs["target"]


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
        train=lambda params, ref, steps: linear_regression.train(
            params["w"], ref.inputs["xs"], ref.inputs["ys"], epochs=steps
        ),
        loss_fn=lambda params, sample: linear_regression.loss_fn(params["w"], sample),
        grad_batch=lambda ref: (ref.inputs["xs"][0], ref.inputs["ys"][0]),
    ),
    "mlp": Experiment(
        name="mlp",
        summary="seed 000: 64x1000 -> 100 -> 10 ReLU net, sum of squares, manual SGD 1e-6",
        default_steps=500,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=_with_batch_size(mlp_ref.run, "n"),
        layout=convert.MLP_LAYOUT,
        template=lambda: None,
        train=lambda params, ref, steps: mlp.train(
            params, ref.inputs["X"], ref.inputs["y"], steps=steps
        ),
        loss_fn=mlp.loss_fn,
        grad_batch=_inputs("X", "y"),
    ),
    "cnn": Experiment(
        name="cnn",
        summary="seed 001: Net (2 conv + 3 fc), L1 loss, SGD lr 0.01",
        default_steps=100,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=_with_batch_size(cnn_ref.run),
        layout=convert.NET_LAYOUT,
        template=cnn.param_shapes,
        train=lambda params, ref, steps: cnn.train(params, *_cnn_batch(ref), steps=steps),
        loss_fn=cnn.loss_fn,
        grad_batch=_cnn_batch,
    ),
    "custom": Experiment(
        name="custom",
        summary="seed 004: binary weights via straight-through sign, clipped grads, L2 in backward",
        default_steps=100,
        steps_meaning="steps",
        batch_size_option=True,
        run_torch=_with_batch_size(custom_ref.run, "n"),
        layout=convert.CUSTOM_LAYOUT,
        template=lambda: None,
        train=lambda params, ref, steps: custom_backward.train(
            params, ref.inputs["X"], ref.inputs["y"], steps=steps
        ),
        loss_fn=custom_backward.loss_fn,
        grad_batch=_inputs("X", "y"),
    ),
    "module_regression": Experiment(
        name="module_regression",
        summary="seed 004: nn.Module Linear(1,1), shuffled DataLoader (batch 10), SGD, 20 epochs",
        default_steps=20,
        steps_meaning="epochs (10 batches each)",
        batch_size_option=True,
        run_torch=functools.partial(
            _with_batch_size(module_regression_ref.run), steps_name="epochs"
        ),
        layout=convert.MODULE_REGRESSION_LAYOUT,
        template=lambda: _nnx_shapes(module_regression.LinearRegression),
        train=_loader_train(module_regression, "x", "y"),
        loss_fn=module_regression.loss_fn,
        grad_batch=_first_loader_batch("x", "y"),
    ),
    "digits": Experiment(
        name="digits",
        summary="real data: sklearn 8x8 digits, 64-128-10 classifier, Adam, batch 32, 10 epochs",
        default_steps=10,
        steps_meaning="epochs (45 batches each)",
        batch_size_option=True,
        run_torch=functools.partial(_with_batch_size(digits_ref.run), steps_name="epochs"),
        layout=convert.DIGITS_LAYOUT,
        template=lambda: _nnx_shapes(digits.Classifier),
        train=_loader_train(digits, "x", "labels"),
        loss_fn=digits.loss_fn,
        grad_batch=_first_loader_batch("x", "labels"),
        metrics=lambda params, ref: {
            "accuracy": digits.accuracy(params, ref.inputs["x_test"], ref.inputs["labels_test"])
        },
        metric_floors={"accuracy": 0.95},
    ),
    "autograd": LessonExperiment(
        name="autograd",
        summary="seed 003: grads of x**2, vector backward, detach, accumulation, graph, 5 losses",
        run_torch=autograd_ref.run,
        lessons=autograd_basics.lessons,
        vector_error=lambda inputs: autograd_basics.vector_grad_error(inputs["x_vector"]),
        loss_keys=tuple(
            f"{name}_{reduction}"
            for name in autograd_basics.LOSSES
            for reduction in autograd_basics.REDUCTIONS
        ),
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
