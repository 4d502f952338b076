"""Declared callback shapes agree with what devices return eagerly."""

import subprocess
import sys

import jax
import numpy as np
import pennylane as qml
import pytest

from qjaxiface.shapes import conform, jacobian_shape_dtype, result_shape_dtype

OPS = [qml.RX(0.3, 0), qml.CNOT([0, 1]), qml.RY(0.2, 2)]
BATCH_OPS = [qml.RX(np.array([0.3, 0.4, 0.5]), 0), qml.CNOT([0, 1])]

MEASUREMENTS = {
    "expval": [qml.expval(qml.Z(0))],
    "var": [qml.var(qml.X(1))],
    "probs-wires": [qml.probs(wires=[0, 2])],
    "probs-all": [qml.probs()],
    "probs-obs": [qml.probs(op=qml.X(0))],
    "state": [qml.state()],
    "density": [qml.density_matrix([1])],
    "multi": [qml.expval(qml.Z(0)), qml.probs([1]), qml.var(qml.Y(2))],
}
SHOT_MEASUREMENTS = {
    "sample-wires": [qml.sample(wires=[0, 1])],
    "sample-all": [qml.sample()],
    "sample-obs": [qml.sample(qml.Z(0) @ qml.X(1))],
    "expval": [qml.expval(qml.Z(0))],
    "probs": [qml.probs([0])],
    "mixed": [qml.sample(wires=[2]), qml.expval(qml.X(0)), qml.probs([0, 1])],
}


def _check(tape, dev):
    # The boundary shapes tapes after device preprocessing, as they reach the device.
    (tape,), _ = dev.preprocess_transforms()([tape])
    result = dev.execute([tape])[0]
    struct = result_shape_dtype(tape, dev)
    r_leaves, r_tree = jax.tree_util.tree_flatten(result)
    s_leaves, s_tree = jax.tree_util.tree_flatten(struct)
    assert r_tree == s_tree
    for r, s in zip(r_leaves, s_leaves):
        assert np.shape(r) == s.shape
        assert np.result_type(r).kind == np.dtype(s.dtype).kind
    conform(result, struct)  # must not raise


@pytest.mark.parametrize("name", MEASUREMENTS)
@pytest.mark.parametrize("ops", [OPS, BATCH_OPS], ids=["plain", "broadcast"])
def test_analytic_shapes(name, ops):
    _check(qml.tape.QuantumScript(ops, MEASUREMENTS[name]), qml.device("default.qubit", wires=3))


@pytest.mark.parametrize("name", SHOT_MEASUREMENTS)
@pytest.mark.parametrize("shots", [7, (3, 5), ((2, 2), 4)], ids=["int", "vector", "repeated"])
@pytest.mark.parametrize("ops", [OPS, BATCH_OPS], ids=["plain", "broadcast"])
def test_shot_shapes(name, shots, ops):
    tape = qml.tape.QuantumScript(ops, SHOT_MEASUREMENTS[name], shots=shots)
    _check(tape, qml.device("default.qubit", wires=3, seed=1))


def test_device_wires_set_all_wire_measurements():
    tape = qml.tape.QuantumScript([qml.X(0)], [qml.probs(), qml.state()])
    struct = result_shape_dtype(tape, qml.device("default.qubit", wires=4))
    assert [s.shape for s in struct] == [(16,), (16,)]
    assert [s.shape for s in result_shape_dtype(tape)] == [(2,), (2,)]


def test_jacobian_nesting():
    tape = qml.tape.QuantumScript(
        [qml.RX(0.1, 0), qml.RY(0.2, 0)], [qml.expval(qml.Z(0)), qml.probs([0])], shots=(5, 6)
    )
    jac = jacobian_shape_dtype(tape)
    # [shot setting][measurement][parameter]
    assert len(jac) == 2 and len(jac[0]) == 2 and len(jac[0][1]) == 2
    assert jac[0][1][0].shape == (2,)
    single = jacobian_shape_dtype(tape, num_params=1)
    assert single[0][1].shape == (2,)


def test_jacobian_of_an_array_valued_parameter_appends_its_shape():
    # PennyLane's convention (stoch_pulse_grad on a pulse's polynomial coefficients).
    tape = qml.tape.QuantumScript(
        [qml.RX(0.1, 0), qml.QubitUnitary(np.eye(2), 0)],
        [qml.expval(qml.Z(0)), qml.probs([0])],
    )
    jac = jacobian_shape_dtype(tape)
    assert [j.shape for j in jac[0]] == [(), (2, 2)]
    assert [j.shape for j in jac[1]] == [(2,), (2, 2, 2)]
    tape.trainable_params = [1]
    assert [j.shape for j in jacobian_shape_dtype(tape)] == [(2, 2), (2, 2, 2)]
    # A broadcast parameter's leading axis is the result's batch axis: nothing is appended.
    batched = qml.tape.QuantumScript([qml.RX(np.array([0.1, 0.2]), 0)], [qml.expval(qml.Z(0))])
    assert jacobian_shape_dtype(batched).shape == (2,)


def test_conform_rejects_size_mismatch():
    with pytest.raises(ValueError, match="expected"):
        conform(np.zeros(3), jax.ShapeDtypeStruct((4,), np.float64))


def test_conform_rejects_wrong_count():
    s = jax.ShapeDtypeStruct((), np.float64)
    with pytest.raises(ValueError, match="returned 1 results where qjaxiface expected 2"):
        conform((1.0,), (s, s))


def test_x64_off_dtypes():
    """With x64 off, floats are float32, ints int32, complex complex64 (fresh process)."""
    code = (
        "import pennylane as qml, jax\n"
        "from qjaxiface.shapes import result_shape_dtype\n"
        "t = qml.tape.QuantumScript([qml.RX(0.1, 0)], "
        "[qml.expval(qml.Z(0)), qml.state(), qml.sample(wires=[0])], shots=None)\n"
        "e, s, _ = result_shape_dtype(qml.tape.QuantumScript([qml.RX(0.1, 0)], "
        "[qml.expval(qml.Z(0)), qml.state(), qml.sample(wires=[0])], shots=3))\n"
        "print(e.dtype, s.dtype, _.dtype)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["float32", "complex64", "int32"]
