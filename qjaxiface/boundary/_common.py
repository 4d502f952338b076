"""Pieces shared by the eager and traced bindings."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from .._tangents import is_zero_tangent, zero_tangent_like


@dataclasses.dataclass(frozen=True, eq=False)
class TapeBox:
    """Carries tapes through ``custom_jvp``/``custom_vjp`` as a non-pytree, non-diff argument.

    Tapes are not reliably pytrees (some operators cannot hold tracers or cotangents), and
    ``custom_vjp`` forbids pytree non-differentiable arguments; wrapping them hides them from JAX.
    Identity hashing keeps JAX from comparing tapes when it caches the rule.
    """

    tapes: tuple

    @classmethod
    def of(cls, tapes) -> TapeBox:
        """Box ``tapes`` with NumPy placeholders (same shape and dtype) for trainable values.

        Used by the ``custom_vjp`` bindings (the ``custom_jvp`` ones box the tapes as they are,
        which saves a tape copy per call). The bindings re-bind the trainable parameters from the differentiable argument on
        every use, so the boxed tapes only carry structure. Keeping the caller's tracers out of
        a non-differentiable argument keeps them from leaking: jax 0.12 keeps the ``custom_vjp``
        backward function, and so its non-differentiable arguments, alive in the jaxpr it was
        staging when forward mode over a ``custom_vjp`` raised (``jax.checking_leaks`` caught
        it).
        """
        boxed = []
        for tape in tapes:
            positions = list(tape.trainable_params)
            params = tape.get_parameters(trainable_only=True)
            if any(isinstance(p, jax.core.Tracer) for p in params):
                holders = [np.zeros(np.shape(p), jnp.result_type(p)) for p in params]
                tape = tape.bind_new_parameters(holders, positions)
                tape.trainable_params = positions
            boxed.append(tape)
        return cls(tuple(boxed))


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


class HigherOrderError(ValueError):
    """A higher-order derivative was requested from a first-order derivative method.

    Raised instead of returning a silently zero second derivative (PennyLane's boundary returns
    zeros) for adjoint, device derivatives, host callbacks and gradient transforms with
    ``max_diff=1``. The message names the remedy: a gradient transform with ``max_diff=2``, or
    ``diff_method="backprop"``. A ``ValueError``, so existing handlers still catch it.
    """


def higher_order_message(what: str) -> str:
    return (
        f"a higher-order derivative (e.g. jax.hessian, or jax.grad of a gradient) was requested, "
        f"but {what} computes first derivatives only, so the second derivative would be silently "
        "zero. Use a gradient transform (diff_method='parameter-shift', 'finite-diff', ...) with "
        "max_diff=2, or diff_method='backprop'."
    )


def preflight_gradient_transform(jpc, tapes) -> None:
    """Apply ``jpc``'s gradient transform to traced ``tapes`` once, discarding the result.

    Under ``jit`` the transform runs inside a host callback, where an error it raises about the
    circuit itself (e.g. parameter-shift of ``qml.state()``) would reach the user as JAX's
    ``JaxRuntimeError`` at run time. Raising it here, at trace time, gives the same exception as
    the eager path. Only PennyLane's validation errors are raised; anything else (a transform that
    needs concrete values, say) is left for the host call, which sees concrete values.
    """
    inner = getattr(jpc, "_jpc", jpc)
    transform = getattr(inner, "_gradient_transform", None)
    if transform is None:
        return
    kwargs = getattr(inner, "_gradient_kwargs", None) or {}
    try:
        transform(tuple(tapes), **kwargs)
    except (jax.errors.JAXTypeError, jax.errors.JAXIndexError):
        return
    except (ValueError, NotImplementedError, qml.exceptions.QuantumFunctionError):
        raise
    except Exception:  # anything else is decided on concrete values
        return


class FirstOrderJacobians:
    """Wraps a Jacobian-product calculator that cannot be differentiated again.

    Devices turn tracers into NumPy values by reading their primal, so a second derivative through
    a first-order calculator would come out as zero. This wrapper raises instead whenever it is
    asked for derivatives at a point that is itself being differentiated.
    """

    def __init__(self, jpc, description: str):
        self._jpc = jpc
        self._description = description

    def __repr__(self):
        return f"FirstOrderJacobians({self._jpc!r})"

    def _check(self, tapes):
        from ..detect import is_differentiation_tracer

        for tape in tapes:
            for p in tape.get_parameters(trainable_only=False):
                if is_differentiation_tracer(p):
                    raise HigherOrderError(higher_order_message(self._description))

    def execute_and_compute_jacobian(self, tapes):
        self._check(tapes)
        return self._jpc.execute_and_compute_jacobian(tapes)

    def compute_jacobian(self, tapes):
        self._check(tapes)
        return self._jpc.compute_jacobian(tapes)

    def execute_and_compute_jvp(self, tapes, tangents):
        self._check(tapes)
        return self._jpc.execute_and_compute_jvp(tapes, tangents)

    def compute_vjp(self, tapes, dy):
        self._check(tapes)
        return self._jpc.compute_vjp(tapes, dy)

    def __getattr__(self, name):
        return getattr(self._jpc, name)
