"""Compact programs (layers as loops) against default.qubit and against the unrolled program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import DEV, assert_tree_close, preprocess

from qjaxiface import clear_caches
from qjaxiface.executors.xla import _compact, set_compact, xla_execute
from qjaxiface.executors.xla._compact import (
    Region,
    adjoint_region,
    apply_slab,
    permute,
    plan_regions,
    run_region,
)
from qjaxiface.executors.xla._gates import compile_gate
from qjaxiface.executors.xla._kernels import apply_gate, apply_matrix_on
from qjaxiface.executors.xla._simulate import TapeProgram

ONE_QUBIT = [
    lambda p, w: qml.RX(p[0], w),
    lambda p, w: qml.RY(p[0], w),
    lambda p, w: qml.RZ(p[0], w),
    lambda p, w: qml.Rot(p[0], p[1], p[2], w),
    lambda p, w: qml.PhaseShift(p[0], w),
    lambda p, w: qml.U3(p[0], p[1], p[2], w),
    lambda p, w: qml.Hadamard(w),
    lambda p, w: qml.S(w),
    lambda p, w: qml.PauliX(w),
]


def random_ops(params, n: int, layers: int, seed: int, breaker: bool = False) -> list:
    """Layers of random one-qubit gates (some wires twice) and random CNOT/SWAP networks.

    ``breaker`` puts a gate no region takes (CRX) in the middle, splitting the regions.
    """
    rng = np.random.default_rng(seed)
    ops, k = [], 0
    for layer in range(layers):
        for w in range(n):
            for _ in range(int(rng.integers(1, 3))):
                ops.append(ONE_QUBIT[int(rng.integers(len(ONE_QUBIT)))](params[k : k + 3], w))
                k += 3
        for _ in range(int(rng.integers(1, n + 1))):
            a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
            ops.append(qml.CNOT([a, b]) if rng.random() < 0.7 else qml.SWAP([a, b]))
        if breaker and layer == layers // 2:
            ops.append(qml.CRX(params[k], [0, n - 1]))
            k += 1
    return ops


N_PARAMS = 3 * 2 * 4 * 6 + 1


def _tape(params, n, layers, seed, measurements, breaker=False):
    ops = random_ops(params, n, layers, seed, breaker)
    return preprocess(qml.tape.QuantumScript(ops, measurements))


def _regions(tape) -> list:
    return [x for x in TapeProgram(tape).plan if isinstance(x, Region)]


@pytest.fixture(params=["per-wire", "grouped"])
def passes(request, monkeypatch):
    """Run a test with one wire per slab pass and with ``GROUP``-wire passes.

    Small states use one wire per pass; ``grouped`` lowers the threshold so that these 2-7 wire
    circuits take the grouped passes of large states (full groups and a remainder).
    """
    if request.param == "grouped":
        monkeypatch.setattr(_compact, "GROUP_FROM_WIRES", 2)
    clear_caches()
    yield request.param
    clear_caches()


@pytest.fixture
def unrolled():
    set_compact(False)
    yield
    set_compact(True)


def test_layers_become_one_region():
    params = np.linspace(0.1, 2.0, N_PARAMS)
    tape = preprocess(
        qml.tape.QuantumScript(
            [qml.StronglyEntanglingLayers(params[:36].reshape(3, 4, 3), wires=range(4))],
            [qml.expval(qml.Z(0))],
        )
    )
    (region,) = _regions(tape)
    assert region.slots.shape == (1, 3, 4)  # depth 1 (one Rot per wire), 3 layers, 4 wires
    assert region.src[0].shape == (3, 4) and region.src[1].shape == (3, 4)


def test_other_gates_split_regions_and_sparse_layers_stay_unrolled():
    params = np.linspace(0.1, 2.0, N_PARAMS)
    tape = _tape(params, 4, 6, seed=1, measurements=[qml.expval(qml.Z(0))], breaker=True)
    plan = TapeProgram(tape).plan
    crx = [i for i in plan if not isinstance(i, Region) and tape.operations[i].name == "CRX"]
    assert len(crx) == 1 and len(_regions(tape)) == 2
    sparse = preprocess(
        qml.tape.QuantumScript(
            [qml.RX(0.1, 0), qml.CNOT([0, 1]), qml.RX(0.2, 0), qml.CNOT([1, 2])] * 3,
            [qml.expval(qml.Z(0))],
        )
    )
    assert _regions(sparse) == []


def test_unrolled_setting_builds_no_region(unrolled):
    params = np.linspace(0.1, 2.0, N_PARAMS)
    tape = _tape(params, 4, 4, seed=2, measurements=[qml.expval(qml.Z(0))])
    assert _regions(tape) == []


@pytest.mark.parametrize("seed", range(4))
def test_network_gather_equals_the_gates(seed):
    n = 5
    rng = np.random.default_rng(seed)
    gates = []
    for _ in range(7):
        a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
        gates.append(qml.CNOT([a, b]) if rng.random() < 0.6 else qml.SWAP([a, b]))
    gates = [qml.RX(0.3, w) for w in range(n)] + gates
    compiled = [compile_gate(op, {w: w for w in range(n)}) for op in gates]
    compiled = [*compiled, compile_gate(qml.RX(0.1, 0), {0: 0}), compiled[0]]
    (region,) = [x for x in plan_regions(compiled, n) if isinstance(x, Region)]
    state = jnp.asarray(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    expected = state
    for gate in compiled[n : n + 7]:
        expected = apply_gate(expected, gate, ())
    got = permute(state, jnp.asarray(region.src[0][0]), jnp.asarray(region.src[1][0]))
    np.testing.assert_allclose(got, expected, atol=1e-15)


@pytest.mark.parametrize("n, seed", [(2, 0), (5, 1), (6, 2), (7, 3), (9, 4)])
def test_inverse_tables_undo_each_network(n, seed):
    """Against a state put through each layer's gates: the inverse gather returns it."""
    rng = np.random.default_rng(seed)
    wire_map = {w: w for w in range(n)}
    compiled, networks = [], []
    for _ in range(3):
        network = []
        for _ in range(2 * n):
            a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
            network.append(qml.CNOT([a, b]) if rng.random() < 0.6 else qml.SWAP([a, b]))
        networks.append([compile_gate(op, wire_map) for op in network])
        compiled += [compile_gate(qml.RX(0.3, w), wire_map) for w in range(n)] + networks[-1]
    (region,) = [x for x in plan_regions(compiled, n) if isinstance(x, Region)]
    inv_hi, inv_lo = _compact.inverse_tables(region)
    assert inv_hi.shape == region.src[0].shape and inv_lo.shape == region.src[1].shape
    state = jnp.asarray(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    for layer, network in enumerate(networks):
        after = state
        for gate in network:
            after = apply_gate(after, gate, ())
        back = permute(after, jnp.asarray(inv_hi[layer]), jnp.asarray(inv_lo[layer]))
        np.testing.assert_array_equal(back, state)


def _unitaries(rng, shape) -> jnp.ndarray:
    z = rng.normal(size=(*shape, 2, 2)) + 1j * rng.normal(size=(*shape, 2, 2))
    return jnp.asarray(np.linalg.qr(z)[0])


# Wire counts around the slab's group size: no full group, full groups only, and remainders.
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("unrolled_passes", [False, True])
def test_apply_slab_applies_each_wire_its_matrix(n, unrolled_passes, passes):
    rng = np.random.default_rng(n)
    mats = _unitaries(rng, (n,))
    state = jnp.asarray(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    expected = state
    for w in range(n):
        expected = apply_matrix_on(expected, mats[w], [w])
    got = jax.jit(apply_slab, static_argnums=2)(state, mats, unrolled_passes)
    np.testing.assert_allclose(got, expected, atol=1e-13)


def test_unrolled_slab_reads_each_wire_with_one_split():
    # Tracing, vmapping (the shift rules' rows) and lowering cost per primitive: the unrolled
    # slab reads its matrices' entries in one split and each wire's halves in one more, where
    # indexing took a slice and a squeeze for every entry and half (22 vs 17 per wire).
    n = 6
    mats = jnp.zeros((n, 2, 2), jnp.complex128)
    state = jnp.zeros(2**n, jnp.complex128)
    jaxpr = jax.make_jaxpr(jax.vmap(apply_slab, (0, None, None)), static_argnums=2)(
        jnp.stack([state] * 3), mats, True
    )
    names = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    assert names.count("split") == n + 1
    assert "slice" not in names and "squeeze" not in names
    assert len(names) <= 18 * n


def _region_of(n: int, layers: int, rng) -> Region:
    gates = []
    for _ in range(layers):
        gates += [qml.RY(0.2, w) for w in range(n)]
        for _ in range(n):
            a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
            gates.append(qml.CNOT([a, b]) if rng.random() < 0.6 else qml.SWAP([a, b]))
    compiled = [compile_gate(op, {w: w for w in range(n)}) for op in gates]
    (region,) = [x for x in plan_regions(compiled, n) if isinstance(x, Region)]
    return region


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7])
def test_adjoint_region_undoes_the_region_and_gives_its_derivative(n, passes):
    """The sweep returns the states before the region, and ``Σ tr(dM T)`` is the JVP of
    ``<b|U(M)|ket>`` for every slab matrix (checked against ``jax.jvp`` of ``run_region``)."""
    rng = np.random.default_rng(10 + n)
    region = _region_of(n, 3, rng)
    mats = _unitaries(rng, (3, n))
    d_mats = jnp.asarray(rng.normal(size=(3, n, 2, 2)) + 1j * rng.normal(size=(3, n, 2, 2)))
    ket0 = jnp.asarray(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    b = jnp.asarray(rng.normal(size=(2, 2**n)) + 1j * rng.normal(size=(2, 2**n)))

    def overlaps(m):
        return jnp.conj(b) @ run_region(ket0, region, m)

    _, expected = jax.jvp(overlaps, (mats,), (d_mats,))
    ket = run_region(ket0, region, mats)
    sweep = jax.jit(lambda k, bs, m: adjoint_region(k, bs, region, m))
    before, bras, trans = sweep(ket, jnp.conj(b), mats)
    np.testing.assert_allclose(before, ket0, atol=1e-12)
    assert trans.shape == (2, 3, n, 2, 2)
    got = jnp.einsum("lwab,mlwba->m", d_mats, trans)
    np.testing.assert_allclose(got, expected, atol=1e-11)
    # The bras come back as <b|U: overlaps with the initial ket are unchanged.
    np.testing.assert_allclose(bras @ ket0, overlaps(mats), atol=1e-11)


MEASUREMENTS = [
    [qml.expval(qml.Z(0) @ qml.X(2))],
    [qml.expval(qml.Z(1)), qml.var(qml.X(0)), qml.probs(wires=[2, 0])],
]


@pytest.mark.parametrize("breaker", [False, True])
@pytest.mark.parametrize("measurements", MEASUREMENTS)
def test_results_equal_default_qubit(measurements, breaker):
    params = np.random.default_rng(3).uniform(-np.pi, np.pi, N_PARAMS)
    tape = _tape(params, 4, 4, seed=4, measurements=measurements, breaker=breaker)
    assert _regions(tape)
    got = jax.jit(
        lambda p: xla_execute([_tape(p, 4, 4, 4, measurements, breaker)], diff_method=None)
    )(jnp.asarray(params))[0]
    assert_tree_close(got, qml.execute([tape], DEV, diff_method=None)[0])
    state = xla_execute([_tape(params, 4, 4, 4, [qml.state()], breaker)], diff_method=None)[0]
    ref = qml.execute([_tape(params, 4, 4, 4, [qml.state()], breaker)], DEV, diff_method=None)[0]
    np.testing.assert_allclose(state, ref, atol=1e-10)


def _grad_fn(diff_method, measurements, breaker, via):
    def f(p):
        tape = _tape(p, 4, 4, 5, measurements, breaker)
        if via == "xla":
            res = xla_execute([tape], diff_method=diff_method)[0]
        else:
            res = qml.execute([tape], DEV, diff_method="backprop")[0]
        res = res if isinstance(res, tuple) else (res,)
        return jnp.concatenate([jnp.ravel(r) for r in res])

    return f


@pytest.mark.parametrize("breaker", [False, True])
@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_jacobians_equal_default_qubit(diff_method, breaker, passes):
    measurements = [qml.expval(qml.Z(1)), qml.expval(qml.Y(0) @ qml.Z(3))]
    params = jnp.asarray(np.random.default_rng(6).uniform(-np.pi, np.pi, N_PARAMS))
    got = jax.jit(jax.jacobian(_grad_fn(diff_method, measurements, breaker, "xla")))(params)
    ref = jax.jacobian(_grad_fn(None, measurements, breaker, "dq"))(params)
    np.testing.assert_allclose(got, ref, atol=1e-8)


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_forward_mode_and_hessian(diff_method, passes):
    measurements = [qml.expval(qml.Z(0))]
    params = jnp.asarray(np.random.default_rng(7).uniform(-np.pi, np.pi, N_PARAMS))
    f = _grad_fn(diff_method, measurements, False, "xla")
    ref_f = _grad_fn(None, measurements, False, "dq")
    np.testing.assert_allclose(jax.jacfwd(f)(params), jax.jacrev(ref_f)(params), atol=1e-8)
    sub = params[:12]

    def head(fn):
        return lambda s: fn(jnp.concatenate([s, params[12:]]))[0]

    np.testing.assert_allclose(jax.hessian(head(f))(sub), jax.hessian(head(ref_f))(sub), atol=1e-8)


def test_variance_and_probs_gradients_under_vmap():
    measurements = [qml.var(qml.X(1)), qml.probs(wires=[0])]
    batch = jnp.asarray(np.random.default_rng(8).uniform(-np.pi, np.pi, (3, N_PARAMS)))
    for diff_method in ("backprop", "parameter-shift"):
        got = jax.vmap(jax.jacobian(_grad_fn(diff_method, measurements, True, "xla")))(batch)
        ref = jax.vmap(jax.jacobian(_grad_fn(None, measurements, True, "dq")))(batch)
        np.testing.assert_allclose(got, ref, atol=1e-8)


def test_compact_and_unrolled_programs_agree_with_shots():
    params = jnp.asarray(np.random.default_rng(9).uniform(-np.pi, np.pi, N_PARAMS))
    key = jax.random.PRNGKey(0)

    def run(p):
        tape = _tape(p, 4, 4, 10, [qml.expval(qml.Z(0)), qml.probs(wires=[1])])
        tape = qml.tape.QuantumScript(tape.operations, tape.measurements, shots=20000)
        return xla_execute([tape], diff_method=None, prng_key=key)[0]

    compact = run(params)
    set_compact(False)
    try:
        unrolled = run(params)
    finally:
        set_compact(True)
    exact = qml.execute(
        [_tape(params, 4, 4, 10, [qml.expval(qml.Z(0)), qml.probs(wires=[1])])], DEV
    )[0]
    for c, u, e in zip(compact, unrolled, exact):
        np.testing.assert_allclose(c, u, atol=0.03)
        np.testing.assert_allclose(c, e, atol=0.03)


def test_set_compact_rejects_non_bool():
    with pytest.raises(TypeError, match="True or False"):
        set_compact("off")


def _embedded_layers(diff_method):
    @qml.qnode(qml.device("default.qubit", wires=4), diff_method=diff_method)
    def circuit(w, x):
        qml.AngleEmbedding(x, wires=range(4))  # an RX before each first Rot: two gates a slot
        qml.StronglyEntanglingLayers(w, wires=range(4))
        return qml.expval(qml.Z(0)), qml.expval(qml.X(1))

    return circuit


@pytest.mark.parametrize("diff_method", ["adjoint", "backprop", "parameter-shift"])
def test_vmapped_jacobians_and_hessians_through_the_boundary(diff_method, passes):
    import qjaxiface

    w = jnp.asarray(np.random.default_rng(0).random((3, 4, 3)))
    xs = jnp.asarray(np.random.default_rng(1).random((3, 4)))

    def transforms(circuit):
        def vec(w, x):
            return jnp.stack(circuit(w, x))

        return [
            jax.vmap(jax.jacobian(vec), in_axes=(None, 0)),
            jax.vmap(jax.jacfwd(vec), in_axes=(None, 0)),
            jax.vmap(jax.hessian(lambda w, x: circuit(w, x)[0]), in_axes=(None, 0)),
        ]

    ref = [f(w, xs) for f in transforms(_embedded_layers("backprop"))]  # PennyLane's boundary
    with qjaxiface.installed():
        circuit = _embedded_layers(diff_method)
        program = [x for x in _program_plan(w, xs[0]) if isinstance(x, Region)]
        assert program, "the circuit should run as a compact region"
        got = [jax.jit(f)(w, xs) for f in transforms(circuit)]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, atol=1e-8)


def _program_plan(w, x) -> list:
    tape = preprocess(
        qml.tape.QuantumScript(
            [
                qml.AngleEmbedding(x, wires=range(4)),
                qml.StronglyEntanglingLayers(w, wires=range(4)),
            ],
            [qml.expval(qml.Z(0))],
        )
    )
    return TapeProgram(tape).plan
