"""Property-based: random small circuits give the same values and derivatives through qjaxiface
as through PennyLane's built-in boundary (qjaxiface uninstalled, backprop on default.qubit).

Random gates from a broad set on random wires of 1-4 qubits, random measurements (expval of single
and tensor observables, var, probs, state), for every diff method that supports them, eagerly and
under ``jit``, on the device callback and the ``auto`` executor (XLA under jit when available).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import builtin_boundary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import qjaxiface

# name -> (number of wires, number of parameters)
GATES = {
    "RX": (1, 1),
    "RY": (1, 1),
    "RZ": (1, 1),
    "PhaseShift": (1, 1),
    "Rot": (1, 3),
    "U2": (1, 2),
    "Hadamard": (1, 0),
    "S": (1, 0),
    "T": (1, 0),
    "PauliX": (1, 0),
    "CNOT": (2, 0),
    "CZ": (2, 0),
    "SWAP": (2, 0),
    "CRX": (2, 1),
    "CRY": (2, 1),
    "CRZ": (2, 1),
    "IsingXX": (2, 1),
    "IsingYY": (2, 1),
    "IsingZZ": (2, 1),
}
PARAMETRIZED = sorted(g for g, (_, n) in GATES.items() if n)
ONE_WIRE = sorted(g for g, (w, _) in GATES.items() if w == 1)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@st.composite
def circuits(draw, measurement_kinds=("expval", "var", "probs", "state")):
    """(n_wires, [(gate, wires, param slice)], [measurement spec], parameter values)."""
    n_wires = draw(st.integers(1, 4))
    wires = list(range(n_wires))
    ops, n_params = [], 0
    n_ops = draw(st.integers(1, 6))
    for k in range(n_ops):
        pool = PARAMETRIZED if k == 0 else sorted(GATES)
        if n_wires == 1:
            pool = [g for g in pool if g in ONE_WIRE]
        gate = draw(st.sampled_from(pool))
        n_w, n_p = GATES[gate]
        op_wires = draw(st.permutations(wires).map(lambda p, n=n_w: p[:n]))
        ops.append((gate, tuple(op_wires), (n_params, n_params + n_p)))
        n_params += n_p
    kinds = draw(st.lists(st.sampled_from(measurement_kinds), min_size=1, max_size=2))
    measurements = []
    for kind in kinds:
        subset = draw(st.lists(st.sampled_from(wires), min_size=1, max_size=n_wires, unique=True))
        paulis = draw(st.lists(st.sampled_from("XYZ"), min_size=len(subset), max_size=len(subset)))
        measurements.append((kind, tuple(subset), tuple(paulis)))
    values = draw(
        st.lists(
            st.floats(-np.pi, np.pi, allow_nan=False, allow_infinity=False),
            min_size=n_params,
            max_size=n_params,
        )
    )
    return n_wires, ops, measurements, np.array(values)


def _observable(subset, paulis):
    factors = [getattr(qml, f"Pauli{p}")(w) for w, p in zip(subset, paulis)]
    return factors[0] if len(factors) == 1 else qml.prod(*factors)


def _tape(spec, params):
    _, ops, measurements, _ = spec
    gates = [
        getattr(qml, gate)(*[params[i] for i in range(*span)], wires=list(wires))
        for gate, wires, span in ops
    ]
    mps = []
    for kind, subset, paulis in measurements:
        if kind == "expval":
            mps.append(qml.expval(_observable(subset, paulis)))
        elif kind == "var":
            mps.append(qml.var(_observable(subset, paulis)))
        elif kind == "probs":
            mps.append(qml.probs(wires=list(subset)))
        else:
            mps.append(qml.state())
    return qml.tape.QuantumScript(gates, mps)


def _flat(result, spec):
    """All measurement results as one real vector (state: real and imaginary parts)."""
    parts = result if len(spec[2]) > 1 else (result,)
    out = []
    for part in parts:
        part = jnp.ravel(jnp.asarray(part))
        if jnp.iscomplexobj(part):
            out.extend([part.real, part.imag])
        else:
            out.append(part)
    return jnp.concatenate(out)


def _reference(spec):
    """Values and Jacobian from PennyLane's own boundary with backprop on default.qubit."""
    dev = qml.device("default.qubit", wires=spec[0])

    def f(p):
        (res,) = qml.execute([_tape(spec, p)], dev, diff_method="backprop")
        return _flat(res, spec)

    p = jnp.asarray(spec[3])
    with builtin_boundary():
        return np.asarray(f(p)), np.asarray(jax.jacobian(f)(p))


