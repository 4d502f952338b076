"""Bad input gets a clear exception (what was wrong, what to do) or a correct result.

Never a crash inside JAX internals and never a leaked tracer: every failing traced call runs
under ``jax.checking_leaks()`` and is followed by a working call. Where it matters the behaviour
is compared with PennyLane's built-in boundary (qjaxiface uninstalled).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import builtin_boundary
from pennylane import numpy as pnp
from pennylane.exceptions import MeasurementShapeError, QuantumFunctionError
from reliability_helpers import execute_one, ry_cnot_tape

import qjaxiface

X = jnp.array(0.4)


@pytest.fixture
def dev():
    return qml.device("default.qubit", wires=2)


def _still_works(dev):
    """After an error the process (and JAX's trace state) is fine."""
    value = jax.jit(lambda x: execute_one(ry_cnot_tape(x), dev, diff_method="parameter-shift"))(X)
    np.testing.assert_allclose(value, np.cos(0.4))


def _traced(fn):
    """Run ``fn`` under jit with leak checking on."""

    def run(*args):
        with jax.checking_leaks():
            return jax.jit(fn)(*args)

    return run


# --- arguments of execute ---------------------------------------------------------------------


@pytest.mark.parametrize("interface", ["torch", "autograd", "tf", "numpy", "bogus", None])
def test_unknown_interface(dev, interface):
    with pytest.raises(
        ValueError, match=r"accepts only 'auto', 'jax', 'jax-jit'.*pennylane\.execute"
    ):
        qjaxiface.execute([ry_cnot_tape(X)], dev, interface=interface)


@pytest.mark.parametrize("traced", [False, True])
def test_unknown_diff_method_matches_builtin(dev, traced):
    def cost(x):
        return execute_one(ry_cnot_tape(x), dev, diff_method="bogus")

    run = _traced(cost) if traced else cost
    match = r"bogus not recognized\. Allowed options"
    with pytest.raises(QuantumFunctionError, match=match):
        run(X)
    # PennyLane refuses the same name with the same error when the QNode is built.
    with builtin_boundary(), pytest.raises(QuantumFunctionError, match=match):
        qml.QNode(lambda x: qml.expval(qml.Z(0)), dev, diff_method="bogus", interface="jax")
    _still_works(dev)


def test_unknown_executor(dev):
    with pytest.raises(ValueError, match=r"executor='gpu'; use one of 'auto', 'device', 'xla'"):
        qjaxiface.execute([ry_cnot_tape(X)], dev, executor="gpu")
    with pytest.raises(ValueError, match=r"executor='gpu'"):
        qjaxiface.install(executor="gpu")
    assert not qjaxiface.is_installed()


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_empty_batch_returns_empty_tuple(dev, route):
    if route == "eager":
        assert qjaxiface.execute([], dev) == ()
    else:
        assert jax.jit(lambda x: (qjaxiface.execute([], dev), x))(X)[0] == ()
    with qjaxiface.installed():
        assert qml.execute([], dev, diff_method="parameter-shift") == ()


# --- parameters -------------------------------------------------------------------------------


def _mixed_tape(x, other):
    return qml.tape.QuantumScript(
        [qml.RX(x, 0), qml.RY(other, 0), qml.RZ(0.2, 0)], [qml.expval(qml.Z(0))]
    )


@pytest.mark.parametrize(
    "other",
    [np.float64(0.3), 0.3, pnp.array(0.3, requires_grad=True), np.array(0.3)],
    ids=["numpy-scalar", "python-float", "autograd-trainable", "numpy-array"],
)
@pytest.mark.parametrize("route", ["eager", "jit"])
def test_non_jax_leaves_are_constants(dev, other, route):
    """Non-JAX parameters mixed with JAX ones are constants; the JAX ones are differentiated."""

    def cost(x):
        return execute_one(_mixed_tape(x, other), dev, diff_method="parameter-shift")

    grad = jax.grad(cost) if route == "eager" else jax.jit(jax.grad(cost))
    # <Z> = cos(x) cos(0.3) after RX(x) RY(0.3): d/dx = -sin(x) cos(0.3).
    np.testing.assert_allclose(cost(X), np.cos(0.4) * np.cos(0.3))
    np.testing.assert_allclose(grad(X), -np.sin(0.4) * np.cos(0.3))


def test_mixed_qnode_arguments_match_builtin(dev):
    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(x, y):
        qml.RX(x, 0)
        qml.RY(y, 0)
        return qml.expval(qml.Z(0))

    y = pnp.array(0.3, requires_grad=True)
    with builtin_boundary():
        expected = (circuit(X, y), jax.grad(circuit)(X, y))
    with qjaxiface.installed():
        actual = (circuit(X, y), jax.grad(circuit)(X, y))
        jitted = jax.jit(jax.grad(circuit), static_argnums=())(X, 0.3)
    np.testing.assert_allclose(actual, expected)
    np.testing.assert_allclose(jitted, expected[1])


@pytest.mark.parametrize("route", ["eager", "jit", "jacobian"])
def test_mismatched_broadcast_sizes(dev, route):
    def cost(a, b):
        tape = qml.tape.QuantumScript([qml.RX(a, 0), qml.RY(b, 1)], [qml.expval(qml.Z(0))])
        return execute_one(tape, dev, diff_method="parameter-shift")

    a, b = jnp.array([0.1, 0.2, 0.3]), jnp.array([0.1, 0.2])
    run = {"eager": cost, "jit": _traced(cost), "jacobian": jax.jacobian(cost)}[route]
    with pytest.raises(ValueError, match=r"include 3 and 2\. Give every broadcast parameter"):
        run(a, b)
    _still_works(dev)


def test_mismatched_broadcast_sizes_builtin_comparison(dev):
    """PennyLane's boundary fails eagerly with NumPy's broadcast error; qjaxiface explains it."""

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(a, b):
        qml.RX(a, 0)
        qml.RY(b, 1)
        return qml.expval(qml.Z(0))

    a, b = jnp.array([0.1, 0.2, 0.3]), jnp.array([0.1, 0.2])
    with builtin_boundary(), pytest.raises(ValueError):
        circuit(a, b)
    with qjaxiface.installed(), pytest.raises(ValueError, match="same length"):
        circuit(a, b)


@pytest.mark.parametrize("route", ["eager", "jit", "grad"])
def test_wrong_parameter_rank(dev, route):
    def cost(a):
        tape = qml.tape.QuantumScript([qml.RX(a, 0)], [qml.expval(qml.Z(0))])
        return jnp.sum(execute_one(tape, dev, diff_method="parameter-shift"))

    run = {"eager": cost, "jit": _traced(cost), "grad": jax.grad(cost)}[route]
    with pytest.raises(ValueError, match=r"wrong number\(s\) of dimensions.*Pass each gate"):
        run(jnp.ones((2, 2)))
    _still_works(dev)


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_wrong_matrix_shape(dev, route):
    def cost(u):
        tape = qml.tape.QuantumScript([qml.QubitUnitary(u, wires=0)], [qml.expval(qml.Z(0))])
        return execute_one(tape, dev, diff_method="parameter-shift")

    run = _traced(cost) if route == "jit" else cost
    with pytest.raises(ValueError, match=r"must be of shape \(2, 2\)"):
        run(jnp.eye(3))
    _still_works(dev)


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_matrix_valued_parameter_with_parameter_shift_matches_backprop(dev, route):
    """A matrix-valued gate parameter under a gradient transform: correct, or a clear error."""

    def cost(a, diff_method):
        u = qml.RY.compute_matrix(a)
        tape = qml.tape.QuantumScript([qml.QubitUnitary(u, wires=0)], [qml.expval(qml.Z(0))])
        return execute_one(tape, dev, diff_method=diff_method)

    grad = jax.grad(cost) if route == "eager" else jax.jit(jax.grad(cost), static_argnums=1)
    np.testing.assert_allclose(grad(X, "parameter-shift"), -np.sin(0.4), atol=1e-7)
    np.testing.assert_allclose(grad(X, "backprop"), -np.sin(0.4), atol=1e-7)


# --- measurements the binding cannot shape -----------------------------------------------------


def test_analytic_sample_under_jit_says_to_set_shots(dev):
    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.sample(wires=0)])
        return execute_one(tape, dev, diff_method="parameter-shift", executor="device")

    with pytest.raises(MeasurementShapeError, match="finite shots"):
        _traced(cost)(X)
    # Eagerly the device itself refuses, as with PennyLane's boundary.
    with pytest.raises(qml.exceptions.DeviceError, match="analytic"):
        cost(X)
    _still_works(dev)


