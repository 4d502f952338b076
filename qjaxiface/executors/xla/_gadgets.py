"""Decision: CNOT networks around a Z rotation run as one MultiRZ.

PennyLane decomposes the exponential of a Pauli word into a *phase gadget*: a ladder of CNOTs
that gathers the word's parity on one wire, an ``RZ`` there, and the same ladder backwards
(``FermionicSingleExcitation`` and ``FermionicDoubleExcitation``, hence UCCSD and kUpCCGSD;
hand-written ``CNOT, RZ, CNOT`` for a ZZ coupling). UCCSD on 8 wires with 3 repeats decomposes
into 4190 gates, 2064 of them ladder CNOTs, and each one is a pass over the state.

A span ``G_1 ... G_k RZ(φ) G_k ... G_1`` of CNOTs mirrored around an ``RZ`` on wire ``t`` is
``C† RZ(φ) C`` with ``C = G_k ... G_1`` (each CNOT is its own inverse), which is
``exp(-iφ/2 C† Z_t C)``. Conjugating a string of Z's by a CNOT gives a string of Z's (``Z`` on
the target gains a ``Z`` on the control), so the span is ``MultiRZ(φ)`` on the wires of that
string: one diagonal pass in place of ``2k + 1``. The rewrite is exact (no global phase
either), keeps every parameter in its order (CNOTs have none), and the ``MultiRZ`` holds the
``RZ``'s own parameter, so every diff method, broadcasting and the leaf layout are unchanged.

The reverse (a ``PauliRot`` as its basis change around a ``MultiRZ``) is not needed: a word
of any length is one pass of its own (``_gates.PauliPair``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pennylane as qml


def fuse_phase_gadgets(tape: qml.tape.QuantumScript) -> qml.tape.QuantumScript:
    """``tape`` with every mirrored CNOT span around an ``RZ`` as one ``MultiRZ``.

    Returns ``tape`` itself when nothing fuses. Wires that only the removed CNOTs touched
    leave the operations, so callers take the state's wire order from the original tape.

    Args:
        tape: a tape as the XLA executor runs it (after the device's preprocessing).

    Examples:
        >>> import pennylane as qml
        >>> ops = [qml.CNOT([0, 1]), qml.CNOT([1, 2]), qml.RZ(0.3, 2),
        ...        qml.CNOT([1, 2]), qml.CNOT([0, 1])]
        >>> tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
        >>> fuse_phase_gadgets(tape).operations
        [MultiRZ(0.3, wires=[2, 1, 0])]
    """
    ops = tape.operations
    fused = _fused(ops)
    if fused is None:
        return tape
    return tape.copy(operations=fused)


def _fused(ops: Sequence[qml.operation.Operator]) -> list | None:
    out: list = []
    done = 0  # ops[:done] are in ``out``
    for i, op in enumerate(ops):
        if i < done or op.name != "RZ":
            continue
        k = _mirror(ops, i, done)
        if k == 0:
            continue
        out.extend(ops[done : i - k])
        out.append(_gadget(op, ops[i - k : i]))
        done = i + k + 1
    if not out:
        return None
    out.extend(ops[done:])
    return out


def _mirror(ops: Sequence, i: int, start: int) -> int:
    """How many CNOTs on each side of ``ops[i]`` mirror each other, within ``ops[start:]``."""
    k = 0
    while i - k - 1 >= start and i + k + 1 < len(ops):
        before, after = ops[i - k - 1], ops[i + k + 1]
        if before.name != "CNOT" or after.name != "CNOT" or before.wires != after.wires:
            break
        k += 1
    return k


def _gadget(rz: qml.operation.Operator, ladder: Sequence) -> qml.operation.Operator:
    """``RZ`` conjugated by ``ladder`` (the CNOTs before it, first applied first)."""
    string = list(rz.wires)  # the Z string, in the order its wires joined
    for cnot in reversed(ladder):  # C† Z C, the CNOT next to the RZ first
        control, target = cnot.wires
        if target in string:
            if control in string:
                string.remove(control)
            else:
                string.append(control)
    with qml.QueuingManager.stop_recording():
        if len(string) == 1:
            return qml.RZ(rz.data[0], wires=string)
        return qml.MultiRZ(rz.data[0], wires=string)


__all__ = ["fuse_phase_gadgets"]
