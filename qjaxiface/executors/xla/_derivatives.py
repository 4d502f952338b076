"""Derivative rules for a ``TapeProgram``.

* ``backprop`` / ``None``: the program's function as is (JAX differentiates the simulation).
* ``parameter-shift`` / ``finite-diff`` / ``spsa``: a ``jax.custom_jvp`` whose rule evaluates
  the function -- traced once -- ``jax.vmap``-ed over a matrix of shifted parameter vectors and
  contracts the results with recipe coefficients times tangents. The rule calls the
  ``custom_jvp`` function itself, so second derivatives are shifts of shifts (as PennyLane's
  parameter-shift Hessian), and it is linear in the tangents, so grad/jacrev/jacfwd/hessian/
  vmap all compose.
* ``adjoint``: a ``jax.custom_jvp`` whose rule computes the Jacobian of the expectation values
  with an adjoint sweep in ``jnp`` (un-apply each gate to the ket and to one bra per
  expectation value, accumulating ``2 Re <bra| dU/dθ |ket>``), memory ``O(#expvals · 2^n)``,
  and contracts it with the tangents. A ``custom_jvp`` rather than a ``custom_vjp``: reverse
  mode costs the same (the Jacobian is a primal quantity, computed once), and forward mode,
  ``jacfwd`` and the Hessian work too (second derivatives differentiate the sweep itself).

Parameters the rule cannot shift (no recipe, complex or non-scalar, observable coefficients
for parameter-shift, state preparations for adjoint) get their tangent contribution by plain
JAX forward-mode differentiation of the simulation -- exact for analytic results;
``xla_unsupported_reason`` refuses the finite-shot cases where
that would be wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ..._dtypes import complex_dtype
from ..._tangents import is_zero_tangent
from ._measure import apply_observable
from ._ops import (
    apply_gate,
    elementwise_gates,
    full_matrix,
    gate_value_derivatives,
    inverse_values,
    transition_matrix,
)
from ._sharding import replicate_over_rows_mesh, shard_rows, sharding_devices
from ._simulate import TapeProgram

Array = Any
Fn = Callable[[tuple, Any], Any]
SHIFT_METHODS = ("parameter-shift", "finite-diff", "spsa")


def _real_scalar(x) -> bool:
    return jnp.ndim(x) == 0 and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def leaf_owner(program: TapeProgram | Any) -> dict[int, tuple[qml.operation.Operator, int]]:
    """Leaf index -> (gate op, index of the parameter in ``op.data``), for gate leaves."""
    owner = {}
    for _, sl, op in program.gates:
        for k, j in enumerate(range(sl.start, sl.stop)):
            owner[j] = (op, k)
    return owner


def shift_recipe(op: qml.operation.Operator, p_idx: int) -> np.ndarray | None:
    """PennyLane's first-order shift rule ``[[c, a, s], ...]`` (term ``c f(a θ + s)``), or None."""
    try:
        recipe = op.grad_recipe[p_idx]
        if recipe is not None:
            return np.asarray(recipe, dtype=float)
        frequencies = op.parameter_frequencies[p_idx]
        coeffs, shifts = qml.gradients.generate_shift_rule(frequencies).T
        return np.stack([coeffs, np.ones_like(coeffs), shifts]).T
    except Exception:
        return None


def _fd_recipe(kwargs: dict) -> np.ndarray:
    h = float(kwargs.get("h", 1e-7))
    order = int(kwargs.get("approx_order", 1))
    strategy = kwargs.get("strategy", "forward")
    coeffs, shifts = qml.gradients.finite_diff_coeffs(1, order, strategy)
    return np.stack([coeffs / h, np.ones_like(coeffs), shifts * h]).T


def _autodiff_rest(raw: Fn, leaves: tuple, key, tangents: tuple, handled: set[int]):
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


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return jax.tree.map(jnp.add, a, b)


def _zeros_like_out(out):
    return jax.tree.map(
        lambda x: jnp.zeros_like(x) if jnp.issubdtype(x.dtype, jnp.inexact) else None, out
    )


def _contract(weights: Array, rows_out) -> Any:
    """Σ_r weights[r] · rows_out[r] over the leading (row) axis of every output leaf."""

    return jax.tree.map(lambda x: jnp.tensordot(weights.astype(x.dtype), x, axes=(0, 0)), rows_out)


def _tangent_out(out, tan):
    """Zero tangents where nothing contributed; integer outputs (samples) get no tangent."""
    zeros = _zeros_like_out(out)
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


