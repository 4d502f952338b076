"""Shift rules: parameter-shift, finite differences and SPSA as one ``custom_jvp``.

The rule evaluates the program's function -- traced once -- ``jax.vmap``-ed over a matrix of
shifted parameter vectors (the rows; ``_rows.py`` maps them in chunks and over devices) and
contracts the results with recipe coefficients times tangents. The rule calls the
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

from ..._tangents import is_zero_tangent
from ._jvp_parts import (
    Array,
    Fn,
    add_tangents,
    autodiff_rest,
    leaf_owner,
    real_scalar,
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


def shifted_rows_jvp(
    f: Fn,
    rows_f: Fn,
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
        rows_f: the same function for the shifted rows: one-qubit gates applied elementwise
            (faster over a batch of states), with the same rule for higher orders.
        raw: the plain simulation (a ``TapeProgram`` method), for leaves without a rule.
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
        rows_out = map_rows(rows_f, stacked, in_axes, keys, key_axis, state_size(leaves, raw))
        rows_out = jax.tree.map(lambda x: x[:n_rows], rows_out)  # drop sharding padding
        weights = jnp.asarray(row_weight_a) @ t_vec  # (R,), linear in the tangents
        tan = _contract(weights, rows_out)
        if np.any(base_weight):
            b = jnp.dot(jnp.asarray(base_weight), t_vec)
            tan = add_tangents(tan, jax.tree.map(lambda x: b.astype(x.dtype) * x, out))
    tan = add_tangents(tan, autodiff_rest(raw, leaves, key, tangents, set(units)))
    if sharded:
        out, tan = replicate_over_rows_mesh((out, tan))
    return out, tangent_out(out, tan)


# Rows per chunk are chosen so that a chunk's states (rows x 2**n amplitudes) stay in a core's
# cache while every gate of the circuit is applied to them; vmapping all rows at once makes
# each gate a pass over main memory.


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
            units = {j: r for j, r in units_all.items() if real_scalar(leaves[j])}
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
            if fn is rows_fn:
                rows_f = f
            else:
                if not rows_rule:
                    rows_rule.append(rule_for(rows_fn, rows_fn))
                rows_f = rows_rule[0]
            return shifted_rows_jvp(f, rows_f, fn, leaves, key, t_leaves, units, spsa_now)

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f

    elementwise = functools.partial(program.run_single, elementwise=True)
    if not (diff_method == "parameter-shift" and program.has_variance):
        return rule_for(raw, elementwise)

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
