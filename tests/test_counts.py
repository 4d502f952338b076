"""qml.counts under jit: every outcome, zeros included, equal to eager all-outcome counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface.counts import counts_as_samples, has_counts


def _as_python(counts):
    return {k: int(v) for k, v in counts.items()}


MEASUREMENTS = {
    "wires": lambda: qml.counts(wires=[0, 1]),
    "all-wires": lambda: qml.counts(),
    "observable": lambda: qml.counts(qml.Z(0) @ qml.Z(1)),
    "hermitian": lambda: qml.counts(qml.Hermitian(np.diag([1.0, 2.0, 3.0, 3.0]), wires=[0, 1])),
}


def _eager_reference(make_mp, x, devname, shots):
    dev = qml.device(devname, wires=2, seed=42)
    mp = make_mp()
    wires = (mp.wires or None) if mp.obs is None else None
    mp = type(mp)(obs=mp.obs, wires=wires, all_outcomes=True)
    tape = qml.tape.QuantumScript([qml.RX(x, 0), qml.CNOT([0, 1])], [mp], shots=shots)
    (res,) = qml.execute([tape], dev)
    return res


@pytest.mark.parametrize("name", MEASUREMENTS)
@pytest.mark.parametrize("devname", ["default.qubit", "lightning.qubit"])
def test_counts_under_jit_match_eager_all_outcomes(name, devname):
    x = 1.1

    @jax.jit
    def run(x):
        dev = qml.device(devname, wires=2, seed=42)
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), qml.CNOT([0, 1])], [MEASUREMENTS[name]()], shots=300
        )
        return qjaxiface.execute([tape], dev, executor="device")[0]

    got = run(jnp.array(x))
    expected = _eager_reference(MEASUREMENTS[name], x, devname, 300)
    assert sorted(got) == sorted(expected.keys())
    assert _as_python(got) == {k: int(v) for k, v in expected.items()}
    assert sum(_as_python(got).values()) == 300


def test_counts_keys_include_zero_outcomes():
    @jax.jit
    def run(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.counts(wires=[0, 1])], shots=50)
        return qjaxiface.execute([tape], qml.device("lightning.qubit", wires=2, seed=1))[0]

    counts = _as_python(run(jnp.array(0.0)))
    assert counts == {"00": 50, "01": 0, "10": 0, "11": 0}


def test_counts_with_shot_vector_and_broadcasting():
    @jax.jit
    def run(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.counts(wires=[0])], shots=(10, 20))
        return qjaxiface.execute([tape], qml.device("default.qubit", seed=3), executor="device")[0]

    res = run(jnp.array([0.0, np.pi]))
    assert len(res) == 2  # shot settings
    for setting, shots in zip(res, (10, 20)):
        assert len(setting) == 2  # batch
        assert _as_python(setting[0]) == {"0": shots, "1": 0}
        assert _as_python(setting[1]) == {"0": 0, "1": shots}


def test_counts_of_mid_circuit_measurement_under_jit():
    dev = qml.device("default.qubit", seed=9)

    @qml.qnode(dev, mcm_method="one-shot", shots=100)
    def circuit(x):
        qml.RX(x, 0)
        m = qml.measure(0)
        return qml.counts(m), qml.counts(2 * m)

    with qjaxiface.installed(executor="device"):
        c1, c2 = jax.jit(circuit)(jnp.array(np.pi))
    assert _as_python(c1) == {0.0: 0, 1.0: 100}
    assert _as_python(c2) == {0.0: 0, 2.0: 100}


def test_builtin_boundary_refuses_counts_under_jit():
    """What PennyLane's own boundary does (the gap the support matrix records)."""

    @qml.qnode(qml.device("default.qubit", seed=1), shots=10)
    def circuit(x):
        qml.RX(x, 0)
        return qml.counts()

    with pytest.raises(NotImplementedError):
        jax.jit(circuit)(jnp.array(0.1))
    with qjaxiface.installed():
        assert sum(_as_python(jax.jit(circuit)(jnp.array(0.1))).values()) == 10


def test_rewrite_leaves_other_measurements_alone():
    tape = qml.tape.QuantumScript(
        [qml.X(0)], [qml.expval(qml.Z(0)), qml.counts(wires=[0])], shots=4
    )
    assert has_counts([tape])
    (new,), post = counts_as_samples([tape])
    assert new.measurements[0] is tape.measurements[0]
    assert not has_counts([new])
    res = post(qml.device("default.qubit").execute([new]))
    assert float(res[0][0]) == -1.0
    assert _as_python(res[0][1]) == {"0": 0, "1": 4}
