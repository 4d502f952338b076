"""Exceptions raised by a device reach the user with their own type, message and cause.

Every entry point of the device is made to fail (forward execution, device derivatives in the
backward pass, device VJPs) on every route: eager, a concrete ``"jax-jit"`` execution, inside
``jax.jit`` (the host callback), and under ``vmap``. Afterwards the same (already compiled)
functions must work again.
"""

from __future__ import annotations

import logging
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import builtin_boundary
from reliability_helpers import DeviceFault, FaultyQubit, execute_one, ry_cnot_tape

import qjaxiface
from qjaxiface import faults

X = jnp.array(0.4)


@pytest.fixture(autouse=True)
def _quiet_jax_callback_log():
    """JAX logs every failing callback at ERROR level; the tests expect those failures."""
    log = logging.getLogger("jax._src.callback")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


@pytest.fixture
def dev():
    return FaultyQubit(wires=2)


def _assert_is_the_device_fault(err: BaseException, what: str):
    assert type(err) is DeviceFault
    assert str(err) == f"{what} failed on purpose"
    # The device's own cause is kept. (In a backward pass JAX inserts its
    # JaxStackTraceBeforeTransformation note into the chain, as for any exception there.)
    causes = []
    cause = err.__cause__
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__
    assert any(type(c) is OSError and str(c) == f"low-level {what} failure" for c in causes), causes
    frames = [f.name for f in traceback.extract_tb(err.__traceback__)]
    assert "_maybe_fail" in frames, frames  # the device's own frame is kept


def _cost(dev, **kwargs):
    kwargs.setdefault("executor", "device")
    return lambda x: execute_one(ry_cnot_tape(x), dev, **kwargs)


# --- forward execution ----------------------------------------------------------------------


@pytest.mark.parametrize("diff_method", ["parameter-shift", "adjoint", "backprop", None])
def test_eager_forward_fault_is_the_original(dev, diff_method):
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info:
        _cost(dev, diff_method=diff_method)(X)
    _assert_is_the_device_fault(info.value, "execute")


def test_concrete_jax_jit_interface_fault_is_the_original(dev):
    """interface='jax-jit' with concrete values runs the callback inside qjaxiface."""
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info:
        _cost(dev, diff_method="parameter-shift", interface="jax-jit")(X)
    _assert_is_the_device_fault(info.value, "execute")


def test_jit_fault_without_translation_says_what_it_was_and_what_to_do(dev):
    """Inside jax.jit JAX itself raises; its message names the fault and the remedy."""
    dev.fail = {"execute"}
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        jax.jit(_cost(dev, diff_method="parameter-shift"))(X)
    message = str(info.value)
    assert "DeviceFault: execute failed on purpose" in message
    assert "qjaxiface.reraise_device_errors()" in message


def test_jit_fault_text_holds_the_devices_own_traceback(dev):
    """JaxRuntimeError shows only the marker's frames: the marker's text adds the device's own."""
    dev.fail = {"execute"}
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        jax.jit(_cost(dev, diff_method="parameter-shift"))(X)
    message = str(info.value)
    assert "The original exception:" in message
    assert "_maybe_fail" in message  # the device's frame
    assert "OSError: low-level execute failure" in message  # and its cause


@pytest.fixture
def callback_log(caplog):
    """JAX's own ERROR records for failing callbacks, at the level a user's logging shows."""
    log = logging.getLogger("jax._src.callback")
    level = log.level
    log.setLevel(logging.ERROR)
    with caplog.at_level(logging.ERROR, logger="jax._src.callback"):
        yield caplog
    log.setLevel(level)


@pytest.mark.parametrize("route", ["concrete-jax-jit", "jit"])
def test_a_fault_is_reported_once_without_jaxs_logged_traceback(dev, callback_log, route):
    """JAX logs every failing callback; for qjaxiface's callbacks the raised error says it all."""
    dev.fail = {"execute"}
    if route == "jit":
        with pytest.raises(jax.errors.JaxRuntimeError):
            jax.jit(_cost(dev, diff_method="parameter-shift"))(X)
    else:
        with pytest.raises(DeviceFault):
            _cost(dev, diff_method="parameter-shift", interface="jax-jit")(X)
    assert [r for r in callback_log.records if r.name == "jax._src.callback"] == []


