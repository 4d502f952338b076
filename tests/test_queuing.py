"""Thread-affine queuing (installed with the hook): recordings do not capture other threads' ops."""

from __future__ import annotations

import threading

import jax
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface import _queuing


def _together(*targets, timeout=30.0):
    """Run the targets in threads at once and wait for all of them."""
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def _record_while_another_thread_builds_ops():
    """Thread A records a circuit; while it is inside the recording, thread B builds operators
    (with and without stop_recording). Returns A's recorded operations."""
    inside, built = threading.Event(), threading.Event()
    recorded = {}

    def other():
        inside.wait(5)
        qml.RY(0.7, 1)
        qml.expval(qml.X(1))
        with qml.QueuingManager.stop_recording():
            qml.RZ(0.1, 0)
        built.set()

    def record():
        with qml.queuing.AnnotatedQueue() as q:
            qml.RX(0.3, 0)
            inside.set()
            built.wait(5)
            qml.CNOT([0, 1])  # after B's stop_recording block: must still be recorded
        recorded["ops"] = [type(o).__name__ for o in q.queue]

    _together(record, other)
    return recorded["ops"]


def test_pennylane_alone_records_other_threads_ops():
    """The race this module exists for (if PennyLane fixes it, drop the patch)."""
    assert _record_while_another_thread_builds_ops() != ["RX", "CNOT"]


def test_installed_recording_sees_only_its_own_thread():
    with qjaxiface.installed():
        assert _queuing.is_patched()
        assert _record_while_another_thread_builds_ops() == ["RX", "CNOT"]
    assert not _queuing.is_patched()


def test_same_thread_semantics_unchanged():
    with qjaxiface.installed():
        with qml.queuing.AnnotatedQueue() as q:
            qml.RX(0.1, 0)
            with qml.QueuingManager.stop_recording():
                qml.RY(0.2, 0)
            with qml.queuing.AnnotatedQueue() as inner:
                qml.RZ(0.3, 0)
            qml.apply(inner.queue[0])
        assert [type(o).__name__ for o in q.queue] == ["RX", "RZ"]
        assert not qml.QueuingManager.recording()


def test_uninstall_restores_pennylane_methods():
    before = {n: qml.QueuingManager.__dict__[n] for n in _queuing._METHODS}
    qjaxiface.install()
    qjaxiface.install()
    assert qml.QueuingManager.__dict__["recording"] is not before["recording"]
    qjaxiface.uninstall()
    assert {n: qml.QueuingManager.__dict__[n] for n in _queuing._METHODS} == before


@pytest.mark.parametrize("executor", ["auto", "device"])
def test_qnode_recorded_while_another_thread_executes_tapes(executor):
    """A QNode is mid-recording while another thread builds tapes and runs them (jit + grad)."""
    dev = qml.device("default.qubit", wires=2)
    gate = threading.Event()
    out = {}

    @qml.qnode(dev, interface="jax", diff_method="parameter-shift")
    def slow(x):
        qml.RX(x, 0)
        out["gate_opened"] = gate.wait(10)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RY(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift", executor=executor)[0]

    def run_slow():
        out["slow"] = float(slow(0.4))

    def run_fast():
        out["fast"] = float(jax.jit(jax.grad(cost))(0.4))
        gate.set()

    with qjaxiface.installed(executor=executor):
        _together(run_slow, run_fast)
    assert out["gate_opened"]
    np.testing.assert_allclose(out["slow"], np.cos(0.4), atol=1e-10)
    np.testing.assert_allclose(out["fast"], -np.sin(0.4), atol=1e-10)
