"""Repeated gate patterns as one loop, against default.qubit and against the unrolled program."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import DEV, assert_tree_close, preprocess

import qjaxiface
from qjaxiface.executors.xla import _interp, _repeat, set_compact, xla_execute
from qjaxiface.executors.xla._gates import compile_gate
from qjaxiface.executors.xla._repeat import MIN_SAVED, Repeat, signature
from qjaxiface.executors.xla._simulate import TapeProgram

N = 4


@pytest.fixture(autouse=True)
def _loops_under_the_adjoint_rule(monkeypatch):
    """Every gate of ``layered_ops`` has interpreter rows, so on 4 wires the adjoint rule would
    interpret its repeats (``_interp.LOOP_WIRES``): here they stay loops, which this file
    tests (``test_interp.py`` tests the interpreted ones)."""
    monkeypatch.setattr(_interp, "LOOP_WIRES", 0)


def layered_ops(params, layers: int) -> list:
    """A prefix, ``layers`` repetitions of one pattern no compact region takes (controlled
    rotations, Ising couplings, CNOTs, a SWAP, a constant gate, a zero-controlled X), and a
    suffix."""
    ops = [qml.Hadamard(w) for w in range(N)] + [qml.RX(params[0], 1)]
    k = 1
    for _ in range(layers):
        ops += [
            qml.CRX(params[k], [0, 1]),
            qml.IsingZZ(params[k + 1], [1, 2]),
            qml.CNOT([2, 3]),
            qml.IsingXX(params[k + 2], [3, 0]),
            qml.CRZ(params[k + 3], [2, 1]),
            qml.Hadamard(2),
            qml.SWAP([0, 3]),
            qml.MultiControlledX(wires=[1, 2, 0], control_values=[0, 1]),
            qml.CRot(params[k + 4], params[k + 5], params[k + 6], [3, 1]),
        ]
        k += 7
    ops += [qml.RY(params[k], 2), qml.CRY(params[k + 1], [1, 3])]
    return ops


def n_params(layers: int) -> int:
    return 3 + 7 * layers


def _tape(params, layers, measurements, shots=None):
    ops = layered_ops(params, layers)
    return preprocess(qml.tape.QuantumScript(ops, measurements, shots=shots))


def _repeats(tape) -> list[Repeat]:
    return [x for x in TapeProgram(tape).plan if isinstance(x, Repeat)]


def _flat(plan) -> list[int]:
    out: list[int] = []
    for item in plan:
        out.extend([i for row in item.ids for i in row] if isinstance(item, Repeat) else [item])
    return out


def test_a_repeated_pattern_becomes_one_repeat():
    params = np.linspace(0.1, 1.0, n_params(6))
    tape = _tape(params, 6, [qml.probs(wires=range(N))])
    program = TapeProgram(tape)
    (repeat,) = _repeats(tape)
    assert len(repeat.ids) == 6 and len(repeat.ids[0]) == 9
    gates = [g for g, _, _ in program.gates]
    for column in repeat.columns:  # one kernel per position
        assert len({signature(gates[i], -1) for i in column}) == 1
    assert _flat(program.plan) == list(range(len(gates)))  # every gate once, in order


def test_short_patterns_and_formulas_of_their_own_stay_unrolled():
    # Two repetitions of a 3-gate pattern save 3 kernels: not worth a loop.
    params = np.linspace(0.1, 1.0, 8)
    ops = [qml.CRX(params[i], [0, 1]) if i % 2 else qml.IsingYY(params[i], [1, 2]) for i in [0, 1]]
    tape = preprocess(qml.tape.QuantumScript(ops * 2, [qml.expval(qml.Z(0))]))
    assert MIN_SAVED > 2 and not _repeats(tape)
    # QubitUnitary's formula is built per op: equal-looking gates are not one kernel.
    u = qml.matrix(qml.RX(0.3, 0))
    gates = [compile_gate(qml.QubitUnitary(u, wires=0), {0: 0}) for _ in range(2)]
    assert signature(gates[0], 0) != signature(gates[1], 1)


def test_split_takes_the_period_that_saves_most():
    gates = [compile_gate(op, {0: 0, 1: 1, 2: 2}) for op in _ops_of("abcxyxyxyxyxyxyxyxyc")]
    plan = _repeat._split(list(range(len(gates))), gates)
    kinds = [item if isinstance(item, int) else (len(item.ids), len(item.ids[0])) for item in plan]
    assert kinds == [0, 1, 2, (8, 2), 19]


def _ops_of(letters: str) -> list:
    table = {
        "a": lambda: qml.Hadamard(0),
        "b": lambda: qml.CNOT([0, 1]),
        "c": lambda: qml.CRX(0.1, [1, 2]),
        "x": lambda: qml.IsingZZ(0.2, [0, 2]),
        "y": lambda: qml.CRY(0.3, [2, 0]),
    }
    return [table[c]() for c in letters]


def test_unrolled_setting_builds_no_repeat():
    params = np.linspace(0.1, 1.0, n_params(4))
    set_compact(False)
    try:
        assert not _repeats(_tape(params, 4, [qml.expval(qml.Z(0))]))
    finally:
        set_compact(True)


MEASUREMENTS = [
    [qml.expval(qml.Z(0) @ qml.X(2))],
    [qml.expval(qml.Z(1)), qml.var(qml.X(0)), qml.probs(wires=[2, 0])],
    [qml.state()],
]


@pytest.mark.parametrize("measurements", MEASUREMENTS)
def test_results_equal_default_qubit(measurements):
    params = np.random.default_rng(3).uniform(-np.pi, np.pi, n_params(5))
    tape = _tape(params, 5, measurements)
    assert _repeats(tape)
    got = jax.jit(lambda p: xla_execute([_tape(p, 5, measurements)], diff_method=None))(
        jnp.asarray(params)
    )[0]
    assert_tree_close(got, qml.execute([tape], DEV, diff_method=None)[0], atol=1e-10)


def _vector_fn(diff_method, measurements, via, layers=4):
    def f(p):
        tape = _tape(p, layers, measurements)
        if via == "xla":
            res = xla_execute([tape], diff_method=diff_method)[0]
        else:
            res = qml.execute([tape], DEV, diff_method="backprop")[0]
        res = res if isinstance(res, tuple) else (res,)
        return jnp.concatenate([jnp.ravel(r) for r in res])

    return f


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_jacobians_equal_default_qubit(diff_method):
    measurements = [qml.expval(qml.Z(1)), qml.expval(qml.Y(0) @ qml.Z(3))]
    params = jnp.asarray(np.random.default_rng(6).uniform(-np.pi, np.pi, n_params(4)))
    got = jax.jit(jax.jacobian(_vector_fn(diff_method, measurements, "xla")))(params)
    ref = jax.jacobian(_vector_fn(None, measurements, "dq"))(params)
    np.testing.assert_allclose(got, ref, atol=1e-8)


def test_finite_diff_jacobian_is_close():
    measurements = [qml.expval(qml.Z(1))]
    params = jnp.asarray(np.random.default_rng(5).uniform(-np.pi, np.pi, n_params(3)))
    got = jax.jit(jax.jacobian(_vector_fn("finite-diff", measurements, "xla", 3)))(params)
    ref = jax.jacobian(_vector_fn(None, measurements, "dq", 3))(params)
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_forward_mode_and_hessian(diff_method):
    measurements = [qml.expval(qml.Z(0))]
    params = jnp.asarray(np.random.default_rng(7).uniform(-np.pi, np.pi, n_params(3)))
    f = _vector_fn(diff_method, measurements, "xla", 3)
    ref_f = _vector_fn(None, measurements, "dq", 3)
    # The references are jitted: default.qubit's eager Hessian took most of the test's time.
    ref_jac = jax.jit(jax.jacrev(ref_f))(params)
    np.testing.assert_allclose(jax.jacfwd(f)(params), ref_jac, atol=1e-8)
    sub = params[:9]

    def head(fn):
        return lambda s: fn(jnp.concatenate([s, params[9:]]))[0]

    ref_hess = jax.jit(jax.hessian(head(ref_f)))(sub)
    np.testing.assert_allclose(jax.hessian(head(f))(sub), ref_hess, atol=1e-8)


@pytest.mark.parametrize("diff_method", ["adjoint", "parameter-shift"])
def test_vmapped_jacobians(diff_method):
    first = qml.var(qml.X(1)) if diff_method != "adjoint" else qml.expval(qml.X(1))
    measurements = [first, qml.expval(qml.Z(3))]
    batch = jnp.asarray(np.random.default_rng(8).uniform(-np.pi, np.pi, (2, n_params(3))))
    got = jax.vmap(jax.jacobian(_vector_fn(diff_method, measurements, "xla", 3)))(batch)
    ref = jax.vmap(jax.jacobian(_vector_fn(None, measurements, "dq", 3)))(batch)
    np.testing.assert_allclose(got, ref, atol=1e-8)


def test_broadcast_parameters_equal_default_qubit():
    rng = np.random.default_rng(9)
    params = [jnp.asarray(x) for x in rng.uniform(-np.pi, np.pi, n_params(4))]
    params[3] = jnp.asarray(rng.uniform(-np.pi, np.pi, 3))  # one broadcast angle
    measurements = [qml.expval(qml.Z(0)), qml.probs(wires=[1, 3])]
    tape = _tape(params, 4, measurements)
    assert tape.batch_size == 3 and _repeats(tape)
    got = xla_execute([tape], diff_method=None)[0]
    assert_tree_close(got, qml.execute([tape], DEV, diff_method=None)[0], atol=1e-10)


def test_looped_and_unrolled_programs_agree_with_shots():
    params = jnp.asarray(np.random.default_rng(10).uniform(-np.pi, np.pi, n_params(5)))
    key = jax.random.PRNGKey(0)
    measurements = [qml.expval(qml.Z(0)), qml.probs(wires=[1])]

    def run():
        tape = _tape(params, 5, measurements, shots=20000)
        return xla_execute([tape], diff_method=None, prng_key=key)[0]

    looped = run()
    set_compact(False)
    try:
        unrolled = run()
    finally:
        set_compact(True)
    exact = qml.execute([_tape(params, 5, measurements)], DEV)[0]
    for got, plain, ref in zip(looped, unrolled, exact):
        np.testing.assert_allclose(got, plain, atol=0.03)
        np.testing.assert_allclose(got, ref, atol=0.03)


def _kernels(layers: int, diff_method: str) -> dict[str, int]:
    """Counts of the lowered ``jit(grad)`` program's state kernels and loops."""

    def f(p):
        tape = _tape(p, layers, [qml.expval(qml.Z(0))])
        return xla_execute([tape], diff_method=diff_method)[0]

    text = jax.jit(jax.grad(f)).lower(jnp.ones(n_params(layers))).as_text()
    return {op: len(re.findall(rf"stablehlo\.{op}\b", text)) for op in ("dot_general", "while")}


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_the_program_does_not_grow_with_repetitions(diff_method):
    shallow, deep = _kernels(3, diff_method), _kernels(12, diff_method)
    assert shallow["while"] >= 1
    assert deep == shallow


