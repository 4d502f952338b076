"""Gradient transforms run inside the eager JVP rule: pulses, array-valued gate parameters.

Under eager ``jax.grad`` JAX runs the ``custom_jvp`` rule with the tangent trace current. A
gradient transform that builds operators with ``jnp`` there (``stoch_pulse_grad`` splits each
``ParametrizedEvolution``, which casts its parameters with ``jnp.array``) used to hand the device
tracers (``ValueError: Converting a JAX array to a NumPy array not supported when using the JAX
JIT``). Found by PennyLane's ``test_pulse_gradient.py::TestStochPulseGradIntegration``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import assert_tree_allclose, builtin_boundary

import qjaxiface
from qjaxiface.boundary._jvp import jvp_from_jacobian


def _drive_qnode(diff_method, **gradient_kwargs):
    H = qml.pulse.transmon_drive(qml.pulse.constant, 0.0, 0.0, wires=[0])

    def ansatz(params):
        qml.evolve(H, atol=1e-5)(params, t=0.4)
        return qml.expval(qml.Z(0))

    dev = qml.device("default.qubit", wires=1)
    return qml.QNode(
        ansatz, dev, interface="jax", diff_method=diff_method, gradient_kwargs=gradient_kwargs
    )


def _array_parameter_qnode(diff_method, **gradient_kwargs):
    ham = qml.pulse.constant * qml.X(0) + jnp.polyval * (qml.Y(0) @ qml.Y(1))

    def ansatz(params):
        qml.evolve(ham)(params, 0.1)
        return qml.expval(qml.Y(0) @ qml.X(1))

    dev = qml.device("default.qubit", wires=2)
    return qml.QNode(
        ansatz, dev, interface="jax", diff_method=diff_method, gradient_kwargs=gradient_kwargs
    )


def test_stoch_pulse_grad_eagerly_matches_pennylane_and_backprop():
    params = (jnp.array(0.42),)
    kwargs = {"num_split_times": 2, "sampler_seed": 7}
    with builtin_boundary():
        reference = jax.grad(_drive_qnode(qml.gradients.stoch_pulse_grad, **kwargs))(params)
    with qjaxiface.installed():
        got = jax.grad(_drive_qnode(qml.gradients.stoch_pulse_grad, **kwargs))(params)
        exact = jax.grad(_drive_qnode("backprop"))(params)
    assert_tree_allclose(got, reference, atol=1e-10)
    assert_tree_allclose(got, exact, atol=6e-5)


@pytest.mark.slow
def test_array_valued_parameter_gets_its_jvp():
    # The polynomial's coefficients are one gate parameter of shape (3,).
    params = [jnp.array(0.21), jnp.array([0.05, 0.03, -0.1])]
    kwargs = {"num_split_times": 2, "sampler_seed": 3}
    with builtin_boundary():
        reference = jax.grad(_array_parameter_qnode(qml.gradients.stoch_pulse_grad, **kwargs))(
            params
        )
    with qjaxiface.installed():
        got = jax.grad(_array_parameter_qnode(qml.gradients.stoch_pulse_grad, **kwargs))(params)
        # Under jit the Jacobian comes back through a callback, whose declared shapes must
        # include the parameter's.
        jitted = jax.jit(
            jax.grad(_array_parameter_qnode(qml.gradients.stoch_pulse_grad, **kwargs))
        )(params)
    assert got[1].shape == (3,)
    assert_tree_allclose(got, reference, atol=1e-10)
    assert_tree_allclose(jitted, reference, atol=1e-10)


@pytest.mark.parametrize("param_shape", [(3,), (2, 2)])
def test_jvp_of_an_array_parameter_contracts_its_axes(param_shape):
    tape = qml.tape.QuantumScript([], [qml.expval(qml.Z(0)), qml.probs(wires=[0])])
    result = (jnp.array(0.5), jnp.array([0.75, 0.25]))
    rng = np.random.default_rng(0)
    jac = (rng.normal(size=param_shape), rng.normal(size=(2, *param_shape)))
    tangent = rng.normal(size=param_shape)
    jvp = jvp_from_jacobian(jac, [tangent], tape, result)
    np.testing.assert_allclose(jvp[0], np.sum(jac[0] * tangent))
    np.testing.assert_allclose(jvp[1], np.tensordot(jac[1], tangent, axes=len(param_shape)))


def test_a_parameter_whose_shape_the_jacobian_does_not_end_with_is_refused():
    tape = qml.tape.QuantumScript([], [qml.expval(qml.Z(0))])
    with pytest.raises(ValueError, match="array-valued gate parameter of shape \\(3,\\)"):
        jvp_from_jacobian(np.ones(2), [np.ones(3)], tape, jnp.array(0.5))
