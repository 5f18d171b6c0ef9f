"""jaxnets.nn: layouts, shapes, options and errors, checked against exact math."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxnets import conv, nn


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


def test_conv1d_is_a_height_one_conv2d_and_accepts_unbatched_input():
    conv1 = nn.Conv1d(2, 3, 3, stride=2, padding=1, rngs=nnx.Rngs(0), dtype=jnp.float64)
    conv2 = nn.Conv2d(2, 3, (1, 3), (1, 2), (0, 1), rngs=nnx.Rngs(1), dtype=jnp.float64)
    conv2.kernel[...] = conv1.kernel[...][None]
    conv2.bias[...] = conv1.bias[...]
    x = jax.random.normal(jax.random.key(0), (2, 9, 2), jnp.float64)
    np.testing.assert_allclose(conv1(x), conv2(x[:, None])[:, 0], rtol=1e-12)
    np.testing.assert_allclose(conv1(x[0]), conv1(x)[0], rtol=1e-12)
    assert nn.state_dict(conv1)["weight"].shape == (3, 2, 3)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv_transpose(y), x> = <y, conv(x)> for the same kernel: the defining property."""
    kwargs = dict(stride=2, padding=1, dilation=2, groups=2, rngs=nnx.Rngs(0), dtype=jnp.float64)
    # output_padding restores the sizes the strided convolution floors: 8 -> 3 -> 8, 9 -> 4 -> 9.
    up = nn.ConvTranspose2d(4, 6, 3, output_padding=(1, 0), **kwargs)
    down = nn.Conv2d(6, 4, 3, bias=False, **kwargs)
    # One torch weight serves both: ConvTranspose2d's (I, O/g, kh, kw) is Conv2d's (O, I/g, kh, kw).
    up.bias[...] = jnp.zeros_like(up.bias[...])
    nn.load_state_dict(down, {"weight": nn.state_dict(up)["weight"]})
    x = jax.random.normal(jax.random.key(1), (2, 8, 9, 6), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (2, 3, 4, 4), jnp.float64)
    apply = nnx.jit(lambda layer, v: layer(v))  # one compile instead of one per primitive
    assert apply(up, y).shape == x.shape and apply(down, x).shape == y.shape
    np.testing.assert_allclose(jnp.vdot(apply(up, y), x), jnp.vdot(y, apply(down, x)), rtol=1e-12)


def _f64(*shape: int) -> jax.Array:
    return jax.random.normal(jax.random.key(sum(shape)), shape, jnp.float64)


@pytest.mark.parametrize(
    "make_layer,shape",
    [
        (lambda r: nn.Conv1d(4, 6, 3, 2, "valid", 2, 2, dtype=jnp.float64, rngs=r), (2, 13, 4)),
        (lambda r: nn.Conv2d(4, 6, 3, 1, "same", 2, 2, dtype=jnp.float64, rngs=r), (2, 7, 8, 4)),
        (
            lambda r: nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, dtype=jnp.float64, rngs=r),
            (2, 5, 4, 4),
        ),
        (
            lambda r: nn.ConvTranspose2d(4, 2, 3, 3, 3, 2, dtype=jnp.float64, rngs=r),
            (5, 4, 4),
        ),
    ],
    ids=["Conv1d", "Conv2d", "ConvTranspose2d", "ConvTranspose2d-cropping"],
)
def test_layers_agree_on_both_convolution_backends(monkeypatch, make_layer, shape):
    """CPU runs im2col; other backends XLA's convolution: the layers feed both the same way."""
    layer, x = make_layer(nnx.Rngs(0)), _f64(*shape)
    im2col = nnx.jit(lambda m, v: m(v))(layer, x)
    monkeypatch.setattr(conv, "conv2d", conv.conv2d_xla)
    np.testing.assert_allclose(nnx.jit(lambda m, v: m(v))(layer, x), im2col, rtol=1e-12, atol=1e-12)


def test_conv_transpose_rejects_what_torch_rejects():
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match='Only "zeros"'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channels"):
        nn.ConvTranspose2d(2, 2, 3, rngs=nnx.Rngs(0))(jnp.ones((1, 4, 4, 3), jnp.float32))


def test_layers_start_in_training_mode_and_switch_with_the_model():
    model = nn.Sequential(
        nn.Linear(3, 4, rngs=nnx.Rngs(0)),
        nn.BatchNorm1d(4),
        nn.Dropout(0.5, rngs=nnx.Rngs(dropout=1)),
    )
    x = jax.random.normal(jax.random.key(0), (8, 3), jnp.float32)
    assert not model[1].use_running_average and not model[2].deterministic
    model(x)
    assert int(model[1].num_batches_tracked[...]) == 1
    model.eval()
    assert model[1].use_running_average and model[2].deterministic
    first, second = model(x), model(x)
    np.testing.assert_array_equal(first, second)  # no dropout, no statistics update
    assert int(model[1].num_batches_tracked[...]) == 1
    model.train()
    assert not model[1].use_running_average and not model[2].deterministic


