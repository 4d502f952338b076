"""NaN and inf parameters propagate as NaN/inf through every route; nothing crashes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from reliability_helpers import execute_one

# NumPy warns about the invalid values on the host; that is the point of these tests.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

CONFIGS = {
    "parameter-shift": dict(diff_method="parameter-shift", executor="device"),
    "finite-diff": dict(diff_method="finite-diff", executor="device"),
    "adjoint": dict(diff_method="adjoint", executor="device"),
    "adjoint-device-vjp": dict(diff_method="adjoint", device_vjp=True, executor="device"),
    "backprop": dict(diff_method="backprop"),
    "auto-executor": dict(diff_method="parameter-shift", executor="auto"),
}


def _tape(x, measurement):
    return qml.tape.QuantumScript([qml.RX(x, 0), qml.CNOT([0, 1]), qml.RY(0.3, 1)], [measurement])


@pytest.fixture
def dev():
    return qml.device("default.qubit", wires=2)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("route", ["eager", "jit"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_nonfinite_parameter_gives_nonfinite_value_and_gradient(dev, config, route, value):
    kwargs = CONFIGS[config]

    def cost(x):
        return execute_one(_tape(x, qml.expval(qml.Z(0) @ qml.Z(1))), dev, **kwargs)

    fn = jax.value_and_grad(cost)
    if route == "jit":
        fn = jax.jit(fn)
    res, grad = fn(jnp.array(value))
    # cos(nan) and cos(±inf) are NaN; so is the derivative.
    assert np.isnan(res), res
    assert np.isnan(grad), grad


@pytest.mark.parametrize("route", ["eager", "jit"])
@pytest.mark.parametrize("config", ["parameter-shift", "adjoint", "backprop", "auto-executor"])
def test_nan_in_probs_and_jacobian(dev, config, route):
    kwargs = CONFIGS[config]
    # adjoint differentiates expectation values only.
    measurement = qml.expval(qml.Z(0)) if config == "adjoint" else qml.probs(wires=[0, 1])

    def cost(x):
        return execute_one(_tape(x, measurement), dev, **kwargs)

    jac = jax.jacobian(cost) if route == "eager" else jax.jit(jax.jacobian(cost))
    value = cost(jnp.array(np.nan)) if route == "eager" else jax.jit(cost)(jnp.array(np.nan))
    assert np.all(np.isnan(value))
    assert np.all(np.isnan(jac(jnp.array(np.nan))))


@pytest.mark.parametrize("config", ["parameter-shift", "adjoint-device-vjp", "auto-executor"])
def test_one_nan_in_a_vmapped_batch_leaves_the_others_intact(dev, config):
    kwargs = CONFIGS[config]

    def cost(x):
        return execute_one(_tape(x, qml.expval(qml.Z(0))), dev, **kwargs)

    xs = jnp.array([0.1, np.nan, 0.5, np.inf])
    values = jax.jit(jax.vmap(cost))(xs)
    grads = jax.jit(jax.vmap(jax.grad(cost)))(xs)
    np.testing.assert_allclose(np.asarray(values)[[0, 2]], np.cos([0.1, 0.5]))
    np.testing.assert_allclose(np.asarray(grads)[[0, 2]], -np.sin([0.1, 0.5]))
    assert np.all(np.isnan(np.asarray(values)[[1, 3]])) and np.all(
        np.isnan(np.asarray(grads)[[1, 3]])
    )


def test_nan_in_a_broadcast_parameter(dev):
    def cost(x):
        return execute_one(_tape(x, qml.expval(qml.Z(0))), dev, diff_method="parameter-shift")

    xs = jnp.array([0.1, np.nan, 0.5])
    for fn in (cost, jax.jit(cost)):
        values = fn(xs)
        np.testing.assert_allclose(np.asarray(values)[[0, 2]], np.cos([0.1, 0.5]))
        assert np.isnan(values[1])
    jac = jax.jit(jax.jacobian(cost))(xs)
    np.testing.assert_allclose(np.diag(np.asarray(jac))[[0, 2]], -np.sin([0.1, 0.5]))
    assert np.isnan(jac[1, 1])


def test_finite_after_nonfinite(dev):
    """A NaN call does not poison later calls of the same compiled function."""

    def cost(x):
        return execute_one(_tape(x, qml.expval(qml.Z(0))), dev, diff_method="parameter-shift")

    fn = jax.jit(jax.value_and_grad(cost))
    fn(jnp.array(np.nan))
    np.testing.assert_allclose(fn(jnp.array(0.2)), [np.cos(0.2), -np.sin(0.2)])
