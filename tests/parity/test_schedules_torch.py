"""``jaxnets.optim``'s schedules against ``torch.optim.lr_scheduler`` run in the same test.

torch's rate for optimiser step ``k`` (from 0) is ``group["lr"]`` after ``k`` scheduler steps;
the schedule at ``count = k`` must equal it to 1e-10 relative in float64. torch gets there by
recursion (``CosineAnnealingLR``, ``LinearLR``, ``StepLR``...), the schedules by closed form, so
the two agree to rounding, not bit for bit.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from jaxnets import optim

BASE_LR = 0.1
STEPS = 40

# (jaxnets schedule, torch scheduler, kwargs); one_cycle's max_lr is BASE_LR.
CASES: list[tuple[Any, Any, dict[str, Any]]] = [
    (optim.step_lr, lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
    (optim.step_lr, lr_scheduler.StepLR, {"step_size": 1}),
    (optim.multi_step_lr, lr_scheduler.MultiStepLR, {"milestones": [9, 2, 5, 5], "gamma": 0.3}),
    (optim.multi_step_lr, lr_scheduler.MultiStepLR, {"milestones": []}),
    (optim.exponential_lr, lr_scheduler.ExponentialLR, {"gamma": 0.9}),
    (optim.cosine_annealing_lr, lr_scheduler.CosineAnnealingLR, {"T_max": 10}),
    (optim.cosine_annealing_lr, lr_scheduler.CosineAnnealingLR, {"T_max": 7, "eta_min": 0.01}),
    (optim.linear_lr, lr_scheduler.LinearLR, {}),
    (
        optim.linear_lr,
        lr_scheduler.LinearLR,
        {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 10},
    ),
    # No ramp: torch applies start_factor at step 0 and never changes the rate again.
    (optim.linear_lr, lr_scheduler.LinearLR, {"total_iters": 0}),
    (
        optim.linear_lr,
        lr_scheduler.LinearLR,
        {"start_factor": 0.5, "end_factor": 0.2, "total_iters": 0},
    ),
    (optim.linear_lr, lr_scheduler.LinearLR, {"start_factor": 0.5, "total_iters": -3}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": STEPS}),
    (
        optim.one_cycle_lr,
        lr_scheduler.OneCycleLR,
        {"total_steps": STEPS, "anneal_strategy": "linear", "three_phase": True},
    ),
    (
        optim.one_cycle_lr,
        lr_scheduler.OneCycleLR,
        {
            "epochs": 5,
            "steps_per_epoch": 8,
            "pct_start": 0.25,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
            "three_phase": True,
        },
    ),
]


def _torch_scheduler(scheduler_cls, kwargs):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=BASE_LR)
    extra = {"max_lr": BASE_LR, "cycle_momentum": False}
    sched = scheduler_cls(
        opt, **kwargs, **(extra if scheduler_cls is lr_scheduler.OneCycleLR else {})
    )
    return opt, sched


def _torch_rates(scheduler_cls, kwargs, steps: int) -> np.ndarray:
    opt, sched = _torch_scheduler(scheduler_cls, kwargs)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()  # a no-op without gradients; torch warns if the scheduler steps first
        sched.step()
    rates.append(opt.param_groups[0]["lr"])
    return np.asarray(rates)


def _case_id(case) -> str:
    make, _, kwargs = case
    return make.__name__ + "-" + ("-".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_schedule_matches_torch(case):
    make, scheduler_cls, kwargs = case
    expected = _torch_rates(scheduler_cls, kwargs, STEPS)
    schedule = make(BASE_LR, **kwargs)
    got = schedule(jnp.arange(STEPS + 1))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-16)
    # optax calls a schedule with a scalar int32 count.
    assert float(schedule(jnp.asarray(7, jnp.int32))) == pytest.approx(expected[7], rel=1e-10)


BAD_SCHEDULES: list[tuple[Any, Any, dict[str, Any]]] = [
    (optim.linear_lr, lr_scheduler.LinearLR, {"start_factor": 0.0}),
    (optim.linear_lr, lr_scheduler.LinearLR, {"start_factor": 1.5}),
    (optim.linear_lr, lr_scheduler.LinearLR, {"end_factor": -0.1}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"epochs": 3}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": 0}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": 2.5}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"epochs": 0, "steps_per_epoch": 3}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"epochs": 2, "steps_per_epoch": -1}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": 10, "pct_start": 1}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": 10, "pct_start": 1.5}),
    (optim.one_cycle_lr, lr_scheduler.OneCycleLR, {"total_steps": 10, "anneal_strategy": "exp"}),
]


@pytest.mark.parametrize("case", BAD_SCHEDULES, ids=[_case_id(c) for c in BAD_SCHEDULES])
def test_bad_schedule_raises_torchs_error(case):
    make, scheduler_cls, kwargs = case
    with pytest.raises(ValueError) as from_torch:
        _torch_scheduler(scheduler_cls, kwargs)
    with pytest.raises(ValueError) as from_jax:
        make(BASE_LR, **kwargs)
    assert str(from_jax.value) == str(from_torch.value)
