"""Data parallelism: batch checks, 8 fake CPU devices, and two processes joined over localhost."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import cli, distributed
from jaxnets.experiments import mlp, registry

ROOT = Path(__file__).resolve().parents[1]
# With seed 0, one ReLU pre-activation of the mlp passes within float32 rounding of zero at step
# 13, so summing the gradient in another order flips it and the runs part by 8e-5 (a kink, not
# an error: float64 agrees to 1e-15). Seed 1 has no such near-tie in 20 steps.
SEED = 1

# Fake devices must be configured before JAX initialises its backend, hence a fresh process.
EIGHT_DEVICES = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import jax
    jax.config.update("jax_num_cpu_devices", 8)
    import jax.numpy as jnp
    import numpy as np
    from jaxnets import cli, distributed, train
    from jaxnets.experiments import registry

    out, SEED = sys.argv[1], int(sys.argv[2])
    report = {"device_count": jax.device_count()}

    def relative_difference(a, b):
        return max(
            float(np.max(np.abs(x - y)) / np.max(np.abs(y)))
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    for dtype in ("float32", "float64"):
        finals = {}
        for devices in (1, 8):
            options = cli.Options(
                experiment="mlp", steps=20, lr=1e-6, batch_size=64, dtype=dtype, seed=SEED,
                devices=devices, out=f"{out}/{dtype}-{devices}", chunk_size=10, progress=False,
            )
            result = cli.train(options)
            finals[devices] = result.params
            report[f"{dtype}-{devices}-dtype"] = str(result.params["W1"].dtype)
        report[dtype] = relative_difference(finals[8], finals[1])

    # A loader experiment: the data set replicated, each step's gathered batch split.
    finals = {}
    for devices in (1, 8):
        options = cli.Options(
            experiment="digits", steps=None, epochs=1, lr=1e-3, batch_size=64, drop_last=True,
            dtype="float64", devices=devices, out=f"{out}/digits-{devices}", progress=False,
        )
        finals[devices] = cli.train(options).params
    report["digits-float64"] = relative_difference(finals[8], finals[1])

    # The step really is data parallel: the batch is split and gradients are all-reduced.
    mlp = registry.get("mlp")
    mesh = distributed.make_mesh(8)
    params, data, _ = cli.initial_values(mlp, 0, 64, jnp.float32)
    data = distributed.put(data.train, distributed.batch_sharding(mesh))
    state = distributed.put(
        train.init_loop_state(params, mlp.optimizer, jax.random.key(1)),
        distributed.replicated(mesh),
    )
    runner = train.make_runner(
        mlp.loss_fn, mlp.optimizer,
        batch_sharding=distributed.batch_sharding(mesh),
        state_sharding=distributed.replicated(mesh),
    )
    report["shard_shape"] = list(data[0].sharding.shard_shape(data[0].shape))
    compiled = runner.lower(state, data, 1e-6, length=2).compile().as_text()
    report["all_reduce"] = "all-reduce" in compiled

    for name, argv in {
        "indivisible": ["train", "mlp", "--devices", "3"],
        "per_sample": ["train", "linear", "--devices", "2"],
        "partial_batch": ["train", "digits", "--devices", "8"],
    }.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main([*argv, "--out", f"{out}/{name}", "--no-progress"])
        report[name] = [code, err.getvalue()]
    print(json.dumps(report))
    """
)


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def test_check_batch_accepts_even_splits_and_names_what_is_wrong():
    batch = (jax.ShapeDtypeStruct((64, 3), jnp.float32), jnp.zeros((64,)))
    assert distributed.check_batch(batch, 8) == 64
    with pytest.raises(ValueError, match="batch size 64 is not divisible by the 3 devices"):
        distributed.check_batch(batch, 3)
    with pytest.raises(ValueError, match=r"\[0\], \[1\] has no batch axis"):
        distributed.check_batch((jnp.zeros(()), jnp.zeros(())), 2)
    with pytest.raises(ValueError, match="disagree on the batch size"):
        distributed.check_batch({"x": jnp.zeros((4, 2)), "y": jnp.zeros((6,))}, 2)


def test_make_mesh_refuses_more_devices_than_exist():
    assert distributed.make_mesh().axis_names == (distributed.DATA_AXIS,)
    with pytest.raises(ValueError, match=f"between 1 and {jax.device_count()}"):
        distributed.make_mesh(jax.device_count() + 1)


def test_eight_devices_match_one(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", EIGHT_DEVICES, str(tmp_path), str(SEED)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["device_count"] == 8
    assert report["float32"] <= 1e-6, report
    assert report["float64"] <= 1e-12, report
    assert report["float32-8-dtype"] == "float32" and report["float64-8-dtype"] == "float64"
    assert report["shard_shape"] == [8, 1000] and report["all_reduce"]
    code, message = report["indivisible"]
    assert code == 2 and "batch size 64 is not divisible by the 3 devices" in message
    code, message = report["per_sample"]  # linear trains one sample a step
    assert code == 2 and "batch size 1 is not divisible by the 2 devices" in message
    assert "what splits evenly: --devices 1" in message
    assert report["digits-float64"] <= 1e-12, report
    code, message = report["partial_batch"]  # 1437 = 44 * 32 + 29
    assert code == 2 and "last, partial batch: batch size 29 is not divisible" in message
    assert "--drop-last" in message


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    port = _free_port()
    base = [sys.executable, "-m", "jaxnets.cli", "train", "mlp", "--steps", "20"]
    base += ["--chunk-size", "10", "--checkpoint-every", "10", "--seed", str(SEED), "--no-progress"]
    base += ["--out", str(tmp_path / "two"), "--coordinator-address", f"127.0.0.1:{port}"]
    processes = [
        subprocess.Popen(
            [*base, "--num-processes", "2", "--process-id", str(index)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()

    # The reference: the mlp module's own training on the CLI's initial params and data.
    params, data, _ = cli.initial_values(registry.get("mlp"), SEED, 64, jnp.float32)
    expected, _ = mlp.train(params, *data.train, steps=20, learning_rate=1e-6)
    saved = np.load(tmp_path / "two" / "params.npz")
    for name in ("W1", "W2"):
        scale = np.max(np.abs(expected[name]))
        assert np.max(np.abs(saved[name] - expected[name])) <= 1e-6 * scale, name
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["devices"] == {"platform": "cpu", "data_parallel": 2, "processes": 2}
    assert sorted(int(p.name) for p in (tmp_path / "two" / "checkpoints").iterdir()) == [10, 20]
