"""Gate values (``_gates.GateValues``): whole arrays per gate formula and their weighted sum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import assert_tree_close, preprocess

import qjaxiface
from qjaxiface.executors.xla._gates import compile_gate, full_matrix, inverse_values, two_levels
from qjaxiface.executors.xla._kernels import apply_gate
from qjaxiface.executors.xla._simulate import TapeProgram


def _program_and_leaves():
    ops = [
        qml.RX(0.1, 0),
        qml.RY(0.2, 1),
        qml.RX(0.3, 1),
        qml.Rot(0.4, 0.5, 0.6, 0),
        qml.CNOT([0, 1]),
        qml.RZ(0.7, 1),
        qml.QubitUnitary(qml.matrix(qml.Hadamard(0)), 0),
    ]
    tape = preprocess(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))]))
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    return TapeProgram(tape), leaves


def _weights(program, values, m=2, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(len(program.gates)):
        if values[i] is not None:
            shape = (m, *np.shape(values[i]))
            out[i] = jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape))
    return out


def test_weighted_sum_is_the_sum_over_gates():
    program, leaves = _program_and_leaves()
    values = program.gate_values(leaves)
    weights = _weights(program, values)
    batches, direct = values.arrays()
    assert batches and any(i in weights for i in direct)  # formulas and a gate computed apart
    expected = sum(
        jnp.real(jnp.sum(w * values[i][None], axis=tuple(range(1, w.ndim))))
        for i, w in weights.items()
    )
    np.testing.assert_allclose(values.weighted_sum(weights), expected, atol=1e-12)
    # Over the same layout with other arrays: the same as those arrays' own values.
    other = program.gate_values(tuple(2 * x for x in leaves))
    moved = values.over(*other.arrays())
    np.testing.assert_allclose(moved.weighted_sum(weights), other.weighted_sum(weights))
    for i in weights:
        np.testing.assert_allclose(moved[i], other[i])


def test_weighted_sum_of_tangents_differentiates_like_the_per_gate_sum():
    """The adjoint rule's use: the tangent values' weighted sum, reverse-mode differentiated
    (each formula's cotangent whole) equals the per-gate slices' gradient."""
    program, leaves = _program_and_leaves()
    layout = program.gate_values(leaves)
    weights = _weights(program, layout, m=1, seed=1)

    def whole(params):
        return layout.over(*program.gate_values(params).arrays()).weighted_sum(weights)[0]

    def per_gate(params):
        vals = program.gate_values(params)
        return sum(jnp.real(jnp.sum(w[0] * vals[i])) for i, w in weights.items())

    np.testing.assert_allclose(whole(leaves), per_gate(leaves), atol=1e-12)
    got, want = jax.grad(whole)(leaves), jax.grad(per_gate)(leaves)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_closed_forms_of_two_wire_excitations_equal_pennylane():
    """IsingXY, SingleExcitation(Plus/Minus), PSWAP and DoubleExcitation: one closed form each (batched over a
    program's gates), against PennyLane's matrices, at angles of both signs and under
    ``vmap``."""
    from qjaxiface.executors.xla._gates import compile_gate

    angles = np.array([-2.3, -0.4, 0.0, 0.7, 3.1])
    kinds = (qml.IsingXY, qml.SingleExcitation, qml.SingleExcitationPlus)
    for kind in (*kinds, qml.SingleExcitationMinus, qml.PSWAP, qml.DoubleExcitation):
        wires = list(range(kind.num_wires))
        gate = compile_gate(kind(0.1, wires), {w: w for w in wires})
        assert gate.closed_form
        got = jax.vmap(lambda a, fn=gate.fn: fn([a]))(jnp.asarray(angles))
        ref = np.stack([qml.matrix(kind(a, wires)) for a in angles])
        np.testing.assert_allclose(got, ref, atol=1e-12)


def _random_word(rng, m: int, identities: int = 0) -> str:
    letters = list(rng.choice(list("XYZ"), m)) + ["I"] * identities
    rng.shuffle(letters)
    return "".join(letters)


def test_one_letter_pauli_rotations_are_their_matrix():
    """A one-letter PauliRot is its 2x2 matrix, and the interpreter reads all of it."""
    angles = jnp.asarray([-2.3, 0.0, 0.7])
    for word in ("X", "Y", "Z", "IZ"):
        wires = list(range(len(word)))
        gate = compile_gate(qml.PauliRot(0.1, word, wires), {w: w for w in wires})
        assert gate.kind == "matrix" and gate.closed_form and two_levels(gate) == (0, 1)
        got = jax.vmap(lambda a, fn=gate.fn: fn([a]))(angles)
        ref = np.stack([qml.matrix(qml.PauliRot(a, word, wires)) for a in angles])
        np.testing.assert_allclose(got, ref, atol=1e-12)


def test_longer_words_are_two_numbers_that_apply_their_matrix():
    """Words of two letters or more: ``(a, b)`` of ``a I + b P`` on the non-identity wires.
    Applied, un-applied (``U†`` and, from a conjugated bra, ``U^T``) and as a full matrix, they
    equal PennyLane's matrix; equal words share one formula; the interpreter reads the levels
    ``0`` and the X and Y bits (without them, one Z bit) of the word without identities."""
    rng = np.random.default_rng(3)
    n = 9
    axis_of = {w: w for w in range(n)}
    cases = [("YZ", (0, 2)), ("XIYZ", (0, 6)), ("ZIZ", (0, 2)), ("ZZZZZZZ", (0, 64))]
    cases += [(_random_word(rng, 2 + k % 7, identities=k % 2), None) for k in range(10)]
    for word, levels in cases:
        wires = [int(w) for w in rng.permutation(n)[: len(word)]]
        op = qml.PauliRot(rng.uniform(-3, 3), word, wires)
        gate = compile_gate(op, axis_of)
        kept = [w for w, c in zip(wires, word) if c != "I"]
        assert gate.kind == "pauli" and gate.closed_form and gate.axes == tuple(kept)
        assert gate.fn == compile_gate(qml.PauliRot(0.2, word, wires), axis_of).fn
        if levels is not None:
            assert two_levels(gate) == levels
        value = gate.fn([op.data[0]])
        u = qml.matrix(op, wire_order=range(n))
        state = jnp.asarray(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
        dagger, transposed = inverse_values([gate], [value])
        for got, want in [
            (apply_gate(state, gate, (), value=value), u @ state),
            (apply_gate(state, gate, (), value=value, adjoint=True), u.conj().T @ state),
            (apply_gate(state, gate, (), value=dagger[0]), u.conj().T @ state),
            (apply_gate(state, gate, (), value=transposed[0]), u.T @ state),
        ]:
            np.testing.assert_allclose(got, want, atol=1e-12)
        reduced = qml.PauliRot(op.data[0], word.replace("I", ""), kept)
        np.testing.assert_allclose(full_matrix(gate, value), qml.matrix(reduced), atol=1e-12)


def test_every_longer_word_is_one_batch():
    """One formula for every word of two letters or more: one batch of ``(a, b)`` rows."""
    words = ["XYZ", "ZZY", "XYZ", "YXX", "XY"]
    ops = [
        qml.PauliRot(0.3 * (k + 1), word, [0, 1, 2][: len(word)]) for k, word in enumerate(words)
    ]
    tape = preprocess(qml.tape.QuantumScript(ops, [qml.state()]))  # no gate outside the cone
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    program = TapeProgram(tape)
    values = program.gate_values(leaves)
    batches, direct = values.arrays()
    assert [b.shape for b in batches] == [(5, 2)] and not direct
    for i, op in enumerate(ops):
        angle = op.data[0]
        np.testing.assert_allclose(values[i], [np.cos(angle / 2), -1j * np.sin(angle / 2)])


def _long_words(diff_method, expvals_only=False):
    words = {"XYZZYXY": 0, "YIXZYXZY": 0, "ZZYXYXZ": 1}  # word -> its first wire

    @qml.qnode(qml.device("default.qubit", wires=8), diff_method=diff_method)
    def circuit(x):
        for w in range(8):
            qml.RY(x[w], w)
        for k, (word, start) in enumerate(words.items()):
            qml.PauliRot(x[8 + k], word, wires=range(start, start + len(word)))
        if expvals_only:  # what adjoint differentiates
            return qml.expval(qml.X(0) @ qml.Y(7)), qml.expval(qml.Z(3))
        return qml.expval(qml.X(0) @ qml.Y(7)), qml.probs(wires=[1, 5])

    return circuit


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_circuits_with_long_words_match_pennylane(diff_method):
    """Values, Jacobians, forward-mode Jacobians and vmap against PennyLane's own boundary."""
    x = jnp.asarray(np.random.default_rng(12).uniform(-2, 2, 11))
    expvals_only = diff_method == "adjoint"

    def flat(circuit):
        return lambda x: jnp.concatenate([jnp.ravel(r) for r in circuit(x)])

    ref_fn = flat(_long_words("backprop", expvals_only))  # PennyLane's own boundary
    ref = (ref_fn(x), jax.jacobian(ref_fn)(x))
    batch = jnp.stack([x, 0.5 * x])
    with qjaxiface.installed():
        circuit = _long_words(diff_method, expvals_only)
        program = TapeProgram(qml.workflow.construct_tape(circuit)(x))
        assert [g.kind for g, _, _ in program.gates].count("pauli") == 3
        fn = flat(circuit)
        got = jax.jit(lambda x: (fn(x), jax.jacobian(fn)(x), jax.jacfwd(fn)(x)))(x)
        got_vmap = jax.jit(jax.vmap(fn))(batch)
    assert_tree_close(got, (*ref, ref[1]), atol=1e-8)
    np.testing.assert_allclose(got_vmap[1], ref_fn(batch[1]), atol=1e-8)


def test_a_constant_gate_value_is_one_array_shared_by_its_gates():
    ops = [qml.Hadamard(0), qml.RX(0.3, 1), qml.Hadamard(1), qml.S(0), qml.Hadamard(0)]
    program = TapeProgram(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))]))
    values = program.gate_values((jnp.asarray(0.3),))
    batches, direct = values.arrays()
    assert sorted(direct) == [0, 3]  # the first Hadamard and S; the other Hadamards alias it
    doubled = values.over([2 * b for b in batches], {i: 2 * v for i, v in direct.items()})
    assert doubled[2] is doubled[0] and doubled[4] is doubled[0]
    np.testing.assert_allclose(doubled[4], 2 * qml.matrix(qml.Hadamard(0)), atol=1e-15)
    blocks, row_of = doubled.blocks([0, 1, 2, 4])
    assert len(blocks) == 2 and row_of[0] == row_of[2] == row_of[4] != row_of[1]
