"""Gate values (``_gates.GateValues``): whole arrays per gate formula and their weighted sum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from xla_test_helpers import preprocess

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


def test_pauli_rotations_are_one_closed_form_per_word():
    """PauliRot: ``cos(p/2) I - i sin(p/2) P`` per word, against PennyLane's matrices; equal
    words share one formula, and the interpreter reads the levels ``0`` and the word's X and Y
    bits (without them, one Z bit)."""
    from qjaxiface.executors.xla._gates import compile_gate, two_levels

    angles = jnp.asarray([-2.3, 0.0, 0.7])
    cases = [("X", (0, 1)), ("Z", (0, 1)), ("YZ", (0, 2)), ("XIYZ", (0, 10)), ("ZIZ", (0, 4))]
    for word, levels in [*cases, ("II", None)]:
        wires = list(range(len(word)))
        axis_of = {w: w for w in wires}
        gate = compile_gate(qml.PauliRot(0.1, word, wires), axis_of)
        assert gate.closed_form
        assert gate.fn == compile_gate(qml.PauliRot(0.2, word, wires), axis_of).fn
        # One wire: the whole 2x2 matrix; 0 and the X, Y bits; without them, 0 and a Z bit.
        assert two_levels(gate) == levels
        got = jax.vmap(lambda a, fn=gate.fn: fn([a]))(angles)
        ref = np.stack([qml.matrix(qml.PauliRot(a, word, wires)) for a in angles])
        np.testing.assert_allclose(got, ref, atol=1e-12)


def test_pauli_rotations_of_one_length_share_one_batch():
    """Words of one length are one formula family: one batch, each gate its own word."""
    words = ["XYZ", "ZZY", "XYZ", "YXX"]
    ops = [qml.PauliRot(0.3 * (k + 1), word, [0, 1, 2]) for k, word in enumerate(words)]
    ops += [qml.PauliRot(0.5, "XY", [1, 2])]
    tape = preprocess(qml.tape.QuantumScript(ops, [qml.state()]))  # no gate outside the cone
    leaves = tuple(jnp.asarray(p) for p in tape.get_parameters(trainable_only=False))
    program = TapeProgram(tape)
    values = program.gate_values(leaves)
    batches, direct = values.arrays()
    assert sorted(b.shape for b in batches) == [(1, 4, 4), (4, 8, 8)] and not direct
    for i, op in enumerate(ops):
        np.testing.assert_allclose(values[i], qml.matrix(op), atol=1e-12)


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
