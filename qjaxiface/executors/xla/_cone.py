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

A Hamiltonian's terms each have their own cone, and the union of local terms' cones can be the
whole register even when each is small. ``cone_groups`` splits such a Hamiltonian into groups
of terms; ``execute_checked`` runs one program per group and sums them.
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


# A Hamiltonian's terms split into at most this many programs (each compiles apart).
MAX_GROUPS = 8


def cone_groups(tape: qml.tape.QuantumScript) -> list[list[int]] | None:
    """The terms of the tape's Hamiltonian, grouped by light cone, or None to keep it whole.

    For ``<H> = Σ_k c_k <P_k>`` each term sees only its own cone; where the terms' cones are
    much smaller than their union (local terms, a shallow circuit), simulating each group of
    terms on its cone's wires costs less than simulating the union once. Groups start from
    terms with the same cone, absorb groups whose cone they contain, and are merged cheapest
    first down to ``MAX_GROUPS``; the split is used when it costs at most half of the whole
    (cost: ``2**wires x (gates + terms)``), and never once a term's cone alone is the whole
    register with at least half of the gates (deep circuits then pay one cone walk, not one
    per term). Only a tape with one analytic ``expval`` of a sum qualifies (a variance is not
    a sum of the terms' variances).

    Args:
        tape: a tape as the XLA executor runs it (after the device's preprocessing).

    Returns:
        list[list[int]] | None: indices into ``tape.measurements[0].obs.terms()``, one list
        per group, or None.

    Examples:
        >>> import pennylane as qml
        >>> ops = [qml.RX(0.1, w) for w in range(8)] + [qml.CNOT([0, 1]), qml.CNOT([4, 5])]
        >>> H = qml.Hamiltonian([1.0, 0.5], [qml.Z(1), qml.Z(5)])
        >>> cone_groups(qml.tape.QuantumScript(ops, [qml.expval(H)]))
        [[0], [1]]
    """
    if not _enabled[0] or tape.shots or len(tape.measurements) != 1:
        return None
    mp = tape.measurements[0]
    if type(mp) is not ExpectationMP or not isinstance(
        mp.obs, qml.ops.Sum | qml.ops.LinearCombination
    ):
        return None
    try:
        _, terms = mp.obs.terms()
    except Exception:  # an observable PennyLane cannot expand: keep it whole
        return None
    ops = tape.operations
    if len(terms) < 2 or any(
        not isinstance(op, qml.operation.Operator) or _not_unitary(op) for op in ops
    ):
        return None
    by_cone: dict[tuple, list[int]] = {}
    seen: dict[frozenset, tuple] = {}
    everything = frozenset(tape.wires)
    for k, term in enumerate(terms):
        wires = frozenset(term.wires)
        if wires not in seen:
            seen[wires] = _cone_of(ops, wires)
            keep, cone = seen[wires]
            if cone >= everything and 2 * len(keep) >= len(ops):
                return None  # deep: this term's group alone would cost about the whole
        by_cone.setdefault(seen[wires], []).append(k)
    groups = [(keep, cone, ids) for (keep, cone), ids in by_cone.items()]
    groups.sort(key=lambda g: -len(g[1]))
    merged: list[tuple] = []
    for keep, cone, ids in groups:  # largest cones first: absorb the cones they contain
        home = next((g for g in merged if cone <= g[1]), None)
        if home is None:
            merged.append((keep, cone, list(ids)))
        else:
            home[2].extend(ids)
            merged[merged.index(home)] = (home[0] | keep, home[1], home[2])
    while len(merged) > MAX_GROUPS:
        a, b = min(
            ((i, j) for i in range(len(merged)) for j in range(i + 1, len(merged))),
            key=lambda ij: _cost(
                merged[ij[0]][0] | merged[ij[1]][0], merged[ij[0]][1] | merged[ij[1]][1], 0
            ),
        )
        ga, gb = merged[a], merged[b]
        merged[a] = (ga[0] | gb[0], ga[1] | gb[1], ga[2] + gb[2])
        del merged[b]
    if len(merged) < 2:
        return None
    whole_keep = frozenset().union(*(g[0] for g in merged))
    whole_cone = frozenset().union(*(g[1] for g in merged))
    split = sum(_cost(keep, cone, len(ids)) for keep, cone, ids in merged)
    if 2 * split > _cost(whole_keep, whole_cone, len(terms)):
        return None
    return [sorted(ids) for _, _, ids in merged]


def _cone_of(ops, wires: frozenset) -> tuple[frozenset[int], frozenset]:
    """(the operations kept, the cone's wires) for an observable on ``wires``."""
    cone, keep = set(wires), []
    for i in reversed(range(len(ops))):
        if cone.intersection(ops[i].wires):
            keep.append(i)
            cone.update(ops[i].wires)
    return frozenset(keep), frozenset(cone)


def _cost(keep: frozenset, cone: frozenset, n_terms: int) -> float:
    return 2.0 ** len(cone) * (len(keep) + n_terms)


def _not_unitary(op) -> bool:
    """Mid-circuit measurements, classically controlled ops and channels: never pruned past."""
    if isinstance(op, qml.measurements.MidMeasureMP | qml.ops.Conditional):
        return True
    return isinstance(op, qml.operation.Channel)
