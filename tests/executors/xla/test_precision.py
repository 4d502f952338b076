"""Single precision (``set_precision("single")``): complex64 states, against double precision
default.qubit, for every diff method, with results and gradients in the usual dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import DEV, assert_tree_close, preprocess

from qjaxiface import clear_caches
from qjaxiface.executors.xla import _compact, set_precision, xla_execute

N = 4
# complex64 carries about 7 digits; these circuits have ~60 gates.
TOL = 2e-5


@pytest.fixture
def single():
    clear_caches()
    set_precision("single")
    yield
    set_precision("double")
    clear_caches()


def _ops(w, x):
    """A compact region (StronglyEntanglingLayers), unrolled gates of every kind around it."""
    return [
        qml.BasisState(np.array([1, 0, 1, 0]), wires=range(N)),
        qml.AngleEmbedding(x, wires=range(N)),
        qml.StronglyEntanglingLayers(w, wires=range(N)),
        qml.CRX(x[0], wires=[0, 2]),
        qml.IsingXX(x[1], wires=[1, 3]),
        qml.PhaseShift(x[2], wires=1),
        qml.Toffoli(wires=[0, 1, 3]),
        qml.QubitUnitary(qml.matrix(qml.Rot(0.1, 0.2, 0.3, 0)), wires=2),
        qml.GlobalPhase(x[3]),
    ]


MEASUREMENTS = [
    qml.expval(qml.Z(0)),
    qml.expval(0.5 * qml.X(1) @ qml.Y(2) + qml.Z(3)),
    qml.var(qml.X(2)),
    qml.probs(wires=[0, 3]),
]


def _results(w, x, diff_method=None, via="xla", measurements=MEASUREMENTS):
    tape = preprocess(qml.tape.QuantumScript(_ops(w, x), measurements))
    if via == "xla":
        res = xla_execute([tape], diff_method=diff_method)[0]
    else:
        res = qml.execute([tape], DEV, diff_method="backprop")[0]
    return jnp.concatenate([jnp.ravel(r) for r in res])


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    w = jnp.asarray(rng.uniform(-np.pi, np.pi, (3, N, 3)))
    x = jnp.asarray(rng.uniform(-np.pi, np.pi, N))
    return w, x


def test_set_precision_rejects_unknown_values():
    with pytest.raises(ValueError, match=r"'double'.*'single'"):
        set_precision("half")
    with pytest.raises(ValueError, match="not 'float32'"):
        set_precision("float32")


def test_results_match_double_precision_in_their_usual_dtypes(single):
    w, x = _inputs()
    got = jax.jit(_results)(w, x)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, _results(w, x, via="dq"), atol=TOL)
    tape = preprocess(qml.tape.QuantumScript(_ops(w, x), [qml.state()]))
    state = xla_execute([tape], diff_method=None)[0]
    assert state.dtype == jnp.complex128  # what default.qubit gives
    np.testing.assert_allclose(state, qml.execute([tape], DEV)[0], atol=TOL)


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_jacobians_match_double_precision(single, diff_method):
    w, x = _inputs(1)
    measurements = MEASUREMENTS[:2] if diff_method == "adjoint" else MEASUREMENTS
    got = jax.jit(
        jax.jacobian(lambda w, x: _results(w, x, diff_method, "xla", measurements), (0, 1))
    )(w, x)
    ref = jax.jacobian(lambda w, x: _results(w, x, None, "dq", measurements), (0, 1))(w, x)
    for g, r in zip(got, ref):
        assert g.dtype == jnp.float64
        np.testing.assert_allclose(g, r, atol=10 * TOL)


def _complex_avals(jaxpr) -> list:
    """Every complex array value a jaxpr (and the jaxprs inside it) computes."""
    out = []
    for eqn in jaxpr.eqns:
        out += [v.aval for v in eqn.outvars if jnp.issubdtype(v.aval.dtype, jnp.complexfloating)]
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out += _complex_avals(inner)
    return out


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_states_and_sweeps_are_complex64(single, monkeypatch, diff_method):
    """No state-sized array is complex128: one complex128 constant in a kernel would promote
    the state back to double. (Per-gate phases are computed from float64 parameters and then
    cast: vectors with one entry per gate.)"""
    monkeypatch.setattr(_compact, "GROUP_FROM_WIRES", 2)  # the grouped passes too
    w, x = _inputs(2)
    f = jax.grad(lambda w, x: _results(w, x, diff_method, "xla", MEASUREMENTS[:2])[1], (0, 1))
    avals = _complex_avals(jax.make_jaxpr(f)(w, x).jaxpr)
    big = [a for a in avals if np.prod(a.shape, dtype=int) >= 2**N]
    assert any(a.dtype == jnp.complex64 for a in big)
    assert [a for a in big if a.dtype == jnp.complex128] == []


def test_programs_are_built_per_precision():
    w, x = _inputs(3)
    clear_caches()
    double = _results(w, x)
    set_precision("single")
    try:
        single = _results(w, x)
    finally:
        set_precision("double")
    again = _results(w, x)
    assert_tree_close(again, double, atol=0)
    assert not np.array_equal(np.asarray(single), np.asarray(double))
    np.testing.assert_allclose(single, double, atol=TOL)
