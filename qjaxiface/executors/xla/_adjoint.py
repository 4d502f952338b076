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
    however many parameters the gate has.
    """
    values = program.gate_values(leaves)
    state = program.initial_state(leaves)
    for (gate, sl, _), value in zip(program.gates, values):
        state = apply_gate(state, gate, leaves[sl], value=value)
    obs = [m.rebuild(leaves).obs for m in program.measurements]
    # The bras are carried conjugated: un-applying U from conj(bra) is applying U^T.
    bras = jnp.conj(jnp.stack([apply_observable(o, state, program.axis_of) for o in obs]))
    gates = [g for g, _, _ in program.gates]
    dagger, transposed = inverse_values(gates, values)
    col = {j: i for i, j in enumerate(active)}
    single = bras.shape[0] == 1
    ket = state
    first = min(active)
    dvalues = gate_value_derivatives(gates, [leaves[sl] for _, sl, _ in program.gates])
    # Per matrix size: the transition matrix of each differentiated gate and, per parameter,
    # its derivative matrix and the gate it belongs to. The contractions happen once per size
    # after the sweep: a few batched ops instead of several tiny ones per parameter.
    groups: dict[int, dict[str, list]] = {}
    for (gate, sl, _), dag, tra, dvals in zip(
        reversed(program.gates), reversed(dagger), reversed(transposed), reversed(dvalues)
    ):
        params = tuple(leaves[sl])
        ket = apply_gate(ket, gate, params, value=dag)
        mine = [(k, j) for k, j in enumerate(range(sl.start, sl.stop)) if j in col]
        if mine:
            wires = gate.controls + gate.axes
            if single:
                trans = transition_matrix(bras[0], ket, wires, bra_conjugated=True)[None]
            else:
                trans = jax.vmap(
                    lambda b, w=wires, kt=ket: transition_matrix(b, kt, w, bra_conjugated=True)
                )(bras)
            group = groups.setdefault(
                2 ** len(wires), {"trans": [], "dmat": [], "gate": [], "col": []}
            )
            group["trans"].append(trans)
            for k, j in mine:
                group["dmat"].append(full_matrix(gate, dvals[k]))
                group["gate"].append(len(group["trans"]) - 1)
                group["col"].append(col[j])
        if sl.start <= first:
            break  # nothing earlier is differentiated
        if single:
            bras = apply_gate(bras[0], gate, params, value=tra)[None]
        else:
            bras = jax.vmap(lambda b, g=gate, p=params, v=tra: apply_gate(b, g, p, value=v))(bras)
    order, blocks = [], []
    for group in groups.values():
        trans = jnp.stack(group["trans"])[np.asarray(group["gate"])]
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
