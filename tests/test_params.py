"""Parameter helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from qjaxiface import set_parameters_on_copy
from qjaxiface.params import jax_parameter_indices, mark_jax_parameters_trainable


def _tape():
    return qml.tape.QuantumScript(
        [qml.RX(0.1, 0), qml.RY(jnp.array(0.2), 0)], [qml.expval(qml.Hermitian(np.eye(2), 0))]
    )


def test_copies_are_new_and_originals_unchanged():
    tape = _tape()
    tape.trainable_params = [0, 1]
    (new,) = set_parameters_on_copy([tape], [[1.0, 2.0]])
    assert new is not tape
    assert new.get_parameters(trainable_only=False)[:2] == [1.0, 2.0]
    assert tape.get_parameters(trainable_only=False)[0] == 0.1


def test_only_trainable_positions_are_replaced():
    tape = _tape()
    tape.trainable_params = [1]
    (new,) = set_parameters_on_copy([tape], [[5.0]])
    assert new.get_parameters(trainable_only=False)[:2] == [0.1, 5.0]


def test_mismatched_counts_raise():
    tape = _tape()
    tape.trainable_params = [1]
    with pytest.raises(ValueError, match="one sequence of parameters per tape"):
        set_parameters_on_copy([tape], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="1 trainable parameters but 2 values"):
        set_parameters_on_copy([tape], [[1.0, 2.0]])


def test_tracers_are_the_trainable_ones():
    tape = _tape()
    assert jax_parameter_indices(tape) == []  # concrete JAX arrays are constants
    seen = []

    def f(x):
        traced = qml.tape.QuantumScript([qml.RX(0.1, 0), qml.RY(x, 0)], [qml.expval(qml.Z(0))])
        mark_jax_parameters_trainable([traced])
        seen.append(list(traced.trainable_params))
        return x

    jax.grad(f)(0.2)
    jax.jit(f)(0.2)
    assert seen == [[1], [1]]
