"""Amplitude sharding: one state vector spread over the devices of a ``jax.sharding.Mesh``.

With ``D = 2**g`` devices the state's ``g`` most significant qubits are *global*: the device
index holds their bits, and each device keeps the ``2**(n-g)`` amplitudes of its slice. The
program runs inside one ``shard_map`` over an internal mesh of ``g`` axes of size 2 (one per
global qubit), so the same code runs on several GPUs, forced CPU devices or, under
``jax.distributed``, several hosts.

* A gate whose targets are all local runs on each device's slice with the ordinary kernels
  (``_kernels.apply_gate``); nothing moves.
* A **control** on a global qubit needs no data: each device applies the target or not by its
  own bit. A **diagonal** gate on global qubits neither: each device reads the entries of its
  bits. An uncontrolled SWAP only renames where two qubits live.
* A dense or bit-flip target on a global qubit needs that qubit local. A *qubit exchange*
  swaps global qubits with local ones: one ``all_to_all`` over the mesh axes of those global
  qubits, each device sending ``1 - 2**-k`` of its slice. The schedule (``schedule``) runs
  every gate it can run with the current placement, in any order the circuit's wire
  dependencies allow, and only when stuck exchanges the global qubits its next gates need for
  the local qubits needed last (Belady's rule). A StronglyEntanglingLayers layer pays about one
  exchange.
* Measurements bring their wires local, reduce each slice and ``psum`` over the devices: only
  the result leaves them. ``qml.state()`` is returned as a ``jax.Array`` sharded over the mesh.
  Finite shots sample from those reduced marginal probabilities, with the unsharded
  executor's inverse-CDF draws; samples of more wires than a slice holds pick a device by
  its slice's weight, then a local amplitude (``ShardedProgram._draw_wide``).

Backprop differentiates through the ``shard_map`` (an exchange transposes to itself, a
``psum`` to a broadcast); the shift rules run the sharded program for every row; the adjoint
sweep (``sharded_adjoint_jvp``) replays the schedule backwards on the ket and the bras.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec
from pennylane.measurements import (
    DensityMatrixMP,
    ExpectationMP,
    ProbabilityMP,
    SampleMP,
    StateMP,
    VarianceMP,
)

from ..._dtypes import complex_dtype, int_dtype, real_dtype, state_dtype
from ._adjoint import value_weights, word_overlaps
from ._gates import Gate, as_complex, full_matrix, inverse_values
from ._kernels import apply_gate, num_wires_of, transition_matrix
from ._measure import (
    apply_observable,
    density_matrix,
    marginal_probs,
    rotate_to_eigenbasis,
)
from ._sample import Draw, eigenbasis, index_bits, sample_indices, sampled_terms
from ._simulate import TapeProgram

Array = Any


def _shard_map(fn, *, mesh: Mesh, in_specs, out_specs):
    """``shard_map`` without JAX's replication checking.

    Every process of a multi-controller run must lower the same collectives in the same order.
    With the checking on, JAX inserts ``pvary`` over a *set* of axis names (jax 0.7-0.12), and
    the psum that transposes it lists them in string-hash order, which differs between processes
    unless ``PYTHONHASHSEED`` is fixed: gloo then pairs mismatched all-reduces and hangs. Without
    it, the only collectives are ours and the transpose's, both in mesh-axis order. Our outputs
    are replicated by construction (every measurement ends in a ``psum``).
    """
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


#: Local qubits a device keeps at least: room for any gate's targets and a measured pair.
MIN_LOCAL = 4


class MeshError(ValueError):
    """A ``mesh=`` that cannot shard this call: not a mesh of a power of two of devices, or a
    call the sharded XLA executor cannot run (finite shots, an unsupported operation, a
    measurement wider than a device's slice). The message says what to pass instead.

    Examples:
        >>> import jax, qjaxiface
        >>> try:
        ...     qjaxiface.install(executor="xla", mesh="all devices")
        ... except qjaxiface.MeshError as err:
        ...     print(str(err).split(";")[0])
        mesh='all devices' is not a jax.sharding.Mesh
    """


# --------------------------------------------------------------------------- the mesh


@dataclass(frozen=True)
class AmplitudeMesh:
    """The user's mesh seen as ``g`` binary axes, one per global qubit.

    Attributes:
        devices: the mesh's devices, flat, in the user's mesh order.
        g: ``log2(len(devices))``.
    """

    devices: tuple
    g: int

    @staticmethod
    def of(mesh: Any) -> AmplitudeMesh:
        """Validate ``mesh`` (a ``jax.sharding.Mesh``, or a sequence/array of devices)."""
        if isinstance(mesh, Mesh):
            devices = tuple(np.asarray(mesh.devices).reshape(-1))
        elif (
            isinstance(mesh, Sequence | np.ndarray)
            and len(mesh)
            and all(hasattr(d, "platform") for d in np.asarray(mesh, dtype=object).reshape(-1))
        ):
            devices = tuple(np.asarray(mesh, dtype=object).reshape(-1))
        else:
            raise MeshError(
                f"mesh={mesh!r} is not a jax.sharding.Mesh; pass one, e.g. "
                "jax.sharding.Mesh(jax.devices(), ('amps',))"
            )
        size = len(devices)
        if size & (size - 1):
            raise MeshError(
                f"a sharded state needs a power-of-two number of devices, and the mesh has "
                f"{size}; pass a mesh over {1 << (size.bit_length() - 1)} of them"
            )
        return AmplitudeMesh(devices, size.bit_length() - 1)

    def key(self) -> tuple:
        """Hashable identity for program caches."""
        return (self.g, tuple((d.platform, d.id, d.process_index) for d in self.devices))

    def axis_names(self, g: int) -> tuple[str, ...]:
        return tuple(f"qjx{j}" for j in range(g))

    def jax_mesh(self, g: int) -> Mesh:
        """A mesh with ``g`` binary axes (sharded) and one axis replicating the rest."""
        arr = np.empty(len(self.devices), dtype=object)
        arr[:] = self.devices
        shape = (2,) * g + (len(self.devices) >> g,)
        return Mesh(arr.reshape(shape), (*self.axis_names(g), "qjx_rep"))


def global_qubits(mesh: AmplitudeMesh, n_wires: int) -> int:
    """How many of the ``n_wires`` qubits are global: ``mesh.g``, fewer for small circuits.

    Devices beyond ``2**global_qubits`` hold copies (a circuit too small to split that far).
    """
    return max(0, min(mesh.g, n_wires - MIN_LOCAL))


def _device_bytes(device) -> int | None:
    """Memory one device may use: its allocator's limit (GPU), else the host's RAM shared by
    the host's devices (CPU devices of one process share it)."""
    try:
        stats = device.memory_stats() or {}
    except Exception:  # some backends do not implement it
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX hosts
        return None
    local = sum(1 for d in jax.local_devices() if d.platform == device.platform)
    return host // max(local, 1)


#: State slices a device keeps at once: about 3 for a forward pass, about 6 in the adjoint sweep
#: (measured, n=14-18 on 8 devices: docs/distributed.md; about 4 states unsharded).
SLICES = {"forward": 3, "adjoint": 7}


def capacity(devices=None, itemsize: int = 16) -> dict:
    """The largest state the devices hold together (for ``qjaxiface doctor``).

    Args:
        devices: JAX devices (default: ``jax.devices()``); the largest power of two of them
            is used.
        itemsize: bytes per amplitude (16: complex128, 8: complex64).

    Returns:
        dict: ``"devices"`` (used), ``"device_bytes"`` (per device, or None when unknown) and
        ``"largest_n"``: per rule in ``SLICES``, the most qubits whose slices fit.

    Examples:
        >>> from qjaxiface.executors.xla._distributed import capacity
        >>> report = capacity()
        >>> report["largest_n"]["forward"] >= report["largest_n"]["adjoint"]
        True
    """
    devices = list(jax.devices() if devices is None else devices)
    used = 1 << (len(devices).bit_length() - 1)
    per_device = _device_bytes(devices[0])
    largest: dict[str, int | None] = {}
    for rule, slices in SLICES.items():
        if per_device is None:
            largest[rule] = None
            continue
        local = int(per_device // (slices * itemsize)).bit_length() - 1
        largest[rule] = local + used.bit_length() - 1
    return {"devices": used, "device_bytes": per_device, "largest_n": largest}


def automatic_mesh(n_wires: int, diff_method: str | None) -> AmplitudeMesh | None:
    """A mesh over every device when an ``n_wires`` state does not fit one device (but fits
    them all), else None: ``mesh=`` chosen for the user where one device would run out.
    """
    devices = jax.devices()
    if len(devices) < 2:
        return None
    per_device = _device_bytes(devices[0])
    if per_device is None:
        return None
    slices = SLICES["adjoint" if diff_method == "adjoint" else "forward"]
    state = 2**n_wires * state_dtype().itemsize
    if state * slices <= per_device:
        return None
    return AmplitudeMesh.of(devices[: 1 << (len(devices).bit_length() - 1)])


_MESH: contextvars.ContextVar[AmplitudeMesh | None] = contextvars.ContextVar(
    "qjaxiface_mesh", default=None
)


def current_mesh() -> AmplitudeMesh | None:
    """The mesh of the ``execute(..., mesh=...)`` call being traced (None: one device)."""
    return _MESH.get()


@contextlib.contextmanager
def using_mesh(mesh: AmplitudeMesh | None) -> Iterator[None]:
    """Build and trace programs with their state sharded over ``mesh`` inside the block."""
    token = _MESH.set(mesh)
    try:
        yield
    finally:
        _MESH.reset(token)


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class GateStep:
    """Gate ``index`` run on each device's slice.

    Attributes:
        index: the gate's index in the program.
        local: the gate with its axes renamed to local positions. For a diagonal gate
            (controls folded in) only the local targets; ``kind="phase"`` when none is local.
        conds: ``(mesh axis, bit)`` controls on global qubits: applied where they hold.
        picks: for a diagonal gate, ``(position in the full diagonal, mesh axis)`` of each
            global target: each device reads the entries of its bits.
    """

    index: int
    local: Gate
    where: tuple[int, ...]
    conds: tuple[tuple[int, int], ...] = ()
    picks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Exchange:
    """Swap global qubits with local ones: ``pairs`` of (mesh axis, local position)."""

    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Relabel:
    """Gate ``index``, an uncontrolled SWAP: its two qubits trade places, no data moves."""

    index: int


def _wires(gate: Gate) -> tuple[int, ...]:
    return gate.controls + gate.axes


def _needs_local(gate: Gate) -> tuple[int, ...]:
    """The gate's axes that must be local (not handled by a device's own bits)."""
    if gate.kind in ("phase", "none", "diag") or (gate.kind == "swap" and not gate.controls):
        return ()
    return gate.axes


class Layout:
    """Where each logical axis lives: ``pos[a] < g`` global (mesh axis), else local ``pos - g``."""

    def __init__(self, n: int, g: int):
        self.n, self.g = n, g
        self.pos = list(range(n))

    def copy(self) -> Layout:
        out = Layout(self.n, self.g)
        out.pos = list(self.pos)
        return out

    def at(self) -> list[int]:
        """Inverse: physical position -> logical axis."""
        inv = [0] * self.n
        for a, p in enumerate(self.pos):
            inv[p] = a
        return inv

    def is_local(self, a: int) -> bool:
        return self.pos[a] >= self.g

    def local(self, a: int) -> int:
        return self.pos[a] - self.g


def schedule(gates: Sequence[Gate], n: int, g: int) -> tuple[list, Layout]:
    """The gates as ``GateStep``s, ``Exchange``s and ``Relabel``s (and the placement they
    end with).

    Gates run as soon as their wires' earlier gates have run and their targets are local;
    when none can, one exchange brings in the global qubits the runnable-but-blocked gates
    target, evicting the local qubits whose next gate comes last.
    """
    layout = Layout(n, g)
    queues: list[list[int]] = [[] for _ in range(n)]
    for i, gate in enumerate(gates):
        for a in set(_wires(gate)):
            queues[a].append(i)
    heads = [0] * n
    done = [False] * len(gates)
    steps: list = []

    def ready(i: int) -> bool:
        return all(queues[a][heads[a]] == i for a in set(_wires(gates[i])))

    def emit(i: int) -> None:
        gate = gates[i]
        done[i] = True
        for a in set(_wires(gate)):
            heads[a] += 1
        if gate.kind == "swap" and not gate.controls:
            a, b = gate.axes
            layout.pos[a], layout.pos[b] = layout.pos[b], layout.pos[a]
            steps.append(Relabel(i))
            return
        steps.append(_gate_step(i, gate, layout))

    for i, gate in enumerate(gates):  # global phases commute with everything: first
        if not _wires(gate):
            emit(i)
    next_free = 0
    while True:
        while next_free < len(gates) and done[next_free]:
            next_free += 1
        if next_free == len(gates):
            return steps, layout
        progressed = True
        while progressed:
            progressed = False
            heads_now = {queues[a][heads[a]] for a in range(n) if heads[a] < len(queues[a])}
            for i in sorted(heads_now):
                if done[i] or not ready(i):
                    continue
                if all(layout.is_local(a) for a in _needs_local(gates[i])):
                    emit(i)
                    progressed = True
            while next_free < len(gates) and done[next_free]:
                next_free += 1
            if next_free == len(gates):
                return steps, layout
        blocked = [i for i in range(next_free, len(gates)) if not done[i] and ready(i)]
        want = sorted(
            {a for i in blocked for a in _needs_local(gates[i]) if not layout.is_local(a)},
            key=lambda a: layout.pos[a],
        )
        busy = {a for i in blocked for a in _wires(gates[i])}

        def next_use(a: int) -> float:
            return queues[a][heads[a]] if heads[a] < len(queues[a]) else float("inf")

        spare = [a for a in range(n) if layout.is_local(a) and a not in busy]
        spare.sort(key=next_use, reverse=True)
        want = want[: len(spare)]
        if not want:  # pragma: no cover - MIN_LOCAL leaves room for any gate
            raise AssertionError("no local qubit to exchange")
        steps.append(exchange(layout, list(zip(want, spare))))


def exchange(layout: Layout, swaps: list[tuple[int, int]]) -> Exchange:
    """The exchange of (global logical axis, local logical axis) pairs; updates ``layout``."""
    pairs = []
    for glob, loc in swaps:
        pairs.append((layout.pos[glob], layout.local(loc)))
        layout.pos[glob], layout.pos[loc] = layout.pos[loc], layout.pos[glob]
    return Exchange(tuple(pairs))


def _gate_step(i: int, gate: Gate, layout: Layout) -> GateStep:
    g = layout.g
    where = tuple(layout.pos[a] for a in _wires(gate))
    if gate.kind == "diag":
        wires = _wires(gate)
        on_slice = tuple(layout.local(a) for a in wires if layout.is_local(a))
        picks = tuple((k, layout.pos[a]) for k, a in enumerate(wires) if not layout.is_local(a))
        kind = "diag" if on_slice else "phase"
        return GateStep(i, Gate(gate.name, kind, on_slice), where, picks=picks)
    conds = tuple(
        (layout.pos[c], v) for c, v in zip(gate.controls, gate.control_values) if layout.pos[c] < g
    )
    kept = [
        (layout.local(c), v)
        for c, v in zip(gate.controls, gate.control_values)
        if layout.is_local(c)
    ]
    local = dataclasses.replace(
        gate,
        axes=tuple(layout.local(a) for a in gate.axes)
        if gate.kind not in ("phase", "none")
        else (),
        controls=tuple(c for c, _ in kept),
        control_values=tuple(v for _, v in kept),
    )
    return GateStep(i, local, where, conds=conds)


def restore(layout: Layout) -> list:
    """Exchanges that put logical axis ``j < g`` back on mesh axis ``j`` (updates ``layout``).

    The local axes may still be permuted after them: ``local_order`` gives the transpose.
    """
    steps = []
    for j in range(layout.g):
        if layout.pos[j] == j:
            continue
        if not layout.is_local(j):  # on another mesh axis: route it through a local qubit
            spare = next(b for b in range(layout.n) if layout.is_local(b))
            steps.append(exchange(layout, [(j, spare)]))
        steps.append(exchange(layout, [(layout.at()[j], j)]))
    return steps


def local_order(layout: Layout) -> list[int]:
    """The transpose of a slice's axes that orders them by logical axis."""
    at = layout.at()[layout.g :]
    return sorted(range(len(at)), key=lambda k: at[k])


# --------------------------------------------------------------------------- running steps


def _bit(j: int) -> Array:
    return jax.lax.axis_index(f"qjx{j}")


def _device_index(g: int) -> Array:
    """This device's slice number: its bits of the global qubits, the first most significant."""
    index = jnp.zeros((), jnp.int32)
    for j in range(g):
        index = index * 2 + _bit(j)
    return index


def _full_diag(gate: Gate, value: Array) -> Array:
    """A diagonal gate's diagonal over ``controls + axes`` (ones where a control fails)."""
    c = len(gate.controls)
    d = jnp.reshape(value, (2,) * len(gate.axes))
    if not c:
        return d
    full = jnp.ones((2,) * (c + len(gate.axes)), dtype=d.dtype)
    return full.at[tuple(gate.control_values)].set(d)


def run_gate(
    state: Array, step: GateStep, gate: Gate, value: Array, adjoint: bool, elementwise: bool
) -> Array:
    """Apply one scheduled gate (or its inverse) to a device's slice (``elementwise``: see
    ``apply_gate``)."""
    if gate.kind == "diag":
        d = _full_diag(gate, value)
        for k, j in sorted(step.picks, reverse=True):
            d = jnp.take(d, _bit(j), axis=k)
        d = jnp.reshape(d, (-1,))
        if step.local.kind == "phase":
            d = d[0]
        return apply_gate(state, step.local, (), adjoint=adjoint, value=d)
    out = apply_gate(state, step.local, (), adjoint=adjoint, value=value, elementwise=elementwise)
    if not step.conds:
        return out
    mask = functools.reduce(jnp.logical_and, [_bit(j) == v for j, v in step.conds])
    return jnp.where(mask, out, state)


def run_exchange(state: Array, step: Exchange) -> Array:
    """Swap the global qubits of ``step.pairs`` with their local partners (its own inverse)."""
    n_local = int(state.shape[-1]).bit_length() - 1
    lead = state.shape[:-1]
    locs = [loc for _, loc in step.pairs]
    view = jnp.reshape(state, (*lead, *(2,) * n_local))
    off = len(lead)
    view = jnp.moveaxis(view, [off + loc for loc in locs], list(range(off, off + len(locs))))
    moved = view.shape
    view = jnp.reshape(view, (*lead, 2 ** len(locs), -1))
    names = tuple(f"qjx{j}" for j, _ in step.pairs)
    view = jax.lax.all_to_all(view, names, off, off, tiled=True)
    view = jnp.reshape(view, moved)
    view = jnp.moveaxis(view, list(range(off, off + len(locs))), [off + loc for loc in locs])
    return jnp.reshape(view, state.shape)


# --------------------------------------------------------------------------- the program


def _local_axis_of(program, layout: Layout) -> dict:
    """Wire -> axis of a device's slice, for the wires that are local in ``layout``."""
    out = {}
    for w in program.order:
        a = program.axis_of[w]
        if layout.is_local(a):
            out[w] = layout.local(a)
    return out


@dataclass
class _Part:
    """One piece of a measurement: the exchanges that bring its wires local, the slice's
    wire -> axis map then, and (for a term of a wide sum) its index in ``obs.terms()``."""

    exchanges: list
    axis_of: dict
    term: int | None = None


def _bring_local(program, base: Layout, wires) -> _Part:
    """Exchanges (from a copy of ``base``) that make ``wires`` local."""
    layout = base.copy()
    axes = [program.axis_of[w] for w in wires]
    want = [a for a in axes if not layout.is_local(a)]
    spare = [a for a in range(layout.n) if layout.is_local(a) and a not in axes]
    steps = [exchange(layout, list(zip(want, spare)))] if want else []
    return _Part(steps, _local_axis_of(program, layout))


class ShardedProgram(TapeProgram):
    """A ``TapeProgram`` whose state lives on a mesh (module docstring)."""

    def __init__(self, tape, wire_order, lifted, mesh: AmplitudeMesh, elementwise: bool = True):
        """``elementwise``: one-qubit matrices as fused slices (``apply_gate``): 1.7-2x faster
        steps at n=22 (the slices run unrolled, without ``_compact``'s layers), slower for JAX
        to differentiate, so off for backprop."""
        super().__init__(tape, wire_order, lifted, compact=False, repeat=False)
        self.elementwise = elementwise
        self.mesh = mesh
        self.g = global_qubits(mesh, self.n_wires)
        gates = [g for g, _, _ in self.gates]
        self.steps, self.layout = schedule(gates, self.n_wires, self.g)
        if self.shot_vector is None:
            self.parts = [self._plan_measurement(m) for m in self.measurements]
        else:
            self.parts = []
            for m in self.measurements:
                self._check_sampled(m)

    @property
    def exchanges(self) -> int:
        """Exchanges the gates need (measurements excluded)."""
        return sum(isinstance(s, Exchange) for s in self.steps)

    @property
    def local_size(self) -> int:
        """Amplitudes each device holds."""
        return 2 ** (self.n_wires - self.g)

    def _plan_measurement(self, m) -> list[_Part]:
        n_local = self.n_wires - self.g
        if m.kind is StateMP:
            return []
        if len(m.wires) <= n_local:
            return [_bring_local(self, self.layout, m.wires)]
        obs = m.mp.obs
        if m.kind is ExpectationMP and obs is not None:
            _, terms = obs.terms()
            if all(len(t.wires) <= n_local for t in terms):
                parts = []
                for k, t in enumerate(terms):
                    part = _bring_local(self, self.layout, t.wires)
                    part.term = k
                    parts.append(part)
                return parts
        raise MeshError(
            f"{m.mp} acts on {len(m.wires)} wires, more than the {n_local} each device "
            f"holds with {2**self.g} devices; use fewer devices or measure fewer wires"
        )

    def _check_sampled(self, m) -> None:
        """A finite-shot measurement draws from marginal probabilities on ``m``'s wires (a
        sum's terms' wires), which each device must hold; only wire samples may be wider."""
        n_local = self.n_wires - self.g
        obs = m.mp.obs
        if obs is None:
            if len(m.wires) <= n_local or m.kind is SampleMP:
                return
            wide = f"{len(m.wires)} wires"
        else:
            terms = sampled_terms(obs) if m.kind is ExpectationMP else [obs]
            widest = max(len(t.wires) for t in terms)
            if widest <= n_local:
                return
            wide = f"an observable on {widest} wires"
        raise MeshError(
            f"{m.mp} with finite shots samples {wide}, more than the {n_local} each device "
            f"holds with {2**self.g} devices; sample the wires (qml.sample()), measure "
            "fewer wires, or use fewer devices"
        )

    # ------------------------------------------------------------ inside the shard_map

    def _jax_mesh(self) -> Mesh:
        return self.mesh.jax_mesh(self.g)

    def _names(self) -> tuple[str, ...]:
        return self.mesh.axis_names(self.g)

    def _initial_slice(self, leaves) -> Array:
        size = self.local_size
        if self.prep is None:
            first = jnp.ones((), bool)
            for j in range(self.g):
                first = first & (_bit(j) == 0)
            zero = jnp.zeros((size,), state_dtype())
            return zero.at[0].set(jnp.where(first, 1.0, 0.0).astype(zero.dtype))
        # A state preparation is built whole on each device and sliced: O(2**n) once.
        index = _device_index(self.g)
        full = self.initial_state(leaves)
        return jax.lax.dynamic_slice(full, (index * size,), (size,))

    def _forward(self, leaves, values) -> Array:
        state = self._initial_slice(leaves)
        gates = [g for g, _, _ in self.gates]
        for step in self.steps:
            if isinstance(step, Exchange):
                state = run_exchange(state, step)
            elif isinstance(step, GateStep):
                gate = gates[step.index]
                value = values[step.index]
                state = run_gate(state, step, gate, value, False, self.elementwise)
        return state

    def _apply_obs(self, obs, parts: list[_Part], state) -> Array:
        """``obs |state>`` in the gates' final placement, term by term when wide."""
        if parts[0].term is None:
            return _around(parts[0], state, lambda s: apply_observable(obs, s, parts[0].axis_of))
        coeffs, terms = obs.terms()
        out = jnp.zeros_like(state)
        for part in parts:
            term = terms[part.term]
            out = out + as_complex(coeffs[part.term]) * _around(
                part, state, lambda s, t=term, p=part: apply_observable(t, s, p.axis_of)
            )
        return out

    def _measure_slice(self, state, leaves, moments) -> tuple:
        names = self._names()
        out = []
        for m, parts in zip(self.measurements, self.parts):
            mp = m.rebuild(leaves)
            kind = m.kind  # the exact class (DensityMatrixMP subclasses StateMP)
            if kind in (ExpectationMP, VarianceMP):
                o_state = self._apply_obs(mp.obs, parts, state)
                mean = _psum(jnp.real(jnp.vdot(state, o_state)), names)
                if kind is ExpectationMP:
                    out.append(mean.astype(real_dtype()))
                    continue
                square = _psum(jnp.real(jnp.vdot(o_state, o_state)), names)
                res = jnp.stack([mean, square]) if moments else square - mean**2
                out.append(res.astype(real_dtype()))
                continue
            if kind is StateMP:
                out.append(self._state_out(state).astype(complex_dtype()))
                continue
            part = parts[0]
            local = state
            for step in part.exchanges:
                local = run_exchange(local, step)
            axes = [part.axis_of[w] for w in m.wires]
            if kind is ProbabilityMP:
                if mp.obs is not None:
                    local = rotate_to_eigenbasis(mp.obs, local, part.axis_of)
                    axes = [part.axis_of[w] for w in mp.obs.wires]
                out.append(_psum(marginal_probs(local, axes), names).astype(real_dtype()))
            elif kind is DensityMatrixMP:
                rho = _psum(density_matrix(local, axes), names)
                out.append(rho.astype(complex_dtype()))
            else:  # pragma: no cover - _support admits no other analytic kind
                raise AssertionError(kind)
        return tuple(out)

    def _state_out(self, state) -> Array:
        """The device's slice of the state in wire order (the global qubits back on top)."""
        layout = self.layout.copy()
        for step in restore(layout):
            state = run_exchange(state, step)
        order = local_order(layout)
        n_local = self.n_wires - self.g
        return jnp.transpose(jnp.reshape(state, (2,) * n_local), order).reshape(-1)

    def _draw(self, state) -> Draw:
        """The ``_sample.Draw`` of a sharded state: the indices the unsharded executor draws
        with the same key (the reduced probabilities agree with its own to rounding), except
        for a subset of wires wider than a slice (``_draw_wide``)."""
        names = self._names()
        state = jax.lax.stop_gradient(state)

        def draw(obs, wires, shots, key):
            if len(wires) > self.n_wires - self.g:
                assert obs is None  # _check_sampled lets only wire samples be wider
                return self._draw_wide(state, wires, shots, key), None
            part = _bring_local(self, self.layout, wires)
            local = state
            for step in part.exchanges:
                local = run_exchange(local, step)
            rotated, evals = (local, None) if obs is None else eigenbasis(obs, local, part.axis_of)
            probs = _psum(marginal_probs(rotated, [part.axis_of[w] for w in wires]), names)
            return sample_indices(probs, shots, key), evals

        return draw

    def _draw_wide(self, state, wires, shots, key) -> Array:
        """Basis states of ``wires``, more than a slice holds: a device by the weight of
        its slice, then an amplitude of that slice, from the one uniform per shot that the
        inverse CDF of the whole state reads. Equal to the unsharded draws when ``wires``
        are every wire in order; for a subset, the same distribution (the unsharded
        executor marginalizes first, which no device could hold here)."""
        names = self._names()
        size = self.local_size
        mine = self._state_out(state)
        probs = jnp.real(mine * jnp.conj(mine))
        index = _device_index(self.g)
        weights = _psum(jax.nn.one_hot(index, 2**self.g, dtype=probs.dtype) * probs.sum(), names)
        upto = jnp.cumsum(weights)
        u = jax.random.uniform(key, (shots,), dtype=upto.dtype) * upto[-1]
        device = jnp.clip(jnp.searchsorted(upto, u, side="right"), 0, 2**self.g - 1)
        within = u - (upto[device] - weights[device])
        local = jnp.clip(jnp.searchsorted(jnp.cumsum(probs), within, side="right"), 0, size - 1)
        local = _psum(jnp.where(device == index, local, 0), names)
        bits = index_bits(device.astype(int_dtype()) * size + local, self.n_wires)
        picked = bits[:, [self.axis_of[w] for w in wires]]
        return picked @ (2 ** jnp.arange(len(wires) - 1, -1, -1, dtype=picked.dtype))

    def _out_specs(self) -> tuple:
        """Per measurement: a state stays sharded over the mesh; the rest are replicated."""
        return tuple(
            PartitionSpec(self._names()) if m.kind is StateMP else PartitionSpec()
            for m in self.measurements
        )

    def _sharded(self, leaves, moments: bool):
        def local(leaves):
            values = self.gate_values(leaves)
            state = self._forward(leaves, values)
            return self._measure_slice(state, leaves, moments)

        fn = _shard_map(
            local,
            mesh=self._jax_mesh(),
            in_specs=(PartitionSpec(),),
            out_specs=self._out_specs(),
        )
        res = fn(tuple(leaves))
        return res[0] if len(res) == 1 else res

    def _sharded_shots(self, leaves, key, moments: bool):
        def local(leaves, key):
            state = self._forward(leaves, self.gate_values(leaves))
            return self.measure_shots(self._draw(state), leaves, key, moments)

        # Every device draws the same samples from the same reduced probabilities.
        fn = _shard_map(
            local,
            mesh=self._jax_mesh(),
            in_specs=(PartitionSpec(), PartitionSpec()),
            out_specs=PartitionSpec(),
        )
        return fn(tuple(leaves), key)

    def run_single(self, leaves, key=None, *, elementwise=False):
        del elementwise  # the rows' kernels are the plain ones
        if self.shot_vector is not None:
            return self._sharded_shots(leaves, key, moments=False)
        return self._sharded(leaves, moments=False)

    def run_moments(self, leaves, key=None, *, elementwise=False):
        del elementwise
        if self.shot_vector is not None:
            return self._sharded_shots(leaves, key, moments=True)
        return self._sharded(leaves, moments=True)

    def adjoint_jvp(self, leaves, key, tangents):
        return sharded_adjoint_jvp(self, leaves, tangents)


def _around(part: _Part, state, act) -> Array:
    """``act`` on ``state`` with ``part``'s wires brought local, then placed back."""
    for step in part.exchanges:
        state = run_exchange(state, step)
    state = act(state)
    for step in reversed(part.exchanges):
        state = run_exchange(state, step)
    return state


def _psum(x, names):
    return jax.lax.psum(x, names) if names else x


# --------------------------------------------------------------------------- adjoint


def sharded_adjoint_jvp(program, leaves: tuple, tangents: dict[int, Any]):
    """``_adjoint.adjoint_jvp`` for a ``ShardedProgram``: the sweep replays its schedule
    backwards on the ket and the bras (an exchange is its own inverse), and each gate's
    transition matrix is taken over its local wires at the entries of the device's bits."""
    active = sorted(tangents)
    gates = [g for g, _, _ in program.gates]

    layout: list = []

    def values_of(sub):
        full = list(leaves)
        for j, v in zip(active, sub):
            full[j] = v
        vals = program.gate_values(tuple(full))
        layout.append(vals)
        return vals.arrays()

    # The tangents stay whole arrays (one per gate formula): sliced per gate, reverse mode
    # padded each gate's cotangent to all of them, O(gates**2) numbers at the end.
    arrays, d_arrays = jax.jvp(
        values_of, (tuple(leaves[j] for j in active),), (tuple(tangents[j] for j in active),)
    )
    needed = [bool(program.reads(i) & set(active)) for i in range(len(gates))]
    names = program._names()
    g = program.g

    def local(leaves, arrays, d_arrays):
        values = layout[0].over(*arrays)
        d_values = layout[0].over(*d_arrays)
        state = program._forward(leaves, values)
        out = program._measure_slice(state, leaves, False)
        obs = [m.rebuild(leaves).obs for m in program.measurements]
        bras = jnp.conj(
            jnp.stack([program._apply_obs(o, p, state) for o, p in zip(obs, program.parts)])
        )
        dagger, transposed = inverse_values(gates, [values[i] for i in range(len(gates))])
        ket = state
        weights: dict[int, Array] = {}
        for step in reversed(program.steps):
            if isinstance(step, Exchange):
                ket = run_exchange(ket, step)
                bras = run_exchange(bras, step)
                continue
            if isinstance(step, Relabel):
                continue
            i = step.index
            gate = gates[i]
            ket = run_gate(_after(ket, bras), step, gate, dagger[i], False, program.elementwise)
            trans = None
            if values[i] is not None and needed[i] and gate.kind == "pauli":
                # Every axis is local (``_needs_local``): the slice's two overlaps.
                trans = weights[i] = word_overlaps(step.local, ket, bras)
            elif values[i] is not None and needed[i]:
                trans = _transition(gate, step, ket, bras, g)
                weights[i] = _weights(gate, step, trans, g, values[i])
            bras = jax.vmap(
                lambda b, s=step, gt=gate, v=transposed[i]: run_gate(
                    b, s, gt, v, False, program.elementwise
                )
            )(_after(bras, trans) if trans is not None else bras)
        # Linear in the gates' tangents, after the sweep.
        if weights:
            tan = 2 * d_values.weighted_sum(weights)
        else:
            tan = jnp.zeros(bras.shape[0], dtype=jnp.real(bras).dtype)
        return out, _psum(tan, names)

    specs = program._out_specs()
    fn = _shard_map(
        local,
        mesh=program._jax_mesh(),
        in_specs=(PartitionSpec(), PartitionSpec(), PartitionSpec()),
        out_specs=(specs, PartitionSpec()),
    )
    out, tan = fn(tuple(leaves), arrays, d_arrays)
    return (out[0] if len(out) == 1 else out), tan


def _transition(gate: Gate, step: GateStep, ket, bras, g: int) -> Array:
    """Per (conjugated) bra, the transition matrix over the gate's local wires on this
    device's slice (the overlap ``<bra|ket>``, shape ``(m, 1, 1)``, when none is local)."""
    keep = [p - g for p in step.where if p >= g] if gate.kind != "phase" else []
    if not keep:
        return jnp.einsum("r,mr->m", ket, bras)[:, None, None]
    # One per bra, not vmapped: batching the dots makes XLA transpose their operands.
    return jnp.stack([_reduced_transition(bras[r], ket, keep) for r in range(bras.shape[0])])


def _reduced_transition(bra: Array, ket: Array, keep: Sequence[int]) -> Array:
    """``transition_matrix(bra, ket, keep, bra_conjugated=True)`` without copies for one wire.

    ``transition_matrix`` moves the wires to the front, and XLA:CPU copies every ket and bra
    it reads into that layout (4 slices per device at n=14); a multiply and a sum became a
    materialized product (XLA:CPU splits large reductions into reduce-windows, which do not
    fuse their operand). Dots whose operands are reshapes of the slice read it in place: a
    dot batched over the leading axis when the wire has at least 16 amplitudes below it,
    else one 2D dot over the leading axis and the diagonal of the small result.
    """
    if len(keep) != 1:
        return transition_matrix(bra, ket, keep, bra_conjugated=True)
    below = 2 ** (num_wires_of(ket) - 1 - keep[0])
    kv = jnp.reshape(ket, (-1, 2, below))
    bv = jnp.reshape(bra, (-1, 2, below))
    if below >= 16:
        return jnp.sum(jax.lax.dot_general(kv, bv, (((2,), (2,)), ((0,), (0,)))), axis=0)
    flat = (kv.shape[0], 2 * below)
    t = jax.lax.dot_general(jnp.reshape(kv, flat), jnp.reshape(bv, flat), (((0,), (0,)), ((), ())))
    return jnp.einsum("apbp->ab", jnp.reshape(t, (2, below, 2, below)))


def _after(x: Array, y: Array) -> Array:
    """``x``, read only after ``y`` exists: ``x + (t - t)`` with ``t`` one element of ``y``
    (exact for finite values). XLA:CPU drops ``optimization_barrier`` before scheduling, and
    left to itself it ran the ket's chain gates ahead of the bras', keeping every ket alive
    until its transition matrix (8.2 slices per device instead of 6, n=14 on 8 devices;
    an ``optimization_barrier`` after the ket's kernel saved one more slice on jax 0.10 but cost
    four on jax 0.12)."""
    t = jnp.reshape(y, (-1,))[0]
    return x + (t - t).astype(x.dtype)


def _weights(gate: Gate, step: GateStep, trans: Array, g: int, value: Array) -> Array:
    """``W`` ``(m, *value.shape)`` with ``Σ W[r] * dV`` = ``trace(dU T[r])`` for the gate's
    tangent value ``dV`` (``dU``: its matrix read at the entries of this device's bits)."""
    if gate.kind == "phase":
        return jnp.reshape(trans[:, 0, 0], (-1, *jnp.shape(value)))
    wires = step.where

    def device_matrix(d_value):
        m = len(wires)
        d = jnp.reshape(full_matrix(gate, d_value), (2,) * (2 * m))
        for k in sorted((k for k, p in enumerate(wires) if p < g), reverse=True):
            bit = _bit(wires[k])
            d = jnp.take(d, bit, axis=m + k)  # the column first: the row axes stay in place
            d = jnp.take(d, bit, axis=k)
            m -= 1
        return jnp.reshape(d, (2**m, 2**m))

    return value_weights(device_matrix, trans, value)
