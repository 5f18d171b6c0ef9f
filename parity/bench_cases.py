"""What ``parity.bench`` times: per experiment, the jaxnets run and the PyTorch step, same data.

A ``Case`` starts from one torch reference draw (``Experiment.run_torch`` for one step, so the
initial weights and inputs are exactly the tutorial's for the seed), converts it to jaxnets'
layouts like the parity suite does, and builds three things from it: the parity suite's jaxnets
run (``Experiment.fit``, one compiled program, on JAX's default device); the tutorial's torch
training step, which is the torch reference's own ``make_step`` (the step its ``run`` trains
with), bound to torch tensors built from the same arrays on the requested torch device; and a
``reset`` that puts the torch weights back in place and empties the optimiser's state, so that
every timed torch run trains from the same start. FLOPs per step are counted analytically
(forward, backward and the SGD update; multiply-add = 2), for the fraction-of-peak column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import jax
import numpy as np
import torch

from jaxnets.experiments import cnn
from parity.experiments import EXPERIMENTS, Experiment, JaxInputs
from parity.torch_ref import Reference, TrainingStep
from parity.torch_ref import cnn as cnn_ref
from parity.torch_ref import custom as custom_ref
from parity.torch_ref import digits as digits_ref
from parity.torch_ref import linear as linear_ref
from parity.torch_ref import mlp as mlp_ref
from parity.torch_ref import module_regression as module_regression_ref

TorchStep = Callable[..., torch.Tensor]


@dataclass
class Case:
    """One experiment at one setting, ready to time.

    ``run_jax()`` runs all ``steps`` through jaxnets and returns the losses on the host.
    ``torch_step(*args)`` is one tutorial step returning the detached loss; step ``t`` gets
    ``eager_args[t % len(eager_args)]`` (``compiled_args`` under ``torch.compile``, which wants
    tensors where the tutorial passes Python floats). ``reset()`` restores the initial weights.
    ``trace_backward``: ``torch.compile`` traces ``backward`` into the step's graph.
    """

    experiment: str
    setting: str
    batch_size: int | None
    steps: int
    flops_per_step: float
    run_jax: Callable[[], np.ndarray]
    torch_step: TorchStep
    reset: Callable[[], None]
    eager_args: Sequence[tuple[Any, ...]] = ((),)
    compiled_args: Sequence[tuple[Any, ...]] = ((),)
    trace_backward: bool = True
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.experiment} {self.setting}"


# ---------------------------------------------------------------------------------- FLOPs


def dense_flops(rows: int, inputs: int, outputs: int, *, input_grad: bool) -> float:
    """``y = x @ W`` with ``x: (rows, inputs)``: forward, weight gradient, input gradient."""
    product = 2.0 * rows * inputs * outputs
    return product * (3 if input_grad else 2)


def sgd_flops(params: int) -> float:
    """``p -= lr * g``: one multiply and one subtract per parameter."""
    return 2.0 * params


def mlp_flops(n: int, d_in: int, hidden: int, d_out: int) -> float:
    """Two products (the first needs no input gradient), clamp and its mask, the squared error
    and its gradient, and the update."""
    products = dense_flops(n, d_in, hidden, input_grad=False) + dense_flops(
        n, hidden, d_out, input_grad=True
    )
    elementwise = 2 * n * hidden + 5 * n * d_out
    return products + elementwise + sgd_flops(d_in * hidden + hidden * d_out)


def cnn_flops(batch_size: int) -> float:
    """The tutorial ``Net``: each convolution is a product over ``kh*kw*C_in`` per output pixel
    (conv1 needs no input gradient); bias and ReLU forward and backward; L1 loss; the update."""
    shapes = cnn.param_shapes()
    size, _, _ = cnn.IMAGE
    total, params = 0.0, 0
    for index, name in enumerate(("conv1", "conv2")):
        kh, kw, c_in, c_out = shapes[name]["kernel"]
        size = size - kh + 1
        rows = batch_size * size * size
        total += dense_flops(rows, kh * kw * c_in, c_out, input_grad=index > 0)
        total += 4 * rows * c_out
    for name in ("fc1", "fc2", "fc3"):
        fan_in, fan_out = shapes[name]["kernel"]
        total += dense_flops(batch_size, fan_in, fan_out, input_grad=True)
        total += 4 * batch_size * fan_out
    for layer in shapes.values():
        params += sum(math.prod(shape) for shape in layer.values())
    return total + 4 * batch_size * 2 + sgd_flops(params)


def custom_flops(n: int, d: int) -> float:
    """``X @ sign(W)`` (no input gradient), the scale, MSE, the custom backward's clip, STE mask
    and penalty, and the update."""
    return dense_flops(n, d, 1, input_grad=False) + 8 * n + 6 * d + sgd_flops(d + 1)


# Per update: x*w, -y, square; backward 2*(x*w - y)*x; the update.
LINEAR_FLOPS = 3 + 3 + sgd_flops(1)
# Per parameter of an Adam update: two moment updates (3 each), the two bias corrections, the
# square root, the epsilon, the division, and the scaled subtraction.
ADAM_FLOPS_PER_PARAM = 12


def classifier_flops(rows: int, layers: Sequence[tuple[int, int]], *, adam: bool) -> float:
    """Linear layers with biases and ReLUs between them (the first needs no input gradient), a
    loss of a few operations per output, and the SGD or Adam update."""
    total, params = 0.0, 0
    for index, (fan_in, fan_out) in enumerate(layers):
        total += dense_flops(rows, fan_in, fan_out, input_grad=index > 0) + 4 * rows * fan_out
        params += fan_in * fan_out + fan_out
    total += 8 * rows * layers[-1][1]  # softmax / squared error and their gradients
    return total + (ADAM_FLOPS_PER_PARAM * params if adam else sgd_flops(params))


# ------------------------------------------------------------------------------- builders


def _tensor(array: np.ndarray, device: str, *, grad: bool = False) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array)).to(device)
    return tensor.requires_grad_(True) if grad else tensor


def _restorer(training: TrainingStep) -> Callable[[], None]:
    """Copy the initial weights back in place and start the optimiser afresh (Adam's moments
    and step count, as jaxnets' do): parameters keep their identity, so the optimiser and
    compiled functions keep pointing at them."""
    tensors = list(training.parameters.values())
    initial = [t.detach().clone() for t in tensors]

    def reset() -> None:
        with torch.no_grad():
            for tensor, value in zip(tensors, initial, strict=True):
                tensor.copy_(value)
                tensor.grad = None
        if training.optimizer is not None:
            training.optimizer.state.clear()

    return reset


def _reference(
    experiment: Experiment, seed: int, batch_size: int | None, steps: int = 1
) -> tuple[Reference, JaxInputs]:
    """The tutorial's draws for ``seed`` (``steps`` torch steps, one unless the run's data depend
    on them, as a loader's sampler orders do) and jaxnets' start converted from them."""
    reference = experiment.run_torch(seed, torch.float32, steps, batch_size, "cpu")
    return reference, experiment.jax_inputs(reference)


def _jax_runner(experiment: Experiment, start: JaxInputs, steps: int) -> Callable[[], np.ndarray]:
    """The registry's jaxnets run (the module's one driver, compiled once) from ``start``."""

    def run() -> np.ndarray:
        _, losses = experiment.fit(start, steps)
        return np.asarray(jax.block_until_ready(losses)).reshape(-1)  # per step, epochs flattened

    return run


def _learning_rate(experiment: Experiment) -> float:
    """The rate both frameworks train at: the module's default, which ``run_torch`` passes."""
    return experiment.module.DEFAULTS.learning_rate


