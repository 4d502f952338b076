"""Templates kept whole: their decomposition learned once, from tagged stand-in weights.

PennyLane's templates (StronglyEntanglingLayers, BasicEntanglerLayers, the embeddings, ...)
decompose by slicing their weight array into one scalar per gate. Under ``jit(grad)`` every
slice is a traced operation and its transpose a full-size pad: at n=12 and 100 layers (3600
weights) that plumbing alone took about 50 s to compile on 2 CPU cores, before any
simulation, and PennyLane's decomposition with tracers took seconds to trace.

A template that only *selects* elements of its weights can instead be decomposed with stand-in
weights whose every element is a distinct number (a tag). Each parameter of the decomposed
tape is then read back as "element ``e`` of leaf ``j``", and the program gathers all the
parameters of a gate formula from the weight array in one operation (``_simulate.py``).

A tag is a half-integer above 2**24, so a weight that was scaled, negated or passed through a
function is no longer one (adding a whole number to a weight would leave a tag; neither one
run nor two can tell). When every parameter of the decomposition is a tag or one of the
tape's own values, one run is enough (StronglyEntanglingLayers, the embeddings, ...). Other
values need a second run, with tags that differ in their integer and fractional parts: a value
that is the same in both runs is a constant of the decomposition (a fixed angle); anything
else -- the template computed with its weights (IQPEmbedding's products, a sign flip, a cast)
-- means the tape is not lifted and is decomposed with its traced weights as before. Only
tapes whose templates would be decomposed by the device anyway, with real floating-point array
weights, no parameter broadcasting and one decomposed tape each, are lifted.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jax
import numpy as np
import pennylane as qml

from ... import _caches
from ._jvp_parts import real_scalar
from ._simulate import read_elements, scale_of, scale_vector

_SYMBOLIC = (qml.ops.op_math.SymbolicOp, qml.ops.op_math.CompositeOp)
_SPAN = 2**24  # tags of leaf j: (j + 1) * _SPAN + e + offset, exact in float64
_OFFSETS = (0.5, 2**23 + 0.25)  # two runs: integer and fractional parts both differ
# A weight times one of these is read as a scaled element: decompositions into Pauli
# exponentials halve, quarter or negate their angle (FermionicSingleExcitation's RZ(±θ/2),
# FermionicDoubleExcitation's RZ(±θ/8)). A tag times a power of two is exact, and it is never
# a tag itself (its fractional part is not the offset's).
_SCALES = (1.0, -1.0, 0.5, -0.5, 0.25, -0.25, 0.125, -0.125)


@dataclass(frozen=True, eq=False)
class Lifted:
    """A tape with whole templates, and the decomposition its program runs.

    Attributes:
        tape: the decomposed tape (its tagged parameters are stand-ins; only its structure is
            used).
        sources: per parameter of ``tape``'s operations, where it comes from in the original
            tape's leaves: ``("leaf", j)`` (the whole leaf), ``("elem", j, e)`` (element ``e``
            of the flattened leaf), ``("elem", j, e, c)`` (that element times the constant
            ``c``) or ``("const", value)``.
        n_op_leaves: how many leaves the original tape's operations hold (the measurements'
            leaves follow them, as in ``tape``'s own order).
        post: the device preprocessing's post-processing for this one tape.
        support: the XLA support check's answers per diff method, kept by ``_select`` for a
            ``Lifted`` shared between calls (``cached_lift``).
    """

    tape: qml.tape.QuantumScript
    sources: tuple
    n_op_leaves: int
    post: Callable
    support: dict = field(default_factory=dict)

    def key(self) -> Any:
        """What a program built from this depends on beyond the original tape's structure."""
        return self._key

    @cached_property
    def _key(self) -> Any:  # computed once: 0.04 s for 100 layers of 12 qubits
        frozen = tuple((s[0], _freeze_const(s[1])) if s[0] == "const" else s for s in self.sources)
        return (jax.tree_util.tree_structure(self.tape), frozen)


@dataclass(frozen=True, eq=False)
class PerParameter:
    """A lifted tape as shift rules see it: one vector per leaf, of the gate parameters it feeds.

    A shift rule shifts one *gate* parameter at a time. A weight that two gates read must be
    shifted in each separately, so the program of a shift rule reads its gate parameters from
    vectors with one element per gate parameter (``widen`` gathers them from the leaves, one
    operation per leaf, and JAX's transpose of that gather sums the per-gate derivatives back
    into the weights).

    Attributes:
        lifted: the program's view: its leaves are the vectors, then the original leaves.
        reads: per vector, (original leaf, flat element read by each of its entries, the
            constant each entry is scaled by or None).
        direct: the original leaves the program also reads as they are (whole-leaf gate
            parameters that are not real scalars, observables); the others get no tangent.
    """

    lifted: Lifted
    reads: tuple[tuple[int, np.ndarray, np.ndarray | None], ...]
    direct: frozenset[int]

    def widen(self, leaves: tuple) -> tuple:
        """The program's leaves for the original tape's ``leaves``."""
        vectors = tuple(read_elements(leaves[j], index, scale) for j, index, scale in self.reads)
        rest = tuple(
            x if j in self.direct else jax.lax.stop_gradient(x) for j, x in enumerate(leaves)
        )
        return vectors + rest


