"""Shift rules: parameter-shift, finite differences and SPSA as one ``custom_jvp``.

The rule evaluates the program's function -- traced once -- ``jax.vmap``-ed over shifted
parameters (the rows; ``_rows.py`` maps them in chunks and over devices) and contracts the
results with recipe coefficients times tangents. A row shifts one parameter (SPSA: all of them
along a random direction); a parameter is a scalar leaf or, for lifted templates, one element
of a per-gate-parameter vector (``_lift.per_parameter``), placed inside the row loop so that no
rows x parameters matrix is ever built. The rule calls the
``custom_jvp`` function itself, so second derivatives are shifts of shifts (as PennyLane's
parameter-shift Hessian), and it is linear in the tangents, so grad/jacrev/jacfwd/hessian/vmap
all compose.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from pennylane.measurements import VarianceMP

from ..._tangents import is_zero_tangent, one_call
from ._jvp_parts import (
    Array,
    Fn,
    add_tangents,
    autodiff_rest,
    leaf_owner,
    tangent_out,
)
from ._rows import map_rows, replicate_over_rows_mesh, shard_rows, sharding_devices, state_size
from ._simulate import TapeProgram

SHIFT_METHODS = ("parameter-shift", "finite-diff", "spsa")


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


def _contract(weights: Array, rows_out) -> Any:
    """Σ_r weights[r] · rows_out[r] over the leading (row) axis of every output leaf."""

    return jax.tree.map(lambda x: jnp.tensordot(weights.astype(x.dtype), x, axes=(0, 0)), rows_out)


Units = dict[int, list]  # leaf -> per flattened element, its recipe (None: no rule)


def shifted_rows_jvp(
    f: Fn,
    rows_f: Fn,
    raw: Fn,
    leaves: tuple,
    key,
    tangents: tuple,
    units: Units,
    spsa: dict | None = None,
    unread: frozenset[int] = frozenset(),
):
    """The tangent of ``f`` by shifted evaluations.

    Args:
        f: the differentiable function (the ``custom_jvp`` itself, for higher orders).
        rows_f: the same function for the shifted rows (for an unrolled program, one-qubit
            gates applied elementwise, faster over a batch of states), with the same rule for
            higher orders.
        raw: the plain simulation (a ``TapeProgram`` method), for parameters without a rule.
        leaves: primal parameters.
        key: PRNG key (or None).
        tangents: per-leaf tangents (``SymbolicZero`` for zero).
        units: leaf index -> per flattened element, the recipe ``[[c, a, s], ...]`` (term
            ``c f(a θ + s)``) of that parameter, or None where plain JAX differentiates it.
        spsa: ``{"directions": (D, U) array}`` for simultaneous perturbation, else None.
        unread: leaves no gate reads (outside the light cone): their tangents contribute zero.

    Returns:
        (primal output, tangent output)
    """
    out = f(leaves, key)
    active = [j for j in sorted(units) if not is_zero_tangent(tangents[j])]
    tan = None
    sharded = False
    plan = _RowPlan(units, active, spsa)
    if plan.n_units:
        t_vec = plan.gather(tangents)
        x_vec = plan.gather(leaves)
        stacked: list = list(leaves)
        in_axes: list[int | None] = [None] * len(leaves)
        shifted = list(dict.fromkeys(plan.unit_leaf))  # leaves with at least one unit
        for j in shifted:
            stacked[j], in_axes[j] = plan.rows_of_leaf(j, leaves[j], x_vec), 0
        n_rows = plan.n_rows
        if key is not None:
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_rows) + 1)
            key_axis = 0
        else:
            keys, key_axis = None, None
        stacked, keys = shard_rows(stacked, in_axes, keys)
        sharded = bool(sharding_devices())
        placed = [j for j in shifted if plan.spsa is None and jnp.ndim(leaves[j]) > 0]

        row_bytes = state_size(leaves, raw)

        def all_rows(stacked, keys, leaves):
            def on_row(row_leaves, row_key):
                # A vector leaf's row arrives as (element, value): the shifted copy is made
                # here, one row at a time, instead of materializing rows x elements up front.
                full = list(row_leaves)
                for j in placed:
                    e, v = full[j]
                    flat = jnp.ravel(leaves[j])
                    full[j] = (
                        flat.at[e]
                        .set(v.astype(flat.dtype), mode="drop")
                        .reshape(jnp.shape(leaves[j]))
                    )
                return rows_f(tuple(full), row_key)

            return map_rows(on_row, list(stacked), in_axes, keys, key_axis, row_bytes)

        # The rows depend on the primals alone: one call, which linearize passes through.
        rows_out = one_call(all_rows)(tuple(stacked), keys, tuple(leaves))
        rows_out = jax.tree.map(lambda x: x[:n_rows], rows_out)  # drop sharding padding
        tan = _contract(plan.row_weights(t_vec), rows_out)  # linear in the tangents
        if np.any(plan.base_weight):
            b = jnp.dot(jnp.asarray(plan.base_weight), t_vec)
            tan = add_tangents(tan, jax.tree.map(lambda x: b.astype(x.dtype) * x, out))
    rest_tangents, handled = plan.unhandled(tangents)
    tan = add_tangents(tan, autodiff_rest(raw, leaves, key, rest_tangents, handled | unread))
    if sharded:
        out, tan = replicate_over_rows_mesh((out, tan))
    return out, tangent_out(out, tan)


class _RowPlan:
    """The shifted rows of a rule, as tables built at trace time.

    A unit is one shifted parameter: element ``e`` of leaf ``j``. Each row shifts one unit
    (``row_unit``; SPSA: every unit along a random direction, ``shift``), and contributes
    ``row weight x result`` to the tangent; recipe terms at the unshifted point reuse the
    primal result (``base_weight``).
    """

    def __init__(self, units: Units, active: list[int], spsa: dict | None):
        self.units, self.spsa = units, spsa
        self.unit_leaf: list[int] = []
        self.unit_elem: list[int] = []
        for j in active:
            for e, recipe in enumerate(units[j]):
                if recipe is not None and len(recipe):  # empty: read by no gate, zero
                    self.unit_leaf.append(j)
                    self.unit_elem.append(e)
        self.n_units = n_units = len(self.unit_leaf)
        self.base_weight = np.zeros(n_units)
        if spsa is None:
            row_unit, a, s, c = [], [], [], []
            for u, (j, e) in enumerate(zip(self.unit_leaf, self.unit_elem)):
                for cu, au, su in units[j][e]:
                    if au == 1.0 and su == 0.0:
                        self.base_weight[u] += cu
                        continue
                    row_unit.append(u)
                    a.append(au)
                    s.append(su)
                    c.append(cu)
            self.row_unit = np.asarray(row_unit, dtype=np.int32)
            self.mult, self.offset, self.coeff = np.asarray(a), np.asarray(s), np.asarray(c)
            self.n_rows = len(row_unit)
        elif n_units:
            j0 = self.unit_leaf[0]
            recipe = units[j0][self.unit_elem[0]]  # one shared (c, 1, s·h) recipe
            directions = spsa["directions"][:, :n_units]
            nd = directions.shape[0]
            shift, weight = [], []
            for d in range(nd):
                for c_, _, s_ in recipe:
                    w = c_ * directions[d] / nd
                    if s_ == 0.0:
                        self.base_weight += w
                        continue
                    shift.append(s_ * directions[d])
                    weight.append(w)
            self.shift, self.weight = np.asarray(shift), np.asarray(weight)
            self.n_rows = len(shift)

    def gather(self, per_leaf: tuple) -> Array:
        """The units' values in ``per_leaf`` (leaves, or tangents), as one vector."""
        unit_leaf, unit_elem = np.asarray(self.unit_leaf), np.asarray(self.unit_elem)
        parts = []
        for j in dict.fromkeys(self.unit_leaf):
            x = jnp.asarray(per_leaf[j])
            if jnp.ndim(x) == 0:
                parts.append(jnp.reshape(x, (1,)))  # a scalar leaf is one unit
            else:
                parts.append(jnp.ravel(x)[unit_elem[unit_leaf == j]])
        return jnp.concatenate(parts)

    def _units_of(self, j: int) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.unit_leaf) == j)

    def rows_of_leaf(self, j: int, leaf, x_vec: Array) -> Any:
        """Leaf ``j`` over the rows: values (R, ...) or, for a vector under single-unit rows,
        (element, value) pairs that ``on_row`` places (an out-of-range element: unshifted)."""
        units = self._units_of(j)
        scalar = jnp.ndim(leaf) == 0
        dtype = jnp.result_type(leaf)
        if self.spsa is not None:
            shift = jnp.asarray(self.shift[:, units])  # (R, units of j)
            if scalar:
                return (leaf + shift[:, 0]).astype(dtype)
            elems = np.asarray(self.unit_elem)[units]
            flat = jnp.broadcast_to(jnp.ravel(leaf), (self.n_rows, jnp.size(leaf)))
            return (
                flat.at[:, elems].add(shift.astype(dtype)).reshape((self.n_rows, *jnp.shape(leaf)))
            )
        values = self.mult * x_vec[self.row_unit] + self.offset  # linear in x: Hessians chain
        mine = np.isin(self.row_unit, units)
        if scalar:
            return jnp.where(mine, values, leaf).astype(dtype)
        elem = np.where(mine, np.asarray(self.unit_elem)[self.row_unit], jnp.size(leaf))
        return (jnp.asarray(elem.astype(np.int32)), values.astype(dtype))

    def row_weights(self, t_vec: Array) -> Array:
        """Each row's weight in the tangent, (R,), linear in the tangents."""
        if self.spsa is not None:
            return jnp.asarray(self.weight) @ t_vec
        return jnp.asarray(self.coeff) * t_vec[self.row_unit]

    def unhandled(self, tangents: tuple) -> tuple[tuple, set[int]]:
        """The tangents left to plain differentiation, and the leaves fully handled here."""
        handled, rest = set(), list(tangents)
        for j, recipes in self.units.items():
            missing = np.asarray([r is None for r in recipes])
            if not missing.any():
                handled.add(j)
            elif not missing.all() and not is_zero_tangent(tangents[j]):
                mask = jnp.asarray(missing.reshape(jnp.shape(tangents[j])))
                rest[j] = jnp.where(mask, tangents[j], 0)
        return tuple(rest), handled


