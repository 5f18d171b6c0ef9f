"""Run one experiment both ways in one or both dtypes and judge it by the rules in ``compare``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import torch

from parity import compare, convert, ensemble
from parity.experiments import Experiment, JaxInputs, LessonExperiment, to_device
from parity.torch_ref import Reference

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
DETERMINISTIC_GPU = "--xla_gpu_deterministic_ops=true"


def configure() -> None:
    """Settings every parity run needs: float64 available, full-precision matmuls, no TF32, and
    deterministic GPU reductions.

    x64 must be on before any array exists; float32 runs still run in float32 because every
    array they see is created from float32 data. XLA's GPU reductions otherwise add in an order
    that changes from run to run (atomics), and over hundreds of Adam steps that drift outgrows
    the float32 rule: on an H200, digits float32 reached max|dL| 4.9e-5 against a bound of
    4.65e-6, and 3.0e-7 with deterministic ops. ``XLA_FLAGS`` is read when JAX starts its
    backend, so ``configure`` must run first; CPUs ignore the flag.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_GPU}".strip()
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@dataclass
class Result:
    """One experiment in one dtype: both trajectories, the gradient differences, the verdict."""

    experiment: str
    dtype: str
    steps: int
    torch_losses: np.ndarray
    jax_losses: np.ndarray
    checks: list[compare.Check]
    grad_max_abs_diff: dict[str, float]
    grad_rel_diff: dict[str, float]
    float64_reference: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every gating check holds (quality floors are reported, not gating)."""
        return all(check.passed for check in self.checks if check.gating)

    @property
    def loss_check(self) -> compare.Check:
        return next(c for c in self.checks if c.quantity == "losses")

    def failures(self) -> list[str]:
        """The gating checks that broke their rule."""
        return [f"{c.quantity}: {c.detail}" for c in self.checks if c.gating and not c.passed]

    def notes(self) -> list[str]:
        """Non-gating checks that did not hold (e.g. a quality floor)."""
        return [f"{c.quantity}: {c.detail}" for c in self.checks if not c.gating and not c.passed]

    def to_json(self) -> dict[str, Any]:
        out = {
            "experiment": self.experiment,
            "dtype": self.dtype,
            "steps": self.steps,
            "torch_losses": self.torch_losses.tolist(),
            "jax_losses": self.jax_losses.tolist(),
            "grad_max_abs_diff": self.grad_max_abs_diff,
            "grad_rel_diff": self.grad_rel_diff,
            "checks": [c.to_json() for c in self.checks],
            "passed": self.passed,
            **self.extra,
        }
        if self.float64_reference is not None:
            out["float64_reference"] = self.float64_reference.tolist()
        return out


def run_jax(experiment: Experiment, reference: Reference, start: JaxInputs, steps: int):
    """Run the jaxnets side from ``start`` (``reference`` converted by ``jax_inputs``). Returns
    ``(losses, first-step grads, metrics)``, the grads keyed like ``reference.grads``."""
    final_params, losses = experiment.fit(start, steps)
    grads = _as_named(experiment.first_grads(start), reference)
    metrics = experiment.metrics(final_params, start)
    return losses.reshape(-1), grads, metrics


def _as_named(grads: Any, reference: Reference) -> Any:
    """Gradients as NumPy; a single array (the linear tutorial's ``w``) under its torch name."""
    grads = jax.tree.map(np.asarray, grads)
    if not isinstance(grads, Mapping):
        grads = {next(iter(reference.grads)): grads}
    return grads


def torch_grads_in_jax_layout(
    experiment: Experiment, reference: Reference, start: JaxInputs
) -> dict[str, Any]:
    """``reference``'s first-step gradients converted like its parameters, as NumPy; a single
    array (the linear tutorial's ``w``) under its torch name."""
    converted = experiment.to_params(reference.grads, start.template)
    if not isinstance(converted, Mapping):
        converted = {next(iter(reference.grads)): converted}
    return converted


def ensemble64(
    experiment: Experiment, start64: JaxInputs, reference: Reference, steps: int, members: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The float32 rule's ensemble for an experiment: the float64 jaxnets run from ``start64``, then
    ``members`` runs with its parameters and training data perturbed at float32's rounding level
    (``parity.ensemble``): the training runs at once (the driver's program under ``jax.vmap``), the
    first-step gradients one member after another.

    Returns:
      ``(losses [1 + members, steps], {parameter: first-step gradients [1 + members, ...]})``.
    """
    params, train = ensemble.perturbed(
        (start64.params, start64.data.train), jax.random.key(0), members
    )
    stacked = start64._replace(params=params, data=start64.data._replace(train=train))
    _, losses = experiment.fit(stacked, steps, stacked=True)
    grads = []
    for m in range(members + 1):
        params_m, train_m = ensemble.member((params, train), m)
        start = start64._replace(params=params_m, data=start64.data._replace(train=train_m))
        grads.append(_as_named(experiment.first_grads(start), reference))
    stack = jax.tree.map(lambda *g: np.stack([np.asarray(x) for x in g]), *grads)
    return np.asarray(losses).reshape(members + 1, -1), stack


def layer_check(
    experiment: Experiment, reference: Reference, dtype: str, device: str, members: int
):
    """``parity.check_port`` on the first step: the torch module and the experiment's ``MODEL``
    from the reference's initial weights, every module's output and every gradient compared, so
    a broken port names its first diverging layer."""
    from parity.port import check_port

    torch_dtype = TORCH_DTYPES[dtype]
    torch_model = experiment.torch_model().to(dtype=torch_dtype, device=device)
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in reference.params.items()})
    jax_model = convert.blank_model(experiment.module.MODEL, getattr(np, dtype))
    inputs = reference.inputs
    n = len(inputs[experiment.train[0]])
    if "orders" in inputs:
        index = inputs["orders"][0][: min(int(inputs["batch_size"]), n)]
    else:
        index = np.arange(n)
    batch = tuple(torch.from_numpy(inputs[name][index]).to(device) for name in experiment.train)
    report = check_port(
        torch_model,
        jax_model,
        batch,
        loss=experiment.loss,
        dtype=dtype,
        channels_last=bool(experiment.channels_last),
        members=members,
    )
    divergence = report.first_divergence
    detail = (
        "every module output and gradient within the rule"
        if divergence is None
        else (str(divergence))
    )
    return compare.Check(
        "layers", "check_port at step 0 (outputs, gradients)", report.passed, 0.0, detail
    )


def metric_checks(
    experiment: Experiment, *, seed: int, steps: int, jax_metrics: dict, torch_metrics: dict
) -> list[compare.Check]:
    """End-of-run figures within 0.01 of torch's (a parity rule), and, for the default run
    (seed 0, the tutorial's length), the module's ``QUALITY_FLOORS`` in both frameworks, as
    labelled checks that do not decide the verdict."""
    checks = []
    floors = getattr(experiment.module, "QUALITY_FLOORS", {})
    default_run = seed == 0 and steps == experiment.default_steps
    for name, value in jax_metrics.items():
        theirs = torch_metrics[name]
        checks.append(
            compare.Check(
                name,
                "|jax - torch| <= 0.01",
                abs(value - theirs) <= 0.01,
                abs(value - theirs),
                f"jax {value}, torch {theirs}",
            )
        )
        if name in floors and default_run:
            floor = floors[name]
            checks.append(
                compare.Check(
                    f"quality {name}",
                    f"both >= {floor} (default run only)",
                    min(value, theirs) >= floor,
                    0.0,
                    f"jax {value}, torch {theirs}",
                    gating=False,
                )
            )
    return checks


def run(
    experiment: Experiment,
    *,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int | None = None,
    dtypes: tuple[str, ...] = ("float64", "float32"),
    device: str = "cpu",
    members: int = ensemble.MEMBERS,
    **overrides: Any,
) -> list[Result]:
    """Run ``experiment`` in each dtype; float32 is judged against the float64 torch run, so the
    float64 reference runs whenever float32 is asked for, and, where torch float32's error alone
    does not bound it, by the spread of ``members`` perturbed float64 runs (:func:`ensemble64`;
    0: torch float32's error alone)."""
    if isinstance(experiment, LessonExperiment):
        return run_lessons(experiment, seed=seed, dtypes=dtypes, device=device, members=members)
    steps = experiment.default_steps if steps is None else steps
    if not experiment.batch_size_option:
        batch_size = None

    def torch_run(dtype: str):
        return experiment.run_torch(
            seed, TORCH_DTYPES[dtype], steps, batch_size, device, **overrides
        )

    ref64 = torch_run("float64")
    start64 = experiment.jax_inputs(ref64, **overrides)
    truth64 = torch_grads_in_jax_layout(experiment, ref64, start64)
    results = []
    for dtype in dtypes:
        ref = ref64 if dtype == "float64" else torch_run(dtype)
        if dtype == "float64":
            start, torch_grads = start64, truth64
        else:
            start = experiment.jax_inputs(ref, **overrides)
            torch_grads = torch_grads_in_jax_layout(experiment, ref, start)
        jax_losses, jax_grads, metrics = run_jax(experiment, ref, start, steps)
        if dtype == "float64":
            loss_check = compare.float64_losses(jax_losses, ref.losses)
            grad_checks = compare.float64_gradients(jax_grads, torch_grads)
        else:
            loss_check = compare.float32_losses(jax_losses, ref.losses, ref64.losses)
            grad_checks = compare.float32_gradients(jax_grads, torch_grads, truth64)
            if members and not all(c.passed for c in (loss_check, *grad_checks)):
                # The ensemble can only widen the bound: it runs where torch's error is not enough.
                ens_losses, ens_grads = ensemble64(experiment, start64, ref64, steps, members)
                loss_check = compare.float32_losses(
                    jax_losses, ref.losses, ref64.losses, ens_losses
                )
                grad_checks = compare.float32_gradients(jax_grads, torch_grads, truth64, ens_grads)
        grad_abs, grad_rel = compare.differences(jax_grads, torch_grads)
        extra_checks = metric_checks(
            experiment, seed=seed, steps=steps, jax_metrics=metrics, torch_metrics=ref.metrics
        )
        if experiment.torch_model is not None:
            extra_checks.append(layer_check(experiment, ref, dtype, device, members))
        results.append(
            Result(
                experiment=experiment.name,
                dtype=dtype,
                steps=steps,
                torch_losses=ref.losses,
                jax_losses=jax_losses,
                checks=[loss_check, *grad_checks, *extra_checks],
                grad_max_abs_diff=grad_abs,
                grad_rel_diff=grad_rel,
                float64_reference=None if dtype == "float64" else ref64.losses,
                extra={
                    **{f"jax_{k}": v for k, v in metrics.items()},
                    **{f"torch_{k}": v for k, v in ref.metrics.items()},
                },
            )
        )
    return results


def run_lessons(
    experiment: LessonExperiment,
    *,
    seed: int,
    dtypes: tuple[str, ...],
    device: str,
    members: int = ensemble.MEMBERS,
) -> list[Result]:
    """Compare every named lesson result by the gradient rules of ``compare`` (float32 against
    the float64 torch lessons of the same draws, run whenever float32 is asked for, and the
    lessons run in float64 from ``members`` perturbed inputs)."""
    torch64 = experiment.run_torch(seed, dtype=torch.float64, device=device)
    results = []
    for dtype in dtypes:
        inputs, torch_values, torch_error = (
            torch64
            if dtype == "float64"
            else experiment.run_torch(seed, dtype=TORCH_DTYPES[dtype], device=device)
        )
        jax_values = jax.tree.map(np.asarray, experiment.lessons(to_device(inputs)))
        torch_losses = np.array([float(torch_values[k]) for k in experiment.loss_keys])
        jax_losses = np.array([float(jax_values[k]) for k in experiment.loss_keys])
        if dtype == "float64":
            checks = compare.float64_values(jax_values, torch_values)
            (loss_check,) = compare.float64_values({"": jax_losses}, {"": torch_losses})
        else:
            truth = torch64[1]
            truth_losses = np.array([float(truth[k]) for k in experiment.loss_keys])
            spread, spread_losses = None, None
            while True:
                checks = compare.float32_values(jax_values, torch_values, truth, ensemble64=spread)
                (loss_check,) = compare.float32_values(
                    {"": jax_losses},
                    {"": torch_losses},
                    {"": truth_losses},
                    ensemble64=spread_losses,
                )
                if (
                    spread is not None
                    or not members
                    or all(c.passed for c in (*checks, loss_check))
                ):
                    break
                # Where torch's error alone does not bound a result: the ensemble's spread too.
                spread = _lesson_ensemble(experiment, torch64[0], members)
                spread_losses = {"": np.stack([spread[k] for k in experiment.loss_keys], -1)}
        loss_check = dataclasses.replace(loss_check, quantity="losses")
        value_abs, value_rel = compare.differences(jax_values, torch_values)
        jax_error = experiment.vector_error(to_device(inputs))
        vector_check = compare.Check(
            "vector backward",
            "fails in both without a cotangent",
            "scalar outputs" in torch_error and "scalar" in jax_error,
            0.0,
            f"torch: {torch_error!r}; jax: {jax_error!r}",
        )
        results.append(
            Result(
                experiment=experiment.name,
                dtype=dtype,
                steps=len(torch_values),
                torch_losses=torch_losses,
                jax_losses=jax_losses,
                checks=[loss_check, *checks, vector_check],
                grad_max_abs_diff=value_abs,
                grad_rel_diff=value_rel,
            )
        )
    return results


def _lesson_ensemble(
    experiment: LessonExperiment, inputs64: dict, members: int
) -> dict[str, np.ndarray]:
    """Every lesson result from ``members`` perturbations of the float64 inputs, stacked."""
    stacked = ensemble.perturbed(to_device(inputs64), jax.random.key(0), members)
    runs = [
        jax.tree.map(np.asarray, experiment.lessons(ensemble.member(stacked, m)))
        for m in range(members + 1)
    ]
    return {k: np.stack([np.asarray(r[k], np.float64) for r in runs]) for k in runs[0]}


@dataclass(frozen=True)
class SweepRow:
    """One batch size of :func:`float32_sweep`, over all seeds.

    Under the rule (the float64 ensemble's spread in the bound) and under the old rule (torch
    float32's error alone, ``members=0``), from the same runs: the worst first-step gradient or
    loss over its bound (``worst_ratio``, above 1 fails) and where, and the runs that fail
    (gradients and losses). ``widened_runs`` counts the runs where the ensemble's spread
    exceeded torch float32's error for some gradient or loss, i.e. where it widened the bound.
    """

    batch_size: int
    runs: int
    worst_ratio: float
    worst: str
    widened_runs: int
    failed_runs: int
    old_worst_ratio: float
    old_worst: str
    old_failed_runs: int


def _ratios(check: compare.Check, floor: float) -> tuple[float, float]:
    """``(ratio under the rule, ratio under torch's error alone)`` of a float32 check whose
    bound is ``10 * max(torch_error, spread) + floor``."""
    torch_error = check.torch_error or 0.0
    spread = check.spread or 0.0
    new = _ratio(check.max_abs_diff, compare.F32_DRIFT_FACTOR * max(torch_error, spread) + floor)
    old = _ratio(check.max_abs_diff, compare.F32_DRIFT_FACTOR * torch_error + floor)
    return new, old


def float32_sweep(
    experiment: Experiment,
    *,
    seeds: Iterable[int],
    batch_sizes: Iterable[int],
    steps: int = 5,
    members: int = ensemble.MEMBERS,
) -> list[SweepRow]:
    """Run ``experiment`` in float32 for every seed and batch size and report, per batch size,
    how close the first-step gradients and the loss trajectory came to failing the rule, with
    and without the float64 ensemble (see :class:`SweepRow`)."""
    rows = []
    for batch_size in batch_sizes:
        worst, old_worst = (0.0, ""), (0.0, "")
        runs = widened = failed = old_failed = 0
        for seed in seeds:
            (result,) = run(
                experiment,
                seed=seed,
                steps=steps,
                batch_size=batch_size,
                dtypes=("float32",),
                members=members,
            )
            runs += 1
            run_new = run_old = 0.0
            run_widened = False
            for check in result.checks:
                drift = compare.F32_DRIFT_FACTOR * max(
                    check.torch_error or 0.0, check.spread or 0.0
                )
                if check.quantity.startswith("grad "):
                    floor = (check.bound or 0.0) - drift  # the rule's floor over all parameters
                    where = f"seed {seed} {check.quantity.split(' ', 1)[1]}"
                elif check.quantity == "losses":
                    floor = compare.F32_LOSS_FLOOR * abs(float(result.float64_reference[0]))
                    where = f"seed {seed} loss"
                else:
                    continue
                new, old = _ratios(check, floor)
                run_widened |= (check.spread or 0.0) > (check.torch_error or 0.0)
                worst, old_worst = max(worst, (new, where)), max(old_worst, (old, where))
                run_new, run_old = max(run_new, new), max(run_old, old)
            widened += run_widened
            failed += not result.passed
            old_failed += run_old > 1
        rows.append(SweepRow(batch_size, runs, *worst, widened, failed, *old_worst, old_failed))
    return rows


def _ratio(diff: float, bound: float) -> float:
    if bound > 0:
        return diff / bound
    return 0.0 if diff == 0 else float("inf")
