"""One tape's structure compiled into a pure function of its parameters.

A ``TapeProgram`` is built once per tape *structure* (ops, wires, hyperparameters,
measurements, shots) and maps a tuple of parameter arrays (``leaves``: every op's ``data``, then
every measured observable's pytree leaves) to the tape's result. The function it provides,
``TapeProgram.run_single``, is for one unbroadcast circuit; parameter broadcasting is a
``jax.vmap`` over the broadcast leaves (``TapeProgram.run``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from pennylane.measurements import (
    CountsMP,
    DensityMatrixMP,
    ExpectationMP,
    ProbabilityMP,
    SampleMP,
    StateMP,
    VarianceMP,
)

from ..._dtypes import complex_dtype, real_dtype, state_dtype
from ._batching import broadcast_leaves
from ._compact import Region, plan_regions, region_matrices, run_region
from ._cone import light_cone
from ._gadgets import fuse_phase_gadgets
from ._gates import STATE_PREPS, Gate, GateValues, ParamSource, as_complex, compile_gate
from ._interp import Interp, find_interps, run_interp, table
from ._kernels import apply_gate
from ._measure import (
    density_matrix,
    expval,
    marginal_probs,
    rotate_to_eigenbasis,
    state_in_order,
    variance,
)
from ._repeat import Repeat, find_repeats, repeat_values, run_repeat
from ._sample import measure_with_shots, state_draw

Array = Any

ANALYTIC_MEASUREMENTS = frozenset(
    {ExpectationMP, VarianceMP, ProbabilityMP, StateMP, DensityMatrixMP}
)
SHOT_MEASUREMENTS = frozenset({ExpectationMP, VarianceMP, ProbabilityMP, SampleMP, CountsMP})


def internal_wire_order(tape: qml.tape.QuantumScript, wire_order=None) -> list:
    """The wires of the state tensor's axes, in the order default.qubit would use.

    With device wires, their order (restricted to the tape's wires, which cover every measured
    wire after preprocessing). Without, default.qubit maps the tape to "standard" wires (op wires
    in order of appearance unless they already are 0..k-1, then measurement-only wires), so
    measurements without wires (``qml.state()``) come out in that order.
    """
    tape_wires = list(tape.wires)
    if wire_order is not None:
        device = [w for w in wire_order if w in tape.wires]
        return device + [w for w in tape_wires if w not in device]
    try:
        wire_map = tape._get_standard_wire_map()  # private: reproduces default.qubit
    except Exception:  # pragma: no cover - defensive against PennyLane internals changing
        wire_map = None
    if wire_map is None:
        try:
            return sorted(tape_wires)
        except TypeError:
            return tape_wires
    return sorted(tape_wires, key=lambda w: wire_map.get(w, len(wire_map)))


class _Measurement:
    """One compiled measurement: its kind, wires and observable structure."""

    def __init__(self, mp, axis_of: dict, order: list, start: int):
        self.mp = mp
        self.kind = type(mp)  # exact class: DensityMatrixMP subclasses StateMP
        self.wires = list(mp.wires) if len(mp.wires) else list(order)
        self.axes = [axis_of[w] for w in self.wires]
        if mp.obs is not None:
            leaves, self.obs_def = jax.tree_util.tree_flatten(mp.obs)
        else:
            leaves, self.obs_def = [], None
        self.slice = slice(start, start + len(leaves))

    def rebuild(self, leaves: tuple):
        """The measurement process with its observable's parameters replaced by ``leaves``."""
        if self.obs_def is None:
            return self.mp
        obs = jax.tree_util.tree_unflatten(self.obs_def, list(leaves[self.slice]))
        return type(self.mp)(obs=obs)


