"""Moving parameters between tapes and pytrees: one home for re-binding tape parameters.

Every binding re-binds a tape's trainable parameters from its differentiable argument on each
use (tracers, cotangent batches, shifted values); all of them go through ``with_trainable``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
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
    for i, (tape, values) in enumerate(zip(tapes, params)):
        if len(values) != len(tape.trainable_params):
            raise ValueError(
                f"tape {i} has {len(tape.trainable_params)} trainable parameters but "
                f"{len(values)} values were given; pass one value per entry of "
                "tape.trainable_params."
            )
    positions = [list(t.trainable_params) for t in tapes]
    return with_trainable(tapes, params, positions, [range(len(p)) for p in positions])


def with_trainable(
    tapes: Sequence, params: Sequence[Sequence], positions, indices, *, host: bool = False
) -> tuple:
    """Copies of ``tapes`` with ``params`` bound at ``positions`` and ``indices`` trainable.

    Args:
        tapes: the tapes.
        params: per tape, the values to bind.
        positions: per tape, the tape parameter indices that ``params`` fill.
        indices: per tape, which of ``positions`` (by index into it) are trainable.
        host: also turn every concrete JAX value of the copies into NumPy, as
            ``host_parameters`` does, in the same single re-binding (every extra copy of a
            tape builds operators, which PennyLane queues globally).
    """
    out = []
    for tape, values, pos, idx in zip(tapes, params, positions, indices):
        pairs = dict(zip(pos, values))
        if host:
            pairs = {i: _to_host(v) for i, v in pairs.items()}
            for i, p in enumerate(tape.get_parameters(trainable_only=False)):
                if i not in pairs and _is_concrete_jax(p):
                    pairs[i] = _to_host(p)
        order = sorted(pairs)  # bind_new_parameters pairs values with the sorted indices
        new = tape.bind_new_parameters([pairs[i] for i in order], order)
        if _gains_batch_axis(tape, pairs):
            _recount_batch_sizes(new)
        new.trainable_params = [pos[i] for i in idx]
        out.append(new)
    return tuple(out)


def _gains_batch_axis(tape, pairs: dict) -> bool:
    """Whether any bound value has more axes than the parameter it replaces (broadcasting)."""
    old = tape.get_parameters(trainable_only=False)
    return any(np.ndim(v) > np.ndim(old[i]) for i, v in pairs.items())


def _recount_batch_sizes(tape) -> None:
    """Make every operation of ``tape`` recompute its broadcast batch size from its data.

    PennyLane's ``bind_new_parameters`` copies operators whose constructor does not take their
    hyperparameters back (``MultiRZ``'s ``num_wires``, for one) and sets ``data`` on the copy,
    which keeps a batch size the original had already computed: a parameter bound with a batch
    axis then reads as unbroadcast, and default.qubit applies the gate as if it were.
    """
    for op in tape.operations:
        check = getattr(op, "_check_batching", None)
        if check is not None:
            check()


def _is_concrete_jax(value) -> bool:
    # jax 0.12 passes Python scalars through jit/grad as ``jax._src.literals.TypedFloat`` (a
    # float subclass), not as ``jax.Array``; PennyLane calls both JAX values.
    if isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, jax.Array) or type(value).__module__.startswith("jax")


def _to_host(value):
    if _is_concrete_jax(value):
        return np.asarray(value, dtype=getattr(value, "dtype", None))
    return value


def host_parameters(tapes: Sequence) -> tuple:
    """Copies of ``tapes`` whose concrete JAX parameters are NumPy arrays; tracers stay.

    An eager binding's executor reads concrete values anyway. Handing them over as NumPy is
    what the callback path does too, and it keeps devices off PennyLane 0.45's
    ``qml.math.to_numpy`` for JAX arrays, which calls ``jax.core.concrete_or_error``, a name
    jax 0.12 removed: with it, every eager non-backprop gradient failed on the newest JAX.
    ``trainable_params`` are kept, so gradient rules see the same trainable parameters.
    """
    out = []
    for tape in tapes:
        if any(_is_concrete_jax(p) for p in tape.get_parameters(trainable_only=False)):
            trainable = list(tape.trainable_params)
            (tape,) = with_trainable([tape], [[]], [[]], [[]], host=True)
            tape.trainable_params = trainable
        out.append(tape)
    return tuple(out)


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