def _module(model: torch.nn.Module, params: dict[str, np.ndarray], device: str) -> torch.nn.Module:
    """``model`` on ``device`` holding the reference's initial weights."""
    model.to(device)
    model.load_state_dict({k: _tensor(v, device) for k, v in params.items()})
    return model


def mlp_case(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
    """Seed 000's loop: ``X.mm(W1).clamp(min=0).mm(W2)``, sum of squares, manual SGD."""
    experiment = EXPERIMENTS["mlp"]
    reference, start = _reference(experiment, seed, batch_size)
    X, y = _tensor(reference.inputs["X"], device), _tensor(reference.inputs["y"], device)
    W1 = _tensor(reference.params["W1"], device, grad=True)
    W2 = _tensor(reference.params["W2"], device, grad=True)
    training = mlp_ref.make_step(X, y, W1, W2, learning_rate=_learning_rate(experiment))
    n, d_in = X.shape
    hidden, d_out = W2.shape
    return Case(
        "mlp",
        f"N={n}",
        n,
        steps,
        mlp_flops(n, d_in, hidden, d_out),
        _jax_runner(experiment, start, steps),
        training.step,
        _restorer(training),
    )


def cnn_case(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
    """Seed 001's step: ``Net``, ``L1Loss``, ``zero_grad``, ``backward``, ``SGD.step``."""
    experiment = EXPERIMENTS["cnn"]
    reference, start = _reference(experiment, seed, batch_size)
    net = _module(cnn_ref.Net(), reference.params, device)
    inputs = _tensor(reference.inputs["input"], device)
    target = _tensor(reference.inputs["target"], device)
    training = cnn_ref.make_step(net, inputs, target, learning_rate=_learning_rate(experiment))
    size = inputs.shape[0]
    return Case(
        "cnn",
        f"batch {size}",
        size,
        steps,
        cnn_flops(size),
        _jax_runner(experiment, start, steps),
        training.step,
        _restorer(training),
        # torch 2.13 with trace_autograd_ops assigns fc3.bias's gradient to fc3.weight
        # ("a gradient of size [2] to a tensor of size [2, 64]"), and the failed attempt
        # leaves the step uncompilable in-process, so the Net compiles with a graph break at
        # backward.
        trace_backward=False,
        note="torch.compile: graph break at backward (traced backward fails for Net)",
    )


def custom_case(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
    """Seed 004's custom-backward model: its ``autograd.Function`` s, MSE, ``optim.SGD``."""
    experiment = EXPERIMENTS["custom"]
    reference, start = _reference(experiment, seed, batch_size)
    W = _tensor(reference.params["W"], device, grad=True)
    scale = _tensor(reference.params["scale"], device, grad=True)
    X, y = _tensor(reference.inputs["X"], device), _tensor(reference.inputs["y"], device)
    training = custom_ref.make_step(W, scale, X, y, learning_rate=_learning_rate(experiment))
    n, d = X.shape
    return Case(
        "custom",
        f"N={n}",
        n,
        steps,
        custom_flops(n, d),
        _jax_runner(experiment, start, steps),
        training.step,
        _restorer(training),
    )


def linear_case(seed: int, epochs: int, batch_size: int | None, device: str = "cpu") -> Case:
    """Seed 002's per-sample update on ``w``; one step is one sample, 3 per epoch."""
    del batch_size  # the tutorial's three samples are its whole data set
    experiment = EXPERIMENTS["linear"]
    reference, start = _reference(experiment, seed, None)
    w = _tensor(reference.params["w"], device, grad=True)
    training = linear_ref.make_step(w, learning_rate=_learning_rate(experiment))
    samples = list(zip(linear_ref.x_data, linear_ref.y_data, strict=True))
    return Case(
        "linear",
        f"{len(samples)} samples",
        None,
        epochs * len(samples),
        LINEAR_FLOPS,
        _jax_runner(experiment, start, epochs),
        training.step,
        _restorer(training),
        eager_args=samples,
        compiled_args=[
            (torch.tensor(x, device=device), torch.tensor(y, device=device)) for x, y in samples
        ],
        note="steps are per-sample updates (epochs x 3)",
    )


def _loader_case(
    name: str,
    seed: int,
    epochs: int,
    batch_size: int | None,
    device: str,
    *,
    reference_module: ModuleType,
    model: torch.nn.Module,
    flops: Callable[[int], float],
) -> Case:
    """A shuffled-``DataLoader`` tutorial: one step is one batch of torch's sampler order.

    ``reference_module`` is the tutorial's ``parity.torch_ref`` module, whose ``make_step`` trains
    ``model`` on the experiment's training arrays. The torch loops get the batches the loader
    yielded, collated in advance, so the timing of the torch side leaves out the
    ``DataLoader``'s own per-batch cost (which favours torch).
    """
    experiment = EXPERIMENTS[name]
    reference, start = _reference(experiment, seed, batch_size, steps=epochs)
    model = _module(model, reference.params, device)
    inputs, targets = (_tensor(reference.inputs[field], device) for field in experiment.train)
    size = int(reference.inputs["batch_size"])
    batches = [
        (inputs[index], targets[index])
        for order in reference.inputs["orders"]
        for index in torch.from_numpy(order).to(device).split(size)
    ]
    training = reference_module.make_step(model, learning_rate=_learning_rate(experiment))
    return Case(
        name,
        f"batch {size}",
        size,
        len(batches),
        flops(size),
        _jax_runner(experiment, start, epochs),
        training.step,
        _restorer(training),
        eager_args=batches,
        compiled_args=batches,
        note="steps are batches (epochs x batches per epoch); torch gets them pre-collated",
    )


def module_regression_case(
    seed: int, epochs: int, batch_size: int | None, device: str = "cpu"
) -> Case:
    """Seed 004's ``nn.Module`` regression: ``Linear(1, 1)``, ``MSELoss``, ``optim.SGD``."""
    return _loader_case(
        "module_regression",
        seed,
        epochs,
        batch_size,
        device,
        reference_module=module_regression_ref,
        model=module_regression_ref.LinearRegression(),
        flops=lambda rows: classifier_flops(rows, [(1, 1)], adam=False),
    )


def digits_case(seed: int, epochs: int, batch_size: int | None, device: str = "cpu") -> Case:
    """The digits classifier: ``Linear(64, 128)``, ReLU, ``Linear(128, 10)``, cross-entropy,
    ``optim.Adam``."""
    return _loader_case(
        "digits",
        seed,
        epochs,
        batch_size,
        device,
        reference_module=digits_ref,
        model=digits_ref.Classifier(),
        flops=lambda rows: classifier_flops(rows, [(64, 128), (128, 10)], adam=True),
    )


def _model_case(name: str) -> Callable[[int, int, int | None, str], Case]:
    """A case of ``parity.bench_models`` (models beyond the tutorials), imported when built."""

    def build(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
        from parity import bench_models

        return getattr(bench_models, f"{name}_case")(seed, steps, batch_size, device)

    build.__doc__ = f"``parity.bench_models.{name}_case``."
    return build


# ``builder(seed, steps, batch_size, device)``: ``device`` is the torch device ("cpu", "cuda");
# the jaxnets side runs on JAX's default device.
BUILDERS: dict[str, Callable[[int, int, int | None, str], Case]] = {
    "mlp": mlp_case,
    "cnn": cnn_case,
    "linear": linear_case,
    "custom": custom_case,
    "module_regression": module_regression_case,
    "digits": digits_case,
    "lstm_lm": _model_case("lstm_lm"),
    "transformer": _model_case("transformer"),
}

# The tutorial's settings (steps as ``python -m parity`` counts them) plus the extra batch the
# CNN is timed at; the batch-size sweep reuses the builders with other batch sizes.
DEFAULT_SETTINGS: dict[str, list[tuple[int, int | None]]] = {
    "mlp": [(500, None)],
    "cnn": [(100, 1), (20, 64)],
    "linear": [(100, None)],
    "custom": [(100, None)],
    "module_regression": [(20, None)],
    "digits": [(10, None)],
    "lstm_lm": [(20, None)],
    "transformer": [(5, None)],
}
SWEEPABLE = ("mlp", "cnn")
