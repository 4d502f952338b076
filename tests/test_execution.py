"""qjaxiface.execute against PennyLane's built-in boundary and closed forms."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import DerivativesOnlyDevice, assert_tree_allclose, builtin_boundary
from pennylane.workflow.jacobian_products import TransformJacobianProducts

import qjaxiface
from qjaxiface.boundary import choose_binding
from qjaxiface.detect import custom_rule_traces_primals

A, B = 0.4, -0.7


def _tapes(a, b):
    t1 = qml.tape.QuantumScript(
        [qml.RX(a, 0), qml.RY(b, 1), qml.CNOT([0, 1])],
        [qml.expval(qml.Z(0) @ qml.Z(1)), qml.probs(wires=[1])],
    )
    t2 = qml.tape.QuantumScript([qml.RY(a * b, 0)], [qml.expval(qml.X(0))])
    return [t1, t2]


def _closed_form(a, b):
    # <Z0 Z1> after RX(a)⊗RY(b), CNOT: <Z1> before CNOT = cos(b) -> cos(a) cos(b)... see below
    zz = jnp.cos(b)  # CNOT maps Z0Z1 -> Z1
    p1 = (1 + jnp.cos(a) * jnp.cos(b)) / 2  # P(wire1 = 0) after CNOT: <Z0 Z1> before
    return (zz, jnp.stack([p1, 1 - p1])), jnp.sin(a * b)


def _flat(res):
    (zz, probs), x = res
    return jnp.concatenate([jnp.atleast_1d(zz), probs, jnp.atleast_1d(x)])


CASES = [
    ("default.qubit", "backprop"),
    ("default.qubit", "parameter-shift"),
    ("default.qubit", "adjoint"),
    ("default.qubit", "finite-diff"),
    ("lightning.qubit", "parameter-shift"),
    ("lightning.qubit", "finite-diff"),
    ("default.mixed", "backprop"),
    ("default.mixed", "parameter-shift"),
    ("reference.qubit", "parameter-shift"),
]


def _cost(dev, diff_method, executor="auto", **kw):
    def cost(a, b):
        return _flat(
            qjaxiface.execute(_tapes(a, b), dev, diff_method=diff_method, executor=executor, **kw)
        )

    return cost


@pytest.mark.parametrize("devname, diff_method", CASES)
def test_values_and_jacobians_closed_form(devname, diff_method):
    dev = qml.device(devname, wires=2)
    cost = _cost(dev, diff_method)
    expected = _flat(_closed_form(A, B))
    expected_jac = jax.jacobian(lambda a, b: _flat(_closed_form(a, b)), argnums=(0, 1))(A, B)
    tol = 1e-5 if diff_method == "finite-diff" else 1e-8
    for fn in (cost, jax.jit(cost)):
        np.testing.assert_allclose(fn(A, B), expected, atol=1e-8)
    jac_fns = [
        jax.jacrev(cost, argnums=(0, 1)),
        jax.jacfwd(cost, argnums=(0, 1)),
        jax.jit(jax.jacrev(cost, argnums=(0, 1))),
        jax.jit(jax.jacfwd(cost, argnums=(0, 1))),
    ]
    for jac_fn in jac_fns:
        jac = jac_fn(jnp.array(A), jnp.array(B))
        for got, want in zip(jac, expected_jac):
            np.testing.assert_allclose(got, want, atol=tol)


@pytest.mark.parametrize("devname, diff_method", CASES)
def test_matches_builtin_boundary(devname, diff_method):
    dev = qml.device(devname, wires=2)

    def builtin(a, b):
        return _flat(qml.execute(_tapes(a, b), dev, diff_method=diff_method))

    ours = _cost(dev, diff_method)
    with builtin_boundary():
        ref_val = builtin(jnp.array(A), jnp.array(B))
        ref_jac = jax.jacrev(builtin, argnums=(0, 1))(jnp.array(A), jnp.array(B))
    assert_tree_allclose(ours(jnp.array(A), jnp.array(B)), ref_val)
    assert_tree_allclose(jax.jacrev(ours, argnums=(0, 1))(jnp.array(A), jnp.array(B)), ref_jac)


@pytest.mark.parametrize("executor", ["device", "xla"])
def test_vmap_of_gradients_eager_and_jit(executor):
    dev = qml.device("lightning.qubit", wires=2)
    cost = _cost(dev, "parameter-shift", executor=executor)

    def scalar(a, b):
        return jnp.sum(cost(a, b) * jnp.arange(1.0, 5.0))

    a = jnp.linspace(0.1, 1.0, 3)
    expected = jax.vmap(
        jax.grad(lambda a, b: jnp.sum(_flat(_closed_form(a, b)) * jnp.arange(1.0, 5.0))),
        in_axes=(0, None),
    )(a, B)
    for fn in (
        jax.vmap(jax.grad(scalar), in_axes=(0, None)),
        jax.jit(jax.vmap(jax.grad(scalar), in_axes=(0, None))),
    ):
        np.testing.assert_allclose(fn(a, B), expected, atol=1e-8)


def test_builtin_boundary_cannot_vmap_grad_eagerly():
    """The capability gap this package closes (kept as a canary for the support matrix)."""
    dev = qml.device("lightning.qubit", wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qml.execute([tape], dev, diff_method="parameter-shift")[0]

    xs = jnp.array([0.1, 0.2])
    with builtin_boundary(), pytest.raises(Exception):
        jax.vmap(jax.grad(cost))(xs)

    def ours(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]

    np.testing.assert_allclose(jax.vmap(jax.grad(ours))(xs), -np.sin(xs), atol=1e-8)


class CountingDevice(qml.devices.DefaultQubit):
    """default.qubit that counts ``execute`` calls and tapes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def execute(self, circuits, execution_config=None):
        self.calls.append([c.batch_size for c in circuits])
        return super().execute(circuits, execution_config)


