"""Test-wide JAX settings: float64 available, and no silent dtype or rank promotion.

Strict promotion turns an accidental float32/float64 mix or a broadcast between ranks into an
error, so the float32 and float64 parity runs really run in the dtype they claim.
"""

import contextlib
import logging
import os

import jax
import pytest

# The commands and scripts the tests run keep no compilation cache in the user's cache
# directory; the tests of the cache pass their own directory explicitly.
os.environ["JAXNETS_NO_CACHE"] = "1"

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def compiled(caplog):
    """``with compiled(*prefixes) as names:`` collects the programs XLA compiles in the block.

    With ``prefixes`` only programs whose name starts with one of them count (``"run_chunk"``,
    the training driver); a test's own eager slicing compiles programs of its own.
    """

    @contextlib.contextmanager
    def collect(*prefixes: str):
        names: list[str] = []
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles():
            yield names
        lead = "Finished XLA compilation of jit("
        for record in caplog.records:
            message = record.getMessage()
            if message.startswith(lead):
                name = message[len(lead) :].split(")", 1)[0]
                if not prefixes or name.startswith(prefixes):
                    names.append(name)

    return collect
