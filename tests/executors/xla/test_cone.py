"""Light-cone pruning (``_cone.py``): what is dropped, where it is not applied, and derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface.executors.xla import set_light_cone
from qjaxiface.executors.xla._cone import MAX_GROUPS, cone_groups, light_cone
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


# ------------------------------------------------------------------ Hamiltonian term groups


def _brickwork(w, n):
    for layer in range(w.shape[0]):
        for i in range(n):
            qml.RY(w[layer, i], i)
        for i in range(layer % 2, n - 1, 2):
            qml.CNOT([i, i + 1])


def _ising(n, coeffs):
    terms = [qml.Z(i) @ qml.Z(i + 1) for i in range(n - 1)] + [qml.X(i) for i in range(n)]
    return qml.Hamiltonian(coeffs, terms)


def _brick_tape(n, measurements, layers=2):
    w = np.random.default_rng(0).random((layers, n))
    with qml.queuing.AnnotatedQueue() as q:
        _brickwork(w, n)
    return qml.tape.QuantumScript(q.queue, measurements)


def test_local_terms_of_a_shallow_circuit_split_by_cone():
    n = 12
    H = _ising(n, np.ones(2 * n - 1))
    groups = cone_groups(_brick_tape(n, [qml.expval(H)]))
    assert groups is not None and 2 <= len(groups) <= MAX_GROUPS
    assert sorted(k for g in groups for k in g) == list(range(2 * n - 1))  # each term once


@pytest.mark.parametrize(
    "measurements",
    [
        [qml.var(_ising(12, np.ones(23)))],  # a variance is not a sum over terms
        [qml.expval(_ising(12, np.ones(23))), qml.expval(qml.Z(0))],  # two measurements
        [qml.expval(qml.Z(0) @ qml.Z(1))],  # one term
        [qml.probs(wires=[0, 1])],
    ],
    ids=["var", "two-measurements", "one-term", "probs"],
)
def test_no_term_groups_where_they_do_not_apply(measurements):
    assert cone_groups(_brick_tape(12, measurements)) is None


def test_no_term_groups_when_the_cones_cover_the_register_or_pruning_is_off():
    H = _ising(6, np.ones(11))
    deep = _brick_tape(6, [qml.expval(H)], layers=8)  # every cone is the whole register
    assert cone_groups(deep) is None
    assert cone_groups(_brick_tape(12, [qml.expval(H)], layers=2).copy(shots=100)) is None
    set_light_cone(False)
    try:
        assert cone_groups(_brick_tape(12, [qml.expval(_ising(12, np.ones(23)))])) is None
    finally:
        set_light_cone(True)


@pytest.mark.slow
@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift", "finite-diff"])
def test_term_groups_match_pennylane_with_trainable_coefficients(diff_method):
    from qjaxiface.executors import xla

    n = 10

    def make(method):
        @qml.qnode(qml.device("default.qubit", wires=n), diff_method=method)
        def circuit(w, c):
            qml.AngleEmbedding(w[0], wires=range(n))  # a lifted template in front
            _brickwork(w[1:], n)
            return qml.expval(_ising(n, c))

        return circuit

    rng = np.random.default_rng(7)
    w = jnp.asarray(rng.random((3, n)))
    c = jnp.asarray(rng.normal(size=2 * n - 1))
    ref_f = make("backprop")  # PennyLane's own boundary
    ref = (ref_f(w, c), jax.grad(ref_f, argnums=(0, 1))(w, c))
    xla.clear_cache()
    with qjaxiface.installed():
        f = make(diff_method)
        got = jax.jit(lambda w, c: (f(w, c), jax.grad(f, argnums=(0, 1))(w, c)))(w, c)
    assert len(xla._cache) >= 2, "the Hamiltonian should have been split into term groups"
    atol = 1e-6 if diff_method == "finite-diff" else 1e-10
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, atol=atol)


@pytest.mark.slow
def test_term_groups_under_vmap_and_hessian():
    n = 8  # two term groups

    def make(method):
        @qml.qnode(qml.device("default.qubit", wires=n), diff_method=method)
        def circuit(w):
            _brickwork(w, n)
            return qml.expval(_ising(n, np.linspace(0.1, 1.0, 2 * n - 1)))

        return circuit

    ws = jnp.asarray(np.random.default_rng(8).random((2, 2, n)))
    # PennyLane's own backprop, jitted: its eager Hessian took most of the test's time.
    ref = jax.jit(jax.vmap(make("backprop")))(ws), jax.jit(jax.hessian(make("backprop")))(ws[0])
    with qjaxiface.installed():
        f = make("adjoint")
        got = jax.jit(jax.vmap(f))(ws), jax.jit(jax.hessian(f))(ws[0])
    np.testing.assert_allclose(got[0], ref[0], atol=1e-10)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-9)
