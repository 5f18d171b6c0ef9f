"""jaxnets.nn.recurrent against torch.nn: RNN, LSTM, GRU and their cells.

Every ``module_db`` sample input of the six classes (all unbatched and dropout-free, run in
training mode), then extra cases the samples miss (batched input, ``batch_first``, projections,
``lengths`` against packed sequences, dropout), each compared with torch run here: outputs, the
gradients of ``sum(y * cotangent)`` with respect to the inputs (``input`` and ``hx``) and to
every parameter. float64 agrees to 1e-10 of each tensor's largest entry; float32 to 1e-5, of the
case's largest gradient for the gradients (see ``_compare``). torch's randomly initialised
weights are loaded into ours with ``load_state_dict``. The cases of a group are compiled
together into one jitted program (see ``_compare`` for why).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from scipy import stats
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing._internal.common_modules import module_db

from jaxnets import nn
from jaxnets.nn import recurrent
from jaxnets.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

pytestmark = pytest.mark.parity

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}
CLASSES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")


def _is_tensor(a: Any) -> bool:
    return isinstance(a, torch.Tensor)


def _tensors(tree: Any) -> list[torch.Tensor]:
    return jax.tree.leaves(tree, is_leaf=_is_tensor)


def _map_tensors(fn: Callable[[torch.Tensor], Any], tree: Any) -> Any:
    return jax.tree.map(fn, tree, is_leaf=_is_tensor)


@dataclass
class Run:
    """One comparison: torch's module and call arguments, ours loaded with its state."""

    what: str
    theirs: torch.nn.Module
    ours: nnx.Module
    args: tuple  # torch tensors (nested tuples for LSTM's hx); floating ones are differentiated
    lengths: np.ndarray | None = None  # ours takes lengths=, torch packs the batch
    batch_first: bool = False
    mode: str = "train"


def _ours_like(theirs: torch.nn.Module, args: tuple, kwargs: dict, dtype: str) -> nnx.Module:
    def build() -> nnx.Module:
        layer = getattr(recurrent, type(theirs).__name__)
        return layer(*args, **kwargs, dtype=jnp.dtype(dtype), rngs=nnx.Rngs(0))

    # torch's weights replace every parameter, so only the structure is built (no eager random
    # draws to compile per shape), unless dropout keeps a random stream.
    ours = build() if kwargs.get("dropout", 0) else nnx.eval_shape(build)
    nn.load_state_dict(ours, theirs.state_dict())
    return ours


def _run(name: str, args: tuple, kwargs: dict, dtype: str, inputs: tuple, **extra) -> Run:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(TORCH_DTYPE[dtype])
    ours = _ours_like(theirs, args, kwargs, dtype)
    call = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    shapes = _map_tensors(lambda t: tuple(t.shape), inputs)
    run = Run(f"{name}({call}) on {shapes} {dtype}", theirs, ours, inputs, **extra)
    theirs.train(run.mode == "train")
    ours.train() if run.mode == "train" else ours.eval()
    return run


def _module_db_runs(name: str, dtype: str) -> list[Run]:
    (info,) = [i for i in module_db if i.module_cls.__name__ == name]
    runs = []
    for sample in info.module_inputs_func(
        info, device="cpu", dtype=TORCH_DTYPE[dtype], requires_grad=True, training=True
    ):
        constructor, forward = sample.constructor_input, sample.forward_input
        assert not forward.kwargs, forward.kwargs  # a new kind of sample: compare it too
        runs.append(_run(name, constructor.args, constructor.kwargs, dtype, forward.args))
    return runs


def _torch_results(run: Run, rng: np.random.Generator):
    """torch's outputs, cotangents, input gradients and parameter gradients for ``run``."""
    run.theirs.zero_grad(set_to_none=True)
    args = _map_tensors(
        lambda t: t.detach().clone().requires_grad_(t.is_floating_point()), run.args
    )
    with warnings.catch_warnings():
        # A note on which CPU kernel torch runs (float32 LSTM with projections), not a problem.
        warnings.filterwarnings("ignore", "LSTM with projections is not supported", UserWarning)
        if run.lengths is None:
            out = run.theirs(*args)
        else:
            x, *rest = args
            lengths = torch.from_numpy(run.lengths)
            packed = pack_padded_sequence(x, lengths, run.batch_first, enforce_sorted=False)
            packed_out, hidden = run.theirs(packed, *rest)
            total = x.shape[1 if run.batch_first else 0]
            out = pad_packed_sequence(packed_out, run.batch_first, total_length=total)[0], hidden
    outputs = _tensors(out)
    cotangents = [rng.standard_normal(tuple(o.shape)).astype(str(o.dtype)[6:]) for o in outputs]
    loss = sum((o * torch.from_numpy(c)).sum() for o, c in zip(outputs, cotangents, strict=True))
    loss.backward()
    input_grads = [t.grad.numpy() for t in _tensors(args)]
    param_grads = {n: p.grad.numpy() for n, p in run.theirs.named_parameters()}
    return [o.detach().numpy() for o in outputs], cotangents, input_grads, param_grads


