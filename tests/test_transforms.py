"""jaxnets.data.transforms without torch: shapes, torchvision's argument rules and errors, jit and
vmap, per-image keys, and the distributions of the random draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxnets.data import transforms as T
from jaxnets.data.transforms import functional as TF

P_MIN = 1e-3  # distribution tests: fail only on a p-value this small (fixed keys: no flakes)


def image(h=5, w=6, c=3, dtype=jnp.float64, seed=0):
    return jax.random.normal(jax.random.key(seed), (h, w, c), dtype)


# ----------------------------------------------------------------------------- deterministic


def test_to_tensor_scales_uint8_and_keeps_channels_last():
    pixels = jnp.asarray(np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10)
    out = T.ToTensor()(None, pixels)
    assert out.shape == (2, 4, 3) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out, np.asarray(pixels, np.float32) / np.float32(255))
    assert T.ToTensor(jnp.float64)(None, pixels[..., 0]).shape == (2, 4, 1)
    floats = jnp.ones((2, 2, 1), jnp.float32)
    assert T.ToTensor()(None, floats) is floats or bool((T.ToTensor()(None, floats) == 1).all())
    with pytest.raises(ValueError, match="pic should be 2/3 dimensional. Got 4 dimensions"):
        T.ToTensor()(None, jnp.zeros((1, 2, 2, 1), jnp.uint8))
    with pytest.raises(TypeError, match="floating dtype"):
        T.ToTensor(jnp.int32)


def test_normalize_per_channel_scalar_and_leading_axes():
    x = image(2, 3, 2, jnp.float32)
    out = T.Normalize([0.5, -1.0], [2.0, 0.25])(None, x)
    expect = (np.asarray(x) - np.float32([0.5, -1.0])) / np.float32([2.0, 0.25])
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(T.Normalize(0.5, 2.0)(None, x), (np.asarray(x) - 0.5) / 2)
    batch = jnp.stack([x, x])
    assert T.Normalize([1.0], [3.0])(None, batch).shape == (2, 2, 3, 2)


@pytest.mark.parametrize(
    "kwargs, x, error, match",
    [
        ({"mean": [0.0], "std": [0.0]}, image(), ValueError, "std evaluated to zero"),
        ({"mean": [0.0, 1.0], "std": [1.0]}, image(), ValueError, "1 or C = 3 values"),
        ({"mean": [0.0], "std": [1.0]}, jnp.zeros((2, 2, 1), jnp.int32), TypeError, "float"),
        ({"mean": [0.0], "std": [1.0]}, jnp.zeros((2, 2)), ValueError, r"\(\.\.\., H, W, C\)"),
        ({"mean": [], "std": [1.0]}, image(), ValueError, "mean must be a number"),
    ],
)
def test_normalize_errors(kwargs, x, error, match):
    with pytest.raises(error, match=match):
        T.Normalize(**kwargs)(None, x)


def test_normalize_std_that_underflows_in_float32():
    with pytest.raises(ValueError, match="after conversion to float32"):
        T.Normalize([0.0], [1e-60])(None, image(dtype=jnp.float32))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding", [1, [2, 1], (1, 0, 2, 3)])
def test_pad_matches_numpy_modes(mode, padding):
    x = image(4, 5, 2)
    left, top, right, bottom = {1: (1, 1, 1, 1), 2: (2, 1, 2, 1), 4: (1, 0, 2, 3)}[
        1 if isinstance(padding, int) else len(padding)
    ]
    widths = [(top, bottom), (left, right), (0, 0)]
    numpy_mode = {"constant": "constant", "edge": "edge", "reflect": "reflect"}.get(mode, mode)
    expect = np.pad(np.asarray(x), widths, mode=numpy_mode)
    np.testing.assert_array_equal(TF.pad(x, padding, padding_mode=mode), expect)
    assert T.Pad(padding, padding_mode=mode).output_shape(x.shape) == expect.shape


def test_pad_fill_casts_to_the_image_dtype():
    x = jnp.ones((2, 2, 1), jnp.uint8)
    out = TF.pad(x, 1, fill=7)
    assert out.dtype == jnp.uint8 and int(out[0, 0, 0]) == 7 and int(out[1, 1, 0]) == 1


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: TF.pad(image(), (1, 2, 3)), ValueError, "not a 3 element tuple"),
        (lambda: TF.pad(image(), 1.5), TypeError, "inappropriate padding"),
        (lambda: TF.pad(image(), -1), ValueError, "integers >= 0"),
        (lambda: TF.pad(image(), 1, fill=(1, 2, 3)), TypeError, "inappropriate fill"),
        (lambda: TF.pad(image(), 1, padding_mode="wrap"), ValueError, "Padding mode"),
        (lambda: TF.pad(image(3, 3), 3, padding_mode="reflect"), ValueError, "must be <"),
        (lambda: TF.pad(image(3, 3), 4, padding_mode="symmetric"), ValueError, "must be <="),
        (lambda: T.Pad([1, 2, 3]), ValueError, "1, 2, or 4 element"),
    ],
)
def test_pad_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_crop_static_window_zero_pads_outside():
    x = jnp.arange(1.0, 10.0).reshape(3, 3, 1)
    np.testing.assert_array_equal(TF.crop(x, 1, 0, 2, 2)[..., 0], [[4, 5], [7, 8]])
    np.testing.assert_array_equal(TF.crop(x, 2, -1, 2, 3)[..., 0], [[0, 7, 8], [0, 0, 0]])


def test_hflip_flips_width():
    x = image(2, 4, 3)
    np.testing.assert_array_equal(TF.hflip(x), np.asarray(x)[:, ::-1, :])


@pytest.mark.parametrize(
    "size, max_size, expect",
    [
        (4, None, (4, 6)),  # smaller edge 4, longer int(4 * 9 / 6) = 6
        ([3], None, (3, 4)),
        ((7, 2), None, (7, 2)),
        (4, 5, (3, 5)),  # longer edge capped at 5: smaller int(5 * 4 / 6) = 3
    ],
)
def test_resize_output_sizes(size, max_size, expect):
    x = image(6, 9, 2)
    out = T.Resize(size, max_size=max_size)(None, x)
    assert out.shape == (*expect, 2) == T.Resize(size, max_size=max_size).output_shape(x.shape)


def test_resize_keeps_constants_same_size_and_integer_dtype():
    constant = jnp.full((5, 7, 2), 0.25, jnp.float64)
    for antialias in (True, False, None):
        for size in ((2, 3), (11, 4), (9, 14)):
            out = TF.resize(constant, size, antialias=antialias)
            np.testing.assert_allclose(out, 0.25, rtol=1e-15)
    x = image(4, 4)
    assert TF.resize(x, 4) is x
    pixels = jnp.asarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    out = TF.resize(pixels, (2, 2))
    assert out.dtype == jnp.uint8 and out.shape == (2, 2, 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"size": 2.5}, TypeError, "Size should be int or sequence"),
        ({"size": (1, 2, 3)}, ValueError, "1 or 2 values"),
        ({"size": 0}, ValueError, "integers >= 1"),
        ({"size": (4, 4), "max_size": 8}, ValueError, "max_size should only be passed"),
        ({"size": 4, "max_size": 4}, ValueError, "strictly greater"),
        ({"size": 4, "interpolation": "bicubic"}, ValueError, "'bilinear'"),
    ],
)
def test_resize_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        T.Resize(**kwargs)(None, image(6, 9))


# ----------------------------------------------------------------------------- random


def test_random_flip_draws_and_errors():
    x = image(3, 4)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(jax.random.key(1), x), x[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(jax.random.key(1), x), x)
    draw = T.RandomHorizontalFlip().draw(jax.random.key(0), x.shape)
    assert draw.shape == () and draw.dtype == jnp.bool_
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        T.RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match="RandomHorizontalFlip is random: pass a jax.random.key"):
        T.RandomHorizontalFlip()(None, x)


def test_random_crop_shapes_padding_and_params():
    x = image(5, 6)
    crop = T.RandomCrop((4, 3), padding=(1, 2))
    params = crop.draw(jax.random.key(0), x.shape)
    out = crop.apply_with(params, x)
    assert out.shape == (4, 3, 3) == crop.output_shape(x.shape)
    padded = np.pad(np.asarray(x), [(2, 2), (1, 1), (0, 0)])
    top, left = int(params.top), int(params.left)
    np.testing.assert_array_equal(out, padded[top : top + 4, left : left + 3])
    np.testing.assert_array_equal(crop(jax.random.key(0), x), out)
    # pad_if_needed pads the shortfall on both borders, as torchvision does.
    grow = T.RandomCrop((7, 9), pad_if_needed=True)
    assert grow._padded_size(x.shape) == (9, 12)
    assert grow(jax.random.key(0), x).shape == (7, 9, 3)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: T.RandomCrop((1, 2, 3)), ValueError, r"only two dimensions \(h, w\)"),
        (lambda: T.RandomCrop(0), ValueError, "integers >= 1"),
        (lambda: T.RandomCrop(2, padding=(1, 2, 3)), ValueError, "3 element tuple"),
        (lambda: T.RandomCrop(2, pad_if_needed=1), TypeError, "pad_if_needed"),
        (lambda: T.RandomCrop(2, padding_mode="wrap"), ValueError, "Padding mode"),
        (
            lambda: T.RandomCrop(7)(jax.random.key(0), image(5, 6)),
            ValueError,
            r"Required crop size \(7, 7\) is larger than input image size \(5, 6\)",
        ),
        (lambda: T.RandomCrop(2)(None, image()), TypeError, "RandomCrop is random"),
    ],
)
def test_random_crop_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_compose_draw_apply_and_call_agree():
    pixels = jnp.asarray(np.arange(60, dtype=np.uint8).reshape(5, 4, 3))
    pipeline = T.Compose(
        [
            T.ToTensor(jnp.float64),
            T.RandomCrop(4, padding=1, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            T.Resize((3, 5)),
            T.Normalize([0.5, 0.4, 0.3], [0.2, 0.3, 0.4]),
        ]
    )
    key = jax.random.key(3)
    params = pipeline.draw(key, pixels.shape)
    assert params[0] is None and isinstance(params[1], T.CropParams)
    np.testing.assert_array_equal(pipeline.apply_with(params, pixels), pipeline(key, pixels))
    assert pipeline.output_shape(pixels.shape) == (3, 5, 3)
    with pytest.raises(TypeError, match=r"transforms\[1\] must be a transform"):
        T.Compose([T.ToTensor(), 3])
    with pytest.raises(TypeError, match="need Transform objects"):
        T.Compose([lambda key, x: x]).draw(key, pixels.shape)


def test_transforms_are_hashable_static_configuration():
    assert T.RandomCrop(4, padding=[1]) == T.RandomCrop((4, 4), padding=1)
    assert len({T.Resize(3), T.Resize([3]), T.Normalize([0.5], [0.5])}) == 2


def test_apply_to_batch_one_key_per_image_under_jit():
    images = jnp.broadcast_to(image(6, 6, 1), (16, 6, 6, 1))
    crop = T.RandomCrop(4, padding=1)
    key = jax.random.key(7)
    out = jax.jit(lambda k, x: T.apply_to_batch(crop, k, x))(key, images)
    keys = jax.random.split(key, 16)
    for i in range(16):
        np.testing.assert_array_equal(out[i], crop(keys[i], images[i]))
    assert len({np.asarray(o).tobytes() for o in out}) > 1  # the images got different crops
    normalized = T.apply_to_batch(T.Normalize(1.0, 2.0), None, images)
    np.testing.assert_array_equal(normalized, (np.asarray(images) - 1) / 2)
    with pytest.raises(ValueError, match="leading batch axis"):
        T.apply_to_batch(crop, key, jnp.float64(1.0))


def test_jit_matches_eager_for_every_transform():
    x = image(7, 8)
    for transform in (
        T.Resize(5),
        T.Resize((9, 3), antialias=False),
        T.Pad((1, 2), padding_mode="symmetric"),
        T.RandomCrop(6, padding=2, padding_mode="edge"),
        T.RandomHorizontalFlip(),
    ):
        key = jax.random.key(2)
        # XLA fuses a resize's multiply-adds under jit (FMA): equal to rounding, not bits.
        np.testing.assert_allclose(jax.jit(transform)(key, x), transform(key, x), rtol=1e-14)


# ----------------------------------------------------------------------------- distributions


def _draws(transform, shape, n, seed=0):
    keys = jax.random.split(jax.random.key(seed), n)
    return jax.jit(jax.vmap(lambda k: transform.draw(k, shape)))(keys)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_flip_frequency_is_p(p):
    n = 4000
    flips = int(np.sum(_draws(T.RandomHorizontalFlip(p), (4, 4, 1), n)))
    assert stats.binomtest(flips, n, p).pvalue > P_MIN


def test_crop_offsets_uniform_and_independent():
    # 8x8 padded by 1 to 10x10, window 8: 3 x 3 positions, each with probability 1/9.
    draws = _draws(T.RandomCrop(8, padding=1), (8, 8, 1), 4500)
    top, left = np.asarray(draws.top), np.asarray(draws.left)
    assert top.min() == left.min() == 0 and top.max() == left.max() == 2
    counts = np.bincount(top * 3 + left, minlength=9)
    assert stats.chisquare(counts).pvalue > P_MIN
    uneven = _draws(T.RandomCrop((2, 3)), (6, 4, 1), 3000)  # 5 tops x 2 lefts
    counts = np.bincount(np.asarray(uneven.top) * 2 + np.asarray(uneven.left), minlength=10)
    assert counts.size == 10 and stats.chisquare(counts).pvalue > P_MIN
