"""jaxnets.nn.random: standalone draws against jax.random, and the replay of recorded draws.

No torch here: the recorded draws are written by hand as ``Recorded`` descriptions and NumPy
values, as ``parity.port.draws`` would record them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxnets import nn
from jaxnets.nn import functional as F
from jaxnets.nn import random
from jaxnets.nn.random import Recorded, Replay, ReplayError, replaying

# --- Standalone draws -----------------------------------------------------------------------


def test_draws_with_a_key_are_jax_random_draws():
    key = jax.random.key(7)
    np.testing.assert_array_equal(
        random.randn((3, 4), jnp.float32, rngs=key), jax.random.normal(key, (3, 4), jnp.float32)
    )
    np.testing.assert_array_equal(
        random.normal((5,), jnp.float64, mean=2.0, std=0.5, rngs=key),
        jax.random.normal(key, (5,), jnp.float64) * 0.5 + 2.0,
    )
    np.testing.assert_array_equal(
        random.uniform((5,), jnp.float64, low=-1.0, high=3.0, rngs=key),
        jax.random.uniform(key, (5,), jnp.float64, -1.0, 3.0),
    )
    np.testing.assert_array_equal(
        random.bernoulli(0.3, (6,), rngs=key), jax.random.bernoulli(key, 0.3, (6,))
    )
    np.testing.assert_array_equal(
        random.randint(2, 9, (6,), rngs=key), jax.random.randint(key, (6,), 2, 9, int)
    )
    np.testing.assert_array_equal(random.randperm(8, rngs=key), jax.random.permutation(key, 8))


def test_draws_take_their_keys_from_the_named_stream():
    # bernoulli (dropout masks) draws from the "dropout" stream, the others from "default".
    expected = jax.random.bernoulli(nnx.Rngs(dropout=3).dropout(), 0.5, (10,))
    np.testing.assert_array_equal(random.bernoulli(0.5, (10,), rngs=nnx.Rngs(dropout=3)), expected)
    expected = jax.random.normal(nnx.Rngs(4).default(), (10,), jnp.float64)
    np.testing.assert_array_equal(random.randn((10,), rngs=nnx.Rngs(4)), expected)
    expected = jax.random.uniform(nnx.Rngs(noise=5).noise(), (10,), jnp.float64)
    np.testing.assert_array_equal(
        random.rand((10,), rngs=nnx.Rngs(noise=5), stream="noise"), expected
    )
    # An RngStream is used as it is.
    expected = jax.random.normal(nnx.Rngs(6).default(), (10,), jnp.float64)
    np.testing.assert_array_equal(random.randn((10,), rngs=nnx.Rngs(6).default), expected)


def test_shapes_dtypes_and_ranges():
    rngs = nnx.Rngs(0)
    u = random.rand((3, 4), rngs=rngs)
    assert u.shape == (3, 4) and u.dtype == jnp.result_type(float)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    u = random.uniform((1000,), jnp.float32, low=-2.0, high=3.0, rngs=rngs)
    assert u.dtype == jnp.float32 and float(u.min()) >= -2.0 and float(u.max()) < 3.0
    x = jnp.zeros((2, 5), jnp.float32)
    assert random.rand_like(x, rngs=rngs).shape == (2, 5)
    assert random.rand_like(x, rngs=rngs).dtype == jnp.float32
    assert random.randn_like(x, rngs=rngs).dtype == jnp.float32
    assert random.randn((2, 2), jnp.float16, rngs=rngs).dtype == jnp.float16
    ints = random.randint(2, 7, (1000,), rngs=rngs)
    assert ints.dtype == jnp.dtype(int) and set(np.unique(ints).tolist()) == {2, 3, 4, 5, 6}
    assert random.randint(0, 3, (4,), jnp.int32, rngs=rngs).dtype == jnp.int32
    perm = random.randperm(10, rngs=rngs)
    assert perm.dtype == jnp.dtype(int) and sorted(perm.tolist()) == list(range(10))
    mask = random.bernoulli(0.5, (4, 3), rngs=rngs)
    assert mask.shape == (4, 3) and mask.dtype == jnp.bool_


def test_bernoulli_frequency_and_array_probabilities():
    n = 20_000
    drawn = random.bernoulli(0.3, (n,), rngs=nnx.Rngs(0))
    # 6 standard deviations of the mean of n draws: fails by chance about once in 1e9 runs.
    assert abs(float(drawn.mean()) - 0.3) < 6 * np.sqrt(0.3 * 0.7 / n)
    # shape defaults to p's; probabilities 0 and 1 are certain.
    p = jnp.asarray([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    drawn = random.bernoulli(p, rngs=nnx.Rngs(1))
    assert drawn.shape == (2, 3)
    np.testing.assert_array_equal(drawn, p == 1.0)


def test_normal_mean_and_std():
    n = 20_000
    z = random.normal((n,), jnp.float64, mean=5.0, std=0.5, rngs=nnx.Rngs(0))
    # The sample mean's standard error is 0.5/sqrt(n) ~ 0.0035, the sample std's ~ 0.0025.
    assert abs(float(z.mean()) - 5.0) < 0.03
    assert abs(float(z.std()) - 0.5) < 0.03
    z = random.randn((n,), rngs=nnx.Rngs(1))
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1.0) < 0.05


def test_multinomial_rows_and_zero_weights():
    probs = jnp.asarray([[1.0, 0.0, 2.0, 1.0], [0.0, 3.0, 1.0, 1.0]])
    drawn = random.multinomial(probs, 3, rngs=nnx.Rngs(0))
    assert drawn.shape == (2, 3) and drawn.dtype == jnp.dtype(int)
    for row, weights in zip(np.asarray(drawn), np.asarray(probs), strict=True):
        assert len(set(row.tolist())) == 3  # without replacement
        assert all(weights[i] > 0 for i in row)  # zero weight never drawn
    with pytest.raises(ValueError, match="cannot draw 5 samples from 4 categories"):
        random.multinomial(probs, 5, rngs=nnx.Rngs(0))
    assert random.multinomial(probs[0], 6, True, rngs=nnx.Rngs(0)).shape == (6,)


def test_two_draws_from_the_same_rngs_differ():
    rngs = nnx.Rngs(0)
    a, b = random.randn((8,), rngs=rngs), random.randn((8,), rngs=rngs)
    assert not np.array_equal(a, b)
    a, b = random.bernoulli(0.5, (64,), rngs=rngs), random.bernoulli(0.5, (64,), rngs=rngs)
    assert not np.array_equal(a, b)
    stream = nnx.Rngs(1).default
    assert not np.array_equal(random.rand((8,), rngs=stream), random.rand((8,), rngs=stream))
    # A key is used as given: the same key, the same draw.
    key = jax.random.key(0)
    np.testing.assert_array_equal(random.rand((8,), rngs=key), random.rand((8,), rngs=key))


def test_draw_without_rngs_says_how_to_give_them():
    with pytest.raises(ValueError, match=r"^normal needs random numbers: pass rngs=nnx\.Rngs\("):
        random.randn((2,))
    with pytest.raises(
        ValueError, match=r"bernoulli needs random numbers: .*Rngs\(dropout=\.\.\.\)"
    ):
        random.bernoulli(0.5, (2,))
    with pytest.raises(ValueError, match=r"^my layer needs random numbers: .*Rngs\(noise=") as e:
        random.key_from(None, "noise", "my layer")
    assert "nnx.RngStream" in str(e.value) and "eval mode" in str(e.value)
    with pytest.raises(ValueError, match="layout must be one of"):
        random.rand((2,), rngs=nnx.Rngs(0), layout="nchw")


# --- Replay ---------------------------------------------------------------------------------


def _bernoulli(shape, p=0.5, where="drop"):
    return Recorded("bernoulli", tuple(shape), (("p", p),), where, "aten.bernoulli_.float")


def _normal(shape, where=""):
    return Recorded("normal", tuple(shape), (("mean", 0.0), ("std", 1.0)), where, "aten.randn_like")


def test_replay_hands_out_the_values_in_order_cast_to_the_dtype_asked():
    noise = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    mask = np.asarray([1.0, 0.0, 0.0, 1.0])  # torch's bernoulli_ fills a float tensor
    replay = Replay([_normal((2, 3)), _bernoulli((4,))], [noise, mask])
    assert random.active() is None
    with replaying(replay) as opened:
        assert opened is replay and random.active() is replay
        z = random.randn((2, 3), jnp.float32)  # no rngs needed
        keep = random.bernoulli(0.5, (4,))
    assert random.active() is None
    assert z.dtype == jnp.float32 and keep.dtype == jnp.bool_
    np.testing.assert_array_equal(z, noise.astype(np.float32))
    np.testing.assert_array_equal(keep, [True, False, False, True])
    assert replay.taken == 2
    replay.finish()


def test_replay_of_integer_draws():
    replay = Replay(
        [
            Recorded("randint", (3,), (("low", 0.0), ("high", 5.0))),
            Recorded("randperm", (4,)),
            Recorded("multinomial", (2, 2)),
        ],
        [np.asarray([4, 0, 2]), np.asarray([2, 0, 3, 1]), np.asarray([[1, 0], [2, 1]])],
    )
    with replaying(replay):
        np.testing.assert_array_equal(random.randint(0, 5, (3,), jnp.int32), [4, 0, 2])
        np.testing.assert_array_equal(random.randperm(4), [2, 0, 3, 1])
        np.testing.assert_array_equal(random.multinomial(jnp.ones((2, 3)), 2), [[1, 0], [2, 1]])
    replay.finish()


def test_channels_last_moves_a_per_channel_mask():
    n, c = 2, 3
    value = np.asarray([[1, 0, 1], [0, 0, 1]], np.float64).reshape(n, c, 1, 1)
    replay = Replay([_bernoulli((n, c, 1, 1))], [value], channels_last=True)
    with replaying(replay):
        keep = random.bernoulli(0.5, (n, 1, 1, c))
    assert keep.shape == (n, 1, 1, c)
    np.testing.assert_array_equal(keep[:, 0, 0, :], value[:, :, 0, 0] == 1)


def _element_mask(shape=(2, 3, 4, 5)):
    return (np.arange(np.prod(shape)).reshape(shape) % 3 == 0).astype(np.float64)


@pytest.mark.parametrize("channels_last", [True, False])
def test_auto_layout_follows_channels_last(channels_last):
    value = _element_mask()  # torch's (N, C, H, W)
    mine = (2, 4, 5, 3) if channels_last else (2, 3, 4, 5)
    replay = Replay([_bernoulli(value.shape)], [value], channels_last=channels_last)
    with replaying(replay):
        keep = random.bernoulli(0.5, mine)  # layout="auto"
    expected = np.moveaxis(value, 1, -1) if channels_last else value
    np.testing.assert_array_equal(keep, expected == 1)
    replay = Replay([_bernoulli(value.shape)], [value], channels_last=channels_last)
    if channels_last:
        # torch's own axes still fit (a port array left in torch's layout): taken unmoved.
        with replaying(replay):
            np.testing.assert_array_equal(random.bernoulli(0.5, value.shape), value == 1)
    else:
        # Without channels_last an auto draw is never moved.
        with replaying(replay), pytest.raises(ReplayError, match="of another shape"):
            random.bernoulli(0.5, (2, 4, 5, 3))


def test_explicit_layouts_ignore_channels_last():
    value = _element_mask()
    for channels_last in (True, False):
        replay = Replay([_bernoulli(value.shape)] * 2, [value] * 2, channels_last=channels_last)
        with replaying(replay):
            torch_axes = random.bernoulli(0.5, (2, 3, 4, 5), layout="torch")
            moved = random.bernoulli(0.5, (2, 4, 5, 3), layout="channels_last")
        np.testing.assert_array_equal(torch_axes, value == 1)
        np.testing.assert_array_equal(moved, np.moveaxis(value, 1, -1) == 1)


def test_leading_axes_regroup_and_size_one_axes():
    n, h, length, s = 2, 3, 4, 5
    value = _element_mask((n * h, length, s))  # torch's attention-weights mask (N*H, L, S)
    replay = Replay([_bernoulli(value.shape, 0.9)], [value], channels_last=True)
    with replaying(replay):
        keep = random.bernoulli(0.9, (n, h, length, s), layout="torch")
    np.testing.assert_array_equal(keep, value.reshape(n, h, length, s) == 1)
    # An unbatched dropout1d: torch's (C, 1) mask for the port's (1, C).
    value = np.asarray([[1.0], [0.0], [1.0]])
    replay = Replay([_bernoulli((3, 1))], [value])
    with replaying(replay):
        keep = random.bernoulli(0.5, (1, 3), layout="torch")
    np.testing.assert_array_equal(keep, [[True, False, True]])
    # Regrouping other than the leading axes is refused: (6, 4, 5) is not (2, 12, 5).
    replay = Replay([_bernoulli((6, 4, 5))], [_element_mask((6, 4, 5))])
    with replaying(replay), pytest.raises(ReplayError, match="of another shape"):
        random.bernoulli(0.5, (2, 12, 5), layout="torch")


def _replay_one(record, value=None):
    value = np.zeros(record.shape) if value is None else value
    return Replay([record], [value], locate=lambda: "encoder.drop", label="step 2, float32")


def test_replay_error_another_kind():
    with replaying(_replay_one(_normal((2, 3), where="encoder"))), pytest.raises(ReplayError) as e:
        random.rand((2, 3))
    assert str(e.value) == (
        "the port's random draws part from torch's at draw 1 (step 2, float32): torch drew "
        "normal(mean=0, std=1) of shape (2, 3) in module 'encoder' (aten.randn_like), another "
        "kind of draw; the port's module 'encoder.drop' asked for uniform(low=0, high=1) of "
        "shape (2, 3)"
    )


def test_replay_error_another_shape():
    with replaying(_replay_one(_bernoulli((4, 5), 0.75))), pytest.raises(ReplayError) as e:
        random.bernoulli(0.75, (4, 6))
    message = str(e.value)
    assert "torch drew bernoulli(p=0.75) of shape (4, 5) in module 'drop'" in message
    assert "of another shape" in message
    assert "module 'encoder.drop' asked for bernoulli(p=0.75) of shape (4, 6)" in message


def test_replay_error_another_parameter():
    with replaying(_replay_one(_bernoulli((4,), 0.75))), pytest.raises(ReplayError) as e:
        random.bernoulli(0.7, (4,))
    assert "with another p" in str(e.value)
    assert "asked for bernoulli(p=0.7) of shape (4,)" in str(e.value)
    record = Recorded("normal", (3,), (("mean", 0.0), ("std", 2.0)), None, "aten.normal_")
    with replaying(_replay_one(record)), pytest.raises(ReplayError) as e:
        random.normal((3,), std=1.0)
    assert "in no module's forward (the loss)" in str(e.value)
    assert "with another std" in str(e.value)
    # A probability given as an array is not compared (a replay only sees numbers).
    with replaying(_replay_one(_bernoulli((4,), 0.75), np.ones(4))):
        assert bool(random.bernoulli(jnp.full((4,), 0.1)).all())


def test_replay_error_too_many_draws_and_draws_left():
    replay = Replay([_normal((2,))], [np.ones(2)], label="step 0, float64")
    with replaying(replay):
        random.randn((2,))
        with pytest.raises(ReplayError) as e:
            random.randn((2,))
    assert "at draw 2 (step 0, float64): torch drew only 1 times" in str(e.value)
    assert "the port asked for normal(mean=0, std=1) of shape (2,)" in str(e.value)
    replay = Replay([_normal((2,)), _bernoulli((3,), 0.9)], [np.ones(2), np.ones(3)])
    with replaying(replay):
        random.randn((2,))
    with pytest.raises(ReplayError) as e:
        replay.finish()
    assert str(e.value) == (
        "the port's random draws part from torch's at draw 2: torch drew bernoulli(p=0.9) of "
        "shape (3,) in module 'drop' (aten.bernoulli_.float), and the port drew no more "
        "(2 draws in torch, 1 in the port)"
    )
    with pytest.raises(ValueError, match="2 recorded draws but 1 value arrays"):
        Replay([_normal((2,)), _normal((2,))], [np.ones(2)])


def test_replay_under_jit_takes_values_as_arguments():
    recorded = (_normal((2, 3)), _bernoulli((2, 3), 0.75))
    traces = 0

    @jax.jit
    def step(x, draws):
        nonlocal traces
        traces += 1
        replay = Replay(recorded, draws)
        with replaying(replay):
            noisy = x + random.randn_like(x)
            out = nn.functional.dropout(noisy, 0.25)
        replay.finish()
        return out

    x = jnp.ones((2, 3))
    for seed in range(3):
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((2, 3))
        mask = (rng.random((2, 3)) < 0.75).astype(np.float64)
        out = step(x, (jnp.asarray(noise), jnp.asarray(mask)))
        np.testing.assert_allclose(out, (1.0 + noise) * mask / 0.75, rtol=1e-15)
    assert traces == 1


def test_dropout_layer_in_a_replay_needs_no_rngs_and_scales_as_torch():
    x = jnp.arange(1.0, 9.0).reshape(2, 4)
    mask = np.asarray([[1, 0, 1, 1], [0, 1, 0, 1]], np.float64)
    drop = nn.Dropout(0.5)  # no rngs
    with pytest.raises(ValueError, match="Dropout in training mode needs random numbers"):
        drop(x)
    replay = Replay([_bernoulli((2, 4), 0.5)], [mask])
    with replaying(replay):
        out = drop(x)
    replay.finish()
    np.testing.assert_array_equal(out, np.asarray(x) * mask * 2.0)  # 1/(1-p) = 2 exactly
    drop = nn.Dropout(0.25)
    replay = Replay([_bernoulli((2, 4), 0.75)], [mask])
    with replaying(replay):
        out = drop(x)
    np.testing.assert_allclose(out, np.asarray(x) * mask / 0.75, rtol=1e-15, atol=0)
    drop.eval()
    with replaying(Replay([], [])) as idle:
        np.testing.assert_array_equal(drop(x), x)
    idle.finish()  # eval mode draws nothing


def test_dropout2d_draws_one_channels_last_mask_per_sample_and_channel():
    n, h, w, c = 2, 3, 3, 4
    x = jnp.ones((n, h, w, c))
    out = F.dropout2d(x, 0.5, key=jax.random.key(0))
    per_channel = np.asarray(out).reshape(n, h * w, c)
    assert np.all(per_channel == per_channel[:, :1, :])  # constant over H, W
    assert set(np.unique(per_channel).tolist()) <= {0.0, 2.0}
    # torch's (N, C, 1, 1) mask lands on the port's channels-last (N, 1, 1, C).
    value = np.asarray([[1, 0, 0, 1], [0, 1, 1, 1]], np.float64)
    replay = Replay([_bernoulli((n, c, 1, 1))], [value.reshape(n, c, 1, 1)])
    with replaying(replay):
        out = F.dropout2d(x, 0.5)
    np.testing.assert_array_equal(out, np.broadcast_to(2.0 * value[:, None, None, :], x.shape))
    # The port asks for (N, 1, 1, C): an element-wise torch mask is not this draw.
    replay = Replay([_bernoulli((n, c, h, w))], [np.ones((n, c, h, w))])
    with replaying(replay), pytest.raises(ReplayError) as e:
        F.dropout2d(x, 0.5)
    assert f"asked for bernoulli(p=0.5) of shape ({n}, 1, 1, {c})" in str(e.value)
