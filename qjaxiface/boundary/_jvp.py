"""JVPs from Jacobians: contracting a calculator's Jacobians with tangents, per tape.

Also the bookkeeping around it: which tape parameters have non-zero tangents, and broadcast
tapes expanded for the Jacobian (PennyLane's gradient transforms cannot differentiate them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import pennylane as qml

from .._tangents import is_zero_tangent, zero_tangent_like


def to_jax(result):
    """Convert a nested device result (tuples, lists, dicts, NumPy) to tuples/dicts of JAX arrays."""
    if isinstance(result, dict):
        return {k: to_jax(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return tuple(to_jax(r) for r in result)
    return jnp.asarray(result)


def _scale(jac, tangent, batch_size):
    """One parameter's contribution ``J_p * t_p`` to a measurement's JVP."""
    tangent = jnp.asarray(tangent)
    jac = jnp.asarray(jac)
    if tangent.ndim == 0:
        return jac * tangent
    if batch_size and tangent.shape == (batch_size,):
        # A broadcast parameter: result b depends only on element b of the parameter.
        return jac * tangent.reshape((batch_size,) + (1,) * (jac.ndim - 1))
    if jac.ndim >= tangent.ndim and jac.shape[jac.ndim - tangent.ndim :] == tangent.shape:
        # An array-valued parameter (ParametrizedEvolution's coefficients under
        # stoch_pulse_grad): PennyLane appends its shape to the result's in the Jacobian.
        return jnp.tensordot(jac, tangent, axes=tangent.ndim)
    raise ValueError(
        f"cannot differentiate with respect to an array-valued gate parameter of shape "
        f"{tangent.shape} with this gradient method; use diff_method='backprop' (or the XLA "
        "executor) for such parameters."
    )


def jvp_from_jacobian(jac, tangents: Sequence, tape, result):
    """Contract one tape's Jacobian (PennyLane's nesting) with the trainable tangents.

    Args:
        jac: the tape's Jacobian, nested as ``[shot setting][measurement][parameter]`` with levels
            of size one dropped, as PennyLane's gradient transforms and devices return it.
        tangents: one tangent per trainable parameter of ``tape``.
        tape: the tape (measurements, shots and batch size fix the nesting).
        result: the tape's result, used for the zero JVP when no parameter is trainable.

    Returns:
        The JVP, with the structure of ``result``.
    """
    num_params = len(tangents)
    if num_params == 0:
        return jax.tree_util.tree_map(zero_tangent_like, result)

    single_mp = len(tape.measurements) == 1

    def one_measurement(jac_m, res_m):
        if not jnp.issubdtype(jnp.result_type(res_m), jnp.inexact):
            return zero_tangent_like(res_m)
        res_shape = jnp.shape(res_m)
        if num_params == 1:
            jac_m = jnp.asarray(jac_m)
            # Some devices keep a length-one parameter axis (e.g. adjoint state Jacobians).
            parts = (jac_m.reshape(res_shape) if jac_m.size == math.prod(res_shape) else jac_m,)
        else:
            parts = jac_m
        out = sum(_scale(j, t, tape.batch_size) for j, t in zip(parts, tangents))
        return out.astype(jnp.result_type(res_m))

    def one_setting(jac_s, res_s):
        if single_mp:
            return one_measurement(jac_s, res_s)
        return tuple(one_measurement(j, r) for j, r in zip(jac_s, res_s))

    if tape.shots.has_partitioned_shots:
        return tuple(one_setting(j, r) for j, r in zip(jac, result))
    return one_setting(jac, result)


def trainable_split(tapes: Sequence, tangents: Sequence[Sequence]):
    """For each tape: the indices (into its parameter tuple) and values of non-zero tangents."""
    indices, values = [], []
    for tape_tangents in tangents:
        idx = tuple(i for i, t in enumerate(tape_tangents) if not is_zero_tangent(t))
        indices.append(idx)
        values.append(tuple(tape_tangents[i] for i in idx))
    return indices, values


def split_broadcast(tapes: Sequence) -> tuple[tuple, list]:
    """Expand broadcast tapes into one tape per batch element, for Jacobians.

    Gradient transforms cannot differentiate broadcast parameters (PennyLane raises
    ``NotImplementedError`` for parameter-shift), but each element of a broadcast tape is an
    ordinary tape. Returns the expanded tapes and, per input tape, its index in them (unbroadcast)
    or the ``range`` of its elements.
    """
    expanded: list = []
    groups: list[int | range] = []
    for tape in tapes:
        if not tape.batch_size:
            groups.append(len(expanded))
            expanded.append(tape)
            continue
        parts, _ = qml.transforms.broadcast_expand(tape)
        for part in parts:
            part.trainable_params = tape.trainable_params
        groups.append(range(len(expanded), len(expanded) + len(parts)))
        expanded.extend(parts)
    return tuple(expanded), groups


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def assemble_jvps(tapes, groups, expanded, results, jacobians, tangent_values):
    """Results and JVPs of ``tapes`` from the results and Jacobians of their expansion.

    A broadcast parameter's tangent has the batch axis; element ``b`` of the JVP uses its
    ``b``-th entry. An unbroadcast parameter's tangent applies to every element.
    """
    out_results, out_jvps = [], []
    for tape, group, values in zip(tapes, groups, tangent_values):
        if isinstance(group, int):
            res = results[group]
            out_results.append(res)
            out_jvps.append(jvp_from_jacobian(jacobians[group], values, tape, res))
            continue
        size = tape.batch_size
        per_res, per_jvp = [], []
        for k, i in enumerate(group):
            element_values = [
                t[k] if jnp.ndim(t) >= 1 and jnp.shape(t)[0] == size else t for t in values
            ]
            per_res.append(results[i])
            per_jvp.append(jvp_from_jacobian(jacobians[i], element_values, expanded[i], results[i]))
        out_results.append(_stack(per_res))
        out_jvps.append(_stack(per_jvp))
    return tuple(out_results), tuple(out_jvps)
