"""The generator's layout algebra against exact array math, and what it writes for the ops
that name dimensions in a channels-last port (no transpose where none is needed, the explicit
one where a reshape would mix the channel axis with spatial ones)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from parity import generate_port
from parity.generate import layout

from .zoo import ZOO

CASES = {case.name: case for case in ZOO}

RESHAPES = [
    ((2, 3, 4, 5), (2, 60)),
    ((2, 3, 4, 5), (2, 3, 20)),
    ((2, 3, 4, 5), (6, 4, 5)),
    ((2, 3, 4, 5), (2, 3, 2, 2, 5)),
    ((2, 3, 1, 1), (2, 3)),
    ((2, 12), (2, 3, 4)),
    ((4, 6, 2), (4, 3, 2, 2)),
]


@pytest.mark.parametrize(("source", "target"), RESHAPES)
def test_reshaped_layouts_hold_torch_entries_in_place(source, target):
    """For every layout of the input, the reshape the generator writes in the port's order
    (where it says one exists) holds exactly torch's reshaped array in the layout it says."""
    array = np.arange(np.prod(source)).reshape(source)
    expected = array.reshape(target)
    found_one = False
    for perm in itertools.permutations(range(len(source))):
        port_array = array.transpose(perm)
        result = layout.reshaped(perm, source, target)
        if result is None:
            continue
        found_one = True
        written = port_array.reshape([target[i] for i in result])
        np.testing.assert_array_equal(written, expected.transpose(result))
    assert found_one  # torch's own layout always works


@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_conversions_move_every_layout_to_every_other(rank):
    array = np.arange(2 * 3 * 4 * 5 * 6)[: np.prod(range(2, 2 + rank))].reshape(range(2, 2 + rank))
    for source, target in itertools.product(itertools.permutations(range(rank)), repeat=2):
        code = layout.conversion(source, target, "x")
        moved = eval(code, {"jnp": np, "x": array.transpose(source)})  # noqa: S307 - our code
        np.testing.assert_array_equal(moved, array.transpose(target))


def _source(name: str, channels_last: bool = True) -> str:
    case = CASES[name]
    model = case.build()
    return generate_port(model, case.batch()[: case.n_inputs], channels_last=channels_last).source


def test_channels_last_cat_and_mean_name_the_ports_axes_without_moving_data():
    unet = _source("unet")
    assert "jnp.concatenate([" in unet and "axis=3)" in unet, unet
    assert "moveaxis" not in unet and "transpose" not in unet, unet
    pooled = _source("cnn_mean_pool")
    assert ".mean(axis=(1, 2))" in pooled and "moveaxis" not in pooled, pooled


def test_a_view_that_mixes_channels_with_space_gets_its_transpose_first():
    source = _source("cnn_view_flatten")
    assert "jnp.moveaxis(x, -1, 1).reshape(x.shape[0], -1)" in source, source
    # On an array in torch's layout (the VAE's channels-first input) a view is written as is.
    vae = _source("vae", channels_last=False)
    assert "x.reshape(-1, 16)" in vae and "moveaxis" not in vae, vae


def test_a_transpose_in_the_ports_layout_is_bookkeeping_only():
    """MLP-Mixer's ``x.flatten(2).transpose(1, 2)`` after a channels-last convolution: the
    flatten merges the spatial axes where they already sit, and the transpose is then torch's
    (N, tokens, dim) with no data moved."""
    mixer = _source("mlp_mixer")
    call = mixer.split("class MlpMixer(nnx.Module):", 1)[1].split("def __call__", 1)[1]
    assert "moveaxis" not in call and "swapaxes" not in call, call