def test_vmap_is_one_broadcast_device_call():
    dev = CountingDevice(wires=1)

    @jax.jit
    def values(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift", executor="device")[0]

    xs = jnp.linspace(0, 1, 5)
    np.testing.assert_allclose(jax.vmap(values)(xs), np.cos(xs), atol=1e-10)
    assert dev.calls == [[5]]  # one call, one broadcast tape of batch size 5


def test_vmap_on_non_broadcasting_device_is_one_host_call():
    dev = qml.device("lightning.qubit", wires=1)
    calls = []
    original = dev.execute

    def spy(circuits, execution_config=None):
        calls.append(len(circuits))
        return original(circuits, execution_config)

    dev.execute = spy

    def values(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]

    xs = jnp.linspace(0, 1, 4)
    np.testing.assert_allclose(jax.jit(jax.vmap(values))(xs), np.cos(xs), atol=1e-10)
    assert calls == [4]


def test_pytree_parameters_and_gradients():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(params):
        qml.RX(params["layer"][0], 0)
        qml.RY(params["layer"][1]["y"], 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    params = {"layer": [jnp.array(0.3), {"y": jnp.array(0.5)}]}
    with qjaxiface.installed():
        for fn in (jax.grad(circuit), jax.jit(jax.grad(circuit))):
            grads = fn(params)
            assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
            np.testing.assert_allclose(grads["layer"][0], -np.sin(0.3) * np.cos(0.5), atol=1e-8)
            np.testing.assert_allclose(
                grads["layer"][1]["y"], -np.cos(0.3) * np.sin(0.5), atol=1e-8
            )


@pytest.mark.parametrize("devname", ["default.qubit", "lightning.qubit"])
@pytest.mark.parametrize("jit", [False, True])
def test_hessian_of_gradient_transform(devname, jit):
    dev = qml.device(devname, wires=2)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x[0], 0), qml.RY(x[1], 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute(
            [tape], dev, diff_method="parameter-shift", max_diff=2, executor="device"
        )[0]

    x = jnp.array([0.3, -0.6])
    fn = jax.jit(jax.hessian(cost)) if jit else jax.hessian(cost)
    # f = cos(x0) cos(x1)
    c0, s0, c1, s1 = np.cos(x[0]), np.sin(x[0]), np.cos(x[1]), np.sin(x[1])
    expected = np.array([[-c0 * c1, s0 * s1], [s0 * s1, -c0 * c1]])
    np.testing.assert_allclose(fn(x), expected, atol=1e-8)


@pytest.mark.parametrize("jit", [False, True])
def test_device_vjp_reverse_mode_and_forward_mode_error(jit):
    dev = qml.device("default.qubit", wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute(
            [tape], dev, diff_method="adjoint", device_vjp=True, executor="device"
        )[0]

    wrap = jax.jit if jit else (lambda f: f)
    np.testing.assert_allclose(wrap(jax.grad(cost))(0.5), -np.sin(0.5), atol=1e-10)
    np.testing.assert_allclose(
        wrap(jax.vmap(jax.grad(cost)))(jnp.array([0.1, 0.5])), -np.sin([0.1, 0.5]), atol=1e-10
    )
    with pytest.raises(TypeError, match=r"reverse mode only.*device_vjp=False"):
        wrap(jax.jacfwd(cost))(jnp.array(0.5))


@pytest.mark.parametrize("grad_on_execution", [True, False])
@pytest.mark.parametrize("devname", ["default.qubit", "lightning.qubit"])
def test_adjoint_grad_on_execution(devname, grad_on_execution):
    dev = qml.device(devname, wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute(
            [tape],
            dev,
            diff_method="adjoint",
            grad_on_execution=grad_on_execution,
            executor="device",
        )[0]

    np.testing.assert_allclose(jax.grad(cost)(0.5), -np.sin(0.5), atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(cost))(0.5), -np.sin(0.5), atol=1e-10)


@pytest.mark.parametrize(
    "diff_method, kwargs, tol",
    [
        ("spsa", {"num_directions": 40, "sampler_rng": 7}, 0.15),
        ("hadamard", {}, 1e-8),
        (qml.gradients.param_shift, {}, 1e-8),
        (qml.gradients.finite_diff, {"h": 1e-6}, 1e-5),
    ],
    ids=["spsa", "hadamard", "param_shift-transform", "finite_diff-transform"],
)
def test_other_gradient_methods(diff_method, kwargs, tol):
    dev = qml.device("default.qubit", wires=2)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x[0], 0), qml.RY(x[1], 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method=diff_method, gradient_kwargs=kwargs)[0]

    x = jnp.array([0.3, -0.6])
    expected = np.array([-np.sin(0.3) * np.cos(-0.6), -np.cos(0.3) * np.sin(-0.6)])
    np.testing.assert_allclose(jax.grad(cost)(x), expected, atol=tol)
    np.testing.assert_allclose(jax.jit(jax.grad(cost))(x), expected, atol=tol)


def test_device_with_only_compute_derivatives():
    dev = DerivativesOnlyDevice(wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="device")[0]

    np.testing.assert_allclose(jax.grad(cost)(0.4), -np.sin(0.4), atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(cost))(0.4), -np.sin(0.4), atol=1e-10)
    assert dev.derivative_calls == 2


def test_null_qubit_runs_under_jit():
    dev = qml.device("null.qubit", wires=2)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0)), qml.probs()])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]

    for fn in (cost, jax.jit(cost)):
        e, p = fn(0.3)
        assert e.shape == () and p.shape == (4,)
    assert jax.jit(jax.grad(lambda x: cost(x)[0]))(0.3).shape == ()