def test_state_with_parameter_shift_fails_at_trace_time_like_eager(dev):
    """Formerly a JaxRuntimeError from inside the jitted computation."""

    def jac(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.state()])
        return jax.jacobian(
            lambda y: (
                execute_one(
                    tape.bind_new_parameters([y], [0]), dev, diff_method="parameter-shift"
                ).real
            )
        )(x)

    match = "return the state with the parameter-shift rule"
    with pytest.raises(ValueError, match=match):
        jac(X)
    with pytest.raises(ValueError, match=match):
        _traced(jac)(X)
    _still_works(dev)


def test_counts_of_several_mid_circuit_measurements_under_jit(dev):
    def cost(x):
        m0 = qml.measure(0)
        m1 = qml.measure(1)
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), *m0.measurements, *m1.measurements],
            [qml.counts([m0, m1])],
            shots=10,
        )
        return execute_one(tape, dev, diff_method=None, mcm_method="one-shot")

    with pytest.raises(NotImplementedError, match=r"measure qml\.sample\(\[\.\.\.\]\)"):
        _traced(cost)(X)
    _still_works(dev)


def test_counts_through_a_raw_jit_binding_says_to_use_execute(dev):
    from pennylane.workflow.jacobian_products import TransformJacobianProducts

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.counts(wires=0)], shots=10)
        tape.trainable_params = [0]
        jpc = TransformJacobianProducts(dev.execute, qml.gradients.param_shift)
        return qjaxiface.jax_jit_jvp_execute([tape], dev.execute, jpc, dev)

    with pytest.raises(NotImplementedError, match=r"call the bindings through qjaxiface\.execute"):
        _traced(cost)(X)


