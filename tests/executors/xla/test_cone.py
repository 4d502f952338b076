"""Light-cone pruning (``_cone.py``): what is dropped, where it is not applied, and derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface.executors.xla import set_light_cone
from qjaxiface.executors.xla._cone import light_cone
from qjaxiface.executors.xla._simulate import TapeProgram

OPS = [
    qml.RX(0.1, 0),
    qml.RY(0.2, 1),
    qml.RZ(0.3, 2),
    qml.CNOT([2, 3]),
    qml.CNOT([0, 1]),
    qml.RX(0.4, 3),
]


def test_the_cone_keeps_what_touches_the_observable_backwards():
    keep, wires = light_cone(qml.tape.QuantumScript(OPS, [qml.expval(qml.Z(1))]))
    assert sorted(keep) == [0, 1, 4] and sorted(wires) == [0, 1]
    # A variance and a second expectation value: the union of their cones.
    ops = [*OPS, qml.RY(0.5, 4)]
    tape = qml.tape.QuantumScript(ops, [qml.var(qml.Z(1)), qml.expval(qml.X(3))])
    keep, wires = light_cone(tape)
    assert sorted(keep) == [0, 1, 2, 3, 4, 5] and sorted(wires) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "measurement",
    [qml.probs(wires=[1]), qml.state(), qml.sample(qml.Z(1)), qml.expval(qml.measure(0))],
    ids=["probs", "state", "sample", "mid-circuit-value"],
)
def test_no_pruning_where_it_would_change_the_result(measurement):
    assert light_cone(qml.tape.QuantumScript(OPS, [measurement])) is None


def test_no_pruning_with_shots_or_mid_circuit_measurements_or_nothing_to_drop():
    z1 = [qml.expval(qml.Z(1))]
    assert light_cone(qml.tape.QuantumScript(OPS, z1, shots=100)) is None
    mcm = qml.measurements.MidMeasureMP(2)
    assert light_cone(qml.tape.QuantumScript([*OPS, mcm], z1)) is None
    channel = qml.DepolarizingChannel(0.1, 3)
    assert light_cone(qml.tape.QuantumScript([*OPS, channel], z1)) is None
    assert light_cone(qml.tape.QuantumScript([*OPS[:2], qml.CNOT([0, 1])], z1)) is None


def test_the_program_simulates_only_the_cone_and_switches_off():
    tape = qml.tape.QuantumScript(OPS, [qml.expval(qml.Z(1))])
    assert TapeProgram(tape).n_wires == 2
    set_light_cone(False)
    try:
        assert TapeProgram(tape).n_wires == 4
    finally:
        set_light_cone(True)
    with pytest.raises(TypeError, match="True or False"):
        set_light_cone("yes")


def _circuit(diff_method, with_var):
    @qml.qnode(qml.device("default.qubit", wires=5), diff_method=diff_method)
    def circuit(x, w):
        qml.AngleEmbedding(x, wires=range(5))  # a template: wires 2-4 fall outside the cone
        qml.BasicEntanglerLayers(w, wires=[3, 4])
        qml.CNOT([0, 1])
        qml.RY(x[2], 1)
        qml.RZ(w[0, 0], 4)
        if with_var:
            return qml.expval(qml.Z(0) @ qml.Z(1)), qml.var(qml.X(1))
        return qml.expval(qml.Z(0) @ qml.Z(1)), qml.expval(qml.Y(1))

    return circuit


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift", "finite-diff"])
def test_pruned_results_and_derivatives_match_pennylane(diff_method):
    rng = np.random.default_rng(0)
    x, w = jnp.asarray(rng.random(5)), jnp.asarray(rng.random((2, 2)))
    with_var = diff_method != "adjoint"

    def vec(circuit):
        return lambda *a: jnp.stack(circuit(*a))

    ref_f = vec(_circuit("backprop", with_var))  # PennyLane's own boundary, nothing pruned
    ref = (ref_f(x, w), jax.jacobian(ref_f, argnums=(0, 1))(x, w))
    with qjaxiface.installed():
        f = vec(_circuit(diff_method, with_var))
        got = jax.jit(lambda *a: (f(*a), jax.jacobian(f, argnums=(0, 1))(*a)))(x, w)
        head = jax.jit(jax.hessian(lambda x: f(x, w)[0]))(x)
    atol = 1e-5 if diff_method == "finite-diff" else 1e-8
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, atol=atol)
    # Parameters outside the cone: exact zeros, not small numbers.
    assert np.all(np.asarray(got[1][0])[:, 3:] == 0) and np.all(np.asarray(got[1][1]) == 0)
    if diff_method != "finite-diff":
        np.testing.assert_allclose(head, jax.hessian(lambda x: ref_f(x, w)[0])(x), atol=1e-8)
