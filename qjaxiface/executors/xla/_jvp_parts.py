"""Pieces every derivative rule of the XLA executor shares.

Which tape parameter each leaf is, plain forward-mode differentiation of the simulation for the
leaves a rule does not handle, and adding and shaping tangents of a program's results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ..._tangents import is_zero_tangent
from ._simulate import TapeProgram

Array = Any
Fn = Callable[[tuple, Any], Any]


def real_scalar(x) -> bool:
    return jnp.ndim(x) == 0 and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def leaf_owner(program: TapeProgram | Any) -> dict[int, tuple[qml.operation.Operator, int]]:
    """Leaf index -> (gate op, index of the parameter in ``op.data``), for gate leaves."""
    owner = {}
    for _, sl, op in program.gates:
        for k, j in enumerate(range(sl.start, sl.stop)):
            owner[j] = (op, k)
    return owner


def autodiff_rest(raw: Fn, leaves: tuple, key, tangents: tuple, handled: set[int]):
    """Forward-mode JVP of ``raw`` for the nonzero tangents not in ``handled`` (or None)."""
    rest = [j for j, t in enumerate(tangents) if j not in handled and not is_zero_tangent(t)]
    if not rest:
        return None

    def partial_fn(sub):
        full = list(leaves)
        for j, v in zip(rest, sub):
            full[j] = v
        return raw(tuple(full), key)

    sub_primals = tuple(leaves[j] for j in rest)
    sub_tangents = tuple(tangents[j] for j in rest)
    return jax.jvp(partial_fn, (sub_primals,), (sub_tangents,))[1]


def add_tangents(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return jax.tree.map(jnp.add, a, b)


def zeros_like_out(out):
    return jax.tree.map(
        lambda x: jnp.zeros_like(x) if jnp.issubdtype(x.dtype, jnp.inexact) else None, out
    )


def tangent_out(out, tan):
    """Zero tangents where nothing contributed; integer outputs (samples) get no tangent."""
    zeros = zeros_like_out(out)
    if tan is None:
        return jax.tree.map(
            lambda x, z: z if z is not None else np.zeros(x.shape, jax.dtypes.float0), out, zeros
        )
    return jax.tree.map(
        lambda x, t: (
            t.astype(x.dtype)
            if jnp.issubdtype(x.dtype, jnp.inexact)
            else np.zeros(x.shape, jax.dtypes.float0)
        ),
        out,
        tan,
    )
