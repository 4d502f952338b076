"""Derivatives of every diff method against default.qubit backprop, composed with JAX transforms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from jax.test_util import check_grads
from xla_test_helpers import DEV, preprocess

from qjaxiface.executors.xla import xla_execute

N = 3
SHAPE = (1, N, 3)


def _tape(w, x, measurements):
    ops = [
        qml.StronglyEntanglingLayers(w, wires=range(N)),
        qml.CRX(x, [0, 1]),
        qml.IsingZZ(x * 0.7, [1, 2]),
        qml.ctrl(qml.RY(x, 2), [0]),
    ]
    return preprocess(qml.tape.QuantumScript(ops, measurements))


EXPVALS = [
    qml.expval(qml.Z(0) @ qml.X(1)),
    qml.expval(qml.Hamiltonian([0.5, 0.2], [qml.Z(2), qml.Y(1)])),
]
MIXED = [qml.expval(qml.Z(0)), qml.var(qml.X(1)), qml.probs(wires=[2, 0])]


def make(diff_method, measurements, **kw):
    """f(w, x) -> results as a flat array, via the XLA executor or default.qubit backprop."""

    def f(w, x):
        tape = _tape(w, x, measurements)
        if diff_method == "reference":
            res = qml.execute([tape], DEV, diff_method="backprop")[0]
        else:
            res = xla_execute([tape], diff_method=diff_method, gradient_kwargs=kw)[0]
        res = res if isinstance(res, tuple) else (res,)
        return jnp.concatenate([jnp.ravel(r) for r in res])

    return f


@pytest.fixture
def params(rng):
    return jnp.asarray(rng.random(SHAPE)), jnp.asarray(0.37)


@pytest.mark.parametrize("method", ["backprop", "parameter-shift", "adjoint"])
def test_jacobian_exact(method, params):
    ms = EXPVALS if method == "adjoint" else EXPVALS + MIXED
    ref = jax.jit(jax.jacrev(make("reference", ms), argnums=(0, 1)))(*params)
    for transform in (jax.jacrev, jax.jacfwd):
        got = jax.jit(transform(make(method, ms), argnums=(0, 1)))(*params)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, atol=1e-8)


def test_finite_diff_options(params):
    ref = jax.jit(jax.jacrev(make("reference", EXPVALS), argnums=0))(*params)
    for kw, tol in (({"h": 1e-4, "approx_order": 2, "strategy": "center"}, 1e-6),):
        got = jax.jit(jax.jacrev(make("finite-diff", EXPVALS, **kw), argnums=0))(*params)
        np.testing.assert_allclose(got, ref, atol=tol)


def test_spsa_seeded_and_unbiased(params):
    w, x = params
    f_ref = make("reference", EXPVALS[:1])
    ref = jax.grad(lambda w: f_ref(w, x)[0])(w)
    f = make("spsa", EXPVALS[:1], num_directions=400, sampler_rng=7)
    g1 = jax.grad(lambda w: f(w, x)[0])(w)
    g2 = jax.grad(lambda w: make("spsa", EXPVALS[:1], num_directions=400, sampler_rng=7)(w, x)[0])(
        w
    )
    np.testing.assert_allclose(g1, g2)  # same seed, same directions
    # SPSA is unbiased; with 400 directions the error is a fraction of the gradient's size.
    assert np.linalg.norm(g1 - ref) < 0.35 * np.linalg.norm(ref) + 0.05


def small(method):
    """A two-qubit f(x, y) with one-, two- and controlled-gate parameters."""

    def f(x, y):
        ops = [qml.RX(x, 0), qml.CRY(y, [0, 1]), qml.IsingXX(x * y, [0, 1]), qml.Rot(y, x, 0.3, 1)]
        tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))])
        if method == "reference":
            return qml.execute([tape], DEV, diff_method="backprop")[0]
        return xla_execute([tape], diff_method=method)[0]

    return f


@pytest.mark.parametrize("method", ["backprop", "parameter-shift", "adjoint"])
def test_hessian(method):
    args = (jnp.asarray(0.4), jnp.asarray(-0.8))
    ref = jax.jit(jax.hessian(small("reference"), argnums=(0, 1)))(*args)
    got = jax.jit(jax.hessian(small(method), argnums=(0, 1)))(*args)
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(ref, dtype=float), atol=1e-8)


@pytest.mark.parametrize("method", ["backprop", "parameter-shift", "adjoint"])
def test_check_grads(method):
    f = jax.jit(small(method))
    check_grads(f, (0.4, -0.8), order=1, modes=("fwd", "rev"), atol=1e-5)


@pytest.mark.parametrize("method", ["parameter-shift", "adjoint"])
def test_vmap_of_grad(method, params):
    w, _ = params
    xs = jnp.linspace(0.1, 1.0, 3)
    g = jax.jit(jax.vmap(jax.grad(lambda x: make(method, EXPVALS[:1])(w, x)[0])))(xs)
    ref = jnp.stack([jax.grad(lambda x: make("reference", EXPVALS[:1])(w, x)[0])(x) for x in xs])
    np.testing.assert_allclose(g, ref, atol=1e-8)


@pytest.mark.parametrize("method", ["backprop", "parameter-shift", "adjoint"])
def test_broadcast_derivatives(method):
    def f(x, dm):
        ops = [qml.RX(x, 0), qml.RY(0.4, 1), qml.CNOT([0, 1]), qml.CRY(x * 2, [1, 0])]
        tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))])
        if dm == "reference":
            return qml.execute([tape], DEV, diff_method="backprop")[0]
        return xla_execute([tape], diff_method=dm)[0]

    x = jnp.array([0.1, 0.5, 1.3])
    ref = jax.jacobian(f)(x, "reference")
    np.testing.assert_allclose(
        jax.jit(jax.jacobian(f), static_argnums=1)(x, method), ref, atol=1e-8
    )


def test_trainable_observable_coefficients():
    def f(c, dm):
        H = qml.Hamiltonian(c, [qml.Z(0), qml.X(1)])
        tape = qml.tape.QuantumScript([qml.RX(0.3, 0), qml.RY(0.5, 1)], [qml.expval(H)])
        if dm == "reference":
            return qml.execute([tape], DEV, diff_method="backprop")[0]
        return xla_execute([tape], diff_method=dm)[0]

    c = jnp.array([0.4, -1.2])
    ref = jax.grad(f)(c, "reference")
    for dm in ("parameter-shift", "adjoint", "backprop"):
        np.testing.assert_allclose(jax.grad(f)(c, dm), ref, atol=1e-10)


def test_structure_cache_reuses_built_function(params):
    from qjaxiface.executors import xla

    xla.clear_cache()
    f = make("parameter-shift", EXPVALS)
    f(*params)
    size = len(xla._cache)
    f(params[0] + 1.0, params[1] * 2)
    assert len(xla._cache) == size == 1


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 2**N * 16])
def test_shift_rows_in_chunks_match_unchunked(monkeypatch, params, chunk_bytes):
    """Rows evaluated chunk by chunk (one row, or three rows per chunk with a padded remainder)
    give exactly the vmapped Jacobian."""
    from qjaxiface.executors import xla
    from qjaxiface.executors.xla import _rows

    f = make("parameter-shift", EXPVALS)
    full = jax.jacobian(f)(*params)
    xla.clear_cache()
    monkeypatch.setattr(_rows, "CHUNK_BYTES", chunk_bytes)
    chunked = jax.jit(jax.jacobian(f))(*params)
    xla.clear_cache()
    np.testing.assert_allclose(chunked, full, atol=1e-12)


def test_shifted_rows_reach_grad_as_one_call(monkeypatch, params, scan_walks):
    """The rows' loop (chunked: a scan) depends on the primals alone and passes through
    ``grad``'s partial evaluation whole (``one_call``), instead of being walked twice."""
    from qjaxiface.executors import xla
    from qjaxiface.executors.xla import _rows

    monkeypatch.setattr(_rows, "CHUNK_BYTES", 1)
    f = make("parameter-shift", EXPVALS)
    xla.clear_cache()
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda w, x: jnp.sum(f(w, x)), argnums=(0, 1)))(*params))
    xla.clear_cache()
    assert "scan" in jaxpr and scan_walks == []


