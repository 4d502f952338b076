"""Phase gadgets (``_gadgets.py``): mirrored CNOT spans around an RZ run as one MultiRZ."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import DEV, assert_tree_close

import qjaxiface
from qjaxiface.executors.xla._gadgets import fuse_phase_gadgets
from qjaxiface.executors.xla._simulate import TapeProgram


def _matrix(ops, wires):
    return qml.matrix(qml.tape.QuantumScript(ops), wire_order=wires)


@pytest.mark.parametrize(
    "op",
    [
        qml.FermionicSingleExcitation(0.37, wires=[0, 1, 2, 3]),
        qml.FermionicDoubleExcitation(0.37, wires1=[0, 1], wires2=[3, 4, 5]),
    ],
    ids=["single", "double"],
)
def test_fermionic_excitations_lose_their_ladders_and_keep_their_matrix(op):
    ops = op.decomposition()
    fused = fuse_phase_gadgets(qml.tape.QuantumScript(ops)).operations
    names = [o.name for o in fused]
    assert "CNOT" not in names and "RZ" not in names
    assert names.count("MultiRZ") == (2 if len(op.wires) == 4 else 8)
    np.testing.assert_allclose(_matrix(fused, op.wires), _matrix(ops, op.wires), atol=1e-12)


def test_random_mirrored_spans_equal_their_gates():
    rng = np.random.default_rng(3)
    wires = list(range(5))
    for _ in range(40):
        ladder = [qml.CNOT(rng.choice(5, 2, replace=False).tolist()) for _ in range(4)]
        ladder = ladder[: rng.integers(1, 5)]
        rz = qml.RZ(rng.uniform(-3, 3), int(rng.integers(5)))
        ops = [qml.RY(0.3, 0), *ladder, rz, *ladder[::-1], qml.CNOT([1, 2]), qml.RX(0.2, 4)]
        fused = fuse_phase_gadgets(qml.tape.QuantumScript(ops)).operations
        assert len(fused) == 4  # RY, the gadget, the unmatched CNOT, RX
        assert fused[1].data[0] == rz.data[0]
        np.testing.assert_allclose(_matrix(fused, wires), _matrix(ops, wires), atol=1e-12)


@pytest.mark.parametrize(
    "ops",
    [
        [qml.CNOT([0, 1]), qml.RZ(0.2, 1), qml.CNOT([1, 0])],  # not a mirror
        [qml.CNOT([0, 1]), qml.RY(0.2, 1), qml.CNOT([0, 1])],  # not a Z rotation
        [qml.RZ(0.2, 1), qml.CNOT([0, 1])],  # nothing before it
    ],
    ids=["reversed", "ry", "one-sided"],
)
def test_what_is_not_a_gadget(ops):
    tape = qml.tape.QuantumScript(ops)
    assert fuse_phase_gadgets(tape) is tape


def test_a_wire_only_the_ladder_touched_stays_in_the_state():
    # Wire 0 meets only the cancelled CNOTs; qml.state() still has 8 amplitudes.
    ops = [qml.Hadamard(1), qml.CNOT([0, 1]), qml.RZ(0.4, 2), qml.CNOT([0, 1]), qml.RY(0.3, 2)]
    tape = qml.tape.QuantumScript(ops, [qml.state()])
    program = TapeProgram(tape)
    assert program.n_wires == 3
    assert [op.name for _, _, op in program.gates] == ["Hadamard", "RZ", "RY"]
    got = program.run_single(tuple(jnp.asarray(d) for op in ops for d in op.data))
    ref = qml.execute([tape], DEV, diff_method=None)[0]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def _coupled(diff_method):
    @qml.qnode(qml.device("default.qubit", wires=4), diff_method=diff_method)
    def circuit(x):
        for w in range(4):
            qml.RY(x[w], w)
        for a, b in [(0, 1), (1, 2), (2, 3)]:  # ZZ couplings written by hand
            qml.CNOT([a, b])
            qml.RZ(x[4 + a], b)
            qml.CNOT([a, b])
        qml.FermionicDoubleExcitation(x[7], wires1=[0, 1], wires2=[2, 3])
        return qml.expval(qml.X(0) @ qml.Y(3)), qml.expval(qml.Z(1) @ qml.Z(2))

    return circuit


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_circuits_with_gadgets_match_pennylane(diff_method):
    x = jnp.asarray(np.random.default_rng(4).uniform(-2, 2, 8))

    def flat(circuit):
        return lambda x: jnp.concatenate([jnp.ravel(r) for r in circuit(x)])

    ref_fn = flat(_coupled("backprop"))  # PennyLane's own boundary
    ref = (ref_fn(x), jax.jacobian(ref_fn)(x))
    with qjaxiface.installed():
        fn = flat(_coupled(diff_method))
        got = jax.jit(lambda x: (fn(x), jax.jacobian(fn)(x)))(x)
        got_vmap = jax.jit(jax.vmap(fn))(jnp.stack([x, 0.5 * x]))
    assert_tree_close(got, ref, atol=1e-8)
    np.testing.assert_allclose(got_vmap[1], ref_fn(0.5 * x), atol=1e-8)
