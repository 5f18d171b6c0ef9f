"""``jaxnets.optim`` against ``torch.optim`` run in the same test.

Each case drives both with the same 50 pre-drawn random gradients (not gradients of a loss, so
the two trajectories cannot drift apart through the loss) on a two-leaf parameter tree, and the
whole float64 trajectory must agree to 1e-10 relative. The grid turns every option on and off at
least once, with and without weight decay, and runs each optimiser under one of the schedulers.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxnets import optim

STEPS = 50
SHAPES = {"w": (3, 4), "b": (5,)}

# name -> (jaxnets schedule, torch scheduler, shared kwargs); the base rate is the case's lr.
SCHEDULES: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "step": (optim.step_lr, torch.optim.lr_scheduler.StepLR, {"step_size": 7, "gamma": 0.5}),
    "multi_step": (
        optim.multi_step_lr,
        torch.optim.lr_scheduler.MultiStepLR,
        {"milestones": [5, 20, 20, 33], "gamma": 0.7},
    ),
    "exponential": (optim.exponential_lr, torch.optim.lr_scheduler.ExponentialLR, {"gamma": 0.95}),
    "cosine": (
        optim.cosine_annealing_lr,
        torch.optim.lr_scheduler.CosineAnnealingLR,
        {"T_max": 20, "eta_min": 1e-4},
    ),
    "linear": (
        optim.linear_lr,
        torch.optim.lr_scheduler.LinearLR,
        {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 12},
    ),
    "one_cycle": (optim.one_cycle_lr, torch.optim.lr_scheduler.OneCycleLR, {"total_steps": STEPS}),
}

# (jaxnets name, torch class, kwargs, schedule or None). Betas and alphas below 0.5 take the
# other branch of torch's lerp; eps is raised in some cases so that it matters.
CASES: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("sgd", "SGD", {"lr": 0.1}, None),
    ("sgd", "SGD", {"lr": 0.1, "momentum": 0.9}, None),
    ("sgd", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}, None),
    (
        "sgd",
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
        None,
    ),
    ("sgd", "SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}, "step"),
    ("adam", "Adam", {"lr": 0.01}, None),
    ("adam", "Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, None),
    ("adam", "Adam", {"lr": 0.01, "betas": (0.3, 0.9), "eps": 1e-3, "maximize": True}, None),
    (
        "adam",
        "Adam",
        {
            "lr": 0.01,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "amsgrad": True,
            "maximize": True,
        },
        "cosine",
    ),
    ("adamw", "AdamW", {"lr": 0.01}, None),
    ("adamw", "AdamW", {"lr": 0.01, "weight_decay": 0.0, "amsgrad": True}, None),
    ("adamw", "AdamW", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}, "one_cycle"),
    ("rmsprop", "RMSprop", {"lr": 0.01}, None),
    ("rmsprop", "RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.1}, None),
    ("rmsprop", "RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.3, "maximize": True}, None),
    (
        "rmsprop",
        "RMSprop",
        {"lr": 0.01, "momentum": 0.5, "centered": True, "alpha": 0.3, "eps": 1e-2},
        "exponential",
    ),
    ("adagrad", "Adagrad", {"lr": 0.1}, None),
    (
        "adagrad",
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
        None,
    ),
    ("adagrad", "Adagrad", {"lr": 0.1, "eps": 1e-3, "maximize": True}, None),
    ("adagrad", "Adagrad", {"lr": 0.1, "lr_decay": 0.05}, "linear"),
    ("adadelta", "Adadelta", {}, None),
    ("adadelta", "Adadelta", {"rho": 0.3, "eps": 1e-4, "weight_decay": 0.1}, None),
    ("adadelta", "Adadelta", {"lr": 0.5, "maximize": True}, "multi_step"),
    ("adamax", "Adamax", {"lr": 0.01}, None),
    ("adamax", "Adamax", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.3, 0.5)}, None),
    ("adamax", "Adamax", {"lr": 0.01, "eps": 1e-2, "maximize": True}, "cosine"),
    ("nadam", "NAdam", {"lr": 0.01}, None),
    ("nadam", "NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}, None),
    (
        "nadam",
        "NAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        None,
    ),
    ("nadam", "NAdam", {"lr": 0.01, "betas": (0.3, 0.9)}, "linear"),
    ("radam", "RAdam", {"lr": 0.01}, None),
    ("radam", "RAdam", {"lr": 0.01, "weight_decay": 0.1}, None),
    (
        "radam",
        "RAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        None,
    ),
    # rho_inf = 4: torch never rectifies.
    ("radam", "RAdam", {"lr": 0.01, "betas": (0.9, 0.6)}, None),
    ("radam", "RAdam", {"lr": 0.01, "betas": (0.3, 0.99)}, "exponential"),
]


def _case_id(case: tuple[str, str, dict[str, Any], str | None]) -> str:
    name, _, kwargs, schedule = case
    options = "-".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr") or "defaults"
    return f"{name}-{options}" + (f"-{schedule}" if schedule else "")


@pytest.fixture
def torch_float64():
    """torch keeps ``step`` and NAdam's ``mu_product`` in its default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _draw(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
    grads = {k: rng.normal(size=(STEPS, *shape)) for k, shape in SHAPES.items()}
    return params, grads


