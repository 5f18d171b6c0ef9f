"""Everything under tests/parity runs PyTorch in the same test, so it carries the `parity` mark.

Tests marked ``torch_db_full`` repeat, with their own harness, samples of torch's test databases
that ``test_module_db.py`` and ``test_op_db.py`` already run; they run with
``JAXNETS_TORCH_DB=full``, which also makes those two files run every sample.
"""

import os
import warnings

import pytest

torch = pytest.importorskip("torch", reason="parity tests need the torch extra")

FULL_TORCH_DB = os.environ.get("JAXNETS_TORCH_DB") == "full"

# torch's test databases import torch's test utilities, which freeze torch.backends' flags on
# import (torch's own suite sets them only in context managers). Imported once here, and the
# flags thawed, so that the TF32 settings below and the parity runs can set them.
try:
    with warnings.catch_warnings():
        # Without hypothesis (which only torch's own property tests use) it warns on import.
        warnings.filterwarnings("ignore", "Fail to import hypothesis", ImportWarning)
        import torch.testing._internal.common_utils  # noqa: F401
except ImportError:  # expecttest missing: the database tests fail on their own import
    pass
# torch.backends' functions read the flag from their own globals (the module object differs).
torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True

# TF32 off on both sides (DESIGN: numerics); a no-op on CPU.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/parity/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.parity)
        if not FULL_TORCH_DB and item.get_closest_marker("torch_db_full"):
            item.add_marker(pytest.mark.skip(reason="runs with JAXNETS_TORCH_DB=full"))