def _qjaxiface(spec, diff_method, route, executor):
    dev = qml.device("default.qubit", wires=spec[0])

    def f(p):
        (res,) = qjaxiface.execute(
            [_tape(spec, p)], dev, diff_method=diff_method, executor=executor
        )
        return _flat(res, spec)

    p = jnp.asarray(spec[3])
    if route == "jit":
        return np.asarray(jax.jit(f)(p)), np.asarray(jax.jit(jax.jacobian(f))(p))
    return np.asarray(f(p)), np.asarray(jax.jacobian(f)(p))


def _check(spec, diff_method, route, executor, atol):
    ref_value, ref_jac = _reference(spec)
    value, jac = _qjaxiface(spec, diff_method, route, executor)
    np.testing.assert_allclose(value, ref_value, atol=1e-9)
    assert jac.shape == ref_jac.shape
    np.testing.assert_allclose(jac, ref_jac, atol=atol)


# The traced-device methods (backprop, finite-diff's many tapes) cost most per example.
FEWER = settings(SETTINGS, max_examples=15)

ROUTES = st.sampled_from(["eager", "jit"])
EXECUTORS = st.sampled_from(["device", "auto"])


@pytest.mark.slow
@FEWER
@given(spec=circuits(), route=ROUTES)
def test_backprop_matches_builtin(spec, route):
    _check(spec, "backprop", route, "auto", atol=1e-9)


@pytest.mark.slow
@SETTINGS
@given(spec=circuits(("expval", "var", "probs")), route=ROUTES, executor=EXECUTORS)
def test_parameter_shift_matches_builtin_backprop(spec, route, executor):
    _check(spec, "parameter-shift", route, executor, atol=1e-8)


@FEWER
@given(spec=circuits(("expval", "var", "probs")), route=ROUTES, executor=EXECUTORS)
def test_finite_diff_matches_builtin_backprop_loosely(spec, route, executor):
    _check(spec, "finite-diff", route, executor, atol=1e-4)


@SETTINGS
@given(spec=circuits(("expval",)), route=ROUTES, executor=EXECUTORS)
def test_adjoint_expval_matches_builtin_backprop(spec, route, executor):
    _check(spec, "adjoint", route, executor, atol=1e-8)


@SETTINGS
@given(spec=circuits(("expval",)), route=ROUTES)
def test_adjoint_device_vjp_matches_builtin_backprop(spec, route):
    """Reverse mode only (custom_vjp): compare gradients of a scalar."""
    dev = qml.device("default.qubit", wires=spec[0])

    def f(p):
        (res,) = qjaxiface.execute(
            [_tape(spec, p)], dev, diff_method="adjoint", device_vjp=True, executor="device"
        )
        return jnp.sum(_flat(res, spec))

    p = jnp.asarray(spec[3])
    grad = jax.grad(f) if route == "eager" else jax.jit(jax.grad(f))
    ref_value, ref_jac = _reference(spec)
    np.testing.assert_allclose(f(p), ref_value.sum(), atol=1e-9)
    np.testing.assert_allclose(grad(p), ref_jac.sum(axis=0), atol=1e-8)


@SETTINGS
@given(spec=circuits(("expval", "probs")))
def test_parameter_shift_against_numerical_derivatives(spec):
    """Independent of PennyLane's boundary: JAX's own numerical check of the rule."""
    if not len(spec[3]):
        return
    dev = qml.device("default.qubit", wires=spec[0])

    def f(p):
        (res,) = qjaxiface.execute([_tape(spec, p)], dev, diff_method="parameter-shift")
        return _flat(res, spec)

    check_grads(f, (jnp.asarray(spec[3]),), order=1, modes=["fwd", "rev"], atol=1e-4, rtol=1e-4)


def test_generator_covers_the_gate_set():
    """The strategy can produce every gate and measurement kind (guards against a narrowed set)."""
    assert len(GATES) >= 15
    assert {"CNOT", "CZ", "CRX", "IsingXX", "Hadamard", "S", "T", "Rot"} <= set(GATES)
    for name, (n_w, n_p) in GATES.items():
        op = getattr(qml, name)(*([0.1] * n_p), wires=list(range(n_w)))
        assert op.num_params == n_p and len(op.wires) == n_w


@pytest.mark.parametrize("kind", ["expval", "var", "probs", "state"])
def test_each_measurement_kind_once(kind):
    """A deterministic example per measurement kind, on 3 wires, through jit."""
    spec = (
        3,
        [
            ("RX", (0,), (0, 1)),
            ("CNOT", (0, 1), (1, 1)),
            ("Rot", (2,), (1, 4)),
            ("CRY", (2, 0), (4, 5)),
        ],
        [(kind, (0, 2), ("X", "Z"))],
        np.array([0.3, -0.5, 1.1, 0.7, -2.0]),
    )
    method = "backprop" if kind == "state" else "parameter-shift"
    _check(spec, method, "jit", "device", atol=1e-8)
