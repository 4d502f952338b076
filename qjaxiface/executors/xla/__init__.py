"""The XLA executor: PennyLane tapes as one pure, differentiable JAX computation.

``xla_execute`` runs a batch of (default.qubit-preprocessed) tapes as a state-vector
simulation written in ``jax.numpy``, with the derivative rule of the requested ``diff_method``
attached, so the whole thing traces, compiles and differentiates like any JAX function:

* ``backprop``: JAX differentiates the simulation;
* ``parameter-shift``, ``finite-diff``, ``spsa``: a ``custom_jvp`` evaluating the circuit --
  traced once -- ``vmap``-ed over all shifted parameter vectors;
* ``adjoint``: a ``custom_jvp`` computing the Jacobian with an adjoint sweep.

The simulation for a tape *structure* (ops, wires, hyperparameters, measurements, shots,
parameter shapes) is built once and cached, and jitted, so repeated executions -- eager or
re-traced -- reuse it. ``xla_unsupported_reason`` says, before anything runs, whether a
tape can run here; the caller falls back to the device otherwise.

Modules, each named for what it decides: ``_gates`` (the gate catalogue), ``_kernels``
(applying gates to a state vector), ``_compact`` (layers of gates as one loop), ``_cone`` (the
gates an expectation value sees), ``_gadgets`` (CNOT ladders around an RZ as one MultiRZ),
``_lift`` (templates kept whole), ``_measure`` (analytic
measurements), ``_sample`` (finite shots), ``_simulate`` (tape -> program), ``_derivatives``
(which rule) with ``_shift`` (shift rules), ``_adjoint`` (the adjoint sweep) and ``_jvp_parts``
(what they share), ``_rows`` (shift rows in chunks and over devices), ``_support`` (can it run
this tape), ``_select`` (does it take this call); the program cache and ``xla_execute`` are
here.

Examples:
    >>> import jax, pennylane as qml
    >>> jax.config.update("jax_enable_x64", True)
    >>> from qjaxiface.executors.xla import xla_execute
    >>> def f(x):
    ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
    ...     return xla_execute([tape], diff_method="parameter-shift")[0]
    >>> round(float(jax.jit(jax.grad(f))(0.5)), 6)
    -0.479426
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ... import _caches
from ..._dtypes import precision, set_precision, x64_enabled
from ...detect import inside_staging_trace
from ._compact import compact_enabled, set_compact
from ._cone import cone_groups, light_cone_enabled, set_light_cone
from ._derivatives import make_fn
from ._distributed import (
    AmplitudeMesh,
    MeshError,
    ShardedProgram,
    automatic_mesh,
    current_mesh,
    using_mesh,
)
from ._lift import per_parameter
from ._rows import rows_sharding_off, set_sharding
from ._shift import SHIFT_METHODS
from ._simulate import TapeProgram
from ._support import DIFF_METHODS, XLAUnsupported, xla_unsupported_reason

__all__ = [
    "DIFF_METHODS",
    "AmplitudeMesh",
    "MeshError",
    "XLAUnsupported",
    "clear_cache",
    "execute_checked",
    "has_program",
    "set_compact",
    "set_light_cone",
    "set_precision",
    "set_sharding",
    "using_mesh",
    "xla_execute",
    "xla_unsupported_reason",
]

_CACHE_SIZE = 256


# --------------------------------------------------------------------------- execution

# Built programs by structure key, least recently used first. Threads share it: every access
# holds the lock; building happens outside it (two threads may build the same program once each).
_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every built program, to free memory (``qjaxiface.clear_caches()`` calls it).

    The key already covers what a program depends on besides parameter values (the tape's
    structure, parameter shapes and dtypes, the diff method and its arguments, the wire order
    and ``jax_enable_x64``), so correctness never needs it.
    """
    with _cache_lock:
        _cache.clear()


_caches.register("XLA executor programs", clear_cache)


def _leaves(tape: qml.tape.QuantumScript) -> tuple:
    out = [d for op in tape.operations for d in op.data]
    for mp in tape.measurements:
        if mp.obs is not None:
            out += jax.tree_util.tree_leaves(mp.obs)
    return tuple(out)


def _freeze(value) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _structure_key(tape, leaves, diff_method, kwargs, wire_order, mesh=None) -> Any:
    """A hashable key for everything the built function depends on except parameter values."""
    try:
        key = (
            jax.tree_util.tree_structure(tape),
            tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves),
            diff_method,
            _freeze(kwargs or {}),
            None if wire_order is None else tuple(wire_order),
            x64_enabled(),
            compact_enabled(),
            light_cone_enabled(),
            precision(),
            None if mesh is None else mesh.key(),
        )
        hash(key)
        return key
    except TypeError:
        return None