def shifted_rows_jvp(
    f: Fn,
    raw: Fn,
    leaves: tuple,
    key,
    tangents: tuple,
    units: dict[int, np.ndarray],
    spsa: dict | None = None,
):
    """The tangent of ``f`` by shifted evaluations.

    Args:
        f: the differentiable function (the ``custom_jvp`` itself, for higher orders).
        raw: the plain simulation, for leaves without a rule.
        leaves: primal parameters.
        key: PRNG key (or None).
        tangents: per-leaf tangents (``SymbolicZero`` for zero).
        units: leaf index -> recipe ``[[c, a, s], ...]`` for leaves differentiated by shifts.
        spsa: ``{"directions": (D, U) array}`` for simultaneous perturbation, else None.

    Returns:
        (primal output, tangent output)
    """
    out = f(leaves, key)
    active = [j for j in sorted(units) if not is_zero_tangent(tangents[j])]
    tan = None
    sharded = False
    if active:
        # rows: one shifted parameter vector per recipe term (per direction for SPSA).
        mult = []  # (R, U)
        shift = []  # (R, U)
        row_weight = []  # (R, U): coefficient of tangent u in row r's contribution
        base_weight = np.zeros(len(active))  # terms that are the unshifted point reuse `out`
        if spsa is None:
            for u, j in enumerate(active):
                for c, a, s in units[j]:
                    if a == 1.0 and s == 0.0:
                        base_weight[u] += c
                        continue
                    m = np.ones(len(active))
                    m[u] = a
                    sh = np.zeros(len(active))
                    sh[u] = s
                    w = np.zeros(len(active))
                    w[u] = c
                    mult.append(m)
                    shift.append(sh)
                    row_weight.append(w)
        else:
            recipe = units[active[0]]  # one shared (c, 1, s·h) recipe
            directions = spsa["directions"][:, : len(active)]
            nd = directions.shape[0]
            for d in range(nd):
                for c, _, s in recipe:
                    w = c * directions[d] / nd
                    if s == 0.0:
                        base_weight += w
                        continue
                    mult.append(np.ones(len(active)))
                    shift.append(s * directions[d])
                    row_weight.append(w)
        mult_a, shift_a = np.asarray(mult), np.asarray(shift)
        row_weight_a = np.asarray(row_weight)
        t_vec = jnp.stack([jnp.asarray(tangents[j]) for j in active])
        x_vec = jnp.stack([jnp.asarray(leaves[j]) for j in active])
        rows = x_vec[None, :] * mult_a + shift_a  # (R, U): linear in x, so Hessians chain through
        stacked = list(leaves)
        in_axes: list[int | None] = [None] * len(leaves)
        for u, j in enumerate(active):
            stacked[j] = rows[:, u].astype(jnp.result_type(leaves[j]))
            in_axes[j] = 0
        n_rows = rows.shape[0]
        if key is not None:
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_rows) + 1)
            key_axis = 0
        else:
            keys, key_axis = None, None
        stacked, keys = shard_rows(stacked, in_axes, keys)
        sharded = bool(sharding_devices())
        with elementwise_gates():
            rows_out = map_rows(f, stacked, in_axes, keys, key_axis, state_size(leaves, raw))
        rows_out = jax.tree.map(lambda x: x[:n_rows], rows_out)  # drop sharding padding
        weights = jnp.asarray(row_weight_a) @ t_vec  # (R,), linear in the tangents
        tan = _contract(weights, rows_out)
        if np.any(base_weight):
            b = jnp.dot(jnp.asarray(base_weight), t_vec)
            tan = _add(tan, jax.tree.map(lambda x: b.astype(x.dtype) * x, out))
    tan = _add(tan, _autodiff_rest(raw, leaves, key, tangents, set(units)))
    if sharded:
        out, tan = replicate_over_rows_mesh((out, tan))
    return out, _tangent_out(out, tan)


# Rows per chunk are chosen so that a chunk's states (rows x 2**n amplitudes) stay in a core's
# cache while every gate of the circuit is applied to them; vmapping all rows at once makes
# each gate a pass over main memory.
CHUNK_BYTES = 1 << 19


def state_size(leaves, raw) -> int:
    """Bytes of one state vector of the program behind ``raw``."""
    program = getattr(raw, "__self__", None)
    n = getattr(program, "n_wires", 10)
    return (2**n) * complex_dtype().itemsize


