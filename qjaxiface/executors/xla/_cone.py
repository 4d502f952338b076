"""Decision: which gates an expectation value can see (its backward light cone).

For ``<ψ|U† O U|ψ>`` with ``U = U_m ... U_1``, a gate whose wires miss both ``O`` and every
later gate that is kept commutes past them and meets its own inverse: it cancels. Walking the
gates backwards from the measurements and keeping only those that touch the growing set of
wires (the cone) leaves an equal expectation value, and only the cone's wires need simulating:
the others stay in ``|0>`` and nothing measured touches them. A shallow circuit of local
gates measured on few wires loses most of its gates and qubits; a CNOT ring
(StronglyEntanglingLayers) spreads the cone over every wire within one layer, and then
nothing is dropped.

Pruning applies only where it is exact: analytic expectation values and variances of
observables (a variance is ``<O²> - <O>²``, two expectation values with the same cone). It is
not applied to probabilities, states, samples or finite shots (the sampled values would change
for a given key, though not their distribution), nor to tapes with mid-circuit measurements or
channels. The derivative with respect to a dropped gate's parameter is an exact zero.
"""

from __future__ import annotations

import pennylane as qml
from pennylane.measurements import ExpectationMP, VarianceMP

_PRUNABLE = (ExpectationMP, VarianceMP)
_enabled = [True]


def set_light_cone(enabled: bool) -> None:
    """Turn light-cone pruning on (the default) or off, for programs built from now on.

    Off, every gate and wire is simulated: for comparisons and benchmarks. Built programs are
    cached per setting.

    Examples:
        >>> from qjaxiface.executors.xla import set_light_cone
        >>> set_light_cone(False)
        >>> set_light_cone(True)
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_light_cone takes True or False, not {enabled!r}")
    _enabled[0] = enabled


def light_cone_enabled() -> bool:
    """Whether programs built now prune gates outside the light cone."""
    return _enabled[0]


def light_cone(tape: qml.tape.QuantumScript) -> tuple[frozenset[int], frozenset] | None:
    """(indices of the operations to keep, the wires to simulate), or None to keep everything.

    Args:
        tape: a tape as the XLA executor runs it (after the device's preprocessing).

    Examples:
        >>> import pennylane as qml
        >>> tape = qml.tape.QuantumScript(
        ...     [qml.RX(0.1, 0), qml.RY(0.2, 1), qml.CNOT([1, 2])], [qml.expval(qml.Z(0))]
        ... )
        >>> keep, wires = light_cone(tape)
        >>> sorted(keep), sorted(wires)
        ([0], [0])
    """
    if not _enabled[0] or tape.shots or not tape.measurements:
        return None
    cone: set = set()
    for mp in tape.measurements:
        if type(mp) not in _PRUNABLE or mp.obs is None or not len(mp.wires):
            return None
        cone.update(mp.wires)
    keep = []
    ops = tape.operations
    for i in reversed(range(len(ops))):
        op = ops[i]
        if not isinstance(op, qml.operation.Operator) or _not_unitary(op):
            return None
        if cone.intersection(op.wires):
            keep.append(i)
            cone.update(op.wires)
    if len(keep) == len(ops) and cone.issuperset(tape.wires):
        return None  # nothing to drop
    return frozenset(keep), frozenset(cone)


def _not_unitary(op) -> bool:
    """Mid-circuit measurements, classically controlled ops and channels: never pruned past."""
    if isinstance(op, qml.measurements.MidMeasureMP | qml.ops.Conditional):
        return True
    return isinstance(op, qml.operation.Channel)