def test_other_callbacks_are_still_logged_by_jax(callback_log):
    with pytest.raises(jax.errors.JaxRuntimeError):
        jax.jit(lambda x: jax.pure_callback(_raise_value_error, x, x))(X)
    assert any("pure_callback failed" in r.getMessage() for r in callback_log.records)


def test_an_automatic_reraise_carries_a_one_line_hint_once(dev):
    """qjaxiface re-raised it by itself: the note says how to get the same under one's own jit."""
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info:
        _cost(dev, diff_method="parameter-shift", interface="jax-jit")(X)
    assert info.value.__notes__.count(faults.AUTO_NOTE) == 1
    assert "\n" not in faults.AUTO_NOTE and "reraise_device_errors()" in faults.AUTO_NOTE


def test_an_installed_qnode_called_from_python_raises_the_device_fault(dev):
    """An installed QNode declared "jax-jit", called eagerly: no context manager needed."""

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax-jit")
    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    dev.fail = {"execute"}
    with qjaxiface.installed(executor="device"):
        for fn in (circuit, jax.grad(circuit)):
            with pytest.raises(DeviceFault) as info:
                fn(X)
            _assert_is_the_device_fault(info.value, "execute")
            assert info.value.__notes__.count(faults.AUTO_NOTE) == 1


def test_reraise_device_errors_adds_no_hint(dev):
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info, qjaxiface.reraise_device_errors():
        jax.jit(_cost(dev, diff_method="parameter-shift"))(X)
    assert faults.AUTO_NOTE not in getattr(info.value, "__notes__", [])


def test_builtin_boundary_also_loses_the_type_under_jit(dev):
    """For comparison: PennyLane's own boundary (qjaxiface uninstalled) under jit."""
    dev.fail = {"execute"}

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax-jit")
    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    with builtin_boundary(), pytest.raises(Exception) as info:
        jax.jit(circuit)(X)
    assert type(info.value) is not DeviceFault
    assert "execute failed on purpose" in str(info.value)


@pytest.mark.parametrize("transform", ["jit", "jit-grad", "jit-vmap"])
def test_jit_fault_is_the_original_inside_reraise_device_errors(dev, transform):
    cost = _cost(dev, diff_method="parameter-shift")
    fn = {
        "jit": jax.jit(cost),
        "jit-grad": jax.jit(jax.grad(cost)),
        "jit-vmap": jax.jit(jax.vmap(cost)),
    }[transform]
    arg = jnp.array([0.1, 0.2]) if transform == "jit-vmap" else X
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info, qjaxiface.reraise_device_errors():
        fn(arg)
    _assert_is_the_device_fault(info.value, "execute")
    # The compiled function is not poisoned: same executable, correct values.
    dev.fail = set()
    expected = {
        "jit": np.cos(0.4),
        "jit-grad": -np.sin(0.4),
        "jit-vmap": np.cos([0.1, 0.2]),
    }[transform]
    np.testing.assert_allclose(fn(arg), expected, atol=1e-7)


def test_reraise_device_errors_as_decorator(dev):
    dev.fail = {"execute"}

    @qjaxiface.reraise_device_errors()
    def run():
        return jax.jit(_cost(dev, diff_method="parameter-shift"))(X)

    with pytest.raises(DeviceFault) as info:
        run()
    _assert_is_the_device_fault(info.value, "execute")


def test_reraise_device_errors_leaves_other_exceptions_alone():
    with pytest.raises(KeyError, match="unrelated"), qjaxiface.reraise_device_errors():
        raise KeyError("unrelated")
    with pytest.raises(jax.errors.JaxRuntimeError), qjaxiface.reraise_device_errors():
        # A callback failure that is not qjaxiface's stays JAX's.
        jax.jit(lambda x: jax.pure_callback(_raise_value_error, x, x))(X)


def _raise_value_error(x):
    raise ValueError("not a qjaxiface callback")


