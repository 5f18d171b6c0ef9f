"""The built-in experiments, each a jaxnets experiment module beside its torch original.

An entry is declarative: which torch reference to run, which of its arrays form the jaxnets
:class:`~jaxnets.train.Data`, and, for a tutorial built of modules, the torch module class and
loss name that ``parity.check_port`` compares layer by layer. Parameters convert by layer type
(``parity.convert.from_torch``); everything else is read from the experiment module's protocol
(defaults, ``init``, ``loss_fn``, ``optimizer``, ``batch_plan``, ``evaluate``, ``MODEL``) and
done once, here and in ``parity.runner``, for every experiment alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets._arrays import to_device as leaf_to_device
from jaxnets.data import plan as plan_lib
from jaxnets.experiments import (
    _protocol,
    cnn,
    custom_backward,
    digits,
    linear_regression,
    mlp,
    module_regression,
)
from jaxnets.lessons import autograd_basics
from jaxnets.train import Data
from parity import convert
from parity.torch_ref import Reference
from parity.torch_ref import autograd as autograd_ref
from parity.torch_ref import cnn as cnn_ref
from parity.torch_ref import custom as custom_ref
from parity.torch_ref import digits as digits_ref
from parity.torch_ref import linear as linear_ref
from parity.torch_ref import mlp as mlp_ref
from parity.torch_ref import module_regression as module_regression_ref

PyTree = Any


class JaxInputs(NamedTuple):
    """A torch run's starting point in jaxnets' layouts: what the jaxnets side trains from.

    Attributes:
      params: the torch initial parameters, converted.
      data: the torch data as the experiment's :class:`~jaxnets.train.Data`.
      orders: ``[epochs, n]`` torch's sampler orders (loader experiments), else ``None``.
      batch_size: the loader's batch size, else ``None``.
      template: the shapes of the parameters (tuples).
    """

    params: PyTree
    data: Data
    orders: Any
    batch_size: int | None
    template: PyTree


@dataclass(frozen=True)
class Experiment:
    """A trainable tutorial, run both ways.

    Attributes:
      name: the experiment's name (its module's ``DEFAULTS.name``).
      module: the jaxnets experiment module.
      reference: the torch original's ``run(seed, *, dtype, device, learning_rate, <span>,
        <size_option>, **sizes) -> Reference``.
      train: names in ``Reference.inputs`` of the training arrays, in ``Data.train`` order.
      held_out: names of the held-out arrays, if the module evaluates.
      size_option: the reference's keyword for the batch size (``--batch-size``), if any.
      channels_last: inputs torch gives as NCHW, which jaxnets takes as NHWC.
      torch_model: the torch ``nn.Module`` class of a tutorial built of modules (the module's
        ``MODEL`` is its port), compared layer by layer by ``check_port`` at the first step.
      loss: the ``torch.nn.functional`` name of its loss, for ``check_port``.
    """

    name: str
    module: ModuleType
    reference: Callable[..., Reference]
    train: tuple[str, ...]
    held_out: tuple[str, ...] = ()
    size_option: str | None = None
    channels_last: frozenset[str] = field(default_factory=frozenset)
    torch_model: type | None = None
    loss: str | None = None

    @property
    def summary(self) -> str:
        """The catalogue's one-line summary."""
        return self.module.DEFAULTS.summary

    @property
    def default_steps(self) -> int:
        """The tutorial's run length, in :attr:`steps_meaning` units."""
        defaults = self.module.DEFAULTS
        return defaults.steps if defaults.epochs is None else defaults.epochs

    @property
    def steps_meaning(self) -> str:
        """``"steps"`` or ``"epochs"``: what ``--steps`` counts for this experiment."""
        return "steps" if self.module.DEFAULTS.epochs is None else "epochs"

    @property
    def batch_size_option(self) -> bool:
        """Whether ``--batch-size`` applies."""
        return self.size_option is not None

    def run_torch(
        self, seed: int, dtype: Any, steps: int, batch_size: int | None, device: str, **sizes: Any
    ) -> Reference:
        """The torch original for ``steps`` (in :attr:`steps_meaning` units) at the defaults."""
        options = {self.steps_meaning: steps, **sizes}
        if batch_size is not None and self.size_option is not None:
            options[self.size_option] = batch_size
        return self.reference(
            seed,
            dtype=dtype,
            device=device,
            learning_rate=self.module.DEFAULTS.learning_rate,
            **options,
        )

    def jax_inputs(self, reference: Reference, **sizes: Any) -> JaxInputs:
        """Convert ``reference``'s start to jaxnets: see :class:`JaxInputs`.

        ``sizes`` are the reference's size keywords (e.g. the mlp's ``n``, ``d_in``); raw-tensor
        parameters are checked against the shapes the module's ``init`` gives for them.
        """
        inputs = reference.inputs
        batch_size = int(inputs["batch_size"]) if "batch_size" in inputs else None
        init_sizes = {
            ("batch_size" if key == self.size_option else key): value
            for key, value in sizes.items()
        }
        if self.size_option is not None and self.size_option != "batch_size":
            init_sizes["batch_size"] = len(inputs[self.train[0]])
        template = jax.eval_shape(
            lambda key: self.module.init(key, **init_sizes)[0], jax.random.key(0)
        )
        template = jax.tree.map(lambda leaf: tuple(leaf.shape), template)
        params = self.to_params(reference.params, template)
        data = Data(
            tuple(self._array(inputs, name) for name in self.train),
            tuple(self._array(inputs, name) for name in self.held_out) or None,
        )
        orders = inputs.get("orders")
        return JaxInputs(to_device(params), data, orders, batch_size, template)

    def to_params(self, state: Mapping[str, np.ndarray], template: PyTree) -> PyTree:
        """torch tensors (the initial ``state_dict``, or gradients keyed alike) as the module's
        parameters, by layer type (``template``: the parameter shapes, for raw tensors)."""
        return convert.from_torch(self.module, state, template)

    def _array(self, inputs: Mapping[str, np.ndarray], name: str) -> jax.Array:
        value = inputs[name]
        if name in self.channels_last:
            value = convert.nchw_to_nhwc(value)
        return leaf_to_device(value)

    def plan(self, start: JaxInputs) -> plan_lib.Plan:
        """The module's batch plan for this run."""
        return self.module.batch_plan(start.batch_size)

    def fit(
        self, start: JaxInputs, steps: int, *, stacked: bool = False
    ) -> tuple[PyTree, np.ndarray]:
        """The jaxnets run: the module's loss and optimiser through the one driver (``stacked``:
        ``start``'s parameters and training arrays hold runs on a leading axis, run at once).

        Returns:
          ``(final_params, losses)`` with one loss per optimiser step.
        """
        params, losses = _protocol.fit_experiment(
            self.module,
            start.params,
            start.data.train,
            learning_rate=self.module.DEFAULTS.learning_rate,
            batch_size=start.batch_size,
            orders=start.orders,
            stacked=stacked,
            **{self.steps_meaning: steps},
        )
        return params, np.asarray(losses)

    def first_grads(self, start: JaxInputs) -> PyTree:
        """The gradients of the first step, on the batch the plan gives it."""
        plan = self.plan(start)
        n = _samples(start.data)
        order = leaf_to_device(start.orders[0]) if start.orders is not None else jnp.arange(n)
        last = plan.steps_per_epoch(n) == 1 and plan.last_size(n) is not None
        batch = plan_lib.batch(plan, start.data.train, order, 0, last=last)
        return _grad_fn(self.module.loss_fn)(start.params, batch)

    def metrics(self, final_params: PyTree, start: JaxInputs) -> dict[str, float]:
        """The module's held-out metrics of the run's end, if it evaluates."""
        evaluate = getattr(self.module, "evaluate", None)
        return evaluate(final_params, start.data) if evaluate else {}


