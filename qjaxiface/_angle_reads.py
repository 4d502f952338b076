"""Angles a QNode reads from its array arguments, read in one gather per argument.

A circuit written as ``qml.RX(w[l, k], wires=k)`` slices one scalar out of ``w`` per gate.
Under ``jit(grad)`` each slice is its own XLA kernel on the way in, and its transpose, a
full-size pad, another on the way out: at 340 angles that plumbing alone took about 3.4 s of
XLA:CPU compile on 2 cores (docs/benchmarks.md, "Reading angles"). XLA merges slices taken in
order along one axis (``w[i]`` of a vector, ``jnp.unstack``), not the ``(1, 1)`` slices of a
matrix, and the boundary only sees the scalars, not where they came from.

So when a QNode is called under ``jit`` on default.qubit (where the XLA executor runs it) with
array arguments, and its tape holds at least ``MIN_READS`` scalar angles, the quantum function
is traced once more with ``jax.make_jaxpr`` -- nothing is executed, nothing is added to the
caller's trace -- and each angle is followed back through ``slice``, ``squeeze``, ``reshape``
and ``transpose`` to one element of one argument. The tape is then rebound with those angles
read in one gather per argument (``ravel(w)[elements]``, a plain slice when the elements are
consecutive): one kernel each way, and the user's own slices are left unused, which ``jit``
drops. The values are the same elements, so results and derivatives are unchanged.

Angles computed from the arguments (``2 * w[0]``), read with traced indices, read from a
closure or from inside a nested ``jit`` keep their own values, and a tape whose second trace
differs from the first (or raises) is used as built. The one visible difference: the quantum
function's Python code runs twice per trace (PennyLane re-runs it too, for transforms with
classical Jacobians). Can go if XLA learns to merge the scalar slices of a matrix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from jax.extend.core import Var

from .detect import get_jax_interface_name
from .executors.xla._select import might_use_xla

MIN_READS = 8  # fewer scalar angles: the second trace is not worth its time

_log = logging.getLogger("qjaxiface")

# The element reads an angle goes through: per primitive, the operand's element indices -> each
# result's (an empty list: the result is not a selection of the operand's elements).
_FOLLOW = {
    "slice": lambda idx, p: [
        idx[
            tuple(
                slice(start, stop, step)
                for start, stop, step in zip(
                    p["start_indices"], p["limit_indices"], p["strides"] or (1,) * idx.ndim
                )
            )
        ]
    ],
    "squeeze": lambda idx, p: [np.squeeze(idx, axis=tuple(p["dimensions"]))],
    "reshape": lambda idx, p: [idx.reshape(p["new_sizes"])] if p.get("dimensions") is None else [],
    "transpose": lambda idx, p: [np.transpose(idx, p["permutation"])],
    "unstack": lambda idx, p: list(np.moveaxis(idx, p["axis"], 0)),
    "split": lambda idx, p: np.split(idx, np.cumsum(p["sizes"])[:-1], axis=p["axis"]),
}
_NESTED = ("jit", "pjit")  # a nested jit (jnp.unstack on jax 0.7): followed inside


def gathered(qnode, tape, args: Sequence, kwargs: dict, executor: str):
    """``tape`` with the angles that ``qnode`` reads from its array arguments gathered.

    Args:
        qnode (qml.QNode): the QNode whose ``construct`` built ``tape``.
        tape (QuantumScript): the tape it built from ``args`` and ``kwargs``.
        args, kwargs: the QNode call's arguments (``kwargs`` as the call passed them).
        executor (str): the executor qjaxiface is installed with.

    Returns:
        QuantumScript: a tape with the same operations and values whose scalar angles read
        from an argument are slices of one gather of that argument, or ``tape`` itself when
        nothing would be gained (see the module docstring).

    Examples:
        >>> import jax, jax.numpy as jnp, pennylane as qml
        >>> dev = qml.device("default.qubit", wires=2)
        >>> @qml.qnode(dev)
        ... def circuit(w):
        ...     for k in range(8):
        ...         qml.RX(w[k // 2, k % 2], wires=k % 2)
        ...     return qml.expval(qml.Z(0))
        >>> rebound = []
        >>> def both(w):
        ...     tape = qml.workflow.construct_tape(circuit)(w)
        ...     new = gathered(circuit, tape, (w,), {}, "auto")
        ...     rebound.append(new is not tape)
        ...     return jnp.stack(tape.get_parameters()), jnp.stack(new.get_parameters())
        >>> before, after = jax.jit(both)(jnp.arange(8.0).reshape(4, 2))
        >>> rebound, bool(jnp.all(before == after))
        ([True], True)
    """
    if len(tape.operations) < MIN_READS:
        return tape
    n_op = sum(len(op.data) for op in tape.operations)
    params = tape.get_parameters(trainable_only=False)[:n_op]
    scalars = [i for i, p in enumerate(params) if isinstance(p, jax.core.Tracer) and not p.shape]
    if len(scalars) < MIN_READS:
        return tape
    iface = get_jax_interface_name([tape])
    if iface != "jax-jit" or not might_use_xla(qnode.device, iface, executor):
        return tape  # eager, or executed host-side: its angles are not compiled
    try:
        return _gather(qnode, tape, params, scalars, args, kwargs) or tape
    except Exception as exc:  # the tape as built is always right; this is only faster
        _log.debug("angle reads not gathered: %s: %s", type(exc).__name__, exc)
        return tape


def _gather(qnode, tape, params, scalars, args, kwargs):
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    traced = [i for i, x in enumerate(leaves) if isinstance(x, jax.core.Tracer)]
    arrays = [i for i in traced if jnp.size(leaves[i]) > 1]
    if not arrays:
        return None
    sources = _sources(qnode, tape, leaves, treedef, traced, arrays)
    if sources is None:
        return None
    reads: dict[int, list[tuple[int, int]]] = {}  # leaf -> [(parameter, element)]
    for i in scalars:
        src = sources[i]
        if src is not None and jnp.result_type(params[i]) == jnp.result_type(leaves[src[0]]):
            reads.setdefault(src[0], []).append((i, src[1]))
    indices, values = [], []
    for leaf, pairs in reads.items():
        if len(pairs) < 2:
            continue
        elements = np.asarray([e for _, e in pairs])
        flat = jnp.ravel(leaves[leaf])
        start = int(elements[0])
        if np.array_equal(elements, np.arange(start, start + len(elements))):
            picked = flat[start : start + len(elements)]
        else:
            picked = flat[elements]
        indices.extend(i for i, _ in pairs)
        values.extend(jnp.unstack(picked))
    if len(indices) < MIN_READS:
        return None
    order = np.argsort(indices)  # bind_new_parameters pairs values with sorted indices
    new = tape.bind_new_parameters([values[k] for k in order], [indices[k] for k in order])
    new.trainable_params = tape.trainable_params
    return new


def _sources(qnode, tape, leaves, treedef, traced, arrays) -> list | None:
    """Per operation parameter of ``tape``: ``(leaf, element)`` it reads, or None."""
    built: list = []

    def angles(*values):
        full = list(leaves)
        for i, v in zip(traced, values):
            full[i] = v
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, full)
        call_kwargs = dict(call_kwargs)
        if not qnode._qfunc_uses_shots_arg:
            call_kwargs.pop("shots", None)  # as QNode.construct does
        with qml.queuing.AnnotatedQueue() as q:
            qnode.func(*call_args, **call_kwargs)
        ops = qml.tape.QuantumScript.from_queue(q).operations
        built.append(ops)
        return [d for op in ops for d in op.data]

    closed = jax.make_jaxpr(angles)(*(leaves[i] for i in traced))
    (ops,) = built
    if [(type(op), op.wires, len(op.data)) for op in ops] != [
        (type(op), op.wires, len(op.data)) for op in tape.operations
    ]:
        return None  # the second trace built another circuit: trust neither
    jaxpr = closed.jaxpr
    if len(jaxpr.outvars) != sum(len(op.data) for op in ops):
        return None  # a parameter that is not one array
    where: dict[Var, tuple[int, np.ndarray]] = {}
    for leaf, var in zip(traced, jaxpr.invars):
        if leaf in arrays:
            shape = var.aval.shape
            where[var] = (leaf, np.arange(math.prod(shape)).reshape(shape))
    _follow(jaxpr, where)
    found = []
    for var in jaxpr.outvars:
        src = where.get(var) if isinstance(var, Var) else None
        found.append((src[0], int(src[1])) if src is not None and src[1].ndim == 0 else None)
    return found


def _follow(jaxpr, where: dict) -> None:
    """Add to ``where`` (var -> (leaf, element indices)) every var of ``jaxpr`` that selects."""
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in _NESTED:
            inner = eqn.params["jaxpr"].jaxpr
            nested = {
                iv: where[ov]
                for iv, ov in zip(inner.invars, eqn.invars)
                if isinstance(ov, Var) and ov in where
            }
            if nested:
                _follow(inner, nested)
                for ov, iv in zip(eqn.outvars, inner.outvars):
                    if isinstance(iv, Var) and iv in nested:
                        where[ov] = nested[iv]
            continue
        rule = _FOLLOW.get(name)
        var = eqn.invars[0] if eqn.invars else None
        if rule is None or not isinstance(var, Var) or var not in where:
            continue
        leaf, idx = where[var]
        for ov, out in zip(eqn.outvars, rule(idx, eqn.params)):
            where[ov] = (leaf, out)
