"""Decision: how Pauli exponentials run: CNOT networks around a Z rotation as one MultiRZ, and
long PauliRot words as a basis change around one.

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

The reverse holds too. ``PauliRot(φ, P)`` on ``m`` wires is ``V† MultiRZ(φ) V``, with ``V`` a
basis change per letter (``H`` for X, ``SX`` for Y, nothing for Z). As one gate it is a
``2**m`` matrix (``4**m`` values to compute, ``2**m`` products per amplitude to apply): six
10-letter words on 10 wires took 130 ms a ``jit(grad)`` step with adjoint, 340 ms with
backprop. From ``LONG_WORD`` letters on, a word runs as its basis change and one diagonal pass
instead, two or three one-wire passes per X or Y letter: 1-2 ms. Where consecutive words have
the same letter on a wire, the basis change between them is the identity and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pennylane as qml

# Words of this many non-identity letters or more run as basis change + MultiRZ. The matrix
# wins below it: adjoint steps on 10 wires, six 6-letter words 0.46 ms as matrices against
# 1.2 ms expanded, 7-letter words 3.5 against 0.74 ms (benchmarks/pauli_words.py has 7+).
LONG_WORD = 7


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


def expand_long_words(tape: qml.tape.QuantumScript) -> qml.tape.QuantumScript:
    """``tape`` with every ``PauliRot`` of ``LONG_WORD`` or more letters (not counting ``I``)
    as its basis change around one ``MultiRZ``.

    The ``MultiRZ`` holds the ``PauliRot``'s own parameter and the basis change has none, so
    the leaf layout and every diff method are unchanged (both rotations have the generator
    eigenvalues ``±1/2``). A word's closing basis change waits on each wire until another
    operation touches that wire, and where that is the next long word with the same letter
    there the two cancel (``H H = I``, ``SX X SX = I``): Trotter steps and runs of similar
    Jordan-Wigner strings share most of their basis changes. Returns ``tape`` itself when no
    word is long.

    Args:
        tape: a tape as the XLA executor runs it (after the device's preprocessing).

    Examples:
        >>> import pennylane as qml
        >>> op = qml.PauliRot(0.3, "XYZIZZZZ", wires=range(8))
        >>> tape = qml.tape.QuantumScript([op], [qml.expval(qml.Z(0))])
        >>> [o.name for o in expand_long_words(tape).operations]
        ['Hadamard', 'SX', 'MultiRZ', 'Hadamard', 'SX', 'PauliX']
        >>> tape = qml.tape.QuantumScript([op, op], [qml.expval(qml.Z(0))])
        >>> [o.name for o in expand_long_words(tape).operations]
        ['Hadamard', 'SX', 'MultiRZ', 'MultiRZ', 'Hadamard', 'SX', 'PauliX']
    """
    ops = tape.operations
    if not any(map(_long, ops)):
        return tape
    out: list = []
    pending: dict = {}  # wire -> the letter whose closing basis change is still owed there

    def settle(wires) -> None:
        for w in wires:
            if w in pending:
                out.extend(_closing(pending.pop(w), w))

    with qml.QueuingManager.stop_recording():
        for op in ops:
            if not _long(op):
                # An operation without wires (a Snapshot) may read every wire.
                settle(list(pending) if len(op.wires) == 0 else op.wires)
                out.append(op)
                continue
            letters = [
                (c, w) for c, w in zip(op.hyperparameters["pauli_word"], op.wires) if c != "I"
            ]
            settle([w for c, w in letters if w in pending and pending[w] != c])
            for c, w in letters:
                if pending.pop(w, None) != c and c != "Z":
                    out.append(qml.Hadamard(w) if c == "X" else qml.SX(w))
            out.append(qml.MultiRZ(op.data[0], wires=[w for _, w in letters]))
            pending.update((w, c) for c, w in letters if c != "Z")
        settle(list(pending))
    return tape.copy(operations=out)


def _long(op: qml.operation.Operator) -> bool:
    if op.name != "PauliRot":
        return False
    return sum(c != "I" for c in op.hyperparameters["pauli_word"]) >= LONG_WORD


def _closing(letter: str, wire) -> list:
    """``V†`` on one wire: ``H† Z H = X`` and ``SX† Z SX = Y``, and ``SX† = X SX`` (``SX² =
    X``) needs no adjoint gate."""
    return [qml.Hadamard(wire)] if letter == "X" else [qml.SX(wire), qml.PauliX(wire)]


__all__ = ["expand_long_words", "fuse_phase_gadgets"]
