"""Angles read from a QNode's array arguments: one gather per argument, same results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface import _angle_reads

N, LAYERS = 3, 4


def _layers(scale=None, calls=None, method="adjoint"):
    """RX(w[l, k]) on every wire per layer, a CRY(v[l]) and a CNOT; ``scale`` multiplies."""

    @qml.qnode(qml.device("default.qubit", wires=N), diff_method=method)
    def circuit(w, v):
        if calls is not None:
            calls.append(1)
        for layer in range(LAYERS):
            for k in range(N):
                qml.RX(w[layer, k] if scale is None else scale * w[layer, k], wires=k)
            qml.CRY(v[layer], wires=[layer % N, (layer + 1) % N])
            qml.CNOT([0, 2])
        return qml.expval(qml.Z(0) @ qml.Z(1))

    return circuit


@pytest.fixture
def weights(rng):
    return jnp.asarray(rng.random((LAYERS, N))), jnp.asarray(rng.random(LAYERS))


def _reference(weights, fn):
    qjaxiface.uninstall()
    return fn(_layers(method="backprop"))(*weights)


@pytest.mark.parametrize("method", ["adjoint", "backprop", "parameter-shift"])
def test_gradients_match_pennylanes_own_boundary(weights, method):
    def grad(circuit):
        return jax.jit(jax.grad(circuit, argnums=(0, 1)))

    qjaxiface.install()
    got = grad(_layers(method=method))(*weights)
    want = _reference(weights, grad)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, atol=1e-10)


def test_hessian_and_vmap_through_the_gathered_reads(weights):
    def hess(circuit):
        return jax.jit(jax.hessian(circuit))

    def batched(circuit):
        return jax.jit(jax.vmap(jax.grad(circuit), in_axes=(0, None)))

    w, v = weights
    stack = jnp.stack([w, 2 * w, w + 0.3])
    qjaxiface.install()
    got_h = hess(_layers(method="parameter-shift"))(w, v)
    got_b = batched(_layers())(stack, v)
    np.testing.assert_allclose(got_h, _reference(weights, hess), atol=1e-8)
    qjaxiface.uninstall()
    want_b = batched(_layers(method="backprop"))(stack, v)
    np.testing.assert_allclose(got_b, want_b, atol=1e-10)


def _pads(circuit, weights) -> int:
    return jax.jit(jax.grad(circuit)).lower(*weights).as_text().count("stablehlo.pad")


@pytest.mark.parametrize("method", ["adjoint", "parameter-shift"])
def test_the_angles_cost_no_pad_each_under_grad(weights, method):
    """The transpose of a user's ``w[l, k]`` is a full-size pad per angle, a gather's one."""
    qjaxiface.install()
    assert _pads(_layers(method=method), weights) <= 2  # at most one per argument's gather
    # angles computed from the weights keep their own reads (and their pads)
    assert _pads(_layers(scale=2.0, method=method), weights) >= 2 * LAYERS


def _sources(circuit, w, v):
    """What ``_sources`` finds for the tape ``circuit`` builds, inside a ``jit`` trace."""
    found = []

    def trace(w, v):
        tape = qml.workflow.construct_tape(circuit)(w, v)
        leaves, treedef = jax.tree_util.tree_flatten(((w, v), {}))
        found.append(_angle_reads._sources(circuit, tape, leaves, treedef, [0, 1], [0, 1]))
        return w

    jax.jit(trace)(w, v)
    return found[0]


def test_sources_follow_slices_squeezes_reshapes_and_transposes():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def circuit(w, v):
        qml.RX(w[1, 2], 0)  # slice + squeeze
        qml.RY(w[0][3], 0)  # two of them
        qml.RZ(w.T[3, 1], 1)  # transpose
        qml.RX(jnp.ravel(w)[6], 1)  # reshape
        qml.RY(v[4], 0)  # a vector
        qml.RX(jnp.unstack(w, axis=1)[2][1], 0)  # unstack (a nested jit on jax 0.7)
        qml.RZ(2 * w[0, 0], 1)  # computed: not a read
        qml.RX(0.25, 0)  # a constant
        qml.Rot(*w[1, :3], wires=1)  # unpacked row
        return qml.expval(qml.Z(0))

    w, v = jnp.arange(8.0).reshape(2, 4), jnp.arange(5.0)
    assert _sources(circuit, w, v) == [
        (0, 6),
        (0, 3),
        (0, 7),
        (0, 6),
        (1, 4),
        (0, 6),
        None,
        None,
        (0, 4),
        (0, 5),
        (0, 6),
    ]


def test_a_circuit_that_changes_between_traces_is_not_gathered(weights):
    calls: list = []

    @qml.qnode(qml.device("default.qubit", wires=N))
    def circuit(w, v):
        calls.append(1)
        wire = len(calls) % N  # another wire on every trace
        for layer in range(LAYERS):
            for k in range(N):
                qml.RX(w[layer, k], wires=(k + wire) % N)
        return qml.expval(qml.Z(0))

    assert _sources(circuit, *weights) is None


def test_the_quantum_function_runs_again_only_when_it_pays(weights):
    calls: list = []
    qjaxiface.install()
    jax.grad(_layers(calls=calls))(*weights)  # eager: nothing is compiled
    assert len(calls) == 1
    jax.jit(jax.grad(_layers(calls=calls)))(*weights)  # the second trace reads the angles
    assert len(calls) == 3
    qjaxiface.install(executor="device")  # host-side execution compiles no angles
    jax.jit(jax.grad(_layers(calls=calls)))(*weights)
    assert len(calls) == 4

    @qml.qnode(qml.device("default.qubit", wires=1))
    def few(w):
        calls.append(1)
        for k in range(_angle_reads.MIN_READS - 1):
            qml.RX(w[k], 0)
        return qml.expval(qml.Z(0))

    qjaxiface.install()
    jax.jit(jax.grad(few))(jnp.ones(_angle_reads.MIN_READS - 1))
    assert len(calls) == 5