@pytest.mark.parametrize("method", ["backprop", "parameter-shift", "adjoint", "finite-diff"])
def test_integer_matrix_parameter_is_a_constant(method):
    """An int-valued QubitUnitary next to a trainable angle (PennyLane's test_matrix_parameter):
    d<Z>/da of X then RY(a) on |0> is sin(a)."""

    def f(u, a):
        ops = [qml.QubitUnitary(u, wires=0), qml.RY(a, wires=0)]
        tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
        return xla_execute([tape], diff_method=method)[0]

    u = jnp.array([[0, 1], [1, 0]])
    grad = jax.jit(jax.grad(f, argnums=1))(u, jnp.asarray(0.1))
    np.testing.assert_allclose(grad, np.sin(0.1), atol=1e-6 if method == "finite-diff" else 1e-12)


def _unrolled_adjoint_temp_bytes(layers: int) -> int:
    """Temporary bytes of a compiled adjoint ``jit(grad)`` of CRX and IsingZZ layers (gates
    the compact regions leave to other kernels: unrolled at 1 layer, the gate-list
    interpreter's rows at 5), n=6."""
    n = 6

    def f(w):
        ops = []
        for layer in range(layers):
            for i in range(n):
                ops.append(qml.CRX(w[layer, i], wires=[i, (i + 1) % n]))
                ops.append(qml.IsingZZ(0.5 * w[layer, i], wires=[i, (i + 2) % n]))
        tape = preprocess(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))]))
        return xla_execute([tape], diff_method="adjoint")[0]

    w = jnp.asarray(np.random.default_rng(0).normal(size=(layers, n)))
    compiled = jax.jit(jax.grad(f)).trace(w).lower().compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_adjoint_memory_grows_by_a_few_numbers_per_gate():
    """Each gate adds its value, inverses and weights (well under 512 bytes), not a copy of
    every gate's tangent: padding each gate's cotangent to its whole formula cost 1.4 KB per
    gate at 5 layers, growing with the depth (and 16 entries per interpreter row where four
    are read, 600 bytes)."""
    extra_gates = 2 * 6 * (5 - 1)
    grown = _unrolled_adjoint_temp_bytes(5) - _unrolled_adjoint_temp_bytes(1)
    assert 0 < grown <= 512 * extra_gates
