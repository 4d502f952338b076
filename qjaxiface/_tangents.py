"""Zero tangents as JAX represents them: one home for testing and making them.

JAX hands a custom rule ``SymbolicZero`` for inputs it knows are not differentiated (with
``symbolic_zeros=True``) and ``float0`` arrays for integer and boolean inputs; a rule must return
``float0`` tangents for integer and boolean outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SymbolicZero = jax.custom_derivatives.SymbolicZero


def is_zero_tangent(t) -> bool:
    """True for JAX's symbolic zero and for float0 tangents of integer inputs."""
    return isinstance(t, SymbolicZero) or getattr(t, "dtype", None) == jax.dtypes.float0


def zero_tangent_like(primal):
    """A zero tangent matching ``primal``: float0 for integer/bool outputs (JAX's rule)."""
    dtype = jnp.result_type(primal)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(jnp.shape(primal), dtype=jax.dtypes.float0)
    return jnp.zeros(jnp.shape(primal), dtype)


__all__ = ["SymbolicZero", "is_zero_tangent", "zero_tangent_like"]
