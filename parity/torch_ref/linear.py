"""Seed 002 as written: ``y = w*x`` by per-sample SGD on ``w.data``, gradient zeroed by hand."""

from __future__ import annotations

import numpy as np
import torch

from parity.torch_ref import GradHook, Reference, TrainingStep, first_grads, numpy, script

x_data = [1.0, 2.0, 3.0]
y_data = [2.0, 4.0, 6.0]


def make_step(
    w: torch.Tensor, *, learning_rate: float, on_backward: GradHook | None = None
) -> TrainingStep:
    """The tutorial's update on one sample: ``step(x, y)``, with ``x`` and ``y`` Python floats
    as the tutorial passes them (or 0-d tensors, which ``torch.compile`` wants); ``w`` is a
    leaf that requires grad."""
    parameters = {"w": w}

    def forward(x: float | torch.Tensor) -> torch.Tensor:
        return x * w

    def loss(x: float | torch.Tensor, y: float | torch.Tensor) -> torch.Tensor:
        y_val = forward(x)
        return (y_val - y) ** 2

    def step(x: float | torch.Tensor, y: float | torch.Tensor) -> torch.Tensor:
        l = loss(x, y)  # noqa: E741 - the tutorial's name
        l.backward()
        if on_backward is not None:
            on_backward(parameters)
        # The tutorial's ``w.data = w.data - learning_rate * w.grad.data`` as an in-place update:
        # the same arithmetic (the same bits), but w keeps its own storage, whereas torch.compile
        # traces ``.data =`` as a storage swap (``Tensor.set_``) onto memory the compiled graph
        # allocated, which CUDA-graph replays reuse.
        with torch.no_grad():
            w.sub_(learning_rate * w.grad)
            w.grad.zero_()
        return l.detach()

    return TrainingStep(step, parameters)


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    epochs: int = 100,
    learning_rate: float = 0.01,
    device: str = "cpu",
) -> Reference:
    # The tutorial draws nothing at random; the seed is set for uniformity with the others.
    torch.manual_seed(seed)
    w = torch.tensor([1.0], dtype=dtype, device=device)
    w.requires_grad = True
    params = {"w": numpy(w)}

    grads, keep_first = first_grads()
    step = make_step(w, learning_rate=learning_rate, on_backward=keep_first).step
    losses = [
        step(x, y).item() for _epoch in range(epochs) for x, y in zip(x_data, y_data, strict=True)
    ]
    # Python floats enter torch's arithmetic in w's dtype; JAX gets them as arrays of that dtype.
    inputs = {
        "xs": np.asarray(x_data, params["w"].dtype),
        "ys": np.asarray(y_data, params["w"].dtype),
    }
    return Reference(params, inputs, np.asarray(losses), grads)


def main(argv: list[str] | None = None) -> None:
    """The tutorial's printout (``before``, a ``grad:`` line per sample, ``progress`` per epoch,
    ``after``); the loss of every update is plotted as well, as the jaxnets script does."""
    args = script.options(__doc__, "epochs", 100, "linear").parse_args(argv)
    plt = script.pyplot()
    torch.manual_seed(args.seed)
    w = torch.tensor([1.0])
    w.requires_grad = True
    sample: tuple[float, float] = (0.0, 0.0)

    def print_grad(parameters: dict[str, torch.Tensor]) -> None:
        print("\tgrad:", *sample, parameters["w"].grad.item())

    step = make_step(w, learning_rate=0.01, on_backward=print_grad).step
    print("before, w= ", (4.0 * w).item())
    losses = []
    for epoch in range(args.epochs):
        for sample in zip(x_data, y_data, strict=True):  # noqa: B007 - read by print_grad
            losses.append(step(*sample).item())
        print("progress", epoch, losses[-1])
    print("after, w= ", (4.0 * w).item())
    script.save_plot(plt, losses, args.plot, "Update")


if __name__ == "__main__":
    main()
