"""Which parameter leaves of an operator carry PennyLane's broadcast (batch) dimension.

The XLA executor flattens every operator into its ``op.data`` leaves and needs, per leaf, the
number of dimensions of one *unbroadcast* value: a leaf with one more dimension is broadcast.
PennyLane's ``Operator.ndim_params`` answers that for plain gates, but not for arithmetic
operators: on ``Sum``/``Prod`` (and so ``LinearCombination``) it raises ``AttributeError`` (the
attribute behind it is never set, PennyLane 0.45), and on ``SProd``/``Exp``/``Evolution`` it
reports the dimensions it *received*, so a broadcast leaf would look unbroadcast. Templates such
as ``SelectPauliRot`` and ``MultiplexerStatePreparation`` put a ``Prod`` on the tape under
``jit``.

``leaf_ndims`` follows the operator's structure instead: the operands of a composite, the
scalar and base of ``SProd``/``Exp``, the time of ``Evolution``, the base of ``Pow`` and the other
symbolic operators, and ``ndim_params`` only where the operator class itself defines it. A layout
it does not know is refused (``ValueError``), which the support check turns into a fallback to the
device.

Can go when PennyLane defines ``ndim_params`` of arithmetic operators by their structure
(PennyLane 0.45 does not); ``tests/test_composite_ops.py`` says when.
"""

from __future__ import annotations

import jax.numpy as jnp
import pennylane as qml
from pennylane.operation import Operator
from pennylane.ops.op_math import CompositeOp, ScalarSymbolicOp, SymbolicOp

__all__ = ["broadcast_leaves", "leaf_ndims"]


def leaf_ndims(op: Operator) -> tuple[int, ...]:
    """The number of dimensions of each of ``op.data``'s leaves when not broadcast.

    Args:
        op: any PennyLane operator, arithmetic ones (``Sum``, ``Prod``, ``SProd``,
            ``LinearCombination``, ``Adjoint``, ``Controlled``, ``Pow``, ``Exp``, ``Evolution``)
            nested to any depth included.

    Returns:
        tuple[int, ...]: one entry per element of ``op.data``.

    Raises:
        ValueError: if the structure does not account for every leaf (an operator class whose
            data layout is not known here).

    Examples:
        >>> import numpy as np, pennylane as qml
        >>> op = qml.prod(qml.RX(np.array([0.1, 0.2]), 0), qml.QubitUnitary(np.eye(2), 1))
        >>> leaf_ndims(op)
        (0, 2)
    """
    ndims = _structural_ndims(op)
    if len(ndims) != len(op.data):
        raise ValueError(
            f"cannot tell which parameters of {op.name} are broadcast: {len(op.data)} parameters, "
            f"{len(ndims)} accounted for by its structure"
        )
    return ndims


def broadcast_leaves(op: Operator) -> tuple[bool, ...]:
    """Per leaf of ``op.data``: whether it carries the broadcast dimension.

    Examples:
        >>> import numpy as np, pennylane as qml
        >>> broadcast_leaves(qml.sum(qml.RX(np.array([0.1, 0.2]), 0), qml.RY(0.3, 1)))
        (True, False)
    """
    return tuple(jnp.ndim(d) > nd for d, nd in zip(op.data, leaf_ndims(op), strict=True))


def _defines_ndim_params(op: Operator) -> bool:
    return type(op).ndim_params is not Operator.ndim_params


def _structural_ndims(op: Operator) -> tuple[int, ...]:
    if not op.data:
        return ()
    if isinstance(op, qml.ops.LinearCombination):
        # data interleaves each term's coefficient with that term's operator data.
        return tuple(n for term in op.ops for n in (0, *_structural_ndims(term)))
    if isinstance(op, CompositeOp):
        return tuple(n for operand in op.operands for n in _structural_ndims(operand))
    if isinstance(op, qml.ops.Evolution):
        # Only the time is a parameter; the generator's coefficients are fixed.
        return (0,)
    if isinstance(op, qml.ops.Pow):
        # The exponent is a hyperparameter: the data is the base's.
        return _structural_ndims(op.base)
    if isinstance(op, ScalarSymbolicOp):
        # SProd's scalar, Exp's coefficient: one number, then the base's data.
        return (0, *_structural_ndims(op.base))
    if isinstance(op, SymbolicOp):
        # Adjoint, Controlled: the base's data. Their own ndim_params forward the base's,
        # which fails for an arithmetic base.
        return _structural_ndims(op.base)
    if _defines_ndim_params(op):
        return tuple(op.ndim_params)
    # Operator's default ndim_params are the dimensions received: never a broadcast leaf,
    # which is also how PennyLane sets batch_size for such an operator.
    return tuple(jnp.ndim(d) for d in op.data)
