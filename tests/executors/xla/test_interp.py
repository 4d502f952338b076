"""The gate-list interpreter, against default.qubit and against the unrolled program."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from jax.test_util import check_grads
from xla_test_helpers import DEV, preprocess

from qjaxiface import clear_caches
from qjaxiface.executors.xla import (
    _interp,
    set_compact,
    set_light_cone,
    set_precision,
    xla_execute,
)
from qjaxiface.executors.xla._gates import compile_gate
from qjaxiface.executors.xla._interp import (
    _DENSE,
    BIT,
    DENSE,
    DIAG,
    LEVELS,
    MIN_GATES,
    PAIR,
    PARITY,
    PAULI,
    VIEW,
    Interp,
    row_of,
)
from qjaxiface.executors.xla._simulate import TapeProgram

N = 5
# A Hermitian 4x4 generator: ``QubitUnitary(expm(i p H))`` is a two-wire matrix whose 16
# entries all depend on the traced angle.
_H4 = np.array(
    [[1.0, 0.5, 0, 0.2j], [0.5, -0.3, 0.7, 0], [0, 0.7, 0.4, -0.6j], [-0.2j, 0, 0.6j, -1.1]]
)


def _unitary(p):
    return jax.scipy.linalg.expm(1j * p * jnp.asarray(_H4))


# Every kind of row: controlled one-wire matrices (with zero-valued controls too), one- and
# two-wire diagonals with and without controls, bit flips, constant and parametrized gates,
# pair rows, dense two-wire matrices (closed form, PennyLane's matrix, a QubitUnitary),
# parity diagonals and Pauli rotations.
KINDS = [
    lambda p, a, b, c: qml.CRX(p, [a, b]),
    lambda p, a, b, c: qml.CRY(p, [b, a]),
    lambda p, a, b, c: qml.CRZ(p, [a, c]),
    lambda p, a, b, c: qml.CRot(p, 0.3 * p, -p, [c, a]),
    lambda p, a, b, c: qml.ControlledPhaseShift(p, [a, b]),
    lambda p, a, b, c: qml.IsingZZ(p, [b, c]),
    lambda p, a, b, c: qml.MultiRZ(p, [c, a]),
    lambda p, a, b, c: qml.MultiRZ(p, [b, c, a]),
    lambda p, a, b, c: qml.PauliRot(p, "XYZ", [c, a, b]),
    lambda p, a, b, c: qml.PauliRot(p, "YZ", [b, c]),
    lambda p, a, b, c: qml.RX(p, a),
    lambda p, a, b, c: qml.Rot(p, -p, 0.5 * p, b),
    lambda p, a, b, c: qml.U3(p, 0.2, -0.4, c),
    lambda p, a, b, c: qml.PhaseShift(p, a),
    lambda p, a, b, c: qml.RZ(p, b),
    lambda p, a, b, c: qml.CZ([a, c]),
    lambda p, a, b, c: qml.CNOT([b, a]),
    lambda p, a, b, c: qml.Toffoli([a, b, c]),
    lambda p, a, b, c: qml.CCZ([c, b, a]),
    lambda p, a, b, c: qml.DoubleExcitation(p, [a, b, c, min({0, 1, 2, 3} - {a, b, c})]),
    lambda p, a, b, c: qml.MultiControlledX(wires=[c, a, b], control_values=[0, 1]),
    lambda p, a, b, c: qml.CY([c, b]),
    lambda p, a, b, c: qml.Hadamard(a),
    lambda p, a, b, c: qml.S(c),
    lambda p, a, b, c: qml.PauliX(b),
    lambda p, a, b, c: qml.GlobalPhase(p),
    lambda p, a, b, c: qml.SWAP([b, c]),
    lambda p, a, b, c: qml.CSWAP([a, c, b]),
    lambda p, a, b, c: qml.IsingXX(p, [c, a]),
    lambda p, a, b, c: qml.IsingXY(p, [a, b]),
    lambda p, a, b, c: qml.SingleExcitation(p, [b, a]),
    lambda p, a, b, c: qml.ISWAP([c, b]),
    lambda p, a, b, c: qml.SISWAP([a, c]),
    lambda p, a, b, c: qml.IsingYY(p, [b, c]),
    lambda p, a, b, c: qml.PSWAP(p, [c, a]),
    lambda p, a, b, c: qml.SingleExcitationPlus(p, [a, b]),
    lambda p, a, b, c: qml.SingleExcitationMinus(p, [c, b]),
    lambda p, a, b, c: qml.FermionicSWAP(p, [b, a]),
    lambda p, a, b, c: qml.QubitUnitary(_unitary(p), [c, b]),
]
# A gate no row runs: it splits a stretch.
BREAKER = lambda wires: qml.QubitUnitary(qml.matrix(qml.QFT(wires=range(3))), wires)  # noqa: E731


def random_ops(params, seed: int = 0, breaker: bool = True) -> list:
    """One gate per parameter, of a random kind on random wires (no pattern repeats), with a
    ``BREAKER`` in the middle when ``breaker``."""
    rng = np.random.default_rng(seed)
    ops = [qml.Hadamard(w) for w in range(N)]
    for j, p in enumerate(params):
        a, b, c = (int(w) for w in rng.choice(N, 3, replace=False))
        ops.append(KINDS[int(rng.integers(len(KINDS)))](p, a, b, c))
        if breaker and j == len(params) // 2:
            ops.append(BREAKER([0, 1, 3]))
    return ops


def _tape(params, measurements, seed=0):
    return preprocess(qml.tape.QuantumScript(random_ops(params, seed), measurements))


def _interps(tape, interp=True) -> list[Interp]:
    return [x for x in TapeProgram(tape, interp=interp).plan if isinstance(x, Interp)]


@pytest.fixture(params=["gather", "views"])
def matrix_kernel(request, monkeypatch):
    """One-wire matrices on the gather kernel (the default on up to 12 wires) or on a kernel
    per target wire (``GATHER_WIRES = 0``: as on wider programs)."""
    clear_caches()
    if request.param == "views":
        monkeypatch.setattr(_interp, "GATHER_WIRES", 0)
    yield request.param
    clear_caches()


def test_rows_cover_the_interpretable_gates(monkeypatch):
    n = 4
    axis_of = {w: w for w in range(n)}

    def rows(op):  # as a list: the row, or nothing
        found = row_of(compile_gate(op, axis_of), n)
        return None if found is None else [found[0]]

    # (kernel, shifts p q, control mask, control values, diagonal, pair on x_p != x_q); wire 0
    # is the top bit. A one-wire matrix: the pairs x, x ^ bit_t, whatever the target.
    assert rows(qml.RY(0.1, 2)) == [(BIT, 1, 1, 0, 0, 0, 0)]
    assert rows(qml.CRX(0.1, [0, 3])) == [(BIT, 0, 0, 8, 8, 0, 0)]
    assert rows(qml.MultiControlledX(wires=[1, 2, 0], control_values=[0, 1])) == [
        (BIT, 3, 3, 6, 2, 0, 0)
    ]
    assert rows(qml.RZ(0.1, 1)) == [(DIAG, 2, 2, 0, 0, 1, 0)]
    assert rows(qml.IsingZZ(0.1, [3, 1])) == [(DIAG, 0, 2, 0, 0, 1, 0)]
    assert rows(qml.GlobalPhase(0.1)) == [(DIAG, 0, 0, 0, 0, 1, 0)]
    # Wider programs: a kernel per target axis.
    monkeypatch.setattr(_interp, "GATHER_WIRES", n - 1)
    assert rows(qml.RY(0.1, 2)) == [(VIEW + 2, 1, 1, 0, 0, 0, 0)]
    assert rows(qml.CRX(0.1, [0, 3])) == [(VIEW + 3, 0, 0, 8, 8, 0, 0)]
    monkeypatch.undo()
    # Two-wire gates: the pair kernel, on every pair (IsingXX) or where the bits differ.
    assert rows(qml.IsingXX(0.1, [1, 3])) == [(PAIR, 2, 0, 0, 0, 0, 0)]
    assert rows(qml.SWAP([1, 3])) == [(PAIR, 2, 0, 0, 0, 0, 1)]
    assert rows(qml.CSWAP([0, 1, 3])) == [(PAIR, 2, 0, 8, 8, 0, 1)]
    assert rows(qml.SingleExcitation(0.1, [3, 1])) == [(PAIR, 0, 2, 0, 0, 0, 1)]
    assert rows(qml.PSWAP(0.1, [3, 1])) == [(PAIR, 0, 2, 0, 0, 0, 1)]
    # Any other two-wire matrix: the dense kernel, reading all 16 entries.
    dense = [qml.IsingYY(0.1, [3, 1]), qml.QubitUnitary(np.eye(4), [3, 1])]
    dense += [qml.SingleExcitationPlus(0.1, [3, 1]), qml.FermionicSWAP(0.1, [3, 1])]
    for op in dense:
        assert row_of(compile_gate(op, axis_of), n) == ((DENSE, 0, 2, 0, 0, 0, 0), _DENSE)
    assert rows(qml.CCZ([3, 0, 1])) == [(DIAG, 2, 2, 9, 9, 1, 0)]  # Z on wire 1 under 3, 0
    # DoubleExcitation: the two-level kernel, flipping its four bits where they read 0011 or
    # 1100 (here wires 3, 1, 0, 2: bits 0, 2, 3, 1; the low side has bits 3 and 1 set).
    assert rows(qml.DoubleExcitation(0.1, [3, 1, 0, 2])) == [(LEVELS, 15, 0, 15, 10, 0, 0)]
    # MultiRZ on three or more wires: the parity kernel, on the mask of its wires (3, 0, 1:
    # bits 0, 3, 2). On two wires it is a two-wire diagonal.
    assert rows(qml.MultiRZ(0.1, [3, 0, 1])) == [(PARITY, 13, 0, 0, 0, 1, 0)]
    assert rows(qml.MultiRZ(0.1, [3, 0])) == [(DIAG, 0, 3, 0, 0, 1, 0)]
    # PauliRot: the Pauli kernel, on the masks of its X, Y bits and of its Y, Z bits (wires
    # 3, 0, 1 are bits 0, 3, 2). Without an X or a Y: a parity diagonal on its Z wires.
    assert rows(qml.PauliRot(0.1, "XYZ", [3, 0, 1])) == [(PAULI, 9, 12, 0, 0, 0, 0)]
    assert rows(qml.PauliRot(0.1, "ZZZ", [3, 0, 1])) == [(PARITY, 13, 0, 0, 0, 1, 0)]
    assert rows(qml.PauliRot(0.1, "ZI", [3, 0])) == [(PARITY, 1, 0, 0, 0, 1, 0)]
    assert rows(qml.PauliRot(0.1, "II", [3, 0])) is None
    assert rows(BREAKER([0, 1, 2])) is None


def test_a_stretch_becomes_one_interp_per_side_of_a_breaker():
    params = np.linspace(0.1, 2.0, 3 * MIN_GATES)
    tape = _tape(params, [qml.probs()])  # all wires: no gate is outside the light cone
    program = TapeProgram(tape, interp=True)
    assert sum(isinstance(x, Interp) for x in program.plan) == 2
    flat: list[int] = []
    for item in program.plan:
        flat.extend(item.ids if isinstance(item, Interp) else [item])
    assert flat == list(range(len(program.gates)))  # every gate once, in order


def test_short_stretches_settings_and_wide_programs_keep_kernels(monkeypatch):
    short = _tape(np.linspace(0.1, 1.0, MIN_GATES - 6), [qml.expval(qml.Z(0))])
    assert not _interps(short)
    params = np.linspace(0.1, 2.0, 3 * MIN_GATES)
    tape = _tape(params, [qml.expval(qml.Z(0))])
    assert _interps(tape) and not _interps(tape, interp=False)
    monkeypatch.setattr(_interp, "MAX_WIRES", N - 1)
    assert not _interps(tape)
    monkeypatch.undo()

    set_compact(False)
    try:
        assert not _interps(tape)
    finally:
        set_compact(True)


def test_the_final_state_equals_default_qubit(matrix_kernel):
    params = np.random.default_rng(1).uniform(-np.pi, np.pi, 3 * MIN_GATES)
    tape = _tape(params, [qml.state()])
    program = TapeProgram(tape, interp=True)
    assert any(isinstance(x, Interp) for x in program.plan)
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    got = jax.jit(program.final_state)(leaves)
    ref = qml.execute([tape], DEV, diff_method=None)[0]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def _vector_fn(diff_method, measurements, seed=2):
    def f(p):
        tape = _tape(p, measurements, seed)
        if diff_method is None:
            res = qml.execute([tape], DEV, diff_method="backprop")[0]
        else:
            assert _interps(tape) or diff_method != "adjoint"
            res = xla_execute([tape], diff_method=diff_method)[0]
        res = res if isinstance(res, tuple) else (res,)
        return jnp.stack([jnp.ravel(r)[0] for r in res])

    return f


EXPVALS = [qml.expval(qml.Z(1)), qml.expval(qml.Y(0) @ qml.X(3)), qml.expval(qml.X(4))]


def test_adjoint_jacobian_equals_default_qubit(matrix_kernel):
    params = jnp.asarray(np.random.default_rng(3).uniform(-np.pi, np.pi, 3 * MIN_GATES))
    got = jax.jit(jax.jacobian(_vector_fn("adjoint", EXPVALS)))(params)
    ref = jax.jit(jax.jacobian(_vector_fn(None, EXPVALS)))(params)
    np.testing.assert_allclose(got, ref, atol=1e-10)


# Closed forms, PennyLane's matrix of the rebuilt op (FermionicSWAP), a QubitUnitary: the dense
# kernel. Then an RY.
DENSE_KINDS = [
    lambda p, w: qml.IsingYY(p, w[:2]),
    lambda p, w: qml.SingleExcitationMinus(p, w[1::-1]),
    lambda p, w: qml.FermionicSWAP(p, w[:2]),
    lambda p, w: qml.QubitUnitary(_unitary(p), w[:2]),
    lambda p, w: qml.RY(p, w[1]),
]
# DoubleExcitations: the two-level kernel. Then a SingleExcitation and an RY.
LEVEL_KINDS = [
    lambda p, w: qml.DoubleExcitation(p, w),
    lambda p, w: qml.DoubleExcitation(p, w[::-1]),
    lambda p, w: qml.SingleExcitation(p, w[:2]),
    lambda p, w: qml.RY(p, w[1]),
]
# MultiRZ on three and four wires: the parity kernel. Then a two-wire MultiRZ (a diagonal),
# an RX and an IsingXX, so that the parities see superpositions.
PARITY_KINDS = [
    lambda p, w: qml.MultiRZ(p, w[:3]),
    lambda p, w: qml.MultiRZ(p, w),
    lambda p, w: qml.MultiRZ(p, w[2:]),
    lambda p, w: qml.RX(p, w[1]),
    lambda p, w: qml.IsingXX(p, w[1:3]),
]
# PauliRot with X and Y letters: the Pauli kernel (with an identity letter too; words of one
# length share a block of values). Then a word of Z and I (a parity row) and an RZ.
PAULI_KINDS = [
    lambda p, w: qml.PauliRot(p, "XYZ", w[:3]),
    lambda p, w: qml.PauliRot(p, "YIXZ", w),
    lambda p, w: qml.PauliRot(p, "ZXY", w[1:]),
    lambda p, w: qml.PauliRot(p, "YY", w[2:]),
    lambda p, w: qml.PauliRot(p, "ZIZ", w[1:]),
    lambda p, w: qml.RZ(p, w[1]),
]


def _stretch_tape(kinds, params, measurements):
    """Gate ``j`` of kind ``kinds[j % len(kinds)]`` on four distinct wires drawn at random."""
    rng = np.random.default_rng(9)
    ops = [qml.Hadamard(w) for w in range(N)]
    for j, p in enumerate(params):
        wires = [int(w) for w in rng.permutation(N)[:4]]
        ops.append(kinds[j % len(kinds)](p, wires))
    return preprocess(qml.tape.QuantumScript(ops, measurements))


@pytest.mark.parametrize(
    ("kinds", "branch", "heavy"),
    [
        (DENSE_KINDS, DENSE, 4),
        (LEVEL_KINDS, LEVELS, 2),
        (PARITY_KINDS, PARITY, 2),
        (PAULI_KINDS, PAULI, 4),
    ],
    ids=["dense", "two-level", "parity", "pauli"],
)
def test_matrices_excitations_parities_and_pauli_rotations_run_on_their_kernels(
    kinds, branch, heavy
):
    params = jnp.asarray(np.random.default_rng(8).uniform(-np.pi, np.pi, MIN_GATES + 4))
    (interp,) = _interps(_stretch_tape(kinds, params, EXPVALS))
    # The first ``heavy`` kinds are rows of the kernel under test.
    ours = [row for row in interp.rows if row[0] == branch]
    assert len(ours) == sum(j % len(kinds) < heavy for j in range(len(params)))

    tape = _stretch_tape(kinds, params, [qml.state()])
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    got = jax.jit(TapeProgram(tape, interp=True).final_state)(leaves)
    np.testing.assert_allclose(got, qml.execute([tape], DEV, diff_method=None)[0], atol=1e-12)

    def f(p, method):
        tape = _stretch_tape(kinds, p, EXPVALS)
        if method == "adjoint":
            return jnp.stack(xla_execute([tape], diff_method="adjoint")[0])
        return jnp.stack(qml.execute([tape], DEV, diff_method="backprop")[0])

    ref = jax.jit(jax.jacobian(f), static_argnums=1)(params, "backprop")
    got = jax.jit(jax.jacobian(f), static_argnums=1)(params, "adjoint")
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(jax.jacfwd(f)(params, "adjoint"), ref, atol=1e-10)


def test_the_sweep_reaches_grad_as_one_call(scan_walks):
    """The interpreter's scans depend on the parameters alone: ``grad`` passes the sweep
    through whole (``_tangents.one_call``) instead of walking each loop twice."""
    params = jnp.asarray(np.random.default_rng(3).uniform(-np.pi, np.pi, 3 * MIN_GATES))
    f = _vector_fn("adjoint", EXPVALS)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: jnp.sum(f(p))))(params))
    assert "scan" in jaxpr and scan_walks == []


def test_global_phases_in_the_sweep_have_zero_derivative():
    # With the light cone off, the global phases stay in the program: their rows' weights must
    # cancel in every expectation value's derivative.
    params = jnp.asarray(np.random.default_rng(7).uniform(-np.pi, np.pi, 3 * MIN_GATES))
    clear_caches()
    set_light_cone(False)
    try:
        tape = _tape(params, EXPVALS, seed=0)
        program = TapeProgram(tape, interp=True)
        phases = [i for i, (_, _, op) in enumerate(program.gates) if op.name == "GlobalPhase"]
        assert phases and all(any(i in x.ids for x in _interps(tape)) for i in phases)
        got = jax.jit(jax.jacobian(_vector_fn("adjoint", EXPVALS, seed=0)))(params)
    finally:
        set_light_cone(True)
        clear_caches()
    ref = jax.jit(jax.jacobian(_vector_fn(None, EXPVALS, seed=0)))(params)
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_forward_mode_hessian_and_vmap_through_the_sweep(matrix_kernel):
    params = jnp.asarray(np.random.default_rng(4).uniform(-np.pi, np.pi, 2 * MIN_GATES))
    f = _vector_fn("adjoint", EXPVALS[:2])
    ref_f = _vector_fn(None, EXPVALS[:2])
    np.testing.assert_allclose(
        jax.jacfwd(f)(params), jax.jit(jax.jacrev(ref_f))(params), atol=1e-10
    )
    head = lambda fn: lambda p: fn(p)[0]  # noqa: E731
    np.testing.assert_allclose(
        jax.jit(jax.hessian(head(f)))(params),
        jax.jit(jax.hessian(head(ref_f)))(params),
        atol=1e-9,
    )
    batch = jnp.stack([params, params[::-1]])
    np.testing.assert_allclose(
        jax.jit(jax.vmap(jax.jacobian(f)))(batch),
        jax.jit(jax.vmap(jax.jacobian(ref_f)))(batch),
        atol=1e-10,
    )


def test_single_precision_agrees_with_double():
    params = jnp.asarray(np.random.default_rng(5).uniform(-np.pi, np.pi, 2 * MIN_GATES))
    f = jax.jacobian(_vector_fn("adjoint", EXPVALS[:1]))
    double = f(params)
    clear_caches()
    set_precision("single")
    try:
        single = f(params)
    finally:
        set_precision("double")
        clear_caches()
    assert not np.array_equal(single, double)  # the complex64 program ran
    np.testing.assert_allclose(single, double, atol=2e-5)


def _ops_in(size: int) -> dict[str, int]:
    """Counts of the lowered adjoint ``jit(grad)`` program's kernels and loops."""

    def f(p):
        # An observable on every wire: no gate is outside the light cone.
        tape = _tape(p, [qml.expval(qml.prod(*(qml.Z(w) for w in range(N))))])
        return xla_execute([tape], diff_method="adjoint")[0]

    text = jax.jit(jax.grad(f)).lower(jnp.ones(size)).as_text()
    return {op: len(re.findall(rf"stablehlo\.{op}\b", text)) for op in ("dot_general", "while")}