def _largest(arrays: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)


def _close(got: Any, want: np.ndarray, tolerance: float, what: str, floor: float = 0.0) -> None:
    """``got`` equals torch's ``want`` within ``tolerance`` of ``want``'s largest entry (or of
    ``floor``, if larger)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch's {want.dtype}"
    scale = max(_largest([want]), floor, 1e-30)
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= tolerance * scale, f"{what}: max error {error:.3g} vs scale {scale:.3g}"


def _lower(runs: list[Run], cotangents: list[list[np.ndarray]]) -> tuple[jax.stages.Lowered, tuple]:
    """One program for all ``runs``: each one's outputs, parameter and input gradients."""
    graphdef, state = nnx.split([run.ours for run in runs])
    args = [_map_tensors(lambda t: jnp.asarray(t.detach().numpy()), run.args) for run in runs]
    lengths = [None if run.lengths is None else jnp.asarray(run.lengths) for run in runs]
    cotangents = [[jnp.asarray(c) for c in cot] for cot in cotangents]

    def value_and_grads(state, args, lengths, cotangents):
        models = nnx.merge(graphdef, state)
        results = []
        for model, a, n, cot in zip(models, args, lengths, cotangents, strict=True):
            kwargs = {} if n is None else {"lengths": n}

            def loss(model, a, kwargs=kwargs, cot=cot):
                outputs = jax.tree.leaves(model(*a, **kwargs))
                return sum(jnp.sum(o * c) for o, c in zip(outputs, cot, strict=True)), outputs

            results.append(nnx.value_and_grad(loss, argnums=(0, 1), has_aux=True)(model, a))
        return results

    inputs = (state, args, lengths, cotangents)
    return jax.jit(value_and_grads).lower(*inputs), inputs


def _compare(runs: list[Run], dtype: str) -> None:
    """Each run's values and gradients, computed by ``jax.jit``, checked against torch's.

    Compiling dominates: XLA compiles the kernels of every while loop (a scan and its transpose
    per layer and direction) for each configuration, about half a second a case on this CPU.
    What saves time, without changing what is computed: one program for many runs (less
    overhead than one each); torch's samples come in pairs that differ only in ``batch_first``,
    which an unbatched input does not read, so the runs are split by ``batch_first`` and when
    the two halves lower to the same program text it is compiled once and run on each half's
    own arguments; and LLVM optimises at level 0 (a third less compile time; no fast-math
    either way).
    """
    rng = np.random.default_rng(0)
    expected = [_torch_results(run, rng) for run in runs]
    halves: dict[bool, list[int]] = {}
    for index, run in enumerate(runs):
        halves.setdefault(getattr(run.theirs, "batch_first", False), []).append(index)
    executables: dict[tuple, jax.stages.Compiled] = {}
    results: list[Any] = [None] * len(runs)
    for indices in halves.values():
        lowered, inputs = _lower([runs[i] for i in indices], [expected[i][1] for i in indices])
        key = (lowered.as_text(), lowered.in_tree, lowered.out_tree)
        if key not in executables:
            options = {"xla_backend_optimization_level": 0}
            executables[key] = lowered.compile(compiler_options=options)
        for index, result in zip(indices, executables[key](*inputs), strict=True):
            results[index] = result
    tolerance = TOLERANCE[dtype]
    for run, result, (outputs, _, input_grads, param_grads) in zip(
        runs, results, expected, strict=True
    ):
        (_, got_outputs), (model_grads, arg_grads) = result
        # float32 gradients: a small one (a bias's, say) is a sum of cancelling terms as large
        # as the case's largest gradient, and float32 rounds those terms, in torch as here; so
        # its scale is the case's. float64 keeps every tensor's own scale.
        floor = _largest(input_grads + list(param_grads.values())) if dtype == "float32" else 0.0
        assert len(got_outputs) == len(outputs), run.what
        for i, (got, want) in enumerate(zip(got_outputs, outputs, strict=True)):
            _close(got, want, tolerance, f"{run.what}: output {i}")
        for i, (got, want) in enumerate(zip(jax.tree.leaves(arg_grads), input_grads, strict=True)):
            _close(got, want, tolerance, f"{run.what}: gradient of input {i}", floor)
        graphdef, _, rest = nnx.split(run.ours, nnx.Param, ...)
        grads = nn.state_dict(nnx.merge(graphdef, model_grads, rest))
        assert list(grads) == list(param_grads), run.what
        for name, want in param_grads.items():
            _close(grads[name], want, tolerance, f"{run.what}: d/d{name}", floor)