@pytest.mark.parametrize("seed", [11])
def test_finite_shots_seeded_eager_and_jit_agree(seed):
    def run(jit):
        dev = qml.device("default.qubit", wires=2, seed=seed)

        def cost(x):
            tape = qml.tape.QuantumScript(
                [qml.RX(x, 0), qml.CNOT([0, 1])],
                [qml.expval(qml.Z(1)), qml.sample(wires=[0, 1])],
                shots=(50, 20),
            )
            return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]

        return (jax.jit(cost) if jit else cost)(jnp.array(0.8))

    eager, jitted = run(False), run(True)
    assert_tree_allclose(jitted, eager)
    assert jitted[0][1].shape == (50, 2) and jitted[1][1].shape == (20, 2)


def test_shot_vector_gradient_structure():
    dev = qml.device("default.qubit", wires=1, seed=3)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))], shots=(2000, 3000))
        res = qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]
        return jnp.stack(res)

    jac = jax.jit(jax.jacobian(cost))(jnp.array(0.5))
    assert jac.shape == (2,)
    np.testing.assert_allclose(jac, -np.sin(0.5), atol=0.1)


@pytest.mark.parametrize("devname", ["lightning.qubit", "default.qubit", "default.mixed"])
def test_parameter_broadcasting_in_tapes(devname):
    """Jacobians of broadcast tapes, which PennyLane's parameter-shift refuses."""
    dev = qml.device(devname, wires=1)

    def cost(x, y):
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), qml.RY(y, 0)], [qml.expval(qml.Z(0)), qml.probs([0])]
        )
        res = qjaxiface.execute([tape], dev, diff_method="parameter-shift", executor="device")[0]
        return res[0]

    xs, y = jnp.array([0.1, 0.2, 0.3]), jnp.array(0.4)
    for fn in (cost, jax.jit(cost)):
        np.testing.assert_allclose(fn(xs, y), np.cos(xs) * np.cos(y), atol=1e-10)
    jac_fn = jax.jacobian(cost, argnums=(0, 1))
    for jx, jy in (jac_fn(xs, y), jax.jit(jac_fn)(xs, y)):
        np.testing.assert_allclose(jx, np.diag(-np.sin(xs) * np.cos(y)), atol=1e-8)
        np.testing.assert_allclose(jy, -np.cos(xs) * np.sin(y), atol=1e-8)


