"""Analytic measurements: values, shapes and dtypes as default.qubit returns them."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import assert_tree_close, preprocess, reference

from qjaxiface.executors.xla import xla_execute

H = qml.Hamiltonian([0.5, -0.2, 0.7], [qml.Z(0), qml.Y(1) @ qml.X(2), qml.Z(0) @ qml.Z(2)])
HERM = np.array([[1.0, 0.5 - 0.2j], [0.5 + 0.2j, -0.3]])

MEASUREMENTS = [
    qml.expval(qml.Z(0)),
    qml.expval(qml.X(1) @ qml.Y(2)),
    qml.expval(H),
    qml.expval(qml.sum(qml.X(0), qml.s_prod(0.3, qml.Z(1)))),
    qml.expval(qml.prod(qml.Hadamard(0), qml.Z(1))),
    qml.expval(qml.Hermitian(HERM, 1)),
    qml.expval(qml.Projector([0, 1], [0, 2])),
    qml.expval(qml.Projector(np.array([0.6, 0.0, 0.0, 0.8]), [1, 2])),
    qml.var(qml.X(2)),
    qml.var(H),
    qml.var(qml.Hermitian(HERM, 0)),
    qml.probs(wires=[2, 0]),
    qml.probs(wires=[1]),
    qml.probs(op=qml.X(1) @ qml.Y(2)),
    qml.probs(op=qml.Hadamard(0)),
    qml.state(),
    qml.density_matrix([2, 0]),
]  # fmt: skip


def _circuit(rng, measurements, wires=(0, 1, 2)):
    w = rng.random((2, len(wires), 3))
    ops = [qml.StronglyEntanglingLayers(w, wires=list(wires)), qml.CRX(0.4, list(wires[:2]))]
    return preprocess(qml.tape.QuantumScript(ops, measurements))


@pytest.mark.parametrize("mp", MEASUREMENTS, ids=lambda m: repr(m)[:40])
def test_measurement_matches_default_qubit(mp, rng):
    tape = _circuit(rng, [mp])
    got = xla_execute([tape], diff_method=None)[0]
    ref = reference(tape)
    assert_tree_close(got, ref)
    assert np.asarray(got).dtype == np.asarray(ref).dtype


def test_several_measurements_and_tapes(rng):
    tapes = [_circuit(rng, MEASUREMENTS[:5]), _circuit(rng, [qml.probs(wires=[0])])]
    got = xla_execute(tapes, diff_method=None)
    assert isinstance(got, tuple) and len(got) == 2
    for g, t in zip(got, tapes):
        assert_tree_close(g, reference(t))


@pytest.mark.parametrize(
    "ops",
    [
        [qml.X(1), qml.Hadamard(0)],
        [qml.Hadamard(0), qml.X(2)],
        [qml.Hadamard("a"), qml.CNOT(["a", "b"]), qml.RY(0.3, "c")],
        [qml.RX(0.2, 2), qml.CNOT([2, 0]), qml.RY(0.4, 1)],
    ],
)
def test_state_wire_order_without_device_wires(ops):
    tape = qml.tape.QuantumScript(ops, [qml.state(), qml.probs()])
    assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape), 1e-12)


def test_device_wire_order():
    dev = qml.device("default.qubit", wires=[2, 0, 1])
    tape = qml.tape.QuantumScript([qml.RX(0.3, 0), qml.CNOT([0, 1])], [qml.state(), qml.probs()])
    (pre,), _ = dev.preprocess_transforms()((tape,))
    got = xla_execute([pre], diff_method=None, num_wires=3, wire_order=dev.wires)[0]
    assert_tree_close(got, qml.execute([pre], dev)[0], 1e-12)


def test_broadcasting(rng):
    x = np.array([0.1, 0.5, 1.3])
    ops = [qml.RX(x, 0), qml.RY(0.4, 1), qml.CNOT([0, 1]), qml.Rot(x, 0.2, x * 2, 1)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(1)), qml.probs(wires=[0]), qml.state()])
    assert tape.batch_size == 3
    assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape))


def test_random_circuits_match(rng):
    gates = [qml.RX, qml.RY, qml.RZ, qml.CNOT, qml.CRY, qml.IsingXX, qml.Hadamard, qml.CZ]
    for _ in range(4):
        ops = []
        for _ in range(12):
            g = gates[rng.integers(len(gates))]
            wires = list(rng.choice(4, g.num_wires, replace=False))
            ops.append(g(*rng.random(g.num_params), wires=wires))
        tape = preprocess(
            qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.X(3)), qml.probs(wires=[1, 2])])
        )
        assert_tree_close(xla_execute([tape], diff_method=None)[0], reference(tape))
