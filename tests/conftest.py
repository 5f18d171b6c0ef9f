"""Test-wide JAX settings: float64 available, and no silent dtype or rank promotion.

Strict promotion turns an accidental float32/float64 mix or a broadcast between ranks into an
error, so the float32 and float64 parity runs really run in the dtype they claim.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")