def _detached(tape: qml.tape.QuantumScript) -> qml.tape.QuantumScript:
    """The tape with every traced parameter replaced by a concrete stand-in of its shape and dtype.

    A built program keeps its ops (for structure: shift rules, generic matrices rebuilt around
    new parameters) and lives in the cache across traces; holding the caller's tracers there
    would leak them. Programs never read parameter values at build time, so any valid value
    does: identity matrices and first basis vectors, so that ops validating their input on
    construction (``Hermitian``, ``StatePrep``) accept them.
    """
    leaves = jax.tree_util.tree_leaves(tape)
    if not any(isinstance(x, jax.core.Tracer) for x in leaves):
        return tape
    return jax.tree_util.tree_map(
        lambda x: _stand_in(x) if isinstance(x, jax.core.Tracer) else x, tape
    )


def _stand_in(x) -> np.ndarray:
    shape, dtype = jnp.shape(x), jnp.result_type(x)
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        return np.broadcast_to(np.eye(shape[-1], dtype=dtype), shape).copy()
    out = np.zeros(shape, dtype)
    if len(shape) >= 1 and shape[-1]:
        out[..., 0] = 1
    return out


def _program(tape, wire_order, diff_method, lifted=None, compact=True):
    """A ``TapeProgram``, sharded over the current mesh when there is one.

    The shift rules' rows keep repeated patterns unrolled: ``vmap``-ed over the rows, the
    unrolled gates ran 1.2-1.5x faster per step than the loop (CRX and IsingZZ rings, n=8 at 5
    and 20 layers, n=12 at 5; 0.9x at n=12, 20 layers), and the loop's first call was only
    1.0-1.6x shorter.

    The gate-list interpreter (``_interp.py``) runs under the adjoint rule only: its own
    backward sweep stepped as fast as the unrolled one or faster (n=8 and 12), while backprop
    through its loop stepped 1.8-3x slower than through the unrolled kernels.
    """
    mesh = current_mesh()
    if mesh is None:
        repeat = diff_method not in SHIFT_METHODS
        interp = diff_method == "adjoint"
        return TapeProgram(tape, wire_order, lifted, compact=compact, repeat=repeat, interp=interp)
    return ShardedProgram(tape, wire_order, lifted, mesh, elementwise=diff_method != "backprop")


def _build(tape, leaves, diff_method, kwargs, wire_order, lifted=None):
    if lifted is None:
        # Shift rules evaluate their rows unrolled (``TapeProgram.final_state``); a compact
        # primal next to them would be a second program to compile.
        compact = diff_method not in SHIFT_METHODS
        program = _program(_detached(tape), wire_order, diff_method, compact=compact)
        fn = program.broadcast(make_fn(program, diff_method, kwargs))
        return fn, jax.jit(fn)
    if diff_method not in SHIFT_METHODS:
        program = _program(_detached(lifted.tape), wire_order, diff_method, lifted)
        fn = make_fn(program, diff_method, kwargs)
        return fn, jax.jit(fn)
    # Shift rules shift one gate parameter at a time: the program reads them from
    # per-parameter vectors gathered from the template leaves (``_lift.per_parameter``).
    view = per_parameter(lifted, leaves)
    program = _program(_detached(lifted.tape), wire_order, diff_method, view.lifted)
    inner = make_fn(program, diff_method, kwargs)

    def widened(leaves, key=None):
        return inner(view.widen(leaves), key)

    return widened, jax.jit(widened)


def _program_key(tape, leaves, diff_method, kwargs, wire_order, lifted=None) -> Any:
    """The cache key of the program for ``tape`` (None: not cacheable)."""
    key = _structure_key(tape, leaves, diff_method, kwargs, wire_order, current_mesh())
    if key is None or lifted is None:
        return key
    try:
        key = (key, lifted.key())
        hash(key)
        return key
    except TypeError:
        return None


def _tape_function(tape, leaves, diff_method, kwargs, wire_order, lifted=None):
    key = _program_key(tape, leaves, diff_method, kwargs, wire_order, lifted)
    if key is None:
        return _build(tape, leaves, diff_method, kwargs, wire_order, lifted)
    with _cache_lock:
        fn = _cache.get(key)
        if fn is not None:
            _cache.move_to_end(key)
            return fn
    fn = _build(tape, leaves, diff_method, kwargs, wire_order, lifted)
    with _cache_lock:
        fn = _cache.setdefault(key, fn)  # a program another thread built meanwhile wins
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return fn


def has_program(tape, diff_method, gradient_kwargs=None, wire_order=None, lifted=None) -> bool:
    """Whether an earlier call already built the program that would run ``tape``.

    ``lifted``: ``(original tape, _lift.Lifted)`` when ``tape`` is a lifted decomposition.
    """
    if lifted is not None:
        tape, lift = lifted
    else:
        lift = None
    leaves = tuple(jnp.asarray(x) for x in _leaves(tape))
    key = _program_key(tape, leaves, diff_method, gradient_kwargs, wire_order, lift)
    if key is None:
        return False
    with _cache_lock:
        return key in _cache


