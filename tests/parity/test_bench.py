"""parity.bench: the machinery runs end to end on tiny settings and reports what it promises."""

import json
import math

import jax
import pytest
import torch

from parity import bench, bench_cases
from parity.experiments import EXPERIMENTS


def test_summarise_and_ratios_are_per_repeat():
    stats = bench.summarise([3.0, 1.0, 2.0, 4.0])
    assert (stats["median"], stats["min"], stats["max"], stats["n"]) == (2.5, 1.0, 4.0, 4)
    case = bench_cases.Case("x", "s", None, 2, 10.0, lambda: None, lambda: None, lambda: None)
    timing = bench.Timing(case, {"jax": [1.0, 2.0], "eager": [4.0, 4.0]}, {}, {})
    assert timing.ratio("eager")["median"] == pytest.approx(3.0)  # 4/1 and 4/2
    assert timing.best_ratio("eager") == pytest.approx(4.0)
    assert timing.per_step_ms("jax")["min"] == pytest.approx(500.0)


def test_flop_counts_follow_the_layer_shapes():
    # Two products of the MLP dominate: 2*N*D_in*H forward plus 2*N*D_in*H for dW1, and three
    # products of the second layer.
    products = 4 * 64 * 1000 * 100 + 6 * 64 * 100 * 10
    assert products < bench_cases.mlp_flops(64, 1000, 100, 10) < 1.01 * products
    # fc1 of the CNN is 12544 -> 512; its three products alone at batch 64:
    assert bench_cases.cnn_flops(64) > 3 * 2 * 64 * 12544 * 512
    # Linear in the batch size, plus the batch-independent update.
    per_image = bench_cases.cnn_flops(2) - bench_cases.cnn_flops(1)
    assert bench_cases.cnn_flops(64) == pytest.approx(bench_cases.cnn_flops(1) + 63 * per_image)


def test_case_times_every_framework_on_the_same_losses():
    case = bench_cases.linear_case(0, 2, None)
    timing = bench.time_case(case, repeats=2, warmup=0)
    assert set(timing.runs) == set(bench.FRAMEWORKS)
    assert all(len(runs) == 2 for runs in timing.runs.values())
    assert case.steps == 6
    # Same data and steps: torch's float32 losses follow jax's to rounding.
    assert max(timing.loss_rel_diff.values()) < 1e-5
    assert timing.torch_graphs["graphs"] >= 1


def test_cli_writes_table_json_and_sweep_plot(tmp_path, capsys):
    out = tmp_path / "bench.json"
    plot = tmp_path / "sweep.png"
    argv = ["mlp", "--steps", "2", "--repeats", "1", "--warmup", "0", "--no-compile"]
    argv += ["--json", str(out), "--plot", str(plot), "--batch-sizes", "1", "4"]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "mlp N=64" in printed and "matmul 2048x2048" in printed and "load average" in printed
    report = json.loads(out.read_text())
    (case,) = report["cases"]
    assert case["steps"] == 2 and case["flops_per_step"] > 0
    assert set(case["speedup_of_jax"]) == {"eager+item", "eager"}
    assert math.isfinite(case["fraction_of_matmul_peak"]["jax"])
    assert [c["batch_size"] for c in report["sweeps"]["mlp"]] == [1, 4]
    assert report["matmul"]["flops_per_s"]["peak"] > 0
    assert plot.stat().st_size > 0


def test_cli_rejects_unknown_experiment():
    with pytest.raises(SystemExit):
        bench.main(["nope"])


@pytest.mark.parametrize("name", ["module_regression", "digits"])
def test_loader_cases_feed_torch_the_batches_jax_trains_on(name):
    case = bench_cases.BUILDERS[name](0, 1, 500)  # one epoch of batches of 500
    timing = bench.time_case(case, repeats=1, warmup=0, with_compile=False)
    n = {"module_regression": 100, "digits": 1437}[name]
    assert case.steps == -(-n // 500)  # the last, partial batch is a step too
    assert [len(x) for x, _ in case.eager_args] == [500] * (n // 500) + [n % 500] * (n % 500 > 0)
    assert max(timing.loss_rel_diff.values()) < 1e-5


@pytest.mark.parametrize(
    ("name", "steps"), [("mlp", 3), ("linear", 2), ("custom", 3), ("module_regression", 1)]
)
def test_torch_step_is_the_one_the_reference_run_trains_with(name, steps):
    # The bench times the torch reference's own make_step: from the reference's start it gives
    # the reference run's losses bit for bit, again after every reset.
    case = bench_cases.BUILDERS[name](0, steps, None)
    reference = EXPERIMENTS[name].run_torch(0, torch.float32, steps, None, "cpu")
    loop = bench.torch_loop(case.torch_step, case.eager_args, case.steps, item=True)
    for _ in range(2):
        case.reset()
        assert loop().tolist() == reference.losses.tolist()


def test_classifier_flops_count_products_and_the_update():
    sgd = bench_cases.classifier_flops(32, [(64, 128), (128, 10)], adam=False)
    adam = bench_cases.classifier_flops(32, [(64, 128), (128, 10)], adam=True)
    products = 2 * 2 * 32 * 64 * 128 + 3 * 2 * 32 * 128 * 10
    assert products < sgd < 1.1 * products
    params = 64 * 128 + 128 + 128 * 10 + 10
    assert adam - sgd == (bench_cases.ADAM_FLOPS_PER_PARAM - 2) * params


def test_precision_sets_both_frameworks_and_restores_them():
    before = (
        jax.config.jax_default_matmul_precision,
        torch.get_float32_matmul_precision(),
        torch.backends.cudnn.allow_tf32,
    )
    with bench.precision("tf32"):
        assert jax.config.jax_default_matmul_precision == "tensorfloat32"
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cudnn.allow_tf32 is True
    with bench.precision("highest"):
        assert jax.config.jax_default_matmul_precision == "highest"
        assert torch.get_float32_matmul_precision() == "highest"
        assert torch.backends.cudnn.allow_tf32 is False
    after = (
        jax.config.jax_default_matmul_precision,
        torch.get_float32_matmul_precision(),
        torch.backends.cudnn.allow_tf32,
    )
    assert after == before
    with pytest.raises(ValueError, match="precision must be one of"):
        with bench.precision("fp16"):
            pass


def test_device_must_be_shared_by_both_frameworks(capsys):
    if jax.default_backend() == "cpu":
        assert bench.check_device("cpu") is None
    else:
        assert "set JAX_PLATFORMS=cpu" in bench.check_device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench.main(["mlp", "--device", "cuda"])
        assert "torch sees no CUDA device" in capsys.readouterr().err


def test_cudagraph_compile_mode_clones_each_loss():
    # On CPU tensors torch.compile skips CUDA graphs but the loop still marks each step and
    # clones its loss: the same losses come back as with the default mode.
    case = bench_cases.linear_case(0, 2, None)
    timing = bench.time_case(case, repeats=1, warmup=0, compile_mode="reduce-overhead")
    assert timing.loss_rel_diff["compile"] < 1e-5


@pytest.mark.parametrize("name", ["lstm_lm", "transformer"])
def test_model_cases_train_the_same_model_in_both_frameworks(name):
    case = bench_cases.BUILDERS[name](0, 2, 2)  # two steps of a batch of 2
    timing = bench.time_case(case, repeats=1, warmup=0, with_compile=False)
    assert case.steps == 2 and case.flops_per_step > 0
    assert max(timing.loss_rel_diff.values()) < 1e-5
