"""Finite shots with a PRNG key: default.qubit's structure, shapes and dtypes; right statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import reference

from qjaxiface.executors.xla import XLAUnsupported, xla_execute

KEY = jax.random.key(42)
OPS = [qml.RX(0.7, 0), qml.RY(1.1, 1), qml.CNOT([0, 1])]


def _both(measurements, shots):
    tape = qml.tape.QuantumScript(OPS, measurements, shots=shots)
    dev = qml.device("default.qubit", seed=jax.random.key(0))
    ref = qml.execute([tape], dev)[0]
    return xla_execute([tape], diff_method=None, prng_key=KEY)[0], ref


def _same_structure(got, ref):
    if isinstance(ref, tuple):
        assert isinstance(got, tuple) and len(got) == len(ref)
        for g, r in zip(got, ref):
            _same_structure(g, r)
    elif isinstance(ref, dict):
        assert isinstance(got, dict)
        assert set(map(str, ref)) <= set(map(str, got))  # ours lists every outcome
    else:
        assert np.shape(got) == np.shape(ref)


@pytest.mark.parametrize("shots", [50, (20, 20, 30)])
def test_structure_matches_default_qubit(shots):
    ms = [
        qml.expval(qml.Z(0)),
        qml.var(qml.X(1)),
        qml.probs(wires=[1, 0]),
        qml.sample(wires=[0, 1]),
        qml.sample(qml.Z(0) @ qml.Z(1)),
        qml.counts(wires=[0, 1]),
        qml.counts(qml.Z(0)),
    ]
    got, ref = _both(ms, shots)
    _same_structure(got, ref)


def test_statistics():
    shots = 40_000
    H = qml.Hamiltonian([0.5, -0.3], [qml.Z(0), qml.X(1)])
    herm = np.array([[1.0, 0.3], [0.3, -1.0]])
    ms = [
        qml.expval(H),
        qml.var(qml.Y(1)),
        qml.probs(wires=[0, 1]),
        qml.expval(qml.Hermitian(herm, 0)),
    ]
    analytic = reference(qml.tape.QuantumScript(OPS, ms))
    got = xla_execute(
        [qml.tape.QuantumScript(OPS, ms, shots=shots)], diff_method=None, prng_key=KEY
    )[0]
    for g, a in zip(got, analytic):
        np.testing.assert_allclose(g, a, atol=5 / np.sqrt(shots))


def test_samples_and_counts_agree():
    ms = [qml.sample(wires=[0, 1]), qml.counts(wires=[0, 1]), qml.counts(qml.Z(0) @ qml.Z(1))]
    tape = qml.tape.QuantumScript(OPS, ms, shots=300)
    samples, counts, zz = xla_execute([tape], diff_method=None, prng_key=KEY)[0]
    assert samples.shape == (300, 2)
    assert list(counts) == ["00", "01", "10", "11"]
    assert sum(int(v) for v in counts.values()) == 300
    assert sorted(zz) == [-1.0, 1.0] and int(zz[1.0]) + int(zz[-1.0]) == 300


def test_jit_and_keys():
    def f(x, key):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))], shots=1000)
        return xla_execute([tape], diff_method="parameter-shift", prng_key=key)[0]

    a = jax.jit(f)(0.3, KEY)
    assert a == jax.jit(f)(0.3, KEY)
    assert a != jax.jit(f)(0.3, jax.random.key(1))
    g = jax.jit(jax.grad(f))(jnp.asarray(0.3), KEY)
    assert abs(g + np.sin(0.3)) < 0.15  # parameter-shift with 1000 shots per shifted circuit


def test_shots_need_a_key():
    tape = qml.tape.QuantumScript(OPS, [qml.expval(qml.Z(0))], shots=10)
    with pytest.raises(XLAUnsupported, match="prng_key"):
        xla_execute([tape], diff_method=None)
