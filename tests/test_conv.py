"""jaxnets.conv: the im2col convolution equals XLA's in values and gradients, in float64."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxnets import conv, nn

# (input NHWC, kernel HWIO, strides, padding, dilation, groups)
CASES = {
    "tutorial conv2": ((2, 30, 30, 6), (3, 3, 6, 16), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "one channel": ((3, 9, 8, 1), (3, 3, 1, 6), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "strided": ((2, 9, 11, 3), (3, 2, 3, 4), (2, 3), ((0, 0), (0, 0)), (1, 1), 1),
    "padded asymmetric": ((2, 7, 6, 2), (3, 3, 2, 5), (1, 1), ((1, 2), (0, 1)), (1, 1), 1),
    "dilated": ((2, 11, 10, 2), (3, 3, 2, 3), (1, 1), ((2, 2), (1, 1)), (2, 3), 1),
    "grouped": ((2, 8, 8, 6), (3, 3, 2, 9), (1, 1), ((1, 1), (1, 1)), (1, 1), 3),
    "depthwise dilated": ((1, 12, 13, 4), (3, 3, 1, 8), (2, 2), ((1, 0), (2, 1)), (2, 1), 4),
    "1x1": ((2, 5, 5, 4), (1, 1, 4, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "kernel as large as input": ((2, 4, 5, 2), (4, 5, 2, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
}


def _operands(x_shape, k_shape, dtype=np.float64):
    # NumPy draws: XLA takes seconds to compile jax.random.normal for float64 on CPU.
    rng = np.random.default_rng(0)
    return (
        jnp.asarray(rng.standard_normal(x_shape).astype(dtype)),
        jnp.asarray(rng.standard_normal(k_shape).astype(dtype)),
        rng,
    )


def _assert_close(got, want):
    scale = float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale)


def _value_and_vjp(form, args, x, kernel, cotangent):
    """One compiled program per form: eager op-by-op dispatch would compile every slice."""

    @jax.jit
    def run(x, kernel, cotangent):
        y, vjp = jax.vjp(lambda a, b: form(a, b, *args), x, kernel)
        return y, vjp(cotangent)

    return run(x, kernel, cotangent)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_im2col_values_and_gradients_equal_xla(case):
    x_shape, k_shape, strides, padding, dilation, groups = CASES[case]
    x, kernel, rng = _operands(x_shape, k_shape)
    args = (strides, padding, dilation, groups)
    out_shape = jax.eval_shape(lambda a, b: conv.conv2d_xla(a, b, *args), x, kernel).shape
    cotangent = jnp.asarray(rng.standard_normal(out_shape))
    want, grads_want = _value_and_vjp(conv.conv2d_xla, args, x, kernel, cotangent)
    got, grads_got = _value_and_vjp(conv.conv2d_im2col, args, x, kernel, cotangent)
    assert got.shape == want.shape and got.dtype == want.dtype
    _assert_close(got, want)
    for grad_got, grad_want in zip(grads_got, grads_want, strict=True):
        _assert_close(grad_got, grad_want)


def test_forward_mode_and_second_order_work():
    x_shape, k_shape, *rest = CASES["strided"]
    x, kernel, _ = _operands(x_shape, k_shape)
    tangent = jnp.ones_like(kernel)

    @functools.partial(jax.jit, static_argnums=0)
    def jvp_and_hvp(form, kernel):
        def loss(k):
            return jnp.sum(jnp.tanh(form(x, k, *rest)))

        _, jvp = jax.jvp(loss, (kernel,), (tangent,))
        hvp = jax.grad(lambda k: jnp.vdot(jax.grad(loss)(k), tangent))(kernel)
        return jvp, hvp

    for got, want in zip(
        jvp_and_hvp(conv.conv2d_im2col, kernel), jvp_and_hvp(conv.conv2d_xla, kernel), strict=True
    ):
        _assert_close(got, want)


def test_float32_stays_float32_and_close():
    x_shape, k_shape, *rest = CASES["tutorial conv2"]
    x, kernel, _ = _operands(x_shape, k_shape, np.float32)
    got = jax.jit(conv.conv2d_im2col, static_argnums=(2, 3, 4, 5))(x, kernel, *rest)
    assert got.dtype == jnp.float32
    want = conv.conv2d_xla(x, kernel, *rest)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(want))))


def test_cpu_dispatch_uses_no_convolution_op():
    layer = nn.Conv2d(6, 16, 3, rngs=nnx.Rngs(0))
    x = jnp.ones((2, 30, 30, 6), jnp.float32)
    hlo = jax.jit(jax.grad(lambda x: jnp.sum(layer(x)))).lower(x).as_text()
    expect_conv = jax.default_backend() != "cpu"
    assert ("convolution" in hlo) == expect_conv


def test_kernel_larger_than_input_is_a_clear_error():
    x, kernel, _ = _operands((1, 3, 3, 1), (4, 4, 1, 1))
    with pytest.raises(ValueError, match="does not fit"):
        conv.conv2d_im2col(x, kernel, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
