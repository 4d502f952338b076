"""Arithmetic operators on the tape (``Sum``, ``SProd``, ``Prod``, ``Adjoint``, ``Controlled``,
``Pow``, ``Exp``, ``Evolution``, ``LinearCombination``) through installed QNodes: under ``jit``,
``grad``, ``vmap`` and parameter broadcasting, for every diff method, against PennyLane's own
boundary with backprop.

Templates put such operators on the tape under ``jit`` (``SelectPauliRot`` a ``Prod``); the XLA
executor once asked them for ``ndim_params``, which PennyLane does not define on ``Sum``/``Prod``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import builtin_boundary

import qjaxiface

OPS = {
    "Prod": lambda x, y: qml.prod(qml.RX(x, 0), qml.RY(y, 1)),
    "Sum": lambda x, y: qml.sum(qml.s_prod(0.6, qml.RX(x, 0)), qml.s_prod(0.8, qml.RY(y, 0))),
    "SProd": lambda x, y: qml.s_prod(x, qml.RY(y, 0)),
    "Adjoint": lambda x, y: qml.adjoint(qml.prod(qml.RX(x, 0), qml.RY(y, 1))),
    "Controlled": lambda x, y: qml.ctrl(qml.prod(qml.RX(x, 1), qml.RY(y, 2)), 0),
    "Pow": lambda x, y: qml.pow(qml.prod(qml.RX(x, 0), qml.RY(y, 1)), 2),
    "Exp": lambda x, y: qml.exp(qml.prod(qml.X(0), qml.RY(y, 1)), -0.5j * x),
    "Evolution": lambda x, y: qml.evolve(qml.sum(qml.Y(0), qml.s_prod(0.3, qml.X(1))), x * y),
    "LinearCombination": lambda x, y: qml.Hamiltonian([0.6, 0.8], [qml.RX(x, 0), qml.RY(y, 0)]),
}
METHODS = ["backprop", "adjoint", "parameter-shift", "finite-diff", "spsa"]
GRADIENT_KWARGS = {
    "finite-diff": {"h": 1e-7},
    # Many directions, so the estimate is near the gradient; the rows are one vmap in XLA.
    "spsa": {"num_directions": 4000, "sampler_rng": 7, "h": 1e-5},
}
X, Y = 0.3, 0.7
XS = np.array([0.1, 0.4, -0.8])


def _qnode(opname, diff_method):
    @qml.qnode(
        qml.device("default.qubit", wires=3),
        diff_method=diff_method,
        gradient_kwargs=GRADIENT_KWARGS.get(diff_method, {}),
    )
    def circuit(x, y):
        qml.Hadamard(0)
        qml.Hadamard(2)
        OPS[opname](x, y)
        qml.CNOT([0, 2])
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.5 * qml.X(2))

    return circuit


@functools.cache
def _reference(opname):
    """PennyLane's boundary, backprop: values, gradients, per-x gradients, broadcast values."""
    with builtin_boundary():
        c = _qnode(opname, "backprop")
        value, grad = jax.value_and_grad(c, argnums=(0, 1))(X, Y)
        return {
            "value": value,
            "grad": grad,
            "per_x_grad": jax.vmap(jax.grad(c), in_axes=(0, None))(XS, Y),
            "broadcast": c(XS, Y),
        }


# default.qubit's adjoint method needs a generator for every trainable operation: it refuses
# these circuits, with either boundary. (Evolution's has_generator tests a traced coefficient:
# PennyLane raises TracerBoolConversionError in its preprocessing, before any boundary runs.)
ADJOINT_REFUSED = {
    "Sum": qml.exceptions.QuantumFunctionError,
    "SProd": qml.exceptions.QuantumFunctionError,
    "Exp": qml.exceptions.QuantumFunctionError,
    "LinearCombination": qml.exceptions.QuantumFunctionError,
    "Evolution": jax.errors.TracerBoolConversionError,
}


@pytest.mark.parametrize("diff_method", METHODS)
@pytest.mark.parametrize("opname", list(OPS))
def test_composite_operator_under_jax_transforms(opname, diff_method):
    if diff_method == "adjoint" and opname in ADJOINT_REFUSED:
        for context in (builtin_boundary(), qjaxiface.installed()):
            with context, pytest.raises(ADJOINT_REFUSED[opname]):
                jax.jit(jax.grad(_qnode(opname, diff_method)))(X, Y)
        return
    ref = _reference(opname)
    atol = 5e-2 if diff_method == "spsa" else 1e-5 if diff_method == "finite-diff" else 1e-8
    with qjaxiface.installed():
        c = _qnode(opname, diff_method)
        value, grad = jax.jit(jax.value_and_grad(c, argnums=(0, 1)))(X, Y)
        per_x_grad = jax.vmap(jax.grad(c), in_axes=(0, None))(jnp.array(XS), Y)
        broadcast = jax.jit(c)(jnp.array(XS), Y)
    np.testing.assert_allclose(value, ref["value"], atol=1e-8)
    np.testing.assert_allclose(grad, ref["grad"], atol=atol)
    np.testing.assert_allclose(per_x_grad, ref["per_x_grad"], atol=atol)
    np.testing.assert_allclose(broadcast, ref["broadcast"], atol=1e-8)


def _select_pauli_rot(angles):
    wires = qml.registers({"control": 2, "target": 1})
    qml.SelectPauliRot(angles, control_wires=wires["control"], target_wire=wires["target"])
    return qml.state()


def _multiplexer_state_prep(state):
    for wire in range(2):
        qml.Hadamard(wire)
    qml.MultiplexerStatePreparation(state, wires=range(2))
    return qml.probs(range(2))


@pytest.mark.parametrize(
    "qfunc, arg, wires",
    [
        (_select_pauli_rot, jnp.array([1.0, 2.0, 3.0, 4.0]), 3),
        (_multiplexer_state_prep, jnp.array([1 / 2j, -1 / 2, 1 / 2, -1 / 2]), 6),
    ],
    ids=["SelectPauliRot", "MultiplexerStatePreparation"],
)
def test_templates_that_put_a_prod_on_the_tape_jit(qfunc, arg, wires):
    # PennyLane's test_select_pauli_rot.py::test_jax_jit and
    # test_multiplexer_state_prep.py::test_jit, which failed with qjaxiface installed.
    circuit = qml.QNode(qfunc, qml.device("default.qubit", wires=wires))
    with builtin_boundary():
        expected = circuit(arg)
    with qjaxiface.installed():
        got = jax.jit(circuit)(arg)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert qml.math.get_interface(got) == "jax"
