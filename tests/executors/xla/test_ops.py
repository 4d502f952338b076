"""Every gate with a closed form (and the generic fallback) matches default.qubit."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import assert_tree_close, reference

from qjaxiface.executors.xla import xla_execute, xla_unsupported_reason

PREFIX = [qml.RX(0.3, 0), qml.RY(0.7, 1), qml.RX(1.1, 2), qml.RY(0.2, 3), qml.CNOT([0, 2])]
U = qml.matrix(qml.Rot(0.3, 0.4, 0.5, 0) @ qml.RX(0.2, 1))

GATES = [
    qml.RX(0.4, 1), qml.RY(-0.3, 0), qml.RZ(0.4, 2), qml.Rot(0.1, 0.2, 0.3, 3),
    qml.PhaseShift(0.3, 0), qml.U1(0.2, 1), qml.U2(0.2, 0.3, 2), qml.U3(0.1, 0.2, 0.3, 1),
    qml.Hadamard(2), qml.PauliX(1), qml.PauliY(3), qml.PauliZ(0), qml.S(1), qml.T(0), qml.SX(2),
    qml.CNOT([3, 1]), qml.CNOT([0, 1]), qml.CZ([2, 0]), qml.CY([1, 2]), qml.CH([0, 3]),
    qml.SWAP([1, 3]), qml.CSWAP([0, 1, 3]), qml.Toffoli([3, 1, 0]), qml.CCZ([0, 1, 2]),
    qml.MultiControlledX(wires=[0, 2, 1], control_values=[0, 1]),
    qml.CRX(0.5, [2, 1]), qml.CRY(0.5, [1, 3]), qml.CRZ(0.5, [3, 0]), qml.CRot(0.1, 0.2, 0.3, [0, 3]),
    qml.ControlledPhaseShift(0.4, [2, 3]),
    qml.IsingXX(0.3, [2, 0]), qml.IsingYY(0.3, [1, 2]), qml.IsingZZ(0.3, [1, 3]),
    qml.IsingXY(0.2, [0, 1]), qml.MultiRZ(0.3, [0, 1, 3]), qml.PauliRot(0.4, "XYZ", [0, 2, 3]),
    qml.SingleExcitation(0.3, [2, 0]), qml.SingleExcitationPlus(0.4, [1, 3]),
    qml.SingleExcitationMinus(-0.6, [3, 2]), qml.PSWAP(0.7, [0, 2]),
    qml.DoubleExcitation(0.5, [2, 0, 3, 1]),
    qml.QubitUnitary(U, [3, 0]), qml.DiagonalQubitUnitary(np.exp(1j * np.arange(4)), [1, 2]),
    qml.ctrl(qml.RY(0.3, 2), [0, 1]), qml.ctrl(qml.RX(0.2, 0), 3, control_values=[0]),
    qml.adjoint(qml.S(2)), qml.GlobalPhase(0.3), qml.Identity(1), qml.Barrier([0, 1]),
]  # fmt: skip


@pytest.mark.parametrize("gate", GATES, ids=lambda g: g.name)
def test_gate_matches_default_qubit(gate):
    tape = qml.tape.QuantumScript([*PREFIX, gate], [qml.state()])
    got = xla_execute([tape], diff_method=None)[0]
    assert_tree_close(got, reference(tape), atol=1e-12)


def test_state_preparations():
    vec = np.arange(1, 9) / np.linalg.norm(np.arange(1, 9))
    for prep in (qml.StatePrep(vec, [0, 1, 2]), qml.BasisState(np.array([1, 0, 1]), [0, 1, 2])):
        tape = qml.tape.QuantumScript([prep, qml.RX(0.3, 1), qml.CNOT([1, 2])], [qml.state()])
        assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape), 1e-12)


def test_state_prep_on_subset_of_wires():
    prep = qml.StatePrep(np.array([0.6, 0.8]), wires=[1])
    tape = qml.tape.QuantumScript([prep, qml.Hadamard(0)], [qml.state()])
    assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape), 1e-12)


def test_evolution_with_a_parametrized_generator():
    # PennyLane's bind_new_parameters fails on it (IndexError): the executor rebuilds it itself.
    gen = qml.sum(qml.Y(0), qml.s_prod(0.3, qml.X(1)))
    tape = qml.tape.QuantumScript([*PREFIX, qml.evolve(gen, 0.4)], [qml.state()])
    assert xla_unsupported_reason(tape, None) is None
    assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape), atol=1e-12)


def test_an_operator_pennylane_cannot_rebind_is_left_to_the_device():
    nested = qml.prod(qml.evolve(qml.sum(qml.Y(0), qml.s_prod(0.3, qml.X(1))), 0.4), qml.RX(0.2, 2))
    tape = qml.tape.QuantumScript([*PREFIX, nested], [qml.state()])
    assert "PennyLane cannot rebind the parameters of" in xla_unsupported_reason(tape, None)