def test_user_transform_program_and_informative_transform():
    dev = qml.device("default.qubit", wires=2)
    program = qml.CompilePipeline()
    program.add_transform(qml.transforms.split_non_commuting)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0)), qml.expval(qml.X(0))])
        return jnp.stack(
            qjaxiface.execute(
                [tape], dev, diff_method="parameter-shift", transform_program=program
            )[0]
        )

    np.testing.assert_allclose(jax.jit(cost)(0.3), [np.cos(0.3), 0.0], atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.jacobian(cost))(0.3), [-np.sin(0.3), 0.0], atol=1e-8)


def test_interface_jax_jit_with_concrete_values():
    dev = qml.device("lightning.qubit", wires=1)
    tape = qml.tape.QuantumScript([qml.RX(jnp.array(0.2), 0)], [qml.expval(qml.Z(0))])
    (res,) = qjaxiface.execute([tape], dev, diff_method="parameter-shift", interface="jax-jit")
    np.testing.assert_allclose(res, np.cos(0.2))


def test_empty_batch():
    assert qjaxiface.execute([], qml.device("default.qubit")) == ()


@pytest.mark.parametrize("bad", ["torch", "tf", "numpy", "autograd"])
def test_unknown_interface(bad):
    with pytest.raises(ValueError, match="accepts only"):
        qjaxiface.execute(
            [qml.tape.QuantumScript([], [qml.probs(0)])], qml.device("default.qubit"), interface=bad
        )


def test_unknown_executor():
    with pytest.raises(ValueError, match="executor='gpu'"):
        qjaxiface.execute(
            [qml.tape.QuantumScript([], [qml.probs(0)])],
            qml.device("default.qubit"),
            executor="gpu",
        )


def test_debug_log_record_names_the_route(caplog):
    dev = qml.device("lightning.qubit", wires=1)

    def cost(x):
        tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]

    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        cost(jnp.array(0.1))
        jax.jit(cost)(0.1)
    entries = [r.getMessage() for r in caplog.records if "boundary entry" in r.getMessage()]
    # Under jax_custom_jvp3 JAX stages custom rules, so an eager call with nothing to
    # differentiate runs the device directly.
    eager = "binding=direct" if custom_rule_traces_primals("jvp") else "binding=custom_jvp"
    assert any("interface=jax " in m and eager in m and "lightning.qubit" in m for m in entries)
    assert any(
        "interface=jax-jit" in m and "binding=callback" in m and "tapes=1" in m for m in entries
    )


@pytest.mark.parametrize("mcm_method", ["deferred", "one-shot", "tree-traversal"])
def test_mid_circuit_measurement_statistics_under_jit(mcm_method):
    shots = None if mcm_method != "one-shot" else 200
    dev = qml.device("default.qubit", seed=5)

    @qml.qnode(dev, mcm_method=mcm_method, diff_method="parameter-shift", shots=shots)
    def circuit(x):
        qml.RX(x, 0)
        m = qml.measure(0)
        qml.cond(m, qml.X)(1)
        if mcm_method == "tree-traversal":
            # PennyLane 0.45's tree-traversal fails on several measurements of an MCM.
            return qml.expval(qml.Z(1))
        return qml.expval(m), qml.probs(op=m), qml.expval(qml.Z(1))

    x = jnp.array(0.9)
    with builtin_boundary():
        reference = circuit(x)
    with qjaxiface.installed(executor="device"):
        eager = circuit(x)
        jitted = jax.jit(circuit)(x)
    tol = 1e-8 if shots is None else 0.2
    assert_tree_allclose(eager, reference, atol=tol)
    assert_tree_allclose(jitted, eager, atol=tol)
    z1 = jitted if mcm_method == "tree-traversal" else jitted[2]
    np.testing.assert_allclose(z1, np.cos(0.9), atol=tol)


def _mcm_body(x, y):
    qml.RX(x, 0)
    m0 = qml.measure(0, reset=True)
    qml.cond(m0 == 0, qml.RX)(np.pi / 4, 1)
    qml.RY(y, 1)
    m1 = qml.measure(1, postselect=1)
    return m0, m1


