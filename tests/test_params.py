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


def test_a_batch_axis_bound_later_is_counted():
    """``MultiRZ`` is copied, not rebuilt, by PennyLane's ``bind_new_parameters``; a batch
    size read before binding must not survive a broadcast value bound afterwards."""
    tape = qml.tape.QuantumScript(
        [qml.RX(0.1, 0), qml.MultiRZ(0.3, wires=[0, 1, 2])], [qml.expval(qml.Z(0))]
    )
    assert tape.batch_size is None  # computed now, as tracing does
    (new,) = set_parameters_on_copy([tape], [[0.1, np.array([0.3, 0.4, 0.5])]])
    assert new.operations[1].batch_size == 3
    assert new.batch_size == 3
    (same,) = set_parameters_on_copy([tape], [[0.2, 0.5]])
    assert same.operations[1].batch_size is None


@pytest.mark.parametrize("diff_method", [None, "adjoint", "parameter-shift"])
def test_vmap_over_the_device_executor_with_copied_operators(diff_method):
    """vmap hands the device one broadcast tape; every gate must be applied broadcast."""
    import qjaxiface

    dev = qml.device("default.qubit", wires=3)

    def tape_of(p):
        ops = [
            qml.RX(p[1], 1),  # the state is broadcast before the MultiRZs
            qml.Hadamard(0),
            qml.MultiRZ(p[0], wires=[0, 1, 2]),
            qml.RY(p[1], 0),
            qml.MultiRZ(p[2], wires=[1, 2]),
            qml.RX(p[0], 2),
        ]
        return qml.tape.QuantumScript(ops, [qml.probs(wires=[0, 1])])

    def f(p):
        return qjaxiface.execute([tape_of(p)], dev, diff_method=diff_method, executor="device")[0]

    rows = np.random.default_rng(3).normal(size=(4, 3))
    got = jax.vmap(f)(jnp.asarray(rows))
    expected = [qml.execute([tape_of(r)], dev, diff_method=None)[0] for r in rows]
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-12)
