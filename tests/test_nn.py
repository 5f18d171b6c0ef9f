"""jaxnets.nn: layouts, shapes, options and errors, checked against exact math."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxnets import nn


def test_linear_layout_and_math():
    layer = nn.Linear(5, 3, rngs=nnx.Rngs(0), dtype=jnp.float64)
    assert layer.kernel[...].shape == (5, 3)
    x = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
    expected = np.asarray(x) @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)


def test_linear_without_bias_and_bad_input():
    layer = nn.Linear(5, 3, bias=False, rngs=nnx.Rngs(0))
    assert layer.bias is None
    with pytest.raises(ValueError, match="last dimension 5"):
        layer(jnp.ones((2, 4), jnp.float32))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("fan_in", [1, 9, 144])
def test_initialisers_stay_in_torch_bounds(fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    draws = nn.kaiming_uniform(fan_in)(jax.random.key(0), (1000,), jnp.float64)
    assert float(jnp.max(jnp.abs(draws))) <= bound
    assert float(jnp.max(jnp.abs(draws))) > 0.9 * bound


def _conv_reference(x, kernel, bias, stride, padding, dilation):
    """Direct summation over the receptive field, in NumPy."""
    x = np.pad(np.asarray(x), [(0, 0), padding[0], padding[1], (0, 0)])
    kh, kw, _, out = kernel.shape
    n, h, w, _ = x.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, oh, ow, out))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    patch = x[
                        :, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1], :
                    ]
                    y[:, i, j, :] += patch @ np.asarray(kernel[a, b])
    return y + np.asarray(bias)


@pytest.mark.parametrize(
    "stride,padding,dilation",
    [(1, 0, 1), (2, 1, 1), (1, (1, 2), 2), (1, "same", 1), (1, "valid", 1)],
)
def test_conv2d_matches_direct_summation(stride, padding, dilation):
    conv = nn.Conv2d(2, 3, 3, stride, padding, dilation, rngs=nnx.Rngs(0), dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(2), (2, 7, 8, 2), jnp.float64)
    pads = conv._explicit_padding()
    expected = _conv_reference(
        x, np.asarray(conv.kernel[...]), conv.bias[...], conv.stride, pads, conv.dilation
    )
    np.testing.assert_allclose(conv(x), expected, rtol=1e-10, atol=1e-12)


def test_conv2d_unbatched_and_errors():
    conv = nn.Conv2d(1, 2, 3, rngs=nnx.Rngs(0))
    x = jnp.ones((6, 6, 1), jnp.float32)
    np.testing.assert_array_equal(conv(x), conv(x[None])[0])
    with pytest.raises(ValueError, match="1 channels"):
        conv(jnp.ones((1, 6, 6, 3), jnp.float32))
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(1, 2, 3, padding_mode="mirror", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 2, 3, groups=2, rngs=nnx.Rngs(0))


def test_clamp_min_gradient_passes_at_the_boundary():
    x = jnp.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(jax.grad(lambda v: nn.clamp_min(v).sum())(x), [0.0, 1.0, 1.0])
    # relu, by contrast, has gradient 0 at 0 (as torch's relu does).
    np.testing.assert_array_equal(jax.grad(lambda v: jax.nn.relu(v).sum())(x), [0.0, 0.0, 1.0])