class TapeProgram:
    """A tape structure compiled against a wire order.

    Attributes:
        order: wires of the state axes.
        prep: the state-preparation op at index 0 (or None) and its leaf slice.
        gates: compiled gates with their leaf slices.
        plan: gate indices, compact ``Region``s (``_compact.py``), ``Repeat``s
            (``_repeat.py``) and ``Interp``\\ s (``_interp.py``), in circuit order.
        measurements: compiled measurements.
        n_leaves: number of parameter leaves.
        batched: per leaf, whether it carries the broadcast dimension.
        batch_size: the tape's broadcast size (None when not broadcast).
        shot_vector: list of shot counts (one per shot-vector copy), or None when analytic.
    """

    def __init__(
        self,
        tape: qml.tape.QuantumScript,
        wire_order=None,
        lifted=None,
        compact: bool = True,
        repeat: bool = True,
        interp: bool = False,
    ):
        """``lifted`` (``_lift.Lifted``): ``tape`` is the decomposition of a tape with whole
        templates, whose gate parameters are read from that tape's leaves (``lifted.sources``).
        ``compact=False``: no ``_compact`` regions; ``repeat=False``: no ``_repeat`` loops
        (both off: every gate is a kernel of its own); ``interp``: the gates left unrolled
        after those, in stretches that the gate-list interpreter runs (``_interp.py``)."""
        self.sources = None if lifted is None else lifted.sources
        self.order = internal_wire_order(tape, wire_order)
        # After the wire order: a wire that only fused CNOTs touched stays in the state.
        tape = fuse_phase_gadgets(tape)
        cone = light_cone(tape)
        if cone is not None:  # only the wires the measured observables can see (``_cone.py``)
            self.order = [w for w in self.order if w in cone[1]]
        self.axis_of = {w: i for i, w in enumerate(self.order)}
        self.n_wires = len(self.order)
        self.prep = None
        self.gates: list[tuple[Gate, slice, qml.operation.Operator]] = []
        self.batched: list[bool] = []
        start = 0
        for i, op in enumerate(tape.operations):
            n = len(op.data)
            sl = slice(start, start + n)
            if lifted is None:  # a lifted tape is never broadcast (``_lift.lift``)
                self.batched += broadcast_leaves(op)
            start += n
            if cone is not None and i not in cone[0]:
                continue  # outside the light cone: cancels in the expectation value
            if op.name in STATE_PREPS and i == 0:
                self.prep = (op, sl)
            else:
                self.gates.append((compile_gate(op, self.axis_of), sl, op))
        gates = [g for g, _, _ in self.gates]
        plan = plan_regions(gates, self.n_wires) if compact else list(range(len(gates)))
        if repeat:
            plan = find_repeats(plan, gates)
        if interp:
            plan = find_interps(plan, gates, self.n_wires)
        self.plan = plan
        if lifted is not None:
            start = lifted.n_op_leaves  # measurements read the lifted tape's own leaves
            self.batched = [False] * start
        n_op_leaves = start
        self.measurements = []
        for mp in tape.measurements:
            m = _Measurement(mp, self.axis_of, self.order, start)
            self.batched += [False] * (m.slice.stop - m.slice.start)
            self.measurements.append(m)
            start = m.slice.stop
        self.n_leaves = start
        read = set().union(*(self.reads(i) for i in range(len(self.gates))))
        if self.prep is not None:
            read.update(self._reads_slice(self.prep[1]))
        # Parameters of gates outside the light cone: their derivative is an exact zero.
        self.unread = frozenset(range(n_op_leaves)) - read
        self.batch_size = tape.batch_size
        shots = tape.shots
        self.shot_vector = list(shots) if shots else None
        self.partitioned = bool(shots) and shots.has_partitioned_shots

    # ----------------------------------------------------------------- state

    def initial_state(self, leaves: tuple) -> Array:
        """|0...0>, or the state prepared by the first op."""
        n = self.n_wires
        if self.prep is None:
            return jnp.zeros((2**n,), state_dtype()).at[0].set(1.0)
        op, sl = self.prep
        params = self.param_source(leaves).at(sl)
        new = qml.ops.functions.bind_new_parameters(op, list(params))
        vec = new.state_vector(wire_order=self.order)
        return as_complex(vec).reshape(2**n)

    def final_state(
        self, leaves: tuple, elementwise: bool = False, values: tuple | None = None
    ) -> Array:
        """The state after every gate.

        Compact regions (``_compact.py``) run as loops over layers, repeated patterns
        (``_repeat.py``) as loops over their repetitions, other gates one by one.
        ``elementwise`` (a shift rule's rows, vmapped): kernels that are faster over a batch of
        states (``apply_gate``'s elementwise one-qubit kernels, ``apply_slab(unrolled=True)``).
        ``values``: the unrolled gates' values and the regions' slab matrices for ``leaves``,
        as ``_adjoint.sweep_values`` gives them (the adjoint rule has them already; tracing
        them twice cost 10-15% of its trace).
        """
        state = self.initial_state(leaves)
        source = self.param_source(leaves)
        gates = [g for g, _, _ in self.gates]
        if values is None:
            computed = self.gate_values(leaves)
            one_by_one: Any = computed
            region_mats = iter(
                region_matrices(r, gates, computed) for r in self.plan if isinstance(r, Region)
            )
        else:
            one_by_one, region_mats = values[0], iter(values[1])
        for item in self.plan:
            if isinstance(item, Region):
                state = run_region(state, item, next(region_mats), unrolled=elementwise)
                continue
            if isinstance(item, Repeat):
                stacks = repeat_values(item, one_by_one)
                state = run_repeat(state, item, gates, stacks, elementwise=elementwise)
                continue
            if isinstance(item, Interp):
                state = run_interp(state, item, table(item, gates, one_by_one))
                continue
            state = apply_gate(
                state,
                gates[item],
                source.params(item),
                value=one_by_one[item],
                elementwise=elementwise,
            )
        return state

    def param_source(self, leaves: tuple) -> ParamSource:
        """Where the gates read their parameters in ``leaves``."""
        slices = [sl for _, sl, _ in self.gates]
        if self.sources is None:
            return _TapeParams(leaves, slices)
        return _LiftedParams(leaves, slices, self.sources)

    def gate_values(self, leaves: tuple) -> GateValues:
        """Every gate's matrix/diagonal for these parameters (vectorized per gate formula)."""
        return GateValues([g for g, _, _ in self.gates], self.param_source(leaves))

    def reads(self, i: int) -> frozenset[int]:
        """The leaves gate ``i`` reads."""
        return self._reads_slice(self.gates[i][1])

    def _reads_slice(self, sl: slice) -> frozenset[int]:
        if self.sources is None:
            return frozenset(range(sl.start, sl.stop))
        return frozenset(
            self.sources[p][1] for p in range(sl.start, sl.stop) if self.sources[p][0] != "const"
        )

    # ----------------------------------------------------------------- measurements

    def measure_analytic(
        self, m: _Measurement, state: Array, leaves: tuple, moments: bool = False
    ) -> Array:
        """One analytic measurement of ``state`` (a variance as ``[<O>, <O²>]`` if ``moments``)."""
        mp = m.rebuild(leaves)
        if m.kind is VarianceMP and moments:
            mean = expval(mp.obs, state, self.axis_of)
            pair = jnp.stack([mean, variance(mp.obs, state, self.axis_of) + mean**2])
            return pair.astype(real_dtype())  # float32 from a single-precision state
        if m.kind is ExpectationMP:
            return expval(mp.obs, state, self.axis_of).astype(real_dtype())
        if m.kind is VarianceMP:
            return variance(mp.obs, state, self.axis_of).astype(real_dtype())
        if m.kind is ProbabilityMP:
            if mp.obs is not None:
                state = rotate_to_eigenbasis(mp.obs, state, self.axis_of)
                axes = [self.axis_of[w] for w in mp.obs.wires]
            else:
                axes = m.axes
            return marginal_probs(state, axes).astype(real_dtype())
        # In single precision (``set_precision``) the state is complex64; what leaves the
        # program has the dtype default.qubit gives.
        if m.kind is StateMP:
            return state_in_order(state, m.axes).astype(complex_dtype())
        if m.kind is DensityMatrixMP:
            return density_matrix(state, m.axes).astype(complex_dtype())
        raise AssertionError(m.kind)

    def measure(self, state: Array, leaves: tuple, key=None, moments: bool = False) -> Any:
        """All measurements, structured as default.qubit returns them.

        With ``moments=True`` variances come as ``[<O>, <O²>]``: the parameter-shift rule is
        exact for those (trigonometric in each angle), not for the variance itself.
        """
        if self.shot_vector is None:
            res = tuple(self.measure_analytic(m, state, leaves, moments) for m in self.measurements)
            return res[0] if len(res) == 1 else res
        return self.measure_shots(state_draw(state, self.axis_of), leaves, key, moments)

    def measure_shots(self, draw, leaves: tuple, key, moments: bool = False) -> Any:
        """``measure`` with finite shots, sampling through ``draw`` (``_sample.Draw``)."""
        assert self.shot_vector is not None
        per_copy = []
        for j, shots in enumerate(self.shot_vector):
            copy_key = jax.random.fold_in(key, j)
            res = tuple(
                measure_with_shots(
                    m.rebuild(leaves),
                    draw,
                    shots,
                    jax.random.fold_in(copy_key, i),
                    m.wires,
                    moments,
                )
                for i, m in enumerate(self.measurements)
            )
            per_copy.append(res[0] if len(res) == 1 else res)
        return tuple(per_copy) if self.partitioned else per_copy[0]

    def run_single(self, leaves: tuple, key=None, *, elementwise: bool = False) -> Any:
        """The result for one unbroadcast circuit (``elementwise``: see ``apply_gate``)."""
        return self.measure(self.final_state(leaves, elementwise), leaves, key)

    def run_moments(self, leaves: tuple, key=None, *, elementwise: bool = False) -> Any:
        """Like ``run_single``, variances as ``[<O>, <O²>]``."""
        return self.measure(self.final_state(leaves, elementwise), leaves, key, moments=True)

    def kinds(self) -> Any:
        """The measurement kinds, nested like the results."""
        res = tuple(m.kind for m in self.measurements)
        one = res[0] if len(res) == 1 else res
        if self.shot_vector is None or not self.partitioned:
            return one
        return tuple(one for _ in self.shot_vector)

    @property
    def has_variance(self) -> bool:
        """Whether any measurement is a variance."""
        return any(m.kind is VarianceMP for m in self.measurements)

    def broadcast(self, fn):
        """``fn(leaves, key)`` vmapped over the broadcast leaves (and one key per element)."""
        if self.batch_size is None:
            return fn
        in_leaves = tuple(0 if b else None for b in self.batched)
        size = self.batch_size

        def batched_fn(leaves, key=None):
            if key is None:
                return jax.vmap(lambda lv: fn(lv, None), in_axes=(in_leaves,))(tuple(leaves))
            keys = jax.random.split(key, size)
            return jax.vmap(fn, in_axes=(in_leaves, 0))(tuple(leaves), keys)

        return batched_fn