def test_shift_rule_rows_keep_repeats_unrolled():
    """vmapped over the rows, the unrolled gates run faster per step (``_program``)."""
    shallow, deep = _kernels(3, "parameter-shift"), _kernels(6, "parameter-shift")
    assert shallow["while"] == deep["while"] == 0
    assert deep["dot_general"] > shallow["dot_general"]


def test_template_blocks_through_the_boundary():
    """SimplifiedTwoDesign's CZ entanglers keep its layers out of compact regions: each layer
    is a repetition, for every method, as PennyLane's own boundary computes it."""

    def circuit(diff_method):
        @qml.qnode(qml.device("default.qubit", wires=N), diff_method=diff_method)
        def c(init, weights):
            qml.SimplifiedTwoDesign(init, weights, wires=range(N))
            return qml.expval(qml.Z(0) @ qml.Z(3))

        return c

    rng = np.random.default_rng(11)
    init = jnp.asarray(rng.uniform(-np.pi, np.pi, N))
    weights = jnp.asarray(rng.uniform(-np.pi, np.pi, (5, N - 1, 2)))
    template = qml.SimplifiedTwoDesign(init, weights, wires=range(N))
    (repeat,) = _repeats(preprocess(qml.tape.QuantumScript([template], [qml.probs()])))
    assert len(repeat.ids) == 5
    ref = jax.grad(circuit("backprop"), argnums=(0, 1))(init, weights)
    with qjaxiface.installed():
        for diff_method in ("backprop", "adjoint", "parameter-shift"):
            got = jax.jit(jax.grad(circuit(diff_method), argnums=(0, 1)))(init, weights)
            for g, r in zip(got, ref):
                np.testing.assert_allclose(g, r, atol=1e-8)
