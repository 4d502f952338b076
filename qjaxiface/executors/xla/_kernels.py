"""State-vector kernels: applying a ``Gate``'s value to a flat ``2**n`` state.

The functions here are written for a single, unbatched state; broadcasting, shifted parameter
batches and tape batches are added by ``jax.vmap`` around them. What a gate applies (its matrix
or diagonal) comes from the catalogue in ``_gates.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import jax
import jax.numpy as jnp

from ._gates import Array, Gate, PauliPair, gate_value

# --------------------------------------------------------------------------- application
#
# The state is a flat vector of length 2**n (wire axis 0 most significant). Each gate reshapes
# it to a low-rank view that splits out only the axes the gate touches:
# (rest, 2, rest, 2, ..., rest). Reshapes of a contiguous vector are free, and XLA compiles
# rank-3..7 arrays much faster than rank-n ones (rank-12 tensors took tens of seconds).


def num_wires_of(state: Array) -> int:
    """n for a flat state of length 2**n."""
    return int(state.shape[0]).bit_length() - 1


def split_view(state: Array, axes: Sequence[int]) -> tuple[Array, dict[int, int]]:
    """(state reshaped to split out ``axes``, wire axis -> position in the view)."""
    n = num_wires_of(state)
    dims: list[int] = []
    pos: dict[int, int] = {}
    prev = -1
    for a in sorted(set(axes)):
        dims.append(2 ** (a - prev - 1))
        pos[a] = len(dims)
        dims.append(2)
        prev = a
    dims.append(2 ** (n - prev - 1))
    return jnp.reshape(state, dims), pos


def _apply_matrix(view: Array, mat: Array, axes: Sequence[int], elementwise: bool = False) -> Array:
    # One dot_general per gate: XLA:CPU compiles it far faster than the equivalent elementwise
    # slices/stack (which it fuses gate after gate into ever larger kernels).
    k = len(axes)
    if k == 1 and elementwise:
        # Slices and a stack: XLA fuses them into one pass over the state, several times
        # faster for batches of states (parameter-shift rows), but slower to compile and to
        # differentiate -- so only used where the caller asks for it (shift-rule rows).
        (a,) = axes
        s0 = jax.lax.index_in_dim(view, 0, a, keepdims=False)
        s1 = jax.lax.index_in_dim(view, 1, a, keepdims=False)
        n0 = mat[0, 0] * s0 + mat[0, 1] * s1
        n1 = mat[1, 0] * s0 + mat[1, 1] * s1
        return jnp.stack([n0, n1], axis=a)
    m = jnp.reshape(mat, (2,) * (2 * k))
    out = jnp.tensordot(m, view, axes=(list(range(k, 2 * k)), list(axes)))
    return jnp.moveaxis(out, list(range(k)), list(axes))


def _apply_diag(view: Array, diag: Array, axes: Sequence[int]) -> Array:
    k = len(axes)
    d = jnp.reshape(diag, (2,) * k)
    order = sorted(range(k), key=lambda i: axes[i])
    d = jnp.transpose(d, order)
    shape = [1] * view.ndim
    for ax in axes:
        shape[ax] = 2
    return view * jnp.reshape(d, shape)


def apply_word(state: Array, gate: Gate) -> Array:
    """``P ψ`` for a ``"pauli"`` gate's word ``P`` on an unbatched flat state:
    ``(P ψ)[x] = c (-1)^{|x & YZ|} ψ[x ^ F]`` (``PauliPair.masks``), one gather.

    A reversed view of the X and Y axes read the same amplitudes, but XLA:CPU fused runs of
    such gates into one loop that re-evaluated every earlier gate at both of its reads (six
    7-letter words at n=12: 1.1 ms forward, 12 ms grad). Behind a gather (here) and a dot
    (``apply_gate``) every gate's state is materialized: 0.15 and 0.37 ms.
    """
    n = num_wires_of(state)
    flip, signs, phase = cast(PauliPair, gate.fn).masks(gate.axes, n)
    idx = jax.lax.iota(jnp.int32, 2**n)
    out = state.at[idx ^ flip].get(mode="promise_in_bounds", unique_indices=True) if flip else state
    if signs:
        out = jnp.where(jax.lax.population_count(idx & signs) & 1 == 1, -out, out)
    return out if phase == 1 else out * jnp.asarray(phase, dtype=state.dtype)


def _apply_targets(
    view: Array, gate: Gate, value: Array | None, axes, adjoint: bool, elementwise: bool
) -> Array:
    kind = gate.kind
    if kind == "x":
        return jnp.flip(view, axes[0])
    if kind == "swap":
        return jnp.swapaxes(view, axes[0], axes[1])
    assert value is not None, kind  # only x and swap have no value
    if kind == "diag":
        return _apply_diag(view, jnp.conj(value) if adjoint else value, axes)
    if kind == "matrix":
        return _apply_matrix(view, jnp.conj(value).T if adjoint else value, axes, elementwise)
    raise AssertionError(kind)


def apply_gate(
    state: Array,
    gate: Gate,
    params: Sequence[Array],
    adjoint: bool = False,
    value: Array | None = None,
    elementwise: bool = False,
) -> Array:
    """Apply ``gate`` (or its inverse, with ``adjoint=True``) to an unbatched flat state.

    ``value`` is the gate's precomputed matrix/diagonal (see ``GateValues``); computed
    from ``params`` when not given. ``elementwise`` applies a one-qubit matrix as slices and a
    stack instead of a contraction: faster for batches of states, slower to compile.
    """
    if gate.kind == "none":
        return state
    if value is None:
        value = gate_value(gate, params)
    if gate.kind == "phase":
        assert value is not None
        return state * (jnp.conj(value) if adjoint else value)
    if gate.kind == "pauli":  # a I + b P, and P is Hermitian: U† = a* I + b* P
        assert value is not None and not gate.controls
        # A dot rather than ``a ψ + b P ψ``: see ``apply_word``.
        pair = jnp.conj(value) if adjoint else value
        return jnp.dot(pair, jnp.stack([state, apply_word(state, gate)]))
    view, pos = split_view(state, gate.axes + gate.controls)
    axes = tuple(pos[a] for a in gate.axes)
    if not gate.controls:
        return _apply_targets(view, gate, value, axes, adjoint, elementwise).reshape(state.shape)
    controls = [(pos[c], v) for c, v in zip(gate.controls, gate.control_values)]
    out = _controlled(
        view, controls, lambda v: _apply_targets(v, gate, value, axes, adjoint, elementwise)
    )
    return out.reshape(state.shape)


def _controlled(view: Array, controls: list[tuple[int, int]], act: Callable) -> Array:
    """Apply ``act`` where every control position holds its value.

    Splits each control axis into its two halves (keeping the axis, so positions do not move)
    and concatenates them back. An in-place ``.at[].set`` of the acted-on slice was
    miscompiled by XLA:CPU when the update read the same buffer reversed (a CNOT's flip).
    """
    if not controls:
        return act(view)
    (p, v), rest = controls[0], controls[1:]
    halves = [jax.lax.slice_in_dim(view, 0, 1, axis=p), jax.lax.slice_in_dim(view, 1, 2, axis=p)]
    halves[v] = _controlled(halves[v], rest, act)
    return jnp.concatenate(halves, axis=p)


def apply_matrix_on(state: Array, mat: Array, axes: Sequence[int]) -> Array:
    """Apply a dense ``(2**k, 2**k)`` matrix on wire ``axes`` of a flat state."""
    view, pos = split_view(state, axes)
    return _apply_matrix(view, mat, [pos[a] for a in axes]).reshape(state.shape)


def transition_matrix(
    bra: Array, ket: Array, axes: Sequence[int], bra_conjugated: bool = False
) -> Array:
    """``T[j, i] = Σ_rest ket[.., j, ..] conj(bra[.., i, ..])`` over the wire ``axes``.

    For any operator ``A`` on those wires, ``<bra| A ⊗ 1 |ket> = trace(A @ T)``: one
    contraction gives the derivative of every parameter of a gate. With ``bra_conjugated``
    the caller passes ``conj(bra)`` (saving a full-state conjugation per gate).
    """
    k = len(axes)
    kv, pos = split_view(ket, axes)
    bv, _ = split_view(bra, axes)
    p = [pos[a] for a in axes]
    kt = jnp.moveaxis(kv, p, list(range(k))).reshape(2**k, -1)
    bt = jnp.moveaxis(bv, p, list(range(k))).reshape(2**k, -1)
    return kt @ (bt if bra_conjugated else jnp.conj(bt)).T
