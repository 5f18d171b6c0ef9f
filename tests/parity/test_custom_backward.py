"""jaxnets.autograd's custom VJPs against torch.autograd.Function, and the custom experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

from jaxnets import autograd
from parity import runner
from parity.experiments import EXPERIMENTS
from parity.torch_ref import custom as custom_ref

X = np.array([-2.5, -1.0, -0.3, 0.0, 0.5, 1.0, 1.5, 2.5])
COTANGENT = np.array([0.3, -0.02, 0.7, -1.2, 0.01, 0.04, -0.5, 2.0])


def _torch_vjp(fn, *args):
    x = torch.tensor(X, requires_grad=True)
    y = fn(x, *args)
    y.backward(torch.tensor(COTANGENT))
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize(
    "ours,theirs,args",
    [
        (autograd.round_ste, custom_ref.RoundSTE.apply, ()),
        (autograd.sign_ste, custom_ref.SignSTE.apply, ()),
        (autograd.clip_gradient, custom_ref.ClipGradient.apply, (0.05,)),
        (autograd.gradient_penalty, custom_ref.GradientPenalty.apply, (0.1,)),
    ],
    ids=["round_ste", "sign_ste", "clip_gradient", "gradient_penalty"],
)
def test_custom_vjp_matches_autograd_function(ours, theirs, args):
    expected_y, expected_grad = _torch_vjp(theirs, *args)
    y, pullback = jax.vjp(lambda v: ours(v, *args), jnp.asarray(X))
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_allclose(pullback(jnp.asarray(COTANGENT))[0], expected_grad, rtol=1e-15)


def test_true_derivative_would_be_zero_for_round():
    """Why round needs a surrogate: its autodiff gradient vanishes everywhere."""
    assert float(jnp.abs(jax.grad(lambda v: jnp.round(v).sum())(jnp.asarray(X))).max()) == 0.0
    assert float(jax.grad(lambda v: autograd.round_ste(v).sum())(jnp.asarray(X)).min()) == 1.0


def test_custom_vjps_are_exact_where_the_function_is_differentiable():
    x = jnp.asarray(X)
    # With a bound the cotangent never reaches, and no penalty, the backward is the true one.
    check_grads(lambda v: autograd.clip_gradient(v, 1e6) ** 2, (x,), order=1, modes=["rev"])
    check_grads(lambda v: jnp.sin(autograd.gradient_penalty(v, 0.0)), (x,), order=1, modes=["rev"])


def test_hyper_parameters_are_checked():
    with pytest.raises(ValueError, match="bound"):
        autograd.clip_gradient(jnp.ones(2), -1.0)
    with pytest.raises(ValueError, match="weight"):
        autograd.gradient_penalty(jnp.ones(2), -1.0)


@pytest.mark.parametrize("seed", [0, 4])
def test_custom_experiment_matches_torch(seed):
    results = runner.run(EXPERIMENTS["custom"], seed=seed, steps=30)
    for result in results:
        assert result.passed, (result.dtype, result.failures())
