"""Which leaves of an arithmetic operator carry the broadcast dimension (PennyLane's
``ndim_params`` fails on ``Sum``/``Prod`` and misreports ``SProd``/``Exp``)."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.ops.op_math import SymbolicOp

from qjaxiface.executors.xla import xla_unsupported_reason
from qjaxiface.executors.xla._batching import broadcast_leaves, leaf_ndims

B = np.array([0.1, 0.2, 0.3])  # a broadcast angle
U = np.eye(4)

CASES = [
    # (operator, expected leaf_ndims, expected broadcast_leaves)
    (qml.RX(0.3, 0), (0,), (False,)),
    (qml.RX(B, 0), (0,), (True,)),
    (qml.QubitUnitary(U, [0, 1]), (2,), (False,)),
    (qml.prod(qml.RX(B, 0), qml.RY(0.5, 1)), (0, 0), (True, False)),
    (qml.sum(qml.RX(0.1, 0), qml.QubitUnitary(U, [0, 1])), (0, 2), (False, False)),
    (qml.s_prod(0.5, qml.RX(B, 0)), (0, 0), (False, True)),
    (qml.s_prod(B, qml.RX(0.5, 0)), (0, 0), (True, False)),
    (qml.adjoint(qml.prod(qml.RX(B, 0), qml.RY(0.5, 1))), (0, 0), (True, False)),
    (qml.ctrl(qml.prod(qml.RX(0.2, 1), qml.RY(B, 2)), 0), (0, 0), (False, True)),
    (qml.pow(qml.prod(qml.RX(B, 0), qml.RY(0.5, 1)), 2), (0, 0), (True, False)),
    (qml.exp(qml.RX(B, 0), 0.5j), (0, 0), (False, True)),
    (qml.evolve(qml.sum(qml.X(0), qml.s_prod(0.4, qml.Z(1))), 0.3), (0,), (False,)),
    (qml.evolve(qml.X(0), B), (0,), (True,)),
    (qml.Hamiltonian([0.1, 0.2], [qml.RX(B, 0), qml.RY(0.7, 1)]), (0, 0, 0, 0), (False, True, False, False)),
    (qml.CRot(B, 0.1, 0.2, [0, 1]), (0, 0, 0), (True, False, False)),
    (qml.prod(qml.adjoint(qml.s_prod(0.5, qml.RX(B, 0))), qml.Hadamard(1)), (0, 0), (False, True)),
]  # fmt: skip


@pytest.mark.parametrize("op, ndims, broadcast", CASES, ids=lambda c: getattr(c, "name", ""))
def test_leaf_ndims_follow_the_structure(op, ndims, broadcast):
    assert leaf_ndims(op) == ndims
    assert broadcast_leaves(op) == broadcast


def test_pennylane_ndim_params_is_what_fails_on_a_prod():
    # The root cause of the Prod-under-jit failure; if PennyLane fixes it, this documents when.
    with pytest.raises(AttributeError, match="_ndim_params"):
        _ = qml.prod(qml.RX(B, 0), qml.RY(0.5, 1)).ndim_params


class _ExtraDataOp(SymbolicOp):
    """A symbolic operator that carries one more parameter than its base: unknown layout."""

    def __init__(self, base, t=0.0):
        super().__init__(base)
        self.data = (t, *base.data)

    @property
    def has_matrix(self):
        return True

    def matrix(self, wire_order=None):
        return self.base.matrix(wire_order)


def test_an_unknown_layout_is_refused_with_its_name():
    op = _ExtraDataOp(qml.RX(0.1, 0), 0.5)
    with pytest.raises(ValueError, match=r"cannot tell which parameters of .* are broadcast"):
        leaf_ndims(op)
    tape = qml.tape.QuantumScript([op], [qml.expval(qml.Z(0))])
    assert "cannot tell which parameters" in xla_unsupported_reason(tape, None)
