"""xla_unsupported_reason refuses what the executor cannot do, with a reason; XLAUnsupported."""

from __future__ import annotations

import numpy as np
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


def test_traced_values_outside_the_parameters_are_left_to_the_device():
    # stoch_pulse_grad under jit draws the split times of a ParametrizedEvolution: they live in
    # its pytree metadata, which the executor compiles (and caches) as structure.
    import jax
    import jax.numpy as jnp

    ham = qml.dot([qml.pulse.constant], [qml.PauliX(0)])
    reasons = []

    def f(t1):
        op = qml.evolve(ham)([jnp.array(0.24)], jnp.stack([0.2, t1]))
        tape = qml.tape.QuantumScript([op], [qml.expval(qml.Z(0))])
        reasons.append(xla_unsupported_reason(tape, "backprop"))
        return t1

    jax.jit(f)(0.5)
    assert reasons == ["operation ParametrizedEvolution has traced values outside its parameters"]
    f(0.5)
    assert reasons[-1] is None


def test_stochastic_pulse_gradient_under_jit_matches_pennylane():
    # PennyLane's test_pulse_gradient.py::TestStochPulseGrad::test_with_jit, which failed with
    # qjaxiface installed (a TracerBoolConversionError looking up the program cache).
    import jax
    import jax.numpy as jnp

    import qjaxiface

    dev = qml.device("default.qubit", wires=1)
    ham = qml.dot([qml.pulse.constant], [qml.PauliX(0)])

    def fun(params):
        op = qml.evolve(ham)(params, (0.2, 0.5))
        tape = qml.tape.QuantumScript([op], [qml.expval(qml.PauliZ(0))])
        tapes, fn = qml.gradients.stoch_pulse_grad(tape)
        return fn(qml.execute(tapes, dev, "backprop"))

    params = [jnp.array(0.24)]
    p = 0.24 * (0.5 - 0.2)  # the rotation angle: exp(-i p X)
    with qjaxiface.installed():
        got = jax.jit(fun)(params)
    np.testing.assert_allclose(got, -2 * np.sin(2 * p) * (0.5 - 0.2), atol=1e-6)