def test_batchnorm_errors_and_untracked_statistics():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(jnp.ones((1, 1, 1, 3), jnp.float32))
    with pytest.raises(ValueError, match=r"4-D input \(N, H, W, C\)"):
        bn(jnp.ones((2, 3), jnp.float32))
    bn.eval()
    assert bn(jnp.ones((1, 1, 1, 3), jnp.float32)).shape == (1, 1, 1, 3)
    free = nn.BatchNorm1d(2, affine=False, track_running_stats=False)
    assert nn.state_dict(free) == {}
    free.eval()  # still batch statistics: there are no running ones
    y = free(jnp.asarray([[1.0, 2.0], [3.0, 6.0]], jnp.float32))
    np.testing.assert_allclose(y, [[-1.0, -1.0], [1.0, 1.0]], rtol=1e-4)


def test_dropout_masks_with_torch_scaling_and_needs_random_numbers():
    drop = nn.Dropout(0.3, rngs=nnx.Rngs(dropout=0))
    y = np.asarray(drop(jnp.ones((100_000,), jnp.float32)))
    assert abs(np.mean(y == 0) - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    key = jax.random.key(3)
    np.testing.assert_array_equal(drop(jnp.ones(10), rngs=key), drop(jnp.ones(10), rngs=key))
    np.testing.assert_array_equal(nn.Dropout(1.0)(jnp.ones(3)), jnp.zeros(3))
    np.testing.assert_array_equal(nn.Dropout(0.0)(jnp.ones(3)), jnp.ones(3))
    with pytest.raises(ValueError, match="needs random numbers"):
        nn.Dropout(0.5)(jnp.ones(3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding_padding_row_gets_no_gradient_and_bad_indices_are_clear():
    emb = nn.Embedding(5, 2, padding_idx=-1, rngs=nnx.Rngs(0), dtype=jnp.float64)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight[4], [0.0, 0.0])
    indices = jnp.asarray([[4, 1], [1, 0]])
    grads = nnx.grad(lambda m: jnp.sum(m(indices)))(emb)
    np.testing.assert_array_equal(grads["weight"][...][:, 0], [1.0, 2.0, 0.0, 0.0, 0.0])
    with pytest.raises(IndexError, match="out of range"):
        emb(jnp.asarray([5]))
    assert bool(jnp.all(jnp.isnan(jax.jit(emb.__call__)(jnp.asarray([5])))))
    with pytest.raises(TypeError, match="integer indices"):
        emb(jnp.asarray([1.0]))
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(5, 2, max_norm=1.0, rngs=nnx.Rngs(0))


def test_pools_reject_what_they_do_not_support():
    with pytest.raises(ValueError, match="at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="at most half"):
        nn.AvgPool2d(3, padding=2)
    with pytest.raises(ValueError, match="too small"):
        nn.MaxPool2d(3)(jnp.ones((1, 2, 2, 1), jnp.float32))


def test_adaptive_average_bins_are_torchs():
    x = jnp.arange(10.0, dtype=jnp.float64).reshape(1, 1, 10, 1)
    y = nn.AdaptiveAvgPool2d((1, 4))(x)[0, 0, :, 0]
    # Bins [floor(i*10/4), ceil((i+1)*10/4)): [0, 3), [2, 5), [5, 8), [7, 10).
    np.testing.assert_allclose(y, [1.0, 3.0, 6.0, 8.0], rtol=1e-15)


def test_flatten_puts_channels_first_unless_told_otherwise():
    x = jnp.arange(24.0, dtype=jnp.float32).reshape(2, 3, 2, 2)  # (N, H, W, C)
    expected = np.asarray(x).transpose(0, 3, 1, 2).reshape(2, -1)
    np.testing.assert_array_equal(nn.Flatten()(x), expected)
    np.testing.assert_array_equal(nn.Flatten(channels_last=False)(x), np.asarray(x).reshape(2, -1))
    assert nn.Flatten(2)(x).shape == (2, 2, 6)
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(3, 1)(x)


def test_softmax_needs_an_explicit_axis():
    with pytest.raises(ValueError, match="explicit dim"):
        nn.Softmax()(jnp.ones((2, 3), jnp.float32))
    np.testing.assert_allclose(nn.Softmax(0)(jnp.zeros((2, 3), jnp.float32)), 0.5)


def test_sequential_takes_modules_and_slices_to_sequential():
    layers = [nn.Linear(2, 2, rngs=nnx.Rngs(0)), nn.ReLU(), nn.Tanh()]
    model = nn.Sequential(*layers)
    assert isinstance(model[1:], nn.Sequential) and len(model[1:]) == 2
    model.append(nn.Sigmoid())
    assert [name for name, _ in nn.named_children(model)] == ["0", "1", "2", "3"]
    with pytest.raises(TypeError, match="position 1"):
        nn.Sequential(layers[0], jax.nn.relu)


class _Shared(nnx.Module):
    def __init__(self):
        self.scale = nnx.Param(jnp.ones((2,), jnp.float32))
        self.stat = nnx.BatchStat(jnp.zeros((3,), jnp.float32))
        self.norm = nn.LayerNorm(2)
        self.again = self.norm


def test_modules_without_torch_state_expose_params_then_buffers_and_shared_modules():
    module = _Shared()
    assert list(nn.state_dict(module)) == [
        "scale",
        "stat",
        "norm.weight",
        "norm.bias",
        "again.weight",
        "again.bias",
    ]
    # named_modules lists a module reachable twice once, as torch does.
    assert [path for path, _ in nn.named_modules(module)] == ["", "norm"]
    assert [name for name, _ in nn.named_children(module)] == ["norm"]