@pytest.mark.parametrize("diff_method", [None, "best"])
def test_device_seeded_with_a_prng_key_runs_in_the_trace_under_jit(diff_method):
    # default.qubit seeded with a JAX PRNG key executes tracers itself (its config says
    # convert_to_numpy=False): PennyLane traces it, mid-circuit measurements and samples
    # included, with no host callback; qjaxiface must too (PennyLane's
    # test_default_qubit_native_mcm.py::TestJaxIntegration::test_jax_jit).
    def make_circuit():  # one QNode per boundary: JAX reuses a function's traces across them
        dev = qml.device("default.qubit", seed=jax.random.PRNGKey(7))

        @qml.set_shots(10)
        @qml.qnode(dev, diff_method=diff_method)
        def circuit(x, y):
            m0, m1 = _mcm_body(x, y)
            return (
                qml.probs(wires=[1]),
                qml.sample(wires=[0, 1]),
                qml.expval(qml.Y(0)),
                qml.expval(op=m0 + 2 * m1),
            )

        return circuit

    args = (jnp.array(0.4), jnp.array(0.3))
    with builtin_boundary():
        reference = jax.jit(make_circuit())(*args)
    circuit = make_circuit()
    with qjaxiface.installed():
        circuit(*args)  # an eager call first, as users do
        assert "pure_callback" not in str(jax.make_jaxpr(circuit)(*args))
        jitted = jax.jit(circuit)(*args)
    # Same key, same traced sampling: the same samples as PennyLane's boundary.
    assert_tree_allclose(jitted, reference)


@pytest.mark.parametrize("mcm_method", ["deferred", "tree-traversal"])
def test_device_seeded_with_a_prng_key_differentiates_under_jit(mcm_method):
    # Deferred measurements trace natively. Tree-traversal branches on measured values: its
    # trace fails (PennyLane's boundary raises ConcretizationTypeError), so qjaxiface runs it
    # behind a callback instead.
    def make_circuit():
        dev = qml.device("default.qubit", seed=jax.random.PRNGKey(7))

        @qml.qnode(dev, diff_method="parameter-shift", mcm_method=mcm_method)
        def circuit(x, y):
            qml.RX(x, 0)
            m0 = qml.measure(0)
            qml.cond(m0 == 0, qml.RY)(y, 1)
            return qml.expval(qml.Z(1))

        return circuit

    # <Z1> = cos²(x/2) cos(y) + sin²(x/2)
    def closed_form(x, y):
        return jnp.cos(x / 2) ** 2 * jnp.cos(y) + jnp.sin(x / 2) ** 2

    args = (jnp.array(0.4), jnp.array(0.3))
    expected = jax.grad(closed_form, argnums=(0, 1))(*args)
    traceable = mcm_method != "tree-traversal"
    with builtin_boundary():
        grad = jax.jit(jax.grad(make_circuit(), argnums=(0, 1)))
        if traceable:
            assert_tree_allclose(grad(*args), expected, atol=1e-8)
        else:
            with pytest.raises(jax.errors.ConcretizationTypeError):
                grad(*args)
    grad = jax.grad(make_circuit(), argnums=(0, 1))
    with qjaxiface.installed(executor="device"):
        assert ("pure_callback" in str(jax.make_jaxpr(grad)(*args))) is not traceable
        assert_tree_allclose(jax.jit(grad)(*args), expected, atol=1e-8)


@pytest.mark.parametrize(
    ("device_vjp", "order", "iface", "convert_to_numpy", "expected"),
    [
        (True, 1, "jax-jit", True, "jax_jit_vjp_execute"),
        (True, 1, "jax", True, "jax_vjp_execute"),
        (False, 2, "jax-jit", True, "traced_jvp_execute"),
        (False, 2, "jax", True, "traced_jvp_execute"),
        (False, 1, "jax-jit", False, "_traced_else_callback"),
        (False, 1, "jax-jit", True, "jax_jit_jvp_execute"),
        (False, 1, "jax", True, "jax_jvp_execute"),
        (False, 1, "jax", False, "jax_jvp_execute"),
    ],
)
def test_choose_binding_table(device_vjp, order, iface, convert_to_numpy, expected):
    """Decision 4 of docs/how-the-boundary-decides.md, as one function."""
    config = qml.devices.ExecutionConfig(
        use_device_jacobian_product=device_vjp,
        derivative_order=order,
        convert_to_numpy=convert_to_numpy,
    )
    jpc = TransformJacobianProducts(lambda tapes: tapes, qml.gradients.param_shift)
    binding = choose_binding(config, jpc, iface)
    name = getattr(binding, "func", binding).__name__
    assert name == expected
    if expected == "traced_jvp_execute":
        assert binding.keywords == {"interface": iface}
