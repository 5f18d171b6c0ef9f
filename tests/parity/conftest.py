"""Everything under tests/parity runs PyTorch in the same test, so it carries the `parity` mark."""

import pytest

torch = pytest.importorskip("torch", reason="parity tests need the torch extra")

# TF32 off on both sides (DESIGN: numerics); a no-op on CPU.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/parity/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.parity)
