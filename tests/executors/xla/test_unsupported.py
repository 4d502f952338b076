"""xla_unsupported_reason refuses what the executor cannot do, with a reason; XLAUnsupported."""

from __future__ import annotations

import pennylane as qml
import pytest

from qjaxiface.executors.xla import XLAUnsupported, xla_execute, xla_unsupported_reason

OK = qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.expval(qml.Z(0))])


@pytest.mark.parametrize(
    "method", [None, "backprop", "adjoint", "parameter-shift", "finite-diff", "spsa"]
)
def test_supported(method):
    assert xla_unsupported_reason(OK, method) is None


@pytest.mark.parametrize(
    ("tape", "method", "words"),
    [
        (OK, "hadamard", "no XLA implementation"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.probs(wires=[0])]), "adjoint", "expectation"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.expval(qml.Z(0))], shots=10), "backprop", "analytic"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.sample(wires=[0])]), None, "analytically"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.state()], shots=10), None, "finite shots"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0)], [qml.vn_entropy(wires=[0])]), None, "not supported"),
        (qml.tape.QuantumScript([qml.AmplitudeDamping(0.1, 0)], [qml.expval(qml.Z(0))]), None, "no matrix"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0), qml.StatePrep([1, 0], 0)], [qml.expval(qml.Z(0))]), None, "first"),
        (qml.tape.QuantumScript([qml.RX(0.2, 0), qml.Projector([1], 0)], [qml.expval(qml.Z(0))]), None, "postselection"),
    ],
)  # fmt: skip
def test_reasons(tape, method, words):
    reason = xla_unsupported_reason(tape, method)
    assert reason is not None and words in reason
    with pytest.raises(XLAUnsupported, match=words):
        xla_execute([tape], diff_method=method)
