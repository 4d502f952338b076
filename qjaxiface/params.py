"""Moving parameters between tapes and pytrees."""

from __future__ import annotations

from collections.abc import Sequence

import pennylane as qml


def set_parameters_on_copy(tapes: Sequence, params: Sequence[Sequence]) -> tuple:
    """Copies of ``tapes`` whose trainable parameters are replaced by ``params``.

    The originals are not modified, so the same tapes can be re-bound to tracers, cotangent
    batches or shifted values many times.

    Args:
        tapes (Sequence[QuantumScript]): the tapes.
        params (Sequence[Sequence]): for each tape, one value per trainable parameter
            (``tape.trainable_params``), in order.

    Returns:
        tuple[QuantumScript]: the new tapes.

    Raises:
        ValueError: if the number of tapes or of parameters does not match.

    Examples:
        >>> import pennylane as qml
        >>> tape = qml.tape.QuantumScript([qml.RX(0.1, 0), qml.RY(0.2, 0)], [qml.expval(qml.Z(0))])
        >>> tape.trainable_params = [1]
        >>> (new,) = set_parameters_on_copy([tape], [[0.5]])
        >>> new.get_parameters(trainable_only=False)
        [0.1, 0.5]
    """
    if len(tapes) != len(params):
        raise ValueError(
            f"set_parameters_on_copy got {len(tapes)} tapes but parameters for {len(params)}; "
            "pass one sequence of parameters per tape."
        )
    out = []
    for i, (tape, values) in enumerate(zip(tapes, params)):
        if len(values) != len(tape.trainable_params):
            raise ValueError(
                f"tape {i} has {len(tape.trainable_params)} trainable parameters but "
                f"{len(values)} values were given; pass one value per entry of "
                "tape.trainable_params."
            )
        out.append(tape.bind_new_parameters(list(values), tape.trainable_params))
    return tuple(out)


def set_all_parameters_on_copy(tapes: Sequence, params: Sequence[Sequence]) -> tuple:
    """Like ``set_parameters_on_copy``, for given parameter indices per tape."""
    return tuple(
        tape.bind_new_parameters(list(values), list(range(len(values))))
        for tape, values in zip(tapes, params)
    )


def jax_parameter_indices(tape) -> list[int]:
    """Indices of the tape's parameters that are JAX tracers, in order.

    JAX has no ``requires_grad``: a value can only be differentiated (or be abstract) when it
    is a tracer, so tracers are the trainable parameters, as in PennyLane. Concrete arrays stay
    in the tape as constants.
    """
    return sorted(qml.math.get_trainable_indices(tape.get_parameters(trainable_only=False)))


def mark_jax_parameters_trainable(tapes: Sequence) -> None:
    """Set ``trainable_params`` of each tape to its JAX tracer parameters (in place).

    JAX prunes the ones that end up not being differentiated (symbolic-zero tangents).
    """
    for tape in tapes:
        tape.trainable_params = jax_parameter_indices(tape)
