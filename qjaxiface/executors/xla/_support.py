"""The support check: can the XLA executor run this tape with this diff method, and if not, why?

Asked before anything runs (``_select.select_xla``, and ``xla_execute`` itself): a reason makes
the call go to the device instead, with the reason logged at DEBUG.
"""

from __future__ import annotations

import jax
import pennylane as qml
from pennylane.measurements import CountsMP, ExpectationMP, ProbabilityMP, StateMP

from ._batching import broadcast_leaves
from ._gates import NO_OPS, STATE_PREPS, compile_gate
from ._jvp_parts import leaf_owner
from ._sample import sampleable_observable
from ._shift import SHIFT_METHODS, shift_recipe
from ._simulate import ANALYTIC_MEASUREMENTS, SHOT_MEASUREMENTS

DIFF_METHODS = (None, "backprop", "adjoint", *SHIFT_METHODS)


class XLAUnsupported(Exception):
    """Raised by ``xla_execute`` when a tape cannot run on the XLA executor; the message says why.

    ``qjaxiface.execute`` never raises it: it asks ``xla_unsupported_reason`` first and runs such
    tapes on the device.
    """


def _observable_reason(obs) -> str | None:
    if isinstance(obs, qml.ops.Sum | qml.ops.Prod):
        for o in obs.operands:
            reason = _observable_reason(o)
            if reason:
                return reason
        return None
    if isinstance(obs, qml.ops.SProd):
        return _observable_reason(obs.base)
    if isinstance(obs, qml.ops.LinearCombination):
        for o in obs.terms()[1]:
            reason = _observable_reason(o)
            if reason:
                return reason
        return None
    if isinstance(obs, qml.measurements.MeasurementValue):
        return "mid-circuit measurement values are not supported"
    if obs.name in ("BasisStateProjector", "StateVectorProjector", "Identity"):
        return None
    if not obs.has_matrix:
        return f"observable {obs.name} has no matrix"
    try:
        broadcast = any(broadcast_leaves(obs))
    except ValueError as err:
        return str(err)
    if broadcast:
        return f"broadcast observable parameters ({obs.name})"
    return None


def _measurement_reason(mp, shots, diff_method, broadcast: bool) -> str | None:
    kind = type(mp)  # exact class, as the sets of supported ones hold
    if getattr(mp, "mv", None) is not None:
        return "measurements of mid-circuit measurement values are not supported"
    if mp.obs is None and getattr(mp, "_eigvals", None) is not None:
        return "measurements given by eigenvalues are not supported"
    allowed = SHOT_MEASUREMENTS if shots else ANALYTIC_MEASUREMENTS
    if kind not in allowed:
        what = "with finite shots" if shots else "analytically"
        return f"{kind.__name__} is not supported {what}"
    if diff_method == "parameter-shift" and kind is StateMP:
        # Amplitudes are not trigonometric in the shifted angle the way expectation values are
        # (density matrices are): the two-term rule would give a wrong derivative.
        return "the parameter-shift rule does not apply to qml.state()"
    if diff_method == "adjoint" and kind is not ExpectationMP:
        return "the adjoint method supports expectation values only"
    if mp.obs is not None:
        reason = _observable_reason(mp.obs)
        if reason:
            return reason
        if kind is ProbabilityMP and mp.obs.data:
            return "probabilities of a parametrized observable"
        if kind is ProbabilityMP and not mp.obs.has_diagonalizing_gates:
            return f"{mp.obs.name} has no diagonalizing gates"
        if shots and kind is not ExpectationMP:
            reason = sampleable_observable(mp.obs)
            if reason:
                return reason
            if kind is CountsMP and mp.obs.data:
                return "counts of a parametrized observable"
    if kind is CountsMP and broadcast:
        return "counts with parameter broadcasting"
    return None


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def xla_unsupported_reason(tape: qml.tape.QuantumScript, diff_method: str | None) -> str | None:
    """None if the XLA executor can run this tape with this diff method, else a short human reason.

    Args:
        tape: a tape after default.qubit's preprocessing.
        diff_method: ``"backprop"``, ``"adjoint"``, ``"parameter-shift"``, ``"finite-diff"``,
            ``"spsa"`` or ``None`` (no derivatives).

    Returns:
        str | None: the reason, or ``None`` when supported.
    """
    if diff_method not in DIFF_METHODS:
        return f"diff_method={diff_method!r} has no XLA implementation"
    shots = tape.shots
    if shots and diff_method in ("backprop", "adjoint"):
        return f"{diff_method} needs analytic execution (shots=None)"
    if not tape.wires and not tape.measurements:
        return None
    axis_of = {w: k for k, w in enumerate(tape.wires)}
    for i, op in enumerate(tape.operations):
        if op.name in STATE_PREPS:
            if i != 0:
                return f"{op.name} is only supported as the first operation"
            continue
        if op.name in NO_OPS:
            continue
        if op.name in ("Projector", "BasisStateProjector", "StateVectorProjector"):
            # Postselection (deferred mid-circuit measurements): default.qubit renormalizes the
            # projected state, which a matrix product would not.
            return f"operation {op.name} (postselection) is not supported"
        if _holds_tracer(_metadata(op)):
            # e.g. ParametrizedEvolution's times, traced by stoch_pulse_grad under jit: the
            # executor compiles a tape's structure (its pytree metadata) once and caches it.
            return f"operation {op.name} has traced values outside its parameters"
        if isinstance(op, qml.operation.Channel) or not (op.has_matrix or op.name == "GlobalPhase"):
            return f"operation {op.name} has no matrix (mid-circuit measurements, channels, ...)"
        try:
            compile_gate(op, axis_of)
            broadcast = any(broadcast_leaves(op))
        except Exception as err:  # any failure means "not here"
            return f"operation {op.name} cannot be compiled: {err}"
        if broadcast and tape.batch_size is None:
            return f"{op.name} has broadcast parameters but the tape has no batch size"
    broadcast = tape.batch_size is not None
    for mp in tape.measurements:
        reason = _measurement_reason(mp, shots, diff_method, broadcast)
        if reason:
            return reason
    if shots and diff_method == "parameter-shift":
        # Parameters without a shift rule would be differentiated through the sampling.
        program_like = _OwnerView(tape)
        for j, (op, k) in leaf_owner(program_like).items():
            trainable = _is_traced(op.data[k]) and j in set(tape.trainable_params)
            if trainable and shift_recipe(op, k) is None:
                return f"{op.name} has no parameter-shift rule (with finite shots)"
    return None


def _holds_tracer(value) -> bool:
    if isinstance(value, jax.core.Tracer):
        return True
    if isinstance(value, dict):
        return any(_holds_tracer(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_tracer(v) for v in value)
    if isinstance(value, qml.operation.Operator):
        return _holds_tracer(_metadata(value))
    return False


def _metadata(op: qml.operation.Operator):
    """What PennyLane's pytree registration keeps of ``op`` besides its data."""
    try:
        return op._flatten()[1]
    except Exception:  # an operator without a working pytree registration
        return op.hyperparameters


class _OwnerView:
    """The ``gates`` view ``leaf_owner`` needs, without compiling a program."""

    def __init__(self, tape):
        self.gates = []
        start = 0
        for op in tape.operations:
            n = len(op.data)
            self.gates.append((None, slice(start, start + n), op))
            start += n


__all__ = ["DIFF_METHODS", "XLAUnsupported", "xla_unsupported_reason"]
