"""The dtypes JAX computes in under the current ``jax_enable_x64`` setting: one home for them.

Read at call time, not import time: the setting may change between calls (programs built under
the other setting are keyed apart, see ``executors.xla``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def x64_enabled() -> bool:
    """Whether ``jax_enable_x64`` is on now."""
    return bool(jax.config.read("jax_enable_x64"))


def jax_dtype(numeric_type) -> np.dtype:
    """The JAX dtype for a Python ``int``/``float``/``complex`` (a measurement's ``numeric_type``).

    64-bit with x64 enabled, else 32-bit (what default.qubit returns under JAX). Any other
    dtype-like is returned as a dtype.
    """
    x64 = x64_enabled()
    if numeric_type is int:
        return jnp.dtype(jnp.int64 if x64 else jnp.int32)
    if numeric_type is float:
        return jnp.dtype(jnp.float64 if x64 else jnp.float32)
    if numeric_type is complex:
        return jnp.dtype(jnp.complex128 if x64 else jnp.complex64)
    return jnp.dtype(numeric_type)


def real_dtype() -> np.dtype:
    """float64 with x64 enabled, else float32."""
    return jax_dtype(float)


def complex_dtype() -> np.dtype:
    """complex128 with x64 enabled, else complex64."""
    return jax_dtype(complex)


def int_dtype() -> np.dtype:
    """int64 with x64 enabled, else int32."""
    return jax_dtype(int)


__all__ = ["complex_dtype", "int_dtype", "jax_dtype", "real_dtype", "x64_enabled"]