def map_rows(f: Fn, stacked: list, in_axes: list, keys, key_axis, bytes_per_row: int):
    """``vmap(f)`` over the rows, evaluated chunk by chunk (``lax.map`` with ``batch_size``)."""
    batched = [j for j, ax in enumerate(in_axes) if ax == 0]
    n_rows = stacked[batched[0]].shape[0]
    chunk = max(1, CHUNK_BYTES // max(bytes_per_row, 1))
    if chunk >= n_rows or sharding_devices():
        return jax.vmap(f, in_axes=(tuple(in_axes), key_axis))(tuple(stacked), keys)

    def one(xs):
        row_leaves, row_key = xs
        full = list(stacked)
        for j, v in zip(batched, row_leaves):
            full[j] = v
        return f(tuple(full), row_key)

    # Equal chunks, padded by repeating the first row: lax.map(batch_size=...) would trace the
    # circuit a second time for a remainder chunk, doubling the compile time.
    n_chunks = -(-n_rows // chunk)
    size = -(-n_rows // n_chunks)
    pad = n_chunks * size - n_rows

    def chunked(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)])
        return x.reshape((n_chunks, size, *x.shape[1:]))

    xs = jax.tree.map(chunked, ([stacked[j] for j in batched], keys))
    out = jax.lax.map(jax.vmap(one), xs)
    return jax.tree.map(lambda y: y.reshape((n_chunks * size, *y.shape[2:]))[:n_rows], out)


def make_shift_fn(program: TapeProgram, diff_method: str, kwargs: dict) -> Fn:
    """The program's function with a parameter-shift / finite-diff / SPSA ``custom_jvp``."""
    raw = program.run_single
    owner = leaf_owner(program)
    n = program.n_leaves
    spsa = None
    if diff_method == "parameter-shift":
        units_all = {j: shift_recipe(op, k) for j, (op, k) in owner.items()}
        units_all = {j: r for j, r in units_all.items() if r is not None}
    else:
        if diff_method == "finite-diff":
            recipe = _fd_recipe(kwargs)
        else:
            spsa_kwargs = {"h": 1e-5, "approx_order": 2, "strategy": "center", **kwargs}
            # The finite-difference recipe, applied along random ±1 directions.
            recipe = _fd_recipe(spsa_kwargs)
            seed = kwargs.get("sampler_rng", kwargs.get("sampler_seed"))
            spsa = {"num_directions": int(kwargs.get("num_directions", 1)), "seed": seed}
        units_all = dict.fromkeys(range(n), recipe)

    def rule_for(fn: Fn) -> Fn:
        @jax.custom_jvp
        def f(leaves, key):
            return fn(leaves, key)

        # symbolic zeros: leaves with zero tangents cost no shifted evaluations.
        def f_jvp(primals, tangents):
            leaves, key = primals
            t_leaves = tangents[0]
            units = {j: r for j, r in units_all.items() if _real_scalar(leaves[j])}
            spsa_now = None
            if spsa is not None:
                n_active = sum(not is_zero_tangent(t_leaves[j]) for j in units)
                # Drawn at trace time: constants of the compiled function (as PennyLane draws
                # directions when it builds the shifted tapes).
                shape = (spsa["num_directions"], n_active)
                # As PennyLane's spsa_grad: a seed gives the same directions at every
                # evaluation of the rule (a Generator is drawn from, as PennyLane does).
                rng = np.random.default_rng(spsa["seed"])
                spsa_now = {"directions": rng.choice([-1.0, 1.0], size=shape)}
            return shifted_rows_jvp(f, fn, leaves, key, t_leaves, units, spsa_now)

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f

    if not (diff_method == "parameter-shift" and program.has_variance):
        return rule_for(raw)

    # Variances: shift <O> and <O²> (both trigonometric in each angle) and combine,
    # d var = d<O²> - 2 <O> d<O>, as PennyLane's parameter-shift does.
    moments_fn = rule_for(program.run_moments)
    kinds = program.kinds()

    def to_result(kind, m):
        return m[1] - m[0] ** 2 if kind == "VarianceMP" else m

    @jax.custom_jvp
    def f_var(leaves, key):
        return raw(leaves, key)

    def f_var_jvp(primals, tangents):
        moments, t_moments = jax.jvp(moments_fn, primals, tangents)
        out = jax.tree.map(to_result, kinds, moments)

        def tangent(kind, m, t):
            return t[1] - 2 * m[0] * t[0] if kind == "VarianceMP" else t

        return out, jax.tree.map(tangent, kinds, moments, t_moments)

    f_var.defjvp(f_var_jvp)
    return f_var


# --------------------------------------------------------------------------- adjoint


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
            if _real_scalar(leaves[j]) and not is_zero_tangent(t_leaves[j])
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
        tan = _add(tan, _autodiff_rest(raw, leaves, key, t_leaves, set(active)))
        return out, _tangent_out(out, tan)

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f


def make_fn(program: TapeProgram, diff_method: str | None, kwargs: dict | None) -> Fn:
    """The program's unbroadcast function ``(leaves, key) -> result`` for ``diff_method``."""
    if diff_method in (None, "backprop"):
        return program.run_single
    if diff_method == "adjoint":
        return make_adjoint_fn(program)
    if diff_method in SHIFT_METHODS:
        return make_shift_fn(program, diff_method, dict(kwargs or {}))
    raise ValueError(f"unknown diff_method {diff_method!r}")