class _TapeParams:
    """Gate parameters as the tape holds them: one leaf per parameter."""

    def __init__(self, leaves: tuple, slices: list[slice]):
        self.leaves, self.slices = leaves, slices

    def at(self, sl: slice) -> tuple:
        return tuple(self.leaves[sl])

    def params(self, i: int) -> tuple:
        return tuple(self.leaves[self.slices[i]])

    def scalar_dtypes(self, i: int) -> tuple | None:
        p = self.params(i)
        if all(jnp.ndim(x) == 0 for x in p):
            return tuple(jnp.result_type(x) for x in p)
        return None

    def stacked(self, ids, k: int) -> Array:
        positions = [self.slices[i].start + k for i in ids]
        vector = self._vector
        if vector is None:
            return jnp.stack([self.leaves[p] for p in positions])
        return vector[np.array(positions, dtype=np.int32)]

    @functools.cached_property
    def _vector(self) -> Array | None:
        """Every leaf in tape order as one vector, if all are scalars of one dtype.

        Gates of a formula read their parameters from it with one gather. Stacking each
        formula's leaves apart made XLA:CPU compile a kernel per scalar twice over (the slices
        that fill the stacks, and in reverse mode the slices that split their cotangents: 100
        of 173 kernels at n=8, 85 angles). Leaves read in order from one array (a vector's
        ``w[i]``, or ``jnp.unstack``) now stack back into a view of it, and their cotangents
        leave as one array. (``w[l, k]`` of a matrix is gathered before it gets here, by
        ``_angle_reads``; reads it cannot follow, such as computed angles, closures and
        hand-built tapes, stay a kernel per angle: XLA merges slices along one axis only.)
        """
        scalars = all(jnp.ndim(x) == 0 for x in self.leaves)
        if scalars and len({jnp.result_type(x) for x in self.leaves}) == 1:
            return jnp.stack(self.leaves)
        return None