def xla_execute(
    tapes: Sequence[qml.tape.QuantumScript],
    *,
    diff_method: str | None,
    gradient_kwargs: dict | None = None,
    num_wires: int | None = None,
    wire_order=None,
    prng_key=None,
) -> tuple:
    """Run tapes as one pure JAX computation.

    Args:
        tapes: tapes after default.qubit's preprocessing; parameters may be JAX tracers.
        diff_method: ``"backprop"``, ``"adjoint"``, ``"parameter-shift"``, ``"finite-diff"``,
            ``"spsa"``, or ``None`` (no derivatives needed).
        gradient_kwargs: options of the gradient method (finite-diff ``h``, ``approx_order``,
            ``strategy``; SPSA also ``num_directions`` and ``sampler_rng``/``sampler_seed``).
        num_wires: the device's wire count (the simulation only needs the tape's wires, which
            include every measured wire after preprocessing; kept for the contract).
        wire_order: device wires, ordering the state for measurements without wires.
        prng_key: JAX PRNG key for finite-shot sampling.

    Returns:
        tuple: one result per tape, with default.qubit's structure, shape and dtype
        conventions (tuple for several measurements, shot-vector nesting, broadcast dimension
        first). Counts dictionaries contain every outcome, zeros included.

    Raises:
        XLAUnsupported: if a tape cannot run here (see
            [``xla_unsupported_reason``][qjaxiface.executors.xla.xla_unsupported_reason]), or has
            finite shots and no ``prng_key``.
    """
    del num_wires  # the tape's own wires suffice; see the docstring
    for tape in tapes:
        reason = xla_unsupported_reason(tape, diff_method)
        if reason is not None:
            raise XLAUnsupported(reason)
    if any(t.shots for t in tapes) and prng_key is None:
        raise XLAUnsupported("finite shots need a prng_key")
    return execute_checked(
        tapes,
        diff_method=diff_method,
        gradient_kwargs=gradient_kwargs,
        wire_order=wire_order,
        prng_key=prng_key,
    )


def execute_checked(
    tapes, *, diff_method, gradient_kwargs, wire_order, prng_key, lifted=None
) -> tuple:
    """``xla_execute`` for tapes whose support check already passed (``_select.XLAPlan``).

    ``lifted``: per tape, ``(original tape, _lift.Lifted)``; the program runs the lifted
    decomposition on the original tape's leaves (``tapes`` are then the decompositions).
    """
    results = []
    need_keys = any(t.shots for t in tapes)
    keys = jax.random.split(prng_key, len(tapes)) if need_keys and len(tapes) else None
    for i, tape in enumerate(tapes):
        lift = None
        if lifted is not None:
            tape, lift = lifted[i]
        key = keys[i] if keys is not None and tape.shots else None
        groups = cone_groups(tapes[i])
        if groups is None:
            results.append(_run(tape, lift, key, diff_method, gradient_kwargs, wire_order))
            continue
        # A Hamiltonian whose terms see small, different light cones: one program per group
        # of terms, each simulating its own cone (``_cone.cone_groups``); <H> is their sum.
        parts = [_term_group(tape, lift, ids) for ids in groups]
        results.append(
            sum(_run(t, lf, key, diff_method, gradient_kwargs, wire_order) for t, lf in parts)
        )
    return tuple(results)


def _term_group(tape, lift, ids: list[int]) -> tuple:
    """``tape`` (and its ``lift``) measuring only the terms ``ids`` of its Hamiltonian."""
    coeffs, terms = tape.measurements[0].obs.terms()
    with qml.QueuingManager.stop_recording():
        obs = qml.ops.LinearCombination([coeffs[k] for k in ids], [terms[k] for k in ids])
        mp = qml.measurements.ExpectationMP(obs=obs)
    sub = tape.copy(measurements=[mp])
    if lift is None:
        return sub, None
    return sub, dataclasses.replace(lift, tape=lift.tape.copy(measurements=[mp]), support={})


def _run(tape, lift, key, diff_method, gradient_kwargs, wire_order):
    """One tape's results from its (cached) program."""
    if current_mesh() is None and not tape.shots:
        auto = automatic_mesh(len(tape.wires), diff_method)
        if auto is not None:  # too large for one device: sharded over all of them
            with using_mesh(auto):
                return _run(tape, lift, key, diff_method, gradient_kwargs, wire_order)
    leaves = tuple(jnp.asarray(x) for x in _leaves(tape))
    plain, jitted = _tape_function(tape, leaves, diff_method, gradient_kwargs, wire_order, lift)
    # Inside a staging trace the caller's jit compiles everything anyway; calling the
    # jitted copy there would make JAX trace the simulation twice (once to a jaxpr, once
    # more to linearize that jaxpr under grad). Everywhere else, eager grad/vmap tracers
    # included, the compiled copy runs: op by op, eager grad at n=8 and 10 SEL layers took
    # 0.55 s a step, compiled 22 ms.
    fn = plain if inside_staging_trace() else jitted
    if current_mesh() is None:
        return fn(leaves, key)
    with rows_sharding_off():  # the devices hold one state's slices, not rows
        return fn(leaves, key)