@pytest.mark.torch_db_full
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", CLASSES)
def test_module_db_samples_match_torch(name: str, dtype: str):
    """torch's own samples (training mode; none of them has dropout, so train is exact)."""
    runs = _module_db_runs(name, dtype)
    assert runs
    _compare(runs, dtype)


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def _extra_runs() -> list[Run]:
    """What the samples miss (they are all unbatched and dropout-free), in float64."""
    f64 = "float64"
    runs = [
        # Batched, batch_first, two bidirectional layers with projections, hx given.
        _run(
            "LSTM",
            (3, 5),
            {"num_layers": 2, "bidirectional": True, "batch_first": True, "proj_size": 2},
            f64,
            (_x(2, 4, 3), (_x(4, 2, 2, seed=2), _x(4, 2, 5, seed=3))),
        ),
        _run("RNN", (3, 4, 2, "relu"), {}, f64, (_x(5, 3, 3), _x(2, 3, 4, seed=2))),
        _run(
            "GRU",
            (3, 4),
            {"num_layers": 2, "bidirectional": True, "batch_first": True},
            f64,
            (_x(3, 4, 3), _x(4, 3, 4, seed=2)),
        ),
        # dropout=1 zeroes the second layer's input, so training mode is deterministic.
        _run("GRU", (3, 4), {"num_layers": 2, "dropout": 1.0}, f64, (_x(5, 2, 3),)),
        # torch's dropout draws can't be reproduced: dropout=0.5 is compared in eval mode.
        _run("LSTM", (3, 4), {"num_layers": 2, "dropout": 0.5}, f64, (_x(5, 2, 3),), mode="eval"),
        # Cells on batched input, with and without hx.
        _run("RNNCell", (3, 4), {"nonlinearity": "relu"}, f64, (_x(2, 3), _x(2, 4, seed=2))),
        _run("LSTMCell", (3, 4), {"bias": False}, f64, (_x(2, 3),)),
        _run("LSTMCell", (3, 4), {}, f64, (_x(2, 3), (_x(2, 4, seed=2), _x(2, 4, seed=3)))),
        _run("GRUCell", (3, 4), {}, f64, (_x(2, 3), _x(2, 4, seed=2))),
    ]
    # lengths= against torch's packed sequences (unsorted lengths, one of them full, one 1).
    lengths = np.asarray([3, 5, 1, 4])
    for name, kwargs, hx in [
        ("RNN", {"num_layers": 2, "bidirectional": True}, _x(4, 4, 4, seed=2)),
        ("GRU", {"bidirectional": True, "batch_first": True}, None),
        (
            "LSTM",
            {"bidirectional": True, "batch_first": True, "proj_size": 2},
            (_x(2, 4, 2, seed=2), _x(2, 4, 4, seed=3)),
        ),
    ]:
        batch_first = kwargs.get("batch_first", False)
        x = _x(4, 5, 3) if batch_first else _x(5, 4, 3)
        inputs = (x,) if hx is None else (x, hx)
        runs.append(
            _run(name, (3, 4), kwargs, f64, inputs, lengths=lengths, batch_first=batch_first)
        )
    return runs


def test_extra_cases_match_torch():
    """Batched input, batch_first, projections, relu, dropout (p=1 in training mode, p=0.5 in
    eval mode), batched cells, and lengths= against packed sequences (values and gradients)."""
    runs = _extra_runs()
    assert runs[4].ours.deterministic and not runs[3].ours.deterministic
    _compare(runs, "float64")