def scale_of(src: tuple) -> float:
    """The constant an ``("elem", j, e[, c])`` source is scaled by (``_lift._SCALES``)."""
    return src[3] if len(src) > 3 else 1.0


def scale_vector(scales: list[float]) -> np.ndarray | None:
    return None if all(c == 1.0 for c in scales) else np.asarray(scales)


def read_elements(leaf, index: np.ndarray, scale: np.ndarray | None):
    """Elements ``index`` of the flattened ``leaf``, times ``scale`` (per element) if given."""
    out = jnp.ravel(leaf)[index]  # a no-op on an already flat leaf
    return out if scale is None else out * scale.astype(out.dtype)


class _LiftedParams:
    """Gate parameters read from whole template leaves (``_lift.py``): elements are gathered,
    many at once, instead of sliced one by one."""

    def __init__(self, leaves: tuple, slices: list[slice], sources: tuple):
        self.leaves, self.slices, self.sources = leaves, slices, sources
        self._flat: dict[int, Array] = {}
        self._dtypes: dict[int, Any] = {}  # per leaf: jnp.result_type costs ~50 us a call

    def _flat_leaf(self, j: int) -> Array:
        if j not in self._flat:
            self._flat[j] = jnp.ravel(self.leaves[j])
        return self._flat[j]

    def _one(self, pos: int) -> Array:
        kind, *rest = self.sources[pos]
        if kind == "leaf":
            return self.leaves[rest[0]]
        if kind == "elem":
            x = self._flat_leaf(rest[0])[rest[1]]
            c = scale_of(self.sources[pos])
            return x if c == 1.0 else x * c
        return jnp.asarray(rest[0])

    def at(self, sl: slice) -> tuple:
        return tuple(self._one(p) for p in range(sl.start, sl.stop))

    def params(self, i: int) -> tuple:
        return self.at(self.slices[i])

    def _leaf_dtype(self, j: int) -> Any:
        if j not in self._dtypes:
            self._dtypes[j] = jnp.result_type(self.leaves[j])
        return self._dtypes[j]

    def scalar_dtypes(self, i: int) -> tuple | None:
        out = []
        for pos in range(self.slices[i].start, self.slices[i].stop):
            kind, *rest = self.sources[pos]
            if kind == "const":
                if np.ndim(rest[0]) != 0:
                    return None
                out.append(jnp.result_type(rest[0]))
                continue
            if kind == "leaf" and jnp.ndim(self.leaves[rest[0]]) != 0:
                return None
            out.append(self._leaf_dtype(rest[0]))
        return tuple(out)

    def stacked(self, ids, k: int) -> Array:
        positions = [self.slices[i].start + k for i in ids]
        srcs = [self.sources[p] for p in positions]
        if all(src[0] == "elem" and src[1] == srcs[0][1] for src in srcs):
            index = np.array([src[2] for src in srcs])
            scale = scale_vector([scale_of(src) for src in srcs])
            return read_elements(self._flat_leaf(srcs[0][1]), index, scale)
        return jnp.stack([self._one(p) for p in positions])
