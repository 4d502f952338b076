"""Analytic measurements of a flat ``2**n`` state vector, and observables applied to states.

Observables are rebuilt around their traced parameters at trace time (``tree_unflatten`` of
the observable's pytree structure), so trainable Hamiltonian coefficients and ``Hermitian``
matrices are ordinary JAX inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import pennylane as qml

from ._gates import as_complex, compile_gate
from ._kernels import apply_gate, apply_matrix_on, num_wires_of, split_view

Array = Any

# Single-wire/parameter-free observables and gates that compile_gate applies directly.
_DIRECT = frozenset({"PauliX", "PauliY", "PauliZ", "Hadamard", "Identity"})


def apply_observable(obs: qml.operation.Operator, state: Array, axis_of: dict) -> Array:
    """``obs |state>`` for an observable whose parameters may be tracers.

    Sums, scalar products and products are applied term by term, so a Pauli word on many wires
    never becomes a dense matrix.
    """
    if isinstance(obs, qml.ops.LinearCombination):
        coeffs, ops = obs.terms()
        return sum(as_complex(c) * apply_observable(o, state, axis_of) for c, o in zip(coeffs, ops))
    if isinstance(obs, qml.ops.Sum):
        return sum(apply_observable(o, state, axis_of) for o in obs.operands)
    if isinstance(obs, qml.ops.SProd):
        return as_complex(obs.scalar) * apply_observable(obs.base, state, axis_of)
    if isinstance(obs, qml.ops.Prod):
        # Prod(A, B) = A @ B acts with B first.
        for factor in reversed(obs.operands):
            state = apply_observable(factor, state, axis_of)
        return state
    name = obs.name
    if name == "Identity":
        return state
    if name in _DIRECT:
        return apply_gate(state, compile_gate(obs, axis_of), ())
    axes = [axis_of[w] for w in obs.wires]
    if name == "Hermitian":
        return apply_matrix_on(state, as_complex(obs.data[0]), axes)
    if name == "BasisStateProjector":
        # |b><b| keeps the amplitudes whose bits on the wires equal b.
        bits = obs.data[0]
        flat_shape = state.shape
        state = tensor(state)
        shape = [1] * state.ndim
        mask = jnp.ones((), dtype=bool)
        for i, ax in enumerate(axes):
            s = list(shape)
            s[ax] = 2
            mask = mask & (jnp.arange(2).reshape(s) == bits[i])
        return jnp.where(mask, state, jnp.zeros((), state.dtype)).reshape(flat_shape)
    if name == "StateVectorProjector":
        v = as_complex(obs.data[0])
        return apply_matrix_on(state, jnp.outer(v, jnp.conj(v)), axes)
    return apply_matrix_on(state, as_complex(qml.matrix(obs, wire_order=obs.wires)), axes)


def tensor(state: Array) -> Array:
    """The flat state as a ``(2,) * n`` tensor (for once-per-measurement reductions)."""
    return jnp.reshape(state, (2,) * num_wires_of(state))


def inner(bra: Array, ket: Array) -> Array:
    """<bra|ket> of two state tensors."""
    return jnp.vdot(bra.ravel(), ket.ravel())


def expval(obs, state: Array, axis_of: dict) -> Array:
    """<state|obs|state> (real)."""
    return jnp.real(inner(state, apply_observable(obs, state, axis_of)))


def variance(obs, state: Array, axis_of: dict) -> Array:
    """<obs^2> - <obs>^2, with <obs^2> = ||obs|state>||^2 for Hermitian obs."""
    o_state = apply_observable(obs, state, axis_of)
    mean = jnp.real(inner(state, o_state))
    return jnp.real(inner(o_state, o_state)) - mean**2


def rotate_to_eigenbasis(obs, state: Array, axis_of: dict) -> Array:
    """Apply ``obs.diagonalizing_gates()`` (parameters may be tracers)."""
    for gate_op in obs.diagonalizing_gates():
        state = apply_gate(state, compile_gate(gate_op, axis_of), gate_op.data)
    return state


def marginal_probs(state: Array, axes: Sequence[int]) -> Array:
    """Probabilities of the computational basis states of ``axes`` (in that order), flat."""
    view, pos = split_view(jnp.real(state * jnp.conj(state)), axes)
    kept = [pos[a] for a in sorted(axes)]
    p = jnp.sum(view, axis=tuple(i for i in range(view.ndim) if i not in kept))
    # After summing, the kept axes remain in increasing wire order.
    p = jnp.transpose(p, [sorted(axes).index(a) for a in axes])
    return p.reshape(-1)


def state_in_order(state: Array, axes: Sequence[int]) -> Array:
    """The flat state vector with its wires in the order ``axes``."""
    return jnp.transpose(tensor(state), list(axes)).reshape(-1)


def density_matrix(state: Array, axes: Sequence[int]) -> Array:
    """Reduced density matrix on ``axes`` (traced over the others)."""
    state = tensor(state)
    others = [a for a in range(state.ndim) if a not in axes]
    k = len(axes)
    mat = jnp.transpose(state, list(axes) + others).reshape(2**k, -1)
    return mat @ jnp.conj(mat).T