def test_eager_vmap_fault_is_the_original(dev):
    """vmap outside jit runs the batched callback inside qjaxiface."""
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault) as info:
        jax.vmap(_cost(dev, diff_method="parameter-shift"))(jnp.array([0.1, 0.2]))
    _assert_is_the_device_fault(info.value, "execute")


# --- backward pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_backward_device_derivative_fault_is_the_original(dev, route):
    """Adjoint derivatives on the backward pass (grad_on_execution=False) fail; forward is fine."""
    cost = _cost(dev, diff_method="adjoint", grad_on_execution=False)
    dev.fail = {"derivatives"}
    np.testing.assert_allclose(cost(X), np.cos(0.4))  # the forward pass does not need them
    grad = jax.grad(cost) if route == "eager" else jax.jit(jax.grad(cost))
    with pytest.raises(DeviceFault) as info, qjaxiface.reraise_device_errors():
        grad(X)
    _assert_is_the_device_fault(info.value, "derivatives")
    dev.fail = set()
    np.testing.assert_allclose(grad(X), -np.sin(0.4))


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_backward_device_vjp_fault_is_the_original(dev, route):
    cost = _cost(dev, diff_method="adjoint", device_vjp=True)
    dev.fail = {"vjp"}
    grad = jax.grad(cost) if route == "eager" else jax.jit(jax.grad(cost))
    if route == "eager":
        # The eager backward pass runs its callback inside qjaxiface: no context manager needed.
        with pytest.raises(DeviceFault) as info:
            grad(X)
    else:
        with pytest.raises(DeviceFault) as info, qjaxiface.reraise_device_errors():
            grad(X)
    _assert_is_the_device_fault(info.value, "vjp")
    dev.fail = set()
    np.testing.assert_allclose(grad(X), -np.sin(0.4))


def test_backward_fault_in_parameter_shift_tapes(dev):
    """The shifted executions of parameter-shift fail on the backward pass (eager)."""
    cost = _cost(dev, diff_method="parameter-shift")
    value = cost(X)
    dev.fail = {"execute"}
    with pytest.raises(DeviceFault):
        jax.grad(cost)(X)
    dev.fail = set()
    np.testing.assert_allclose(value, np.cos(0.4))
    np.testing.assert_allclose(jax.grad(cost)(X), -np.sin(0.4))


# --- through the install hook, and compared with PennyLane ------------------------------------


@pytest.mark.parametrize("installed", [False, True])
def test_qnode_eager_fault_matches_builtin(dev, installed):
    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    dev.fail = {"execute"}
    if installed:
        with qjaxiface.installed(executor="device"), pytest.raises(DeviceFault) as info:
            circuit(X)
    else:
        with builtin_boundary(), pytest.raises(DeviceFault) as info:
            circuit(X)
    _assert_is_the_device_fault(info.value, "execute")


def test_qnode_jit_fault_through_the_hook(dev):
    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    with qjaxiface.installed(executor="device"):
        jitted = jax.jit(jax.value_and_grad(circuit))
        dev.fail = {"execute"}
        with pytest.raises(DeviceFault), qjaxiface.reraise_device_errors():
            jitted(X)
        dev.fail = set()
        value, grad = jitted(X)
    np.testing.assert_allclose([value, grad], [np.cos(0.4), -np.sin(0.4)])


# --- no poisoned state ------------------------------------------------------------------------


def test_untranslated_faults_do_not_accumulate(dev):
    """Faults nobody asks for are kept in a bounded registry only."""
    fn = jax.jit(_cost(dev, diff_method="parameter-shift"))
    dev.fail = {"execute"}
    for _ in range(faults._MAX_RECORDED + 10):
        with pytest.raises(jax.errors.JaxRuntimeError):
            fn(X)
    assert len(faults._recorded) <= faults._MAX_RECORDED
    dev.fail = set()
    np.testing.assert_allclose(fn(X), np.cos(0.4))


def test_a_translated_fault_is_forgotten(dev):
    dev.fail = {"execute"}
    faults._recorded.clear()
    with pytest.raises(DeviceFault), qjaxiface.reraise_device_errors():
        jax.jit(_cost(dev, diff_method="parameter-shift"))(X)
    assert len(faults._recorded) == 0