# Rows per chunk are chosen so that a chunk's states (rows x 2**n amplitudes) stay in a core's
# cache while every gate of the circuit is applied to them; vmapping all rows at once makes
# each gate a pass over main memory.


_NO_TERMS = np.zeros((0, 3))


def _shiftable(leaf, n_recipes: int) -> bool:
    return jnp.issubdtype(jnp.result_type(leaf), jnp.floating) and jnp.size(leaf) == n_recipes


def _units(program: TapeProgram, recipe: np.ndarray | None) -> Units:
    """Which parameters the rule shifts, with what recipe (``recipe``: one for all; None:
    each gate parameter's parameter-shift rule).

    An unrolled program's gate parameters are scalar leaves. A lifted program (built on a
    ``_lift.per_parameter`` view) reads them from vectors with one element per gate parameter.
    """
    n = program.n_leaves
    if program.sources is None:
        if recipe is None:
            return {j: [shift_recipe(op, k)] for j, (op, k) in leaf_owner(program).items()}
        return {j: [recipe] for j in range(n) if j not in program.unread}
    sizes: dict[int, int] = {}
    for src in program.sources:
        if src[0] == "elem":
            sizes[src[1]] = sizes.get(src[1], 0) + 1  # per-parameter vectors: one read each
    # Elements no gate reads (outside the light cone) get an empty recipe: an exact zero.
    units: Units = {q: [_NO_TERMS] * size for q, size in sizes.items()}
    for _, sl, op in program.gates:
        for k, pos in enumerate(range(sl.start, sl.stop)):
            src = program.sources[pos]
            if src[0] == "elem":
                units[src[1]][src[2]] = shift_recipe(op, k) if recipe is None else recipe
    if recipe is not None:  # finite differences also for the other scalar leaves (observables)
        units.update({j: [recipe] for j in range(len(sizes), n) if j not in program.unread})
    return units


