"""install() routes PennyLane's JAX executions through qjaxiface, and uninstall() undoes it."""

import importlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface
from qjaxiface.pennylane_hook import _PATCH_SITES


def _site_functions():
    return {name: importlib.import_module(name).execute for name in _PATCH_SITES}


def _circuit(interface="auto", diff_method="parameter-shift"):
    @qml.qnode(qml.device("default.qubit", wires=1), interface=interface, diff_method=diff_method)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    return circuit


def _routed(caplog):
    return any("boundary entry" in r.getMessage() for r in caplog.records)


def test_uninstall_restores_exactly():
    before = _site_functions()
    qjaxiface.install()
    during = _site_functions()
    assert all(getattr(f, "__qjaxiface_router__", False) for f in during.values())
    construct = qml.QNode.construct
    assert getattr(construct, "__qjaxiface_construct__", False)
    qjaxiface.uninstall()
    assert _site_functions() == before
    assert not hasattr(qml.QNode.construct, "__qjaxiface_construct__")


def test_install_twice_is_harmless_and_updates_executor():
    before = _site_functions()
    qjaxiface.install()
    qjaxiface.install(executor="device")
    assert qjaxiface.is_installed()
    from qjaxiface.pennylane_hook import installed_executor

    assert installed_executor() == "device"
    qjaxiface.uninstall()
    qjaxiface.uninstall()
    assert _site_functions() == before
    assert not qjaxiface.is_installed()


def test_installed_context_restores_previous_state():
    with qjaxiface.installed():
        assert qjaxiface.is_installed()
        with qjaxiface.installed(executor="device"):
            assert qjaxiface.is_installed()
        assert qjaxiface.is_installed()  # still installed: the outer block installed it
    assert not qjaxiface.is_installed()


def test_install_rejects_unknown_executor():
    with pytest.raises(ValueError, match="executor='fast'"):
        qjaxiface.install(executor="fast")
    assert not qjaxiface.is_installed()


@pytest.mark.parametrize("interface", ["jax", "jax-jit", "auto"])
def test_jax_qnodes_are_routed(interface, caplog):
    circuit = _circuit(interface)
    with qjaxiface.installed(), caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        value = circuit(jnp.array(0.3))
        grad = jax.grad(circuit)(jnp.array(0.3))
    assert _routed(caplog)
    np.testing.assert_allclose(value, np.cos(0.3))
    np.testing.assert_allclose(grad, -np.sin(0.3))


@pytest.mark.parametrize("interface, arg", [("autograd", qml.numpy.array(0.3)), ("auto", 0.3)])
def test_other_interfaces_are_untouched(interface, arg, caplog):
    circuit = _circuit(interface)
    expected = circuit(arg)
    with qjaxiface.installed(), caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        value = circuit(arg)
    assert not _routed(caplog)
    np.testing.assert_allclose(value, expected)
    assert not isinstance(value, jax.Array)


def test_qml_execute_is_routed(caplog):
    tape = qml.tape.QuantumScript([qml.RX(jnp.array(0.2), 0)], [qml.expval(qml.Z(0))])
    with qjaxiface.installed(), caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        (res,) = qml.execute([tape], qml.device("default.qubit"), diff_method="parameter-shift")
    assert _routed(caplog)
    np.testing.assert_allclose(res, np.cos(0.2))


def test_router_keeps_pennylane_signature_metadata():
    qjaxiface.install()
    assert qml.execute.__name__ == "execute"
    assert qml.execute.__doc__ == qml.workflow.execution.execute.__wrapped__.__doc__


def test_uninstalled_pennylane_still_works_after_routing():
    circuit = _circuit("jax")
    with qjaxiface.installed():
        circuit(jnp.array(0.1))
    np.testing.assert_allclose(jax.jit(circuit)(jnp.array(0.1)), np.cos(0.1))