def _samples(data: Data) -> int:
    return int(jax.tree.leaves(data.train)[0].shape[0])


@functools.cache
def _grad_fn(loss_fn):
    return jax.jit(jax.grad(loss_fn))


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


def _vector_error(inputs: dict) -> str:
    return autograd_basics.vector_grad_error(inputs["x_vector"])


EXPERIMENTS: dict[str, Experiment | LessonExperiment] = {
    entry.name: entry
    for entry in (
        Experiment(
            "linear",
            linear_regression,
            linear_ref.run,
            train=("xs", "ys"),
        ),
        Experiment(
            "mlp",
            mlp,
            mlp_ref.run,
            train=("X", "y"),
            size_option="n",
        ),
        Experiment(
            "cnn",
            cnn,
            cnn_ref.run,
            train=("input", "target"),
            size_option="batch_size",
            channels_last=frozenset({"input"}),
            torch_model=cnn_ref.Net,
            loss="l1_loss",
        ),
        Experiment(
            "custom",
            custom_backward,
            custom_ref.run,
            train=("X", "y"),
            size_option="n",
        ),
        Experiment(
            "module_regression",
            module_regression,
            module_regression_ref.run,
            train=("x", "y"),
            size_option="batch_size",
            torch_model=module_regression_ref.LinearRegression,
            loss="mse_loss",
        ),
        Experiment(
            "digits",
            digits,
            digits_ref.run,
            train=("x", "labels"),
            held_out=("x_test", "labels_test"),
            size_option="batch_size",
            torch_model=digits_ref.Classifier,
            loss="cross_entropy",
        ),
        LessonExperiment(
            name="autograd",
            summary="seed 003: grads of x**2, vector backward, detach, accumulation, graph, "
            "5 losses",
            run_torch=autograd_ref.run,
            # One compiled program for all 28 results rather than one per eager op.
            lessons=jax.jit(autograd_basics.lessons),
            vector_error=_vector_error,
            loss_keys=tuple(
                f"{name}_{reduction}"
                for name in autograd_basics.LOSSES
                for reduction in autograd_basics.REDUCTIONS
            ),
        ),
    )
}


def to_device(tree: Any) -> Any:
    """NumPy leaves to JAX arrays, keeping their dtype (float32 stays float32 under x64)."""
    return jax.tree.map(leaf_to_device, tree)
