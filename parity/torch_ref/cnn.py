"""Seed 001 as written: ``Net``, ``nn.L1Loss``, ``net.zero_grad()``, ``optim.SGD(lr=0.01).step()``.

The tutorial runs one step with a batch of 1; ``steps`` repeats that step, and ``batch_size`` B
draws ``randn(B,1,32,32)`` then ``randn(2*B).view(B,-1)`` (B=1 is the tutorial's
``randn(2).view(1,-1)``; for any B the numbers equal ``randn(B,2)``'s).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from parity.torch_ref import GradHook, Reference, TrainingStep, first_grads, numpy, script


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 28 * 28, 512)
        self.fc2 = nn.Linear(512, 64)
        self.fc3 = nn.Linear(64, 2)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = x.view(-1, 16 * 28 * 28)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        x = F.relu(x)
        x = self.fc3(x)
        return x


def make_step(
    net: Net,
    input_data: torch.Tensor,
    target: torch.Tensor,
    *,
    learning_rate: float,
    on_backward: GradHook | None = None,
) -> TrainingStep:
    """The tutorial's step on ``net``: forward, ``L1Loss``, ``zero_grad``, ``backward``,
    ``optim.SGD`` step."""
    criterion = nn.L1Loss()
    optimizer = optim.SGD(net.parameters(), lr=learning_rate)
    parameters = dict(net.named_parameters())

    def step() -> torch.Tensor:
        out = net(input_data)
        loss = criterion(out, target)
        net.zero_grad()
        loss.backward()
        if on_backward is not None:
            on_backward(parameters)
        optimizer.step()
        return loss.detach()

    return TrainingStep(step, parameters, optimizer)


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    steps: int = 100,
    batch_size: int = 1,
    learning_rate: float = 0.01,
    device: str = "cpu",
) -> Reference:
    torch.manual_seed(seed)
    net = Net()
    input_data = torch.randn(batch_size, 1, 32, 32)
    target = torch.randn(2 * batch_size)
    target = target.view(batch_size, -1)
    net = net.to(dtype=dtype, device=device)
    input_data = input_data.to(dtype=dtype, device=device)
    target = target.to(dtype=dtype, device=device)
    params = {k: numpy(v) for k, v in net.state_dict().items()}

    grads, keep_first = first_grads()
    step = make_step(
        net, input_data, target, learning_rate=learning_rate, on_backward=keep_first
    ).step
    losses = [step().item() for _ in range(steps)]
    inputs = {"input": numpy(input_data), "target": numpy(target)}
    return Reference(params, inputs, np.asarray(losses), grads)


def main(argv: list[str] | None = None) -> None:
    """``Net`` trained ``--steps`` tutorial steps: ``step <t>  loss <loss>`` each, then the plot."""
    script.run_steps(
        run,
        argv,
        description=__doc__,
        name="cnn",
        steps=100,
        line="step {t}  loss {loss}",
        xlabel="Step",
    )


if __name__ == "__main__":
    main()