def make_shift_fn(program: TapeProgram, diff_method: str, kwargs: dict) -> Fn:
    """The program's function with a parameter-shift / finite-diff / SPSA ``custom_jvp``."""
    raw = program.run_single
    spsa = None
    recipe = None
    if diff_method != "parameter-shift":
        if diff_method == "finite-diff":
            recipe = _fd_recipe(kwargs)
        else:
            spsa_kwargs = {"h": 1e-5, "approx_order": 2, "strategy": "center", **kwargs}
            # The finite-difference recipe, applied along random ±1 directions.
            recipe = _fd_recipe(spsa_kwargs)
            seed = kwargs.get("sampler_rng", kwargs.get("sampler_seed"))
            spsa = {"num_directions": int(kwargs.get("num_directions", 1)), "seed": seed}
    units_all = _units(program, recipe)

    def rule_for(fn: Fn, rows_fn: Fn) -> Fn:
        """``fn`` with the shift rule, whose shifted rows evaluate ``rows_fn``'s rule."""
        rows_rule: list[Fn] = []  # built on first use, then reused by every trace of the rule

        @jax.custom_jvp
        def f(leaves, key):
            return fn(leaves, key)

        # symbolic zeros: leaves with zero tangents cost no shifted evaluations.
        def f_jvp(primals, tangents):
            leaves, key = primals
            t_leaves = tangents[0]
            units = {j: r for j, r in units_all.items() if _shiftable(leaves[j], len(r))}
            spsa_now = None
            if spsa is not None:
                n_active = sum(len(units[j]) for j in units if not is_zero_tangent(t_leaves[j]))
                # Drawn at trace time: constants of the compiled function (as PennyLane draws
                # directions when it builds the shifted tapes).
                shape = (spsa["num_directions"], n_active)
                # As PennyLane's spsa_grad: a seed gives the same directions at every
                # evaluation of the rule (a Generator is drawn from, as PennyLane does).
                rng = np.random.default_rng(spsa["seed"])
                spsa_now = {"directions": rng.choice([-1.0, 1.0], size=shape)}
            if fn is rows_fn:
                rows_f = f
            else:
                if not rows_rule:
                    rows_rule.append(rule_for(rows_fn, rows_fn))
                rows_f = rows_rule[0]
            return shifted_rows_jvp(
                f, rows_f, fn, leaves, key, t_leaves, units, spsa_now, program.unread
            )

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f

    rows = functools.partial(program.run_single, elementwise=True)
    if not (diff_method == "parameter-shift" and program.has_variance):
        return rule_for(raw, rows)

    # Variances: shift <O> and <O²> (both trigonometric in each angle) and combine,
    # d var = d<O²> - 2 <O> d<O>, as PennyLane's parameter-shift does.
    moments_fn = rule_for(
        program.run_moments, functools.partial(program.run_moments, elementwise=True)
    )
    kinds = program.kinds()

    def to_result(kind, m):
        return m[1] - m[0] ** 2 if kind is VarianceMP else m

    @jax.custom_jvp
    def f_var(leaves, key):
        return raw(leaves, key)

    def f_var_jvp(primals, tangents):
        moments, t_moments = jax.jvp(moments_fn, primals, tangents)
        out = jax.tree.map(to_result, kinds, moments)

        def tangent(kind, m, t):
            return t[1] - 2 * m[0] * t[0] if kind is VarianceMP else t

        return out, jax.tree.map(tangent, kinds, moments, t_moments)

    f_var.defjvp(f_var_jvp)
    return f_var