def per_parameter(lifted: Lifted, leaves: tuple) -> PerParameter:
    """``lifted`` with every real scalar gate parameter read from a per-parameter vector.

    Args:
        lifted: the lifted tape.
        leaves: the original tape's leaves (shapes and dtypes decide what is a real scalar).
    """
    elements: dict[int, list[int]] = {}  # original leaf -> flat elements, one per gate parameter
    scales: dict[int, list[float]] = {}
    direct = set(range(lifted.n_op_leaves, len(leaves)))
    staged: list[tuple] = []
    for src in lifted.sources:
        c = 1.0
        if src[0] == "elem":
            j, e, c = src[1], src[2], scale_of(src)
        elif src[0] == "leaf" and real_scalar(leaves[src[1]]):
            j, e = src[1], 0
        else:
            if src[0] == "leaf":
                direct.add(src[1])
            staged.append(src)
            continue
        read = elements.setdefault(j, [])
        staged.append(("vector", j, len(read)))
        read.append(e)
        scales.setdefault(j, []).append(c)
    vector_of = {j: q for q, j in enumerate(elements)}
    m = len(elements)
    sources = tuple(
        ("elem", vector_of[src[1]], src[2])
        if src[0] == "vector"
        else ("leaf", m + src[1])
        if src[0] == "leaf"
        else src
        for src in staged
    )
    reads = tuple(
        (j, np.asarray(e, dtype=np.int32), scale_vector(scales[j])) for j, e in elements.items()
    )
    view = Lifted(lifted.tape, sources, m + lifted.n_op_leaves, lifted.post)
    return PerParameter(view, reads, frozenset(direct))


def _freeze_const(value) -> Any:
    arr = np.asarray(value)
    return (arr.shape, str(arr.dtype), arr.tobytes())


def _decompose_condition(pipeline) -> Callable | None:
    for bound in pipeline:
        transform = getattr(bound, "tape_transform", None)
        if getattr(transform, "__name__", None) == "decompose":
            return bound.kwargs.get("stopping_condition")
    return None


def _liftable(op, stop: Callable) -> bool:
    """A template the device would decompose, whose parameters are real float arrays."""
    if isinstance(op, _SYMBOLIC) or not op.data or stop(op):
        return False  # Pow, Prod, Controlled, ...: wrappers, not templates
    for d in op.data:
        dtype = getattr(d, "dtype", None)
        if dtype is None or not np.issubdtype(np.dtype(dtype), np.floating):
            return False
    # Elements must stay below the second run's offset (tags of two runs never meet).
    return any(np.ndim(d) >= 1 for d in op.data) and all(np.size(d) < 2**22 for d in op.data)


def lift(tape: qml.tape.QuantumScript, pipeline) -> Lifted | None:
    """``tape``'s templates kept whole (``Lifted``), or None where lifting does not apply.

    Args:
        tape: a tape before the device's preprocessing; parameters may be tracers.
        pipeline: the device's preprocessing for plain execution.
    """
    stop = _decompose_condition(pipeline)
    if stop is None or tape.batch_size is not None or _graph_decomposition():
        return None
    try:
        targets = [k for k, op in enumerate(tape.operations) if _liftable(op, stop)]
    except Exception:  # a stopping condition that cannot judge an op: do not lift
        return None
    if not targets:
        return None
    leaves = [d for op in tape.operations for d in op.data]
    first_leaf, start = [], 0
    for op in tape.operations:
        first_leaf.append(start)
        start += len(op.data)

    def decompose(offset: float) -> tuple | None:
        ops = list(tape.operations)
        for k in targets:
            op = ops[k]
            tags = [
                (first_leaf[k] + i + 1) * _SPAN
                + np.arange(np.size(d)).reshape(np.shape(d))
                + offset
                for i, d in enumerate(op.data)
            ]
            try:
                ops[k] = qml.ops.functions.bind_new_parameters(op, tags)
            except Exception:
                return None
        try:
            (decomposed, *rest), post = pipeline((tape.copy(operations=ops),))
        except Exception:  # the normal path reports it, with the traced parameters
            return None
        return None if rest else (decomposed, post)

    first = decompose(_OFFSETS[0])
    if first is None:
        return None
    dec0, post0 = first
    tagged = {first_leaf[k] + i for k in targets for i in range(len(tape.operations[k].data))}
    sources = _sources(dec0, None, leaves, tagged)
    if sources is _SECOND_RUN:
        # Values that are neither tags nor the tape's own leaves: constants of a decomposition,
        # or computed from the weights. A second run with other tags tells them apart.
        second = decompose(_OFFSETS[1])
        if second is None or not _same_structure(dec0, second[0]):
            return None
        sources = _sources(dec0, second[0], leaves, tagged)
    if sources is None or not _same_measurements(dec0, tape):
        return None
    assert isinstance(sources, tuple)
    return Lifted(dec0, sources, len(leaves), post0)