# --- derivative modes -------------------------------------------------------------------------

_FORWARD = {
    "jacfwd": lambda f: jax.jacfwd(f),
    "jvp": lambda f: lambda x: jax.jvp(f, (x,), (jnp.ones_like(x),)),
    "hessian": lambda f: jax.hessian(f),
    "jit-jacfwd": lambda f: jax.jit(jax.jacfwd(f)),
    "jit-hessian": lambda f: jax.jit(jax.hessian(f)),
}


@pytest.mark.parametrize("mode", sorted(_FORWARD))
def test_forward_mode_with_device_vjps_says_use_reverse_mode(dev, mode):
    def cost(x):
        return execute_one(ry_cnot_tape(x), dev, diff_method="adjoint", device_vjp=True)

    match = r"reverse mode.*pass device_vjp=False"
    with pytest.raises(TypeError, match=match) as info, jax.checking_leaks():
        _FORWARD[mode](cost)(X)
    assert "forward-mode" not in type(info.value).__name__
    # Reverse mode on the same function works.
    np.testing.assert_allclose(jax.grad(cost)(X), -np.sin(0.4))
    np.testing.assert_allclose(jax.jit(jax.jacrev(cost))(X), -np.sin(0.4))


def test_forward_mode_with_device_vjps_through_the_hook(dev):
    @qml.qnode(dev, diff_method="adjoint", device_vjp=True, interface="jax")
    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    with qjaxiface.installed():
        for run in (jax.jacfwd(circuit), jax.jit(jax.jacfwd(circuit))):
            with pytest.raises(TypeError, match="device_vjp=False"):
                run(X)


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_second_derivative_of_a_first_order_method(dev, route):
    def cost(x):
        return execute_one(ry_cnot_tape(x), dev, diff_method="adjoint", executor="device")

    run = jax.hessian(cost) if route == "eager" else jax.jit(jax.hessian(cost))
    with pytest.raises(ValueError, match="max_diff=2"):
        run(X)
    _still_works(dev)


def test_second_derivative_of_xla_adjoint_is_exact(dev):
    """On the XLA executor the adjoint rule is itself JAX code, so it differentiates exactly."""

    def cost(x):
        return execute_one(ry_cnot_tape(x), dev, diff_method="adjoint", executor="xla")

    np.testing.assert_allclose(jax.jit(jax.hessian(cost))(X), -np.cos(0.4), atol=1e-10)
