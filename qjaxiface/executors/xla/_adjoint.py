"""The adjoint rule: a ``custom_jvp`` whose tangent comes from an adjoint sweep in ``jnp``.

Un-apply each gate from the ket and from one bra per expectation value, and contract them into
a transition matrix ``T`` on the gate's wires; the tangent of ``<O>`` is then
``Σ_gates 2 Re trace(dU T)``, with ``dU`` the tangent of the gate's matrix (one ``jax.jvp`` of
every gate value at once). Memory ``O(#expvals · 2^n)`` whatever the depth. Compact regions
(``_compact.py``) are swept backwards in a loop and give one ``T`` per slab slot; repeated
patterns (``_repeat.py``) in a reverse scan that gives each position's weights per repetition.

A ``custom_jvp`` rather than a ``custom_vjp``: reverse mode costs the same (the transition
matrices are primal quantities, computed once; the tangent is linear in ``dU``), and forward
mode, ``jacfwd`` and the Hessian work too (second derivatives differentiate the sweep itself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..._dtypes import state_dtype
from ..._tangents import is_zero_tangent, one_call
from ._compact import Region, adjoint_region, region_matrices
from ._gates import Gate, GateValues, inverse_value, inverse_values
from ._interp import Interp, adjoint_interp, table
from ._jvp_parts import Fn, add_tangents, autodiff_rest, tangent_out
from ._kernels import apply_gate, apply_word, transition_matrix
from ._measure import apply_observable
from ._repeat import Repeat, repeat_values
from ._simulate import TapeProgram

Array = Any


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def sweep_values(program: TapeProgram, leaves: tuple) -> tuple[GateValues, list]:
    """(every gate's values, every compact region's slab matrices) for these leaves."""
    values = program.gate_values(leaves)
    gates = [g for g, _, _ in program.gates]
    regions = [r for r in program.plan if isinstance(r, Region)]
    return values, [region_matrices(r, gates, values) for r in regions]


def gate_weights(gate: Gate, trans: Array) -> Array:
    """``value_weights(partial(full_matrix, gate), trans, value)`` in closed form (no linear
    transpose to trace per gate): ``trace(kron(P, dV) T) = Σ dV * B^T`` with ``B`` the block of
    ``T`` at the control values (``P`` projects on them), its diagonal for a diagonal gate."""
    k = 2 ** len(gate.axes)
    if gate.controls:
        c = int("".join(str(v) for v in gate.control_values), 2)
        trans = trans[:, c * k : (c + 1) * k, c * k : (c + 1) * k]
    if gate.kind == "diag":
        return jnp.diagonal(trans, axis1=1, axis2=2)
    return jnp.swapaxes(trans, 1, 2)


def value_weights(to_matrix: Callable, trans: Array, value: Array) -> Array:
    """``W`` ``(m, *value.shape)`` with ``Σ W[r] * dV == trace(to_matrix(dV) @ trans[r])`` for
    every tangent value ``dV`` (``to_matrix`` is linear): the transposed map at ``trans[r]^T``.

    With the weights the tangent is one ``GateValues.weighted_sum``: reverse mode then gives
    each gate formula's cotangent whole, where slicing the tangent per gate padded every
    gate's cotangent to its whole formula, O(gates**2) memory and ops at the end of the sweep.
    """
    like = jax.ShapeDtypeStruct(jnp.shape(value), jnp.result_type(value))
    back = jax.linear_transpose(to_matrix, like)
    return jax.vmap(lambda t: back(t.T)[0])(trans)


def adjoint_jvp(program: TapeProgram, leaves: tuple, key, tangents: dict[int, object]):
    """(the program's results, tangent ``(n_expvals,)`` of the expectation values) by an
    adjoint sweep.

    ``tangents`` maps leaf indices to their (nonzero) tangents; other leaves are held fixed.
    The sweep depends on the parameters alone and yields weights; the tangent is their
    contraction with the tangents of the gate values. The sweep is one call (``one_call``), so
    ``jax.grad`` passes it through whole instead of walking its loops.
    """
    active = sorted(tangents)
    layout: list[GateValues] = []

    def values_of(sub):
        full = list(leaves)
        for j, v in zip(active, sub):
            full[j] = v
        values, mats = sweep_values(program, tuple(full))
        layout.append(values)
        return values.arrays(), mats

    (arrays, mats), (d_arrays, d_mats) = jax.jvp(
        values_of, (tuple(leaves[j] for j in active),), (tuple(tangents[j] for j in active),)
    )
    needed = tuple(bool(program.reads(i) & set(active)) for i in range(len(program.gates)))
    sweep = one_call(functools.partial(_sweep, program, layout[0], needed))
    out, found = sweep(arrays, mats, leaves, key)
    d_values = layout[0].over(*d_arrays)
    gates = [g for g, _, _ in program.gates]
    region_no = _region_numbers(program.plan)
    m = len(program.measurements)
    tan = jnp.zeros(m, jnp.finfo(state_dtype()).dtype)
    unrolled: dict[int, Array] = {}
    for pos, w in zip(_swept(program.plan, needed), found):
        item = program.plan[pos]
        if isinstance(item, Region):
            dm = d_mats[region_no[pos]]
            tan = tan + 2 * jnp.real(jnp.einsum("lwab,mlwba->m", dm, w))
        elif isinstance(item, Repeat):
            for wp, d in zip(w, repeat_values(item, d_values)):
                if wp is not None and d is not None:
                    axes = (0, *range(2, wp.ndim))
                    tan = tan + 2 * jnp.real(jnp.sum(wp * jnp.expand_dims(d, 1), axis=axes))
        elif isinstance(item, Interp):
            d = table(item, gates, d_values, tangent=True)
            tan = tan + 2 * jnp.real(jnp.einsum("gmk,gk->m", w, d))
        elif w is not None:
            unrolled[item] = w
    if unrolled:
        tan = tan + 2 * d_values.weighted_sum(unrolled)
    return out, tan


def _region_numbers(plan: Sequence) -> dict[int, int]:
    """Position in ``plan`` -> number among the compact regions (their slab matrices)."""
    positions = [pos for pos, item in enumerate(plan) if isinstance(item, Region)]
    return {pos: k for k, pos in enumerate(positions)}


def _swept(plan: Sequence, needed: Sequence[bool]) -> list[int]:
    """The positions in ``plan`` that the sweep visits, last first: it stops after the item
    holding the first differentiated gate."""
    first = needed.index(True) if any(needed) else -1
    visited = []
    for pos in reversed(range(len(plan))):
        visited.append(pos)
        item = plan[pos]
        if isinstance(item, Region):
            start = item.gate_ids[0]
        elif isinstance(item, (Repeat, Interp)):
            start = item.first
        else:
            start = item
        if start <= first:
            break  # nothing earlier is differentiated
    return visited


def _sweep(program: TapeProgram, layout: GateValues, needed, arrays, mats, leaves, key):
    """(results, per position of ``_swept`` the weights of its gate values): the adjoint
    sweep, a function of the parameters alone.

    The results are measured before the sweep, so the final state need not stay alive next to
    the sweep's ket and bras.
    """
    values = layout.over(*arrays)
    state = program.final_state(leaves, values=(values, mats))
    out = program.measure(state, leaves, key)
    obs = [m.rebuild(leaves).obs for m in program.measurements]
    # The bras are carried conjugated: un-applying U from conj(bra) is applying U^T.
    bras = jnp.conj(jnp.stack([apply_observable(o, state, program.axis_of) for o in obs]))
    gates = [g for g, _, _ in program.gates]
    unrolled = {i for i in program.plan if isinstance(i, int)}
    dagger, transposed = inverse_values(
        gates, [values[i] if i in unrolled else None for i in range(len(gates))]
    )
    source = program.param_source(leaves)
    region_no = _region_numbers(program.plan)
    swept = _swept(program.plan, needed)
    ket = state
    found: list = []
    for pos in swept:
        item = program.plan[pos]
        if isinstance(item, Region):
            ket, bras, trans = adjoint_region(ket, bras, item, mats[region_no[pos]])
            found.append(trans)
        elif isinstance(item, Repeat):
            stacks = repeat_values(item, values)
            ket, bras, per_position = adjoint_repeat(ket, bras, item, gates, stacks, needed)
            found.append(per_position)
        elif isinstance(item, Interp):
            ket, bras, w = adjoint_interp(ket, bras, item, table(item, gates, values))
            found.append(w)
        else:
            gate, params, value = gates[item], source.params(item), values[item]
            ket = apply_gate(ket, gate, params, value=dagger[item])
            weighed = value is not None and needed[item]
            found.append(_weight(gate, ket, bras, value) if weighed else None)
            if pos == swept[-1]:
                break  # the bras before the first differentiated gate are not needed
            bras = jax.vmap(
                lambda b, g=gate, p=params, v=transposed[item]: apply_gate(b, g, p, value=v)
            )(bras)
    return out, found


def _weight(gate: Gate, ket: Array, bras: Array, value: Array) -> Array:
    """The weights ``(m, *value.shape)`` of the gate's tangent value in each expectation's
    tangent (``value_weights``), from the ket and bras before the gate."""
    if gate.kind == "phase":
        overlap = jnp.einsum("r,mr->m", ket, bras)  # <bra|ket> (bras conjugated)
        return jnp.reshape(overlap, (-1, *jnp.shape(value)))
    if gate.kind == "pauli":
        return word_overlaps(gate, ket, bras)
    wires = gate.controls + gate.axes
    trans = jax.vmap(lambda b: transition_matrix(b, ket, wires, bra_conjugated=True))(bras)
    return gate_weights(gate, trans)


def word_overlaps(gate: Gate, ket: Array, bras: Array) -> Array:
    """A ``"pauli"`` gate's weights ``(m, 2)``: ``<bra|ψ>`` and ``<bra|P ψ>`` (the tangent of
    ``a I + b P`` is ``da I + db P``), where a transition matrix on its wires would hold
    ``4**m`` numbers per bra."""
    moved = apply_word(ket, gate)
    return jnp.stack([bras @ ket, bras @ moved], axis=1)


def adjoint_repeat(
    ket: Array,
    bras: Array,
    repeat: Repeat,
    gates: Sequence[Gate],
    stacks: Sequence[Array | None],
    needed: Sequence[bool],
) -> tuple[Array, Array, list[Array | None]]:
    """Sweep ``repeat`` backwards: (ket before it, bras before it, per position of the
    pattern the weights ``(repetitions, m, *value.shape)`` of its values, None where no gate
    of the position is differentiated).

    One reverse ``lax.scan`` over the repetitions whose body is the unrolled sweep's step for
    each gate of the pattern, so the program holds the pattern once.
    """
    pattern = [gates[i] for i in repeat.ids[0]]
    weighted = [
        stack is not None and any(needed[i] for i in col)
        for stack, col in zip(stacks, repeat.columns)
    ]
    xs = [s for s in stacks if s is not None]

    def body(carry, x):
        ket, bras = carry
        given = iter(x)
        values = [None if s is None else next(given) for s in stacks]
        out: list[Array] = []
        for p in reversed(range(len(pattern))):
            gate, value = pattern[p], values[p]
            dagger, transposed = (None, None) if value is None else inverse_value(gate, value)
            ket = apply_gate(ket, gate, (), value=dagger)
            if weighted[p]:
                out.append(_weight(gate, ket, bras, value))
            bras = jax.vmap(lambda b, g=gate, v=transposed: apply_gate(b, g, (), value=v))(bras)
        return (ket, bras), out[::-1]

    (ket, bras), ws = jax.lax.scan(body, (ket, bras), xs, reverse=True)
    given = iter(ws)
    return ket, bras, [next(given) if w else None for w in weighted]


def make_adjoint_fn(program: TapeProgram, sweep=None) -> Fn:
    """The program's function with an adjoint-method ``custom_jvp`` (expectation values only).

    ``sweep(leaves, key, tangents)``: the rule's ``(results, tangents)`` (default
    ``adjoint_jvp``; a sharded program brings its own).
    """
    if sweep is None:
        sweep = functools.partial(adjoint_jvp, program)
    raw = program.run_single
    gate_leaves = set().union(*(program.reads(i) for i in range(len(program.gates))))

    @jax.custom_jvp
    def f(leaves, key):
        return raw(leaves, key)

    def f_jvp(primals, tangents):
        leaves, key = primals
        t_leaves = tangents[0]
        active = {
            j: t_leaves[j]
            for j in sorted(gate_leaves)
            if _inexact(leaves[j]) and not is_zero_tangent(t_leaves[j])
        }
        tan = None
        if active:
            out, vals = sweep(leaves, key, active)
            tan = vals[0] if len(program.measurements) == 1 else tuple(vals)
        else:
            out = raw(leaves, key)
        handled = set(active) | program.unread  # outside the light cone: exact zeros
        tan = add_tangents(tan, autodiff_rest(raw, leaves, key, t_leaves, handled))
        return out, tangent_out(out, tan)

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f