def _torch_trajectory(cls: str, kwargs, schedule, params, grads) -> dict[str, np.ndarray]:
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = getattr(torch.optim, cls)(list(tensors.values()), **kwargs, foreach=False)
    sched = None
    if schedule is not None:
        _, scheduler_cls, sched_kwargs = SCHEDULES[schedule]
        extra = {"max_lr": kwargs.get("lr"), "cycle_momentum": False}
        sched = scheduler_cls(opt, **sched_kwargs, **(extra if schedule == "one_cycle" else {}))
    trajectory: dict[str, list[np.ndarray]] = {k: [] for k in params}
    for t in range(STEPS):
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][t])
        opt.step()
        if sched is not None:
            sched.step()
        for k, p in tensors.items():
            trajectory[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in trajectory.items()}


def _jax_optimizer(name: str, kwargs, schedule) -> optax.GradientTransformation:
    if schedule is not None:
        make_schedule, _, sched_kwargs = SCHEDULES[schedule]
        base = kwargs.get("lr", 1.0)
        kwargs = {**kwargs, "lr": make_schedule(base, **sched_kwargs)}
    return getattr(optim, name)(**kwargs)


def run_trajectory(tx: optax.GradientTransformation, params, grads):
    """Every step's parameters, the 50 steps as one jitted ``lax.scan``."""

    def step(carry, g):
        p, state = carry
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        return (p, state), p

    @jax.jit
    def run(params, grads):
        return jax.lax.scan(step, (params, tx.init(params)), grads)[1]

    return run(params, grads)


@pytest.mark.usefixtures("torch_float64")
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_trajectory_matches_torch(case):
    name, cls, kwargs, schedule = case
    params, grads = _draw(seed=len(CASES) + CASES.index(case))
    expected = _torch_trajectory(cls, kwargs, schedule, params, grads)
    tx = _jax_optimizer(name, kwargs, schedule)
    got = run_trajectory(tx, jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, grads))
    for k in params:
        assert got[k].dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got[k]), expected[k], rtol=1e-10, atol=1e-13)


# (jaxnets name, torch class, bad kwargs): each must raise torch's ValueError, message and all.
BAD_HYPERPARAMETERS: list[tuple[str, str, dict[str, Any]]] = [
    ("sgd", "SGD", {"lr": -1.0}),
    ("sgd", "SGD", {"momentum": -0.1}),
    ("sgd", "SGD", {"weight_decay": -1e-3}),
    ("sgd", "SGD", {"nesterov": True}),
    ("sgd", "SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("adam", "Adam", {"lr": -1.0, "eps": -1.0}),
    ("adam", "Adam", {"eps": -1e-8}),
    ("adam", "Adam", {"betas": (1.0, 0.999)}),
    ("adam", "Adam", {"betas": (0.9, -0.1)}),
    ("adam", "Adam", {"weight_decay": -0.1}),
    ("adam", "Adam", {"betas": (0, 0.999)}),
    ("adamw", "AdamW", {"lr": float("nan")}),
    ("adamw", "AdamW", {"betas": (0.9, 1.5)}),
    ("rmsprop", "RMSprop", {"eps": -1.0}),
    ("rmsprop", "RMSprop", {"momentum": -1.0}),
    ("rmsprop", "RMSprop", {"weight_decay": -1.0}),
    ("rmsprop", "RMSprop", {"alpha": -0.5}),
    ("adagrad", "Adagrad", {"lr_decay": -1.0}),
    ("adagrad", "Adagrad", {"weight_decay": -1.0}),
    ("adagrad", "Adagrad", {"initial_accumulator_value": -1.0}),
    ("adagrad", "Adagrad", {"eps": -1.0}),
    ("adadelta", "Adadelta", {"lr": -1.0}),
    ("adadelta", "Adadelta", {"rho": 1.5}),
    ("adadelta", "Adadelta", {"eps": -1.0}),
    ("adadelta", "Adadelta", {"weight_decay": -1.0}),
    ("adamax", "Adamax", {"betas": (0.9, 1.0)}),
    ("adamax", "Adamax", {"eps": -1.0}),
    ("nadam", "NAdam", {"momentum_decay": -1.0}),
    ("nadam", "NAdam", {"betas": (-0.1, 0.9)}),
    ("radam", "RAdam", {"weight_decay": -1.0}),
    ("radam", "RAdam", {"lr": -0.5}),
]


@pytest.mark.parametrize(
    "case", BAD_HYPERPARAMETERS, ids=[_case_id((*c, None)) for c in BAD_HYPERPARAMETERS]
)
def test_bad_hyperparameter_raises_torchs_error(case):
    name, cls, kwargs = case
    with pytest.raises(ValueError) as from_torch:
        getattr(torch.optim, cls)([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as from_jax:
        getattr(optim, name)(**kwargs)
    assert str(from_jax.value) == str(from_torch.value)


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_signature_matches_torch(name):
    """Same argument names, order and defaults, less the torch-only kernel switches."""
    torch_only = {"self", "params", "foreach", "fused", "capturable", "differentiable"}
    cls = next(c[1] for c in CASES if c[0] == name)
    theirs = inspect.signature(getattr(torch.optim, cls).__init__).parameters.values()
    ours = inspect.signature(getattr(optim, name)).parameters.values()
    expected = [(p.name, p.default) for p in theirs if p.name not in torch_only]
    assert [(p.name, p.default) for p in ours] == expected


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_a_tensor_learning_rate_is_refused_at_construction(name):
    """torch takes a Tensor ``lr`` (for its capturable and fused kernels); a jaxnets optimiser
    asks for a float or a schedule when it is built, not with a TypeError at the first update."""
    for lr, shape in ((torch.tensor(0.01), "()"), (torch.tensor([0.01, 0.02]), "(2,)")):
        with pytest.raises(TypeError) as err:
            getattr(optim, name)(lr)
        assert str(err.value) == (
            "lr must be a float or a schedule (a callable of the step count), "
            f"got torch.Tensor of shape {shape}"
        )