def test_dropout_in_training_mode_draws_from_the_dropout_stream():
    """Train mode drops between layers: the output differs from eval mode, is reproducible from
    the seed, changes from call to call, and a call-time key overrides the layer's stream."""

    def build():
        return GRU(3, 4, 2, dropout=0.5, dtype=jnp.float64, rngs=nnx.Rngs(params=0, dropout=1))

    x = jnp.asarray(_x(5, 2, 3).numpy())
    model = build()
    train_1, _ = model(x)
    train_2, _ = model(x)
    assert not np.allclose(train_1, train_2)
    np.testing.assert_array_equal(build()(x)[0], train_1)
    key = jax.random.key(3)
    np.testing.assert_array_equal(model(x, rngs=key)[0], build()(x, rngs=key)[0])
    view = nnx.view(model, deterministic=True)
    model.eval()
    eval_out, _ = model(x)
    np.testing.assert_array_equal(view(x)[0], eval_out)
    assert not np.allclose(eval_out, train_1)
    model.train()
    assert not model.deterministic


@pytest.mark.parametrize(
    "name,args,kwargs",
    [
        ("RNN", (3, 4), {"num_layers": 2, "bidirectional": True}),
        ("RNN", (3, 4), {"bias": False, "nonlinearity": "relu"}),
        ("LSTM", (3, 5), {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
        ("LSTM", (3, 5), {"num_layers": 2, "bias": False, "proj_size": 3}),
        ("GRU", (3, 4), {"num_layers": 2, "bidirectional": True, "bias": False}),
        ("RNNCell", (3, 4), {}),
        ("LSTMCell", (3, 4), {"bias": False}),
        ("GRUCell", (3, 4), {}),
    ],
)
def test_state_dict_has_torch_keys_order_and_shapes(name: str, args: tuple, kwargs: dict):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    their_state = theirs.state_dict()
    ours = getattr(recurrent, name)(*args, **kwargs, dtype=jnp.float64, rngs=nnx.Rngs(0))
    ours_state = nn.state_dict(ours)
    assert list(ours_state) == list(their_state)
    assert [v.shape for v in ours_state.values()] == [tuple(v.shape) for v in their_state.values()]
    nn.load_state_dict(ours, their_state)
    for key, value in nn.state_dict(ours).items():
        np.testing.assert_array_equal(value, their_state[key].numpy())


def test_initialisation_is_torch_distribution():
    """Every weight and bias ``U(±1/sqrt(hidden_size))`` (KS test against torch's draws)."""
    ours = LSTM(16, 32, num_layers=2, proj_size=8, rngs=nnx.Rngs(0))
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(16, 32, num_layers=2, proj_size=8)
    bound = 1.0 / np.sqrt(32)
    ours_state = nn.state_dict(ours)
    for name, tensor in theirs.state_dict().items():
        mine, their = ours_state[name].ravel(), tensor.numpy().ravel()
        assert mine.dtype == np.float32
        assert np.all(np.abs(mine) <= bound) and np.max(np.abs(mine)) > 0.9 * bound, name
        if mine.size >= 500:
            assert stats.ks_2samp(mine, their).pvalue > 0.01, name
    # distinct draws per tensor
    assert not np.array_equal(ours_state["bias_ih_l0"], ours_state["bias_hh_l0"])


def _torch_error(fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except (ValueError, RuntimeError, TypeError) as error:
        return error
    raise AssertionError("torch accepted it")


@pytest.mark.parametrize(
    "name,args,kwargs,match",
    [
        ("LSTM", (3, 4), {"dropout": 1.5}, "dropout should be a number in range"),
        ("GRU", (3, 4), {"dropout": -0.1}, "dropout should be a number in range"),
        ("LSTM", (3, 4), {"proj_size": 4}, "proj_size has to be smaller than hidden_size"),
        ("LSTM", (3, 4), {"proj_size": -1}, "proj_size should be a positive integer"),
        ("GRU", (3, 4), {"proj_size": 2}, "proj_size argument is only supported for LSTM"),
        ("RNN", (3, 4), {"proj_size": 2}, "proj_size argument is only supported for LSTM"),
        ("RNN", (3, 4), {"nonlinearity": "gelu"}, "Unknown nonlinearity 'gelu'"),
        ("RNN", (3, 0), {}, "hidden_size must be"),
        ("GRU", (3, 4), {"num_layers": 0}, "num_layers must be"),
    ],
)
def test_constructor_errors_like_torch(name: str, args: tuple, kwargs: dict, match: str):
    theirs = _torch_error(lambda: getattr(torch.nn, name)(*args, **kwargs))
    assert isinstance(theirs, ValueError)
    with pytest.raises(ValueError, match=match):
        getattr(recurrent, name)(*args, **kwargs, rngs=nnx.Rngs(0))


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="bias should be of type bool"):
        LSTM(3, 4, bias=1, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        GRU(3, 4.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_dropout_with_one_layer_warns_as_torch(name: str):
    with pytest.warns(UserWarning) as theirs:
        getattr(torch.nn, name)(3, 4, dropout=0.5)
    with pytest.warns(UserWarning) as ours:
        getattr(recurrent, name)(3, 4, dropout=0.5, rngs=nnx.Rngs(0))
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(recurrent, name)(3, 4, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))


def _f64(*shape: int) -> jax.Array:
    return jnp.zeros(shape, jnp.float64)


BAD_CALLS = [
    (LSTM, (3, 4), lambda m: m(_f64(5, 2, 2)), "input.size\\(-1\\) must be equal"),
    (GRU, (3, 4), lambda m: m(_f64(3)), "Expected input to be 2D or 3D"),
    (GRU, (3, 4), lambda m: m(_f64(1, 5, 2, 3)), "Expected input to be 2D or 3D"),
    (RNN, (3, 4, 2), lambda m: m(_f64(5, 2, 3), _f64(1, 2, 4)), "hx of shape \\(2, 2, 4\\)"),
    (RNN, (3, 4), lambda m: m(_f64(5, 3), _f64(1, 2, 4)), "should be 2-D"),
    (RNN, (3, 4), lambda m: m(_f64(5, 2, 3), _f64(1, 4)), "should be 3-D"),
    (RNN, (3, 4), lambda m: m(_f64(5, 3), _f64(1, 3)), "hx of shape \\(1, 4\\)"),
    (
        LSTM,
        (3, 4, 1, True, False, 0.0, False, 2),
        lambda m: m(_f64(5, 2, 3), (_f64(1, 2, 4), _f64(1, 2, 4))),
        "h_0",
    ),
    (LSTM, (3, 4), lambda m: m(_f64(5, 2, 3), (_f64(1, 2, 4), _f64(1, 2, 3))), "c_0"),
    (LSTM, (3, 4), lambda m: m(_f64(5, 2, 3), _f64(1, 2, 4)), "tuple \\(h_0, c_0\\)"),
    (GRU, (3, 4), lambda m: m(_f64(5, 2, 3), lengths=[5, 6]), "lengths in \\[1, 5\\]"),
    (GRU, (3, 4), lambda m: m(_f64(5, 2, 3), lengths=[0, 2]), "lengths in \\[1, 5\\]"),
    (GRU, (3, 4), lambda m: m(_f64(5, 2, 3), lengths=[5]), "2 integers"),
    (GRU, (3, 4), lambda m: m(_f64(5, 2, 3), lengths=[5.0, 1.0]), "2 integers"),
    (GRU, (3, 4), lambda m: m(_f64(5, 3), lengths=[5]), "lengths needs batched"),
    (
        GRU,
        (3, 4),
        lambda m: m(jnp.zeros((5, 2, 3), jnp.float32)),
        "input dtype \\(float32\\) does not match weight dtype \\(float64\\)",
    ),
    (RNNCell, (3, 4), lambda m: m(_f64(2, 5)), "inconsistent input_size"),
    (RNNCell, (3, 4), lambda m: m(_f64(2, 2, 3)), "Expected input to be 1D or 2D"),
    (GRUCell, (3, 4), lambda m: m(_f64(2, 3), _f64(3, 4)), "hx of shape \\(2, 4\\)"),
    (GRUCell, (3, 4), lambda m: m(_f64(3), _f64(1, 4)), "hx of shape \\(4,\\)"),
    (LSTMCell, (3, 4), lambda m: m(_f64(2, 3), _f64(2, 4)), "tuple \\(h_0, c_0\\)"),
    (
        LSTMCell,
        (3, 4),
        lambda m: m(_f64(2, 3), (_f64(2, 4), _f64(2, 5))),
        "hx\\[1\\] of shape \\(2, 4\\)",
    ),
]


@pytest.mark.parametrize(
    "layer,args,call,match", BAD_CALLS, ids=lambda v: v.__name__ if isinstance(v, type) else None
)
def test_bad_calls_raise_clear_errors(layer, args, call, match):
    model = layer(*args, dtype=jnp.float64, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=match):
        call(model)


def test_packed_sequence_input_is_refused():
    x = torch.zeros(5, 2, 3)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]))
    with pytest.raises(NotImplementedError, match="lengths="):
        LSTM(3, 4, rngs=nnx.Rngs(0))(packed)
