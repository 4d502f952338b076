"""The adjoint rule: a ``custom_jvp`` whose Jacobian comes from an adjoint sweep in ``jnp``.

Un-apply each gate to the ket and to one bra per expectation value, accumulating
``2 Re <bra| dU/dθ |ket>``: memory ``O(#expvals · 2^n)`` whatever the depth. A ``custom_jvp``
rather than a ``custom_vjp``: reverse mode costs the same (the Jacobian is a primal quantity,
computed once), and forward mode, ``jacfwd`` and the Hessian work too (second derivatives
differentiate the sweep itself).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..._tangents import is_zero_tangent
from ._compact import Region, adjoint_region, gate_transitions, slab_matrices
from ._gates import full_matrix, gate_value_derivatives, inverse_values
from ._jvp_parts import Fn, add_tangents, autodiff_rest, leaf_owner, real_scalar, tangent_out
from ._kernels import apply_gate, transition_matrix
from ._measure import apply_observable
from ._simulate import TapeProgram


def adjoint_jacobian(program: TapeProgram, leaves: tuple, active: list[int]):
    """(final state, Jacobian ``(n_expvals, len(active))``) by an adjoint sweep.

    Only real scalar gate parameters listed in ``active`` get columns. Per gate: un-apply it
    from the ket and the bras, and contract them once into a transition matrix ``T`` on the
    gate's wires; each parameter's column is then ``2 Re trace(dU/dθ T)`` (a tiny matrix op),
    however many parameters the gate has. Compact regions (``_compact.py``) are swept layer
    by layer in a loop and give one ``T`` per gate the same way.
    """
    values = program.gate_values(leaves)
    state = program.final_state(leaves)
    obs = [m.rebuild(leaves).obs for m in program.measurements]
    # The bras are carried conjugated: un-applying U from conj(bra) is applying U^T.
    bras = jnp.conj(jnp.stack([apply_observable(o, state, program.axis_of) for o in obs]))
    gates = [g for g, _, _ in program.gates]
    dagger, transposed = inverse_values(gates, values)
    col = {j: i for i, j in enumerate(active)}
    ket = state
    first = min(active)
    dvalues = gate_value_derivatives(gates, [leaves[sl] for _, sl, _ in program.gates])
    # Per matrix size: the transition matrix of each differentiated gate and, per parameter,
    # its derivative matrix and the gate it belongs to. The contractions happen once per size
    # after the sweep: a few batched ops instead of several tiny ones per parameter.
    groups: dict[int, dict[str, list]] = {}

    def group_of(size: int) -> dict[str, list]:
        return groups.setdefault(size, {"trans": [], "dmat": [], "gate": [], "col": []})

    def mine(i: int) -> list[tuple[int, int]]:
        sl = program.gates[i][1]
        return [(k, j) for k, j in enumerate(range(sl.start, sl.stop)) if j in col]

    for item in reversed(program.plan):
        if isinstance(item, Region):
            mats = slab_matrices(item, gates, values)
            ket, bras, slot_trans = adjoint_region(ket, bras, item, mats)
            owned = [(pos, i, k, j) for pos, i in enumerate(item.gate_ids) for k, j in mine(i)]
            if owned:
                trans = gate_transitions(item, gates, values, slot_trans)  # (m, gates, 2, 2)
                group = group_of(2)
                base = sum(t.shape[0] for t in group["trans"])
                group["trans"].append(jnp.swapaxes(trans, 0, 1))
                for pos, i, k, j in owned:
                    group["dmat"].append(full_matrix(gates[i], dvalues[i][k]))
                    group["gate"].append(base + pos)
                    group["col"].append(col[j])
            if program.gates[item.gate_ids[0]][1].start <= first:
                break
            continue
        i = item
        gate, sl, _ = program.gates[i]
        params = tuple(leaves[sl])
        ket = apply_gate(ket, gate, params, value=dagger[i])
        if mine(i):
            wires = gate.controls + gate.axes
            trans = jax.vmap(
                lambda b, w=wires, kt=ket: transition_matrix(b, kt, w, bra_conjugated=True)
            )(bras)
            group = group_of(2 ** len(wires))
            group["trans"].append(trans[None])
            for k, j in mine(i):
                group["dmat"].append(full_matrix(gate, dvalues[i][k]))
                group["gate"].append(sum(t.shape[0] for t in group["trans"]) - 1)
                group["col"].append(col[j])
        if sl.start <= first:
            break  # nothing earlier is differentiated
        bras = jax.vmap(lambda b, g=gate, p=params, v=transposed[i]: apply_gate(b, g, p, value=v))(
            bras
        )
    order, blocks = [], []
    for group in groups.values():
        trans = jnp.concatenate(group["trans"])[np.asarray(group["gate"])]
        dmat = jnp.stack(group["dmat"])
        blocks.append(2 * jnp.real(jnp.einsum("pij,pmji->mp", dmat, trans)))
        order += group["col"]
    jac = jnp.concatenate(blocks, axis=1)
    # Columns back in the order of ``active``.
    return state, jac[:, np.argsort(np.asarray(order))]


def make_adjoint_fn(program: TapeProgram) -> Fn:
    """The program's function with an adjoint-method ``custom_jvp`` (expectation values only)."""
    raw = program.run_single
    gate_leaves = set(leaf_owner(program))

    @jax.custom_jvp
    def f(leaves, key):
        return raw(leaves, key)

    def f_jvp(primals, tangents):
        leaves, key = primals
        t_leaves = tangents[0]
        active = [
            j
            for j in sorted(gate_leaves)
            if real_scalar(leaves[j]) and not is_zero_tangent(t_leaves[j])
        ]
        tan = None
        if active:
            state, jac = adjoint_jacobian(program, leaves, active)
            out = program.measure(state, leaves, key)
            t_vec = jnp.stack([jnp.asarray(t_leaves[j]) for j in active]).astype(jac.dtype)
            vals = jac @ t_vec
            tan = vals[0] if len(program.measurements) == 1 else tuple(vals)
        else:
            out = raw(leaves, key)
        tan = add_tangents(tan, autodiff_rest(raw, leaves, key, t_leaves, set(active)))
        return out, tangent_out(out, tan)

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f
