"""jaxnets.data.transforms against torchvision's tensor kernels (parity.torch_ref.transforms).

Deterministic transforms: equal in float64 (resize: 1e-12 of the largest value, since XLA may
fuse its multiply-adds) and within 1e-6 in float32. Random transforms: torch applies the
parameters jaxnets drew; their draws are compared with torch's generator's by a chi-square test.
Our images are (H, W, C), torch's (C, H, W): the comparison transposes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy import stats

from jaxnets.data import transforms as T
from jaxnets.data.transforms import functional as TF
from parity.torch_ref import transforms as ref

DTYPES = {
    "float64": (jnp.float64, torch.float64, 1e-12),
    "float32": (jnp.float32, torch.float32, 1e-6),
}


def hwc(seed, h, w, c=3, dtype="float64"):
    return np.random.default_rng(seed).standard_normal((h, w, c)).astype(dtype)


def chw(x):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(2, 0, 1)))


def as_hwc(t):
    return t.numpy().transpose(1, 2, 0)


def assert_close(ours, theirs, rtol):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    worst = np.max(np.abs(ours.astype(np.float64) - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    assert worst <= rtol, f"worst relative difference {worst:.3g} > {rtol}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_tensor_normalize_flip_equal(dtype):
    jdt, tdt, _ = DTYPES[dtype]
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ours = T.ToTensor(jdt)(None, pixels)
    theirs = ref.to_tensor(pixels, tdt)
    np.testing.assert_array_equal(ours, as_hwc(theirs))
    gray = T.ToTensor(jdt)(None, pixels[..., 0])
    np.testing.assert_array_equal(gray, as_hwc(ref.to_tensor(pixels[..., 0], tdt)))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    normalized = T.Normalize(mean, std)(None, ours)
    np.testing.assert_array_equal(normalized, as_hwc(ref.normalize(theirs, mean, std)))
    np.testing.assert_array_equal(TF.hflip(normalized), as_hwc(ref.hflip(chw(normalized))))


@pytest.mark.parametrize("dtype", [*DTYPES, "uint8"])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_equal(dtype, mode):
    x = np.random.default_rng(1).integers(0, 200, (4, 5, 2)).astype(dtype)
    for padding in (2, [1, 3], (0, 1, 3, 2)):
        ours = TF.pad(x, padding, fill=9, padding_mode=mode)
        np.testing.assert_array_equal(ours, as_hwc(ref.pad(chw(x), padding, 9, mode)))


def test_crop_equal_inside_and_outside():
    x = hwc(2, 5, 6)
    for window in ((1, 2, 3, 3), (-2, 3, 4, 5), (3, -1, 4, 2), (0, 0, 5, 6)):
        np.testing.assert_array_equal(TF.crop(x, *window), as_hwc(ref.crop(chw(x), *window)))


RESIZES = [  # (H, W, size, max_size): down, up, mixed, smaller edge, capped
    (9, 12, (4, 5), None),
    (5, 4, (11, 13), None),
    (8, 8, (3, 14), None),
    (7, 10, 5, None),
    (12, 6, [4], 7),
    (17, 13, (5, 9), None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("h, w, size, max_size", RESIZES)
def test_resize_matches_interpolate(dtype, antialias, h, w, size, max_size):
    jdt, tdt, rtol = DTYPES[dtype]
    x = hwc(3, h, w, dtype=dtype)
    theirs = as_hwc(ref.resize(chw(x), size, max_size, antialias))
    transform = T.Resize(size, max_size=max_size, antialias=antialias)
    assert_close(transform(None, x), theirs, rtol)
    assert_close(jax.jit(transform)(None, x), theirs, rtol)


def test_resize_uint8_rounds_as_torchvision():
    pixels = np.random.default_rng(4).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    for antialias in (True, False):
        ours = np.asarray(TF.resize(pixels, (5, 4), antialias=antialias))
        theirs = as_hwc(ref.resize(chw(pixels), (5, 4), antialias=antialias))
        assert ours.dtype == np.uint8
        # float32 sums one rounding apart can land on either side of .5: at most 1 level.
        assert np.max(np.abs(ours.astype(int) - theirs)) <= 1
        assert np.mean(ours != theirs) < 0.05


CROPS = [
    {"size": 4, "padding": 1},
    {"size": (3, 5), "padding": (1, 2), "padding_mode": "reflect"},
    {"size": 6, "padding": (0, 1, 2, 3), "padding_mode": "symmetric"},
    {"size": (7, 9), "pad_if_needed": True, "fill": 2.5},
    {"size": (7, 8), "padding": 1, "pad_if_needed": True, "padding_mode": "edge"},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", CROPS)
def test_random_crop_with_drawn_params_equal(dtype, kwargs):
    x = hwc(5, 5, 6, dtype=dtype)
    crop = T.RandomCrop(**kwargs)
    keys = jax.random.split(jax.random.key(0), 6)
    params = jax.vmap(lambda k: crop.draw(k, x.shape))(keys)
    outs = jax.jit(jax.vmap(crop.apply_with, in_axes=(0, None)))(params, x)
    torch_kwargs = {k: v for k, v in kwargs.items() if k != "size"}
    for i in range(len(keys)):
        top, left = int(params.top[i]), int(params.left[i])
        theirs = ref.random_crop(chw(x), kwargs["size"], top=top, left=left, **torch_kwargs)
        np.testing.assert_array_equal(outs[i], as_hwc(theirs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pipeline_with_drawn_params_equal(dtype):
    """ToTensor, RandomCrop (reflect), RandomHorizontalFlip, Resize, Normalize chained."""
    jdt, tdt, rtol = DTYPES[dtype]
    pixels = np.random.default_rng(6).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    pipeline = T.Compose(
        [
            T.ToTensor(jdt),
            T.RandomCrop(8, padding=2, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            T.Resize(5),
            T.Normalize(mean, std),
        ]
    )
    for seed in range(4):
        params = pipeline.draw(jax.random.key(seed), pixels.shape)
        ours = jax.jit(pipeline.apply_with)(params, pixels)
        _, crop, flip, _, _ = params
        x = ref.to_tensor(pixels, tdt)
        x = ref.random_crop(x, 8, top=int(crop.top), left=int(crop.left), padding=2,
                            padding_mode="reflect")  # fmt: skip
        x = ref.random_hflip(x, bool(flip))
        x = ref.normalize(ref.resize(x, 5), mean, std)
        assert_close(ours, as_hwc(x), rtol)


def test_draws_distributed_as_torchvision_draws():
    """Our crop offsets and flips against torch's generator's, one contingency table each."""
    n = 3000
    crop = T.RandomCrop(8, padding=1)  # 3 x 3 positions
    keys = jax.random.split(jax.random.key(11), n)
    ours = jax.jit(jax.vmap(lambda k: crop.draw(k, (8, 8, 1))))(keys)
    torch.manual_seed(11)
    theirs = np.array([ref.crop_params(10, 10, 8, 8) for _ in range(n)])
    cells = np.stack(
        [
            np.bincount(np.asarray(ours.top) * 3 + np.asarray(ours.left), minlength=9),
            np.bincount(theirs[:, 0] * 3 + theirs[:, 1], minlength=9),
        ]
    )
    assert stats.chi2_contingency(cells).pvalue > 1e-3
    flips = jax.jit(jax.vmap(lambda k: T.RandomHorizontalFlip(0.3).draw(k, (1, 1, 1))))(keys)
    torch_flips = sum(ref.flip_draw(0.3) for _ in range(n))
    table = [[int(flips.sum()), n - int(flips.sum())], [torch_flips, n - torch_flips]]
    assert stats.chi2_contingency(table).pvalue > 1e-3