def test_the_program_does_not_grow_with_the_number_of_gates():
    shallow, deep = _ops_in(3 * MIN_GATES), _ops_in(8 * MIN_GATES)
    assert shallow["while"] >= 2  # the run and the sweep, on each side of the breaker
    assert deep == shallow


@pytest.mark.parametrize(
    ("gates", "switches"),
    [
        (lambda p, w: qml.RZ(p, w), []),  # diagonals alone: one kernel, no switch
        (lambda p, w: qml.RX(p, w), []),  # one-wire matrices on every wire, as pairs
        (lambda p, w: qml.CRY(p, [w, (w + 2) % N]) if w % 2 else qml.RZ(p, w), [2]),
    ],
    ids=["diagonals", "matrices", "both"],
)
def test_the_switch_holds_only_the_kernels_a_stretch_uses(gates, switches):
    params = np.linspace(0.1, 2.0, 2 * MIN_GATES)
    ops = [gates(p, j % N) for j, p in enumerate(params)]
    tape = preprocess(qml.tape.QuantumScript(ops, [qml.state()]))
    program = TapeProgram(tape, interp=True)
    assert any(isinstance(x, Interp) for x in program.plan)
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    jaxpr = jax.make_jaxpr(program.final_state)(leaves)
    sizes = [len(e.params["branches"]) for e in _eqns(jaxpr.jaxpr) if e.primitive.name == "cond"]
    assert sizes == switches  # the branches of each switch
    ref = qml.execute([tape], DEV, diff_method=None)[0]
    np.testing.assert_allclose(jax.jit(program.final_state)(leaves), ref, atol=1e-12)