# ------------------------------------------------------------------ one lift per structure
#
# Lifting runs the device's decomposition once or twice: 0.35-0.7 s of a 2 s trace at 100
# layers of 12 qubits, and as much again on every eager call. Its result depends only on the tape's
# structure when every traced value sits in a lifted template (the decomposition then holds
# tags and concrete values alone, and no tracer of the caller), so those results are kept.

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # device -> OrderedDict
_cache_lock = threading.Lock()
_CACHE_SIZE = 64  # per device


class _Uncacheable(Exception):
    """A value that does not belong in a structural key (a tracer, an unknown object)."""


def cached_lift(tape: qml.tape.QuantumScript, pipeline, device, context: Any) -> Lifted | None:
    """``lift(tape, pipeline)``, computed once per tape structure, device and ``context``.

    Args:
        tape: as for ``lift``.
        pipeline: the device's preprocessing for plain execution.
        device: the device ``pipeline`` came from (entries live as long as it does).
        context: hashable; everything besides the device that decided ``pipeline``.
    """
    key = _structure_of(tape, pipeline, context)
    if key is None:
        return lift(tape, pipeline)
    try:
        with _cache_lock:
            entries = _cache.setdefault(device, OrderedDict())
    except TypeError:  # a device that cannot be a weak dictionary key
        return lift(tape, pipeline)
    with _cache_lock:
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
    result = lift(tape, pipeline)
    with _cache_lock:
        entries[key] = result
        while len(entries) > _CACHE_SIZE:
            entries.popitem(last=False)
    return result


def clear_cache() -> None:
    """Forget every remembered lift."""
    with _cache_lock:
        _cache.clear()


_caches.register("lifted templates", clear_cache)


def _structure_of(tape, pipeline, context) -> Any:
    """The key ``lift``'s result depends on, or None where a key cannot capture it.

    Liftable templates count by shape and dtype (stand-in tags replace their values); every
    other value by its bytes (it may become a constant of the decomposition). A tracer
    outside a liftable template makes the tape uncacheable.
    """
    stop = _decompose_condition(pipeline)
    if stop is None or tape.batch_size is not None:
        return None
    try:
        ops = tuple(_op_key(op, _liftable(op, stop)) for op in tape.operations)
        measurements = tuple(
            (
                jax.tree_util.tree_structure(m),
                tuple(_value(x) for x in jax.tree_util.tree_leaves(m)),
            )
            for m in tape.measurements
        )
        key = (
            context,
            _graph_decomposition(),
            ops,
            measurements,
            tape.shots,
            tuple(tape.trainable_params),
        )
        hash(key)
    except Exception:  # _Uncacheable, or a value without a usable hash
        return None
    return key


def _op_key(op, liftable: bool) -> tuple:
    if liftable:
        data = tuple(("tag", np.shape(d), str(np.dtype(d.dtype))) for d in op.data)
    else:
        data = tuple(_value(d) for d in op.data)
    return (type(op), tuple(op.wires.tolist()), _frozen(op.hyperparameters), data)


def _value(x) -> tuple:
    if isinstance(x, jax.core.Tracer):
        raise _Uncacheable
    arr = np.asarray(x)
    return (arr.shape, str(arr.dtype), arr.tobytes())


