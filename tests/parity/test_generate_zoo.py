"""Every zoo model's generated port trains as torch does: float64, 3 steps of its own optimiser,
channels-last and channels-first; and its source is clean (ruff, imports)."""

from __future__ import annotations

import pytest

from parity import generate_port

from .generated_source import assert_clean
from .zoo import ZOO


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("case", ZOO, ids=lambda c: c.name)
def test_generated_port_trains_as_torch(case, channels_last):
    model = case.build()
    batch = case.batch()
    port = generate_port(model, batch[: case.n_inputs], channels_last=channels_last)
    assert_clean(port.source)
    report = port.check(
        batch,
        loss=case.loss(channels_last),
        optimizer=case.optimizer(model),
        steps=3,
        dtype="float64",
    )
    assert report.passed, f"{report}\n{port.source}"
