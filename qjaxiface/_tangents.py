"""Tangents as JAX represents them: one home for testing and making zeros, and for keeping a
rule's primal-only work out of ``linearize``'s partial evaluation.

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


def one_call(fn):
    """``fn`` evaluated as one ``custom_jvp`` call whose derivative is ``fn``'s own.

    ``jax.grad`` linearizes a custom rule by partial evaluation: inputs that do not depend on
    the tangents are known, and their computations pass through to the enclosing trace. A
    ``scan``, ``cond`` or ``jit`` does not take that shortcut even when every input is known:
    its partial-evaluation rule walks the body equation by equation, twice (known/unknown split,
    then hoisting), which took 0.3 s of a 0.45 s trace for the shifted rows at n=12 (jax 0.10).
    A ``custom_jvp`` call with known inputs passes through whole. Wrap the work of a rule that
    depends on the primals alone (shifted rows, an adjoint sweep); values and derivatives of
    every order are ``fn``'s.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from qjaxiface._tangents import one_call
        >>> f = one_call(lambda x: jax.lax.map(jnp.sin, x))
        >>> bool(jnp.allclose(jax.grad(lambda x: f(x).sum())(jnp.ones(3)), jnp.cos(1.0)))
        True
    """

    @jax.custom_jvp
    def call(*args):
        return fn(*args)

    @call.defjvp
    def call_jvp(primals, tangents):
        return jax.jvp(fn, primals, tangents)

    return call


__all__ = ["SymbolicZero", "is_zero_tangent", "one_call", "zero_tangent_like"]
