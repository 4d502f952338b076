"""PennyLane errors that leave a user stuck get the remedy as a note; type and message stay."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pennylane as qml
import pytest
from pennylane.exceptions import DeviceError, QuantumFunctionError

import qjaxiface
from qjaxiface._hints import SHOTS_HINT, add_shots_hint

ANALYTIC = "not accepted for analytic simulation on default.qubit"


def _hints(err: BaseException) -> list[str]:
    # JAX adds a note of its own (about traceback filtering) to errors raised under a transform.
    return [n for n in getattr(err, "__notes__", ()) if n.startswith("qjaxiface hint")]


def _sample_without_shots(x):
    tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.sample(wires=0)])
    return qjaxiface.execute([tape], qml.device("default.qubit"), diff_method="best")[0]


@pytest.mark.parametrize("jit", [False, True])
def test_sample_without_shots_says_how_to_set_shots(jit):
    fn = jax.jit(_sample_without_shots) if jit else _sample_without_shots
    with pytest.raises(DeviceError, match=ANALYTIC) as info:
        fn(jnp.array(0.3))
    assert _hints(info.value) == [SHOTS_HINT]
    assert "qml.set_shots" in SHOTS_HINT


def test_installed_qnode_under_jit_gets_the_shots_hint():
    @qml.qnode(qml.device("default.qubit"))
    def circuit(x):
        qml.RX(x, 0)
        return qml.sample(wires=0)

    with qjaxiface.installed(), pytest.raises(DeviceError, match=ANALYTIC) as info:
        jax.jit(circuit)(0.3)
    assert _hints(info.value) == [SHOTS_HINT]


@pytest.mark.parametrize("transform", ["value", "grad", "jit_grad"])
def test_unsupported_diff_method_names_the_methods_that_work(transform):
    dev = qml.device("default.mixed", wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="adjoint")[0]

    fn = {"value": cost, "grad": jax.grad(cost), "jit_grad": jax.jit(jax.grad(cost))}[transform]
    with pytest.raises(QuantumFunctionError, match="does not support adjoint") as info:
        fn(jnp.array(0.3))
    (note,) = _hints(info.value)
    assert 'diff_method="adjoint"' in note
    for works in ("backprop", "parameter-shift", "finite-diff", "spsa"):
        assert f'"{works}"' in note
        # ...and each named method really works on this device.
        tape = qml.tape.QuantumScript([qml.RX(0.3, 0)], [qml.expval(qml.Z(0))])
        if works == "backprop":
            continue  # checked by the device's own supports_derivatives below
        qjaxiface.execute([tape], dev, diff_method=works)
    assert '"adjoint"' not in note.split("Methods that work with it:")[1]
    assert dev.supports_derivatives(qml.devices.ExecutionConfig(gradient_method="backprop"))


def test_a_hint_is_attached_once_and_only_where_it_applies():
    err = DeviceError("Measurement sample(wires=[0]) " + ANALYTIC)
    add_shots_hint(err)
    add_shots_hint(err)  # nested executions see the same error
    assert _hints(err) == [SHOTS_HINT]
    other = DeviceError("the device is on fire")
    add_shots_hint(other)
    assert _hints(other) == []


def test_device_failures_pass_through_without_a_note():
    class Broken(qml.devices.DefaultQubit):
        def execute(self, circuits, execution_config=None):
            raise DeviceError("hardware offline")

    tape = qml.tape.QuantumScript([qml.RX(jnp.array(0.3), 0)], [qml.expval(qml.Z(0))])
    with pytest.raises(DeviceError, match="hardware offline") as info:
        qjaxiface.execute([tape], Broken(), diff_method="parameter-shift", executor="device")
    assert _hints(info.value) == []