def _eqns(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs inside it."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's Jaxpr
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


def _layered_tape(params, breaker: bool = False):
    """Per layer a ring of CRX, a ring of IsingZZ and one RY (a three-wire MultiRZ first when
    ``breaker``): a pattern ``_repeat.find_repeats`` loops."""
    params = jnp.reshape(params, (-1, 2 * N + 1))
    ops = [qml.Hadamard(w) for w in range(N)]
    for layer in params:
        if breaker:
            ops.append(qml.MultiRZ(0.7, [0, 1, 2]))
        ops += [qml.CRX(layer[w], [w, (w + 1) % N]) for w in range(N)]
        ops += [qml.IsingZZ(layer[N + w], [w, (w + 2) % N]) for w in range(N)]
        ops.append(qml.RY(layer[2 * N], 0))
    measurements = [qml.expval(qml.prod(*(qml.Z(w) for w in range(N)))), qml.expval(qml.X(1))]
    return preprocess(qml.tape.QuantumScript(ops, measurements))


def _kinds(tape) -> list[str]:
    return [type(x).__name__ for x in TapeProgram(tape, interp=True).plan if not isinstance(x, int)]


def test_repeats_of_interpretable_gates_join_the_interpreter_on_few_wires(monkeypatch):
    params = np.linspace(0.1, 2.0, 4 * (2 * N + 1))
    assert _kinds(_layered_tape(params)) == ["Interp"]  # the Hadamards and every layer
    assert _kinds(_layered_tape(params, breaker=True)) == ["Interp"]

    def no_parity_rows(gate, n):  # a pattern holding a gate with no row stays a loop
        return None if gate.name == "MultiRZ" and len(gate.axes) > 2 else row_of(gate, n)

    monkeypatch.setattr(_interp, "row_of", no_parity_rows)
    assert "Repeat" in _kinds(_layered_tape(params, breaker=True))
    monkeypatch.setattr(_interp, "LOOP_WIRES", N - 1)
    assert "Repeat" in _kinds(_layered_tape(params))


def test_an_interpreted_repeat_differentiates_as_default_qubit(matrix_kernel):
    params = jnp.asarray(np.random.default_rng(6).uniform(-np.pi, np.pi, 3 * (2 * N + 1)))

    def f(p, diff_method):
        tape = _layered_tape(p)
        if diff_method == "adjoint":
            assert _kinds(tape) == ["Interp"]
            res = xla_execute([tape], diff_method="adjoint")[0]
        else:
            res = qml.execute([tape], DEV, diff_method="backprop")[0]
        return jnp.stack(res)

    got = jax.jit(jax.jacobian(f), static_argnums=1)(params, "adjoint")
    ref = jax.jit(jax.jacobian(f), static_argnums=1)(params, "backprop")
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_class_sums_match_masked_sums_and_differentiate():
    """The adjoint weights' one-pass reduction (``_interp._class_sums``) against plain sums,
    with its hand-written tangent checked numerically in both modes, under vmap and in single
    precision."""
    rng = np.random.default_rng(7)
    xs = tuple(jnp.asarray(rng.normal(size=(3, 16)) + 1j * rng.normal(size=(3, 16))) for _ in "ab")
    wheres = tuple(jnp.asarray(rng.uniform(size=16) < 0.5) for _ in "ab")

    def f(a, b):
        return _interp._class_sums((a, b), wheres)

    want = np.stack([np.where(w, x, 0).sum(-1) for x, w in zip(xs, wheres)], axis=-1)
    np.testing.assert_allclose(f(*xs), want, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(f)(*xs), want, atol=1e-12)
    low = f(*(x.astype(jnp.complex64) for x in xs))
    assert low.dtype == jnp.complex64
    np.testing.assert_allclose(low, want, atol=1e-5)
    check_grads(f, xs, order=2, modes=("fwd", "rev"))


def test_trotterized_ising_runs_interpreted_and_differentiates_as_default_qubit():
    """``ApproxTimeEvolution`` of an Ising chain: PauliRot ZZ (parity rows) and X terms, with
    trainable couplings, against PennyLane's backprop."""
    pairs = [(w, w + 1) for w in range(N - 1)]

    def tape_of(p):
        coeffs = [p[k] for k in range(len(pairs))] + [0.7] * N
        terms = [qml.Z(a) @ qml.Z(b) for a, b in pairs] + [qml.X(w) for w in range(N)]
        ops = [qml.Hadamard(w) for w in range(N)]
        ops.append(qml.ApproxTimeEvolution(qml.Hamiltonian(coeffs, terms), 0.8, 4))
        return preprocess(qml.tape.QuantumScript(ops, EXPVALS))

    params = jnp.asarray(np.random.default_rng(11).uniform(0.2, 1.5, len(pairs)))
    words = {op.hyperparameters["pauli_word"] for op in tape_of(params).operations[N:]}
    assert words == {"ZZ", "X"}
    assert [type(x).__name__ for x in TapeProgram(tape_of(params), interp=True).plan] == ["Interp"]

    def f(p, method):
        if method == "adjoint":
            return jnp.stack(xla_execute([tape_of(p)], diff_method="adjoint")[0])
        return jnp.stack(qml.execute([tape_of(p)], DEV, diff_method="backprop")[0])

    ref = jax.jit(jax.jacobian(f), static_argnums=1)(params, "backprop")
    got = jax.jit(jax.jacobian(f), static_argnums=1)(params, "adjoint")
    np.testing.assert_allclose(got, ref, atol=1e-10)
