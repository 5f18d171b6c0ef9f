"""``jaxnets.optim`` on its own: torch's error messages, jit, dtypes and first steps by hand.

The step-for-step comparison with torch itself is in ``tests/parity/test_optim_torch.py``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import optim

# Every option that changes the arithmetic turned on, per optimiser.
ALL_ON: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    "adam": {"weight_decay": 0.1, "amsgrad": True, "maximize": True},
    "adamw": {"amsgrad": True},
    "rmsprop": {"momentum": 0.9, "centered": True, "weight_decay": 0.1},
    "adagrad": {"lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1},
    "adadelta": {"weight_decay": 0.1, "maximize": True},
    "adamax": {"weight_decay": 0.1},
    "nadam": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "radam": {"weight_decay": 0.1, "maximize": True},
}
STEPS = 30


def _tree(dtype, seed: int = 0) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,))}
    grads = {k: rng.normal(size=(STEPS, *v.shape)) for k, v in params.items()}
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return jax.tree.map(cast, params), jax.tree.map(cast, grads)


def _run(tx: optax.GradientTransformation, params, grads):
    """Final parameters and optimiser state after ``STEPS`` jitted updates."""

    def step(carry, g):
        p, state = carry
        updates, state = tx.update(g, state, p)
        return (optax.apply_updates(p, updates), state), None

    return jax.jit(lambda p, g: jax.lax.scan(step, (p, tx.init(p)), g)[0])(params, grads)


def _step(tx, params, *grads):
    """Parameters after one eager ``update`` + ``apply_updates`` per gradient."""
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("name", sorted(ALL_ON))
def test_float32_stays_float32_under_jit_with_a_schedule(name):
    """x64 is on in tests: no per-step scalar may promote float32 parameters or state."""
    schedule = optim.cosine_annealing_lr(0.01, T_max=10)
    tx = getattr(optim, name)(schedule, **ALL_ON[name])
    params32, grads32 = _tree(jnp.float32)
    final32, state = _run(tx, params32, grads32)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(final32))
    for leaf in jax.tree.leaves(state):
        # Parameter-shaped buffers follow the parameters; counts are int32 and NAdam's
        # per-leaf mu_product is a 0-d scalar in the widest float, like torch's.
        if leaf.ndim > 0:
            assert leaf.dtype == jnp.float32
        else:
            assert leaf.dtype in (jnp.int32, jnp.float64)
    final64, _ = _run(tx, *_tree(jnp.float64))
    for got, want in zip(jax.tree.leaves(final32), jax.tree.leaves(final64), strict=True):
        np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-4, atol=1e-5)


def test_state_names_follow_torch():
    state = optim.adam(amsgrad=True).init({"w": jnp.zeros(2)})
    adam_state = state[0]
    assert isinstance(adam_state, optim.AdamState)
    assert set(adam_state.max_exp_avg_sq) == {"w"}
    assert optim.adam().init({"w": jnp.zeros(2)})[0].max_exp_avg_sq == {"w": None}


G = jnp.array([0.5, -2.0, 3.0])
P = jnp.array([1.0, -1.0, 0.25])


def test_sgd_first_momentum_step_is_the_gradient_then_dampened():
    tx = optim.sgd(0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(_step(tx, P, G), P - 0.1 * G, rtol=1e-15)
    buf = 0.9 * G + 0.5 * 2 * G
    np.testing.assert_allclose(_step(tx, P, G, 2 * G), P - 0.1 * G - 0.1 * buf, rtol=1e-14)


def test_adam_first_step_is_a_sign_step():
    eps = 1e-3
    tx = optim.adam(0.1, eps=eps)
    np.testing.assert_allclose(_step(tx, P, G), P - 0.1 * G / (jnp.abs(G) + eps), rtol=1e-13)


def test_amsgrad_divides_by_the_uncorrected_maximum():
    b1, b2, lr = 0.9, 0.999, 0.1
    small = G / 100
    v1, m1 = (1 - b2) * G * G, (1 - b1) * G
    v2, m2 = b2 * v1 + (1 - b2) * small * small, b1 * m1 + (1 - b1) * small
    denom = jnp.sqrt(jnp.maximum(v1, v2)) / math.sqrt(1 - b2**2) + 1e-8
    expected = P - lr * G / (jnp.abs(G) + 1e-8) - lr / (1 - b1**2) * m2 / denom
    got = _step(optim.adam(lr, amsgrad=True), P, G, small)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adamw_decays_the_parameters_not_the_gradient():
    zero = jnp.zeros_like(P)
    np.testing.assert_allclose(_step(optim.adamw(0.1, weight_decay=0.5), P, zero), P * 0.95)
    # Coupled decay feeds 0.5*p through Adam's normalisation: a sign step instead.
    coupled = _step(optim.adam(0.1, weight_decay=0.5), P, zero)
    np.testing.assert_allclose(coupled, P - 0.1 * jnp.sign(P), rtol=1e-6)


def test_maximize_is_the_step_for_the_negated_gradient():
    for name in ALL_ON:
        kwargs = {k: v for k, v in ALL_ON[name].items() if k not in ("maximize", "weight_decay")}
        up = _step(getattr(optim, name)(0.1, maximize=True, **kwargs), P, G, 2 * G)
        down = _step(getattr(optim, name)(0.1, **kwargs), P, -G, -2 * G)
        np.testing.assert_allclose(up, down, rtol=1e-15, err_msg=name)


def test_radam_is_sgd_on_the_corrected_mean_until_rho_exceeds_5():
    tx = optim.radam(0.1)
    five = _step(tx, P, *[G] * 5)
    np.testing.assert_allclose(five, P - 5 * 0.1 * G, rtol=1e-13, atol=1e-15)
    six = _step(tx, P, *[G] * 6)
    assert not np.allclose(six, P - 6 * 0.1 * G, rtol=1e-3)


def test_rmsprop_first_step():
    alpha, eps = 0.75, 1e-3
    plain = _step(optim.rmsprop(0.1, alpha=alpha, eps=eps), P, G)
    np.testing.assert_allclose(plain, P - 0.1 * G / (math.sqrt(1 - alpha) * jnp.abs(G) + eps))
    centered = _step(optim.rmsprop(0.1, alpha=alpha, eps=eps, centered=True), P, G)
    variance = math.sqrt((1 - alpha) * alpha) * jnp.abs(G)
    np.testing.assert_allclose(centered, P - 0.1 * G / (variance + eps), rtol=1e-13)


def test_adagrad_first_steps_and_lr_decay():
    tx = optim.adagrad(0.1, lr_decay=0.5, initial_accumulator_value=1.0, eps=0.0)
    first = P - 0.1 * G / jnp.sqrt(1 + G * G)
    np.testing.assert_allclose(_step(tx, P, G), first, rtol=1e-14)
    second = first - 0.1 / 1.5 * G / jnp.sqrt(1 + 2 * G * G)
    np.testing.assert_allclose(_step(tx, P, G, G), second, rtol=1e-14)


def test_adadelta_first_step():
    rho, eps = 0.5, 1e-4
    delta = math.sqrt(eps) / jnp.sqrt((1 - rho) * G * G + eps) * G
    np.testing.assert_allclose(_step(optim.adadelta(2.0, rho, eps), P, G), P - 2.0 * delta)


def test_adamax_and_nadam_first_steps():
    adamax = _step(optim.adamax(0.1, eps=1e-3), P, G)
    np.testing.assert_allclose(adamax, P - 0.1 * G / (jnp.abs(G) + 1e-3), rtol=1e-13)
    mu = 0.9 * (1 - 0.5 * 0.96**0.004)
    mu_next = 0.9 * (1 - 0.5 * 0.96**0.008)
    direction = jnp.sign(G) * (1 + mu_next / (1 - mu * mu_next) * 0.1)
    np.testing.assert_allclose(_step(optim.nadam(0.1, eps=0.0), P, G), P - 0.1 * direction)


def test_lr_schedule_is_counted_from_zero():
    once = lambda count: jnp.where(count == 0, 1.0, 0.0)  # noqa: E731
    for name in ALL_ON:
        first = _step(getattr(optim, name)(once), P, G)
        np.testing.assert_allclose(_step(getattr(optim, name)(once), P, G, G), first, err_msg=name)


def test_schedules_by_hand():
    counts = jnp.arange(6)
    np.testing.assert_allclose(optim.step_lr(1.0, 2, 0.5)(counts), [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(
        optim.multi_step_lr(1.0, [4, 1, 1], 0.5)(counts), [1, 0.25, 0.25, 0.25, 0.125, 0.125]
    )
    np.testing.assert_allclose(optim.exponential_lr(2.0, 0.5)(counts), 2.0 * 0.5 ** np.arange(6))
    cosine = optim.cosine_annealing_lr(1.0, T_max=4, eta_min=0.5)(counts)
    np.testing.assert_allclose(cosine, 0.5 + 0.25 * (1 + np.cos(np.pi * np.arange(6) / 4)))
    linear = optim.linear_lr(2.0, start_factor=0.5, end_factor=1.0, total_iters=4)(counts)
    np.testing.assert_allclose(linear, [1.0, 1.25, 1.5, 1.75, 2.0, 2.0])


def test_linear_lr_without_a_ramp_keeps_the_start_factor():
    """torch's LinearLR with ``total_iters <= 0`` stays at ``lr * start_factor``; the closed form
    alone would be 0/0."""
    for total_iters in (0, -2):
        schedule = optim.linear_lr(2.0, start_factor=0.5, end_factor=0.25, total_iters=total_iters)
        np.testing.assert_array_equal(schedule(jnp.arange(4)), [1.0, 1.0, 1.0, 1.0])
        assert float(jax.jit(schedule)(jnp.asarray(3, jnp.int32))) == 1.0
    tx = optim.sgd(optim.linear_lr(0.1, total_iters=0))
    np.testing.assert_allclose(_step(tx, P, G, G), P - 2 * 0.1 / 3 * G, rtol=1e-15)


def test_one_cycle_peaks_then_holds_past_the_end():
    schedule = optim.one_cycle_lr(1.0, total_steps=10, pct_start=0.5, anneal_strategy="linear")
    rates = schedule(jnp.arange(14))
    assert float(rates[0]) == pytest.approx(1.0 / 25)
    assert float(rates[4]) == pytest.approx(1.0)
    assert float(rates[9]) == pytest.approx(1.0 / 25 / 1e4)
    np.testing.assert_array_equal(rates[10:], rates[10])
    assert optim.one_cycle_lr(1.0, epochs=2, steps_per_epoch=5)(9) == pytest.approx(4e-6)


def test_schedules_jit_and_count_as_int32():
    for schedule in (
        optim.step_lr(0.1, 3),
        optim.multi_step_lr(0.1, [2]),
        optim.exponential_lr(0.1, 0.9),
        optim.cosine_annealing_lr(0.1, 5),
        optim.linear_lr(0.1),
        optim.one_cycle_lr(0.1, total_steps=8),
    ):
        count = jnp.asarray(3, jnp.int32)
        assert float(jax.jit(schedule)(count)) == pytest.approx(float(schedule(3)), rel=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optim.sgd(-1.0), "Invalid learning rate: -1.0"),
        (lambda: optim.sgd(0.1, nesterov=True), "Nesterov momentum requires a momentum and zero"),
        (lambda: optim.adam(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda: optim.adamw(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (lambda: optim.adam(eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (lambda: optim.adam(betas=(0, 0.9)), "betas must be either both floats or both Tensors"),
        (lambda: optim.rmsprop(alpha=-0.1), "Invalid alpha value: -0.1"),
        (lambda: optim.adagrad(lr_decay=-1.0), "Invalid lr_decay value: -1.0"),
        (lambda: optim.adadelta(rho=1.1), "Invalid rho value: 1.1"),
        (lambda: optim.nadam(momentum_decay=-1.0), "Invalid momentum_decay value: -1.0"),
        (lambda: optim.radam(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
        (lambda: optim.linear_lr(1.0, start_factor=0.0), "Starting multiplicative factor"),
        (lambda: optim.one_cycle_lr(1.0), "You must define either total_steps OR"),
        (lambda: optim.one_cycle_lr(1.0, 10, pct_start=1), "Expected float between 0 and 1"),
        (lambda: optim.one_cycle_lr(1.0, 10, anneal_strategy="x"), "anneal_strategy must be"),
    ],
)
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=f"^{message.replace('(', '.').replace(')', '.')}"):
        make()


def test_a_schedule_is_not_checked_as_a_number():
    optim.adam(optax.constant_schedule(0.1))


class _TensorLike:
    """Stands in for a ``torch.Tensor`` (jaxnets never imports torch): shaped, not callable."""

    shape = (1,)

    def __le__(self, other):
        return True

    def __ge__(self, other):
        return True


@pytest.mark.parametrize("name", sorted(ALL_ON))
@pytest.mark.parametrize(
    ("lr", "got"),
    [
        (np.array([0.1, 0.01]), "numpy.ndarray of shape (2,)"),
        (jnp.array([0.1]), "of shape (1,)"),
        (np.array(True), "numpy.ndarray of shape ()"),
        (_TensorLike(), "_TensorLike of shape (1,)"),
        ([0.1], "got list"),
        ("0.1", "got str"),
    ],
)
def test_a_learning_rate_that_is_no_number_is_refused_at_construction(name, lr, got):
    with pytest.raises(TypeError, match="lr must be a float or a schedule") as err:
        getattr(optim, name)(lr)
    assert got in str(err.value)


@pytest.mark.parametrize("name", sorted(ALL_ON))
def test_scalar_and_traced_learning_rates_are_numbers(name):
    """0-d NumPy/JAX arrays and NumPy scalars are the floats they hold; a traced scalar (the
    rate a compiled training loop passes in) is accepted unchecked."""
    expected = _step(getattr(optim, name)(0.1), P, G, G)
    for lr in (np.float32(0.1), np.array(0.1), jnp.asarray(0.1), 1e-1):
        np.testing.assert_allclose(
            _step(getattr(optim, name)(lr), P, G, G), expected, rtol=1e-6, err_msg=str(lr)
        )

    @jax.jit
    def traced(lr):
        tx = getattr(optim, name)(lr)
        return optax.apply_updates(P, tx.update(G, tx.init(P), P)[0])

    # Compiled against eager: fused arithmetic rounds differently (entries near 0 cancel).
    once = _step(getattr(optim, name)(0.1), P, G)
    np.testing.assert_allclose(traced(0.1), once, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        getattr(optim, name)(np.array(-0.1))
