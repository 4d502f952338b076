"""The four bindings used directly with PennyLane's Jacobian-product calculators."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from jax.test_util import check_grads
from pennylane.workflow.jacobian_products import (
    DeviceDerivatives,
    DeviceJacobianProducts,
    TransformJacobianProducts,
)

from qjaxiface import (
    jax_jit_jvp_execute,
    jax_jit_vjp_execute,
    jax_jvp_execute,
    jax_vjp_execute,
)

DEV = qml.device("default.qubit")
ADJOINT = qml.devices.ExecutionConfig(
    gradient_method="adjoint", use_device_gradient=True, use_device_jacobian_product=True
)


def _execute_fn(tapes):
    return DEV.execute(tapes)


def _tapes(x, y):
    t1 = qml.tape.QuantumScript([qml.RX(x, 0), qml.RY(y, 0)], [qml.expval(qml.Z(0))])
    t2 = qml.tape.QuantumScript(
        [qml.RY(x, 0), qml.CNOT([0, 1])], [qml.expval(qml.X(0)), qml.expval(qml.Z(1))]
    )
    for t in (t1, t2):
        t.trainable_params = list(range(len(t.get_parameters(trainable_only=False))))
    return [t1, t2]


def _scalar(binding, jpc):
    def f(x, y):
        r1, (e2, z2) = binding(_tapes(x, y), _execute_fn, jpc, DEV)
        return r1 + 2 * e2 + 3 * z2

    return f


def _expected(x, y):
    # CNOT maps X0 to X0 X1, whose expectation vanishes here.
    return jnp.cos(x) * jnp.cos(y) + 3 * jnp.cos(x)


JVP_JPCS = {
    "param-shift": TransformJacobianProducts(_execute_fn, qml.gradients.param_shift),
    "device-derivatives": DeviceDerivatives(DEV, ADJOINT),
}
VJP_JPCS = {"device-vjp": DeviceJacobianProducts(DEV, ADJOINT)}


@pytest.mark.parametrize("jpc", JVP_JPCS.values(), ids=JVP_JPCS)
@pytest.mark.parametrize("binding", [jax_jvp_execute, jax_jit_jvp_execute])
def test_jvp_bindings_values_and_check_grads(binding, jpc):
    f = _scalar(binding, jpc)
    x, y = jnp.array(0.3), jnp.array(-0.8)
    np.testing.assert_allclose(f(x, y), _expected(0.3, -0.8), atol=1e-10)
    np.testing.assert_allclose(jax.jit(f)(x, y), _expected(0.3, -0.8), atol=1e-10)
    check_grads(f, (x, y), order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)
    check_grads(jax.jit(f), (x, y), order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("jpc", VJP_JPCS.values(), ids=VJP_JPCS)
@pytest.mark.parametrize("binding", [jax_vjp_execute, jax_jit_vjp_execute])
def test_vjp_bindings_reverse_mode(binding, jpc):
    f = _scalar(binding, jpc)
    x, y = jnp.array(0.3), jnp.array(-0.8)
    np.testing.assert_allclose(jax.jit(f)(x, y), _expected(0.3, -0.8), atol=1e-10)
    check_grads(f, (x, y), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)
    check_grads(jax.jit(f), (x, y), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="reverse mode only"):
        jax.jvp(f, (x, y), (1.0, 0.0))


@pytest.mark.parametrize("binding", [jax_jvp_execute, jax_jit_jvp_execute])
def test_vmap_of_binding_gradients(binding):
    f = _scalar(binding, JVP_JPCS["param-shift"])
    xs = jnp.linspace(-1, 1, 4)
    grads = jax.vmap(jax.grad(f), in_axes=(0, None))(xs, -0.8)
    expected = jax.vmap(jax.grad(_expected), in_axes=(0, None))(xs, -0.8)
    np.testing.assert_allclose(grads, expected, atol=1e-8)


def test_jit_binding_refuses_counts_with_guidance():
    tape = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.counts()], shots=5)
    with pytest.raises(NotImplementedError, match="measure counts under jit as samples"):
        jax_jit_jvp_execute([tape], _execute_fn, JVP_JPCS["param-shift"], DEV)


def test_jit_binding_without_device_uses_tape_wires():
    def f(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0), qml.X(1)], [qml.probs()])
        tape.trainable_params = [0]
        return jax_jit_jvp_execute([tape], _execute_fn, JVP_JPCS["param-shift"])[0]

    probs = jax.jit(f)(0.0)
    np.testing.assert_allclose(probs, [0, 1, 0, 0], atol=1e-12)