def _frozen(v) -> Any:
    if v is None or isinstance(v, bool | int | float | complex | str | type | types.FunctionType):
        return v
    if isinstance(v, tuple | list):
        return (type(v).__name__, tuple(_frozen(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, qml.wires.Wires):
        return ("wires", tuple(v.tolist()))
    if isinstance(v, qml.operation.Operator):
        return ("op", _op_key(v, False))
    if isinstance(v, np.ndarray | np.generic | jax.Array):
        return ("array", _value(v))
    raise _Uncacheable


def templates_with_stand_ins(tape: qml.tape.QuantumScript, device) -> qml.tape.QuantumScript:
    """``tape`` with every liftable template's weights replaced by concrete zeros.

    For questions about structure only (PennyLane's "does the device support adjoint for this
    tape", which decomposes it): the same decomposition, without tracing one slice per gate.
    """
    if tape.batch_size is not None:
        return tape
    try:
        stop = _decompose_condition(device.preprocess_transforms())
        if stop is None:
            return tape
        ops = [
            qml.ops.functions.bind_new_parameters(op, [np.zeros(np.shape(d)) for d in op.data])
            if _liftable(op, stop) and any(isinstance(d, jax.core.Tracer) for d in op.data)
            else op
            for op in tape.operations
        ]
    except Exception:  # the question is then asked about the tape itself
        return tape
    return tape.copy(operations=ops)


def _graph_decomposition() -> bool:
    enabled = getattr(getattr(qml, "decomposition", None), "enabled_graph", None)
    try:
        return bool(enabled()) if enabled is not None else False
    except Exception:
        return True


_SECOND_RUN = object()  # ``_sources`` of one run: a value only a second run can place


def _sources(dec0, dec1, leaves, tagged: set[int]) -> Any:
    """Where each parameter of the decomposed tape comes from (``Lifted.sources``), or None.

    ``dec1``: the second run's decomposition, or None after one run (then ``_SECOND_RUN`` if
    some value is neither a tag nor one of the tape's leaves). ``tagged``: the indices of the
    leaves that carried tags.
    """
    by_id = {id(x): j for j, x in enumerate(leaves)}
    out: list[tuple] = []
    ops1 = dec1.operations if dec1 is not None else [None] * len(dec0.operations)
    for op0, op1 in zip(dec0.operations, ops1):
        values1 = op1.data if op1 is not None else op0.data
        for v0, v1 in zip(op0.data, values1):
            j = by_id.get(id(v0))
            if isinstance(v0, jax.core.Tracer) or isinstance(v1, jax.core.Tracer):
                if v0 is not v1 or j is None or j in tagged:
                    return None
                out.append(("leaf", j))
                continue
            a0 = np.asarray(v0)
            a1 = np.asarray(v1) if op1 is not None else None
            if a1 is not None and a0.shape != a1.shape:
                return None
            elem = _element(a0, a1, leaves, tagged)
            if elem is not None:
                out.append(elem)
            elif j is not None and j not in tagged:
                out.append(("leaf", j))  # the tape's own value, passed through
            elif a1 is None:
                return _SECOND_RUN
            elif a0.dtype == a1.dtype and np.array_equal(a0, a1):
                out.append(("const", a0))
            else:
                return None  # computed from the weights
    return tuple(out)


def _element(a0, a1, leaves, tagged) -> tuple | None:
    """``("elem", j, e)`` if ``a0`` (and ``a1``, unless None) are tags of one weight, ``("elem",
    j, e, c)`` if they are ``c`` times one (``_SCALES``), else None."""
    if a0.ndim != 0 or not np.issubdtype(a0.dtype, np.floating):
        return None
    for c in _SCALES:
        x0 = float(a0) / c  # exact: c is a power of two
        j = int(x0 // _SPAN) - 1
        e = x0 - (j + 1) * _SPAN - _OFFSETS[0]
        if j not in tagged or e != int(e) or not 0 <= e < np.size(leaves[j]):
            continue
        if a1 is not None and float(a1) != c * ((j + 1) * _SPAN + e + _OFFSETS[1]):
            return None
        return ("elem", j, int(e)) if c == 1.0 else ("elem", j, int(e), c)
    return None


def _same_measurements(dec, tape) -> bool:
    """The decomposed tape measures what the original does, with the same parameter leaves."""
    if len(dec.measurements) != len(tape.measurements):
        return False
    if not _same_structure(list(dec.measurements), list(tape.measurements)):
        return False
    a = jax.tree_util.tree_leaves(list(dec.measurements))
    b = jax.tree_util.tree_leaves(list(tape.measurements))
    return all(x is y or (np.shape(x) == np.shape(y) and _equal(x, y)) for x, y in zip(a, b))


def _same_structure(a, b) -> bool:
    left: Any = jax.tree_util.tree_structure(a)
    return bool(left == jax.tree_util.tree_structure(b))


def _equal(x, y) -> bool:
    if isinstance(x, jax.core.Tracer) or isinstance(y, jax.core.Tracer):
        return False
    return bool(np.array_equal(np.asarray(x), np.asarray(y)))
