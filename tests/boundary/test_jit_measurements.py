"""Every measurement type through the jit callback: the same structure, shapes, dtypes and values
as the eager path (fresh seeded devices make sampled values comparable)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import assert_tree_allclose

import qjaxiface

ANALYTIC = {
    "expval": lambda: [qml.expval(qml.Z(0) @ qml.Y(1))],
    "hamiltonian": lambda: [qml.expval(qml.Hamiltonian([0.5, -1.0], [qml.Z(0), qml.X(1)]))],
    "var": lambda: [qml.var(qml.X(1))],
    "probs": lambda: [qml.probs(wires=[1, 0])],
    "state": lambda: [qml.state()],
    "density": lambda: [qml.density_matrix([1])],
    "several": lambda: [qml.expval(qml.Z(0)), qml.probs([1]), qml.var(qml.Y(0))],
}
SAMPLED = {
    "sample": lambda: [qml.sample(wires=[0, 1])],
    "sample-obs": lambda: [qml.sample(qml.Z(0) @ qml.X(1))],
    "expval": lambda: [qml.expval(qml.Z(0))],
    "mixed": lambda: [qml.sample(wires=[1]), qml.probs([0, 1]), qml.expval(qml.X(0))],
}


def _run(devname, make, shots, x, jit):
    dev = (
        qml.device(devname, wires=2, seed=123)
        if devname != "default.mixed"
        else qml.device(devname, wires=2)
    )

    def f(x):
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), qml.CNOT([0, 1]), qml.RY(0.3, 1)], make(), shots=shots
        )
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift", executor="device")[0]

    return (jax.jit(f) if jit else f)(x)


def _same_dtypes(a, b):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.asarray(u).dtype.kind == np.asarray(v).dtype.kind


@pytest.mark.parametrize("name", ANALYTIC)
@pytest.mark.parametrize("devname", ["lightning.qubit", "default.qubit", "default.mixed"])
@pytest.mark.parametrize("x", [jnp.array(0.7), jnp.array([0.1, 0.7, 1.3])], ids=["scalar", "batch"])
def test_analytic_measurements(devname, name, x):
    if devname == "default.mixed" and name == "state":
        pytest.skip("default.mixed has no pure state to return")
    eager = _run(devname, ANALYTIC[name], None, x, jit=False)
    jitted = _run(devname, ANALYTIC[name], None, x, jit=True)
    assert_tree_allclose(jitted, eager, atol=1e-10)
    _same_dtypes(jitted, eager)


@pytest.mark.parametrize("name", SAMPLED)
@pytest.mark.parametrize("shots", [20, (5, 9)], ids=["shots", "shot-vector"])
@pytest.mark.parametrize("devname", ["lightning.qubit", "default.qubit"])
def test_sampled_measurements(devname, name, shots):
    eager = _run(devname, SAMPLED[name], shots, jnp.array(0.7), jit=False)
    jitted = _run(devname, SAMPLED[name], shots, jnp.array(0.7), jit=True)
    assert_tree_allclose(jitted, eager, atol=1e-10)
    _same_dtypes(jitted, eager)


def test_x64_off_end_to_end():
    """float32/int32/complex64 results and gradients when x64 is off (fresh process)."""
    code = """
import jax, jax.numpy as jnp, pennylane as qml, qjaxiface
dev = qml.device("lightning.qubit", wires=1, seed=1)
def f(x):
    t = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0)), qml.state()])
    s = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.sample(wires=[0])], shots=4)
    return qjaxiface.execute([t, s], dev, diff_method="parameter-shift")
(e, st), smp = jax.jit(f)(jnp.float32(0.5))
def h(x):
    t = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
    return qjaxiface.execute([t], dev, diff_method="parameter-shift")[0]
g = jax.jit(jax.grad(h))(jnp.float32(0.5))
print(e.dtype, st.dtype, smp.dtype, g.dtype, round(float(g), 5))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["float32", "complex64", "int32", "float32", str(round(-np.sin(0.5), 5))]


@pytest.mark.parametrize("devname", ["lightning.qubit", "default.qubit"])
def test_traced_hermitian_matrix_reaches_the_device_writable(devname):
    """A jitted Hermitian matrix: the callback hands the device writable arrays (lightning's C++
    expval rejects JAX's read-only buffers). Reference: <Z⊗Z> on |00> is 1."""
    projector = np.array(qml.matrix(qml.Z(0) @ qml.Z(1)))

    @qml.qnode(qml.device(devname, wires=2), interface="jax", diff_method="parameter-shift")
    def circuit(matrix):
        return qml.expval(qml.Hermitian(matrix, wires=[0, 1]))

    with qjaxiface.installed(executor="device"):
        np.testing.assert_allclose(jax.jit(circuit)(projector), 1.0, atol=1e-12)
