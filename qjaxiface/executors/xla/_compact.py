"""Compact programs: layers of one-qubit gates and CNOT/SWAP networks as one ``lax.scan``.

An unrolled program has one XLA kernel per gate, and XLA:CPU spends tens of milliseconds
compiling each (StronglyEntanglingLayers, n=12, ``jit(grad)``: 3.5 s of a 4.2 s first call at
3 layers, 19 s at 20). Most variational circuits are *layers*: one-qubit gates on the wires,
then an entangling network. Written as layers, a region of the circuit becomes one loop body,
compiled once whatever its depth:

* a **slab**: one 2x2 matrix per wire, the product of the one-qubit gates the wire gets before
  the next network (the identity where none), computed from the traced parameters. An inner
  ``lax.scan`` over the wires applies each matrix to the most significant wire and writes that
  wire back as the least significant one (one fused pass: read two halves, write interleaved);
  after ``n`` steps the wire order is the original again.
* a **network** of CNOTs and SWAPs: a permutation of the basis states that is linear over GF(2)
  in the index bits, so ``src(j) = hi[j >> h] ^ lo[j & (2**h - 1)]`` with two small tables per
  layer. The tables are *data* of the loop, not structure, so layers whose networks differ
  (StronglyEntanglingLayers' ranges) share the body. A network is one gather.

``plan_regions`` splits a program's gates into such regions and the gates left to the unrolled
kernels (anything else: controlled rotations, multi-qubit matrices, global phases). A region is
kept compact when it has at least ``MIN_LAYERS`` layers and its slabs are at least half full;
otherwise its gates stay unrolled, where a sparse layer would cost a pass per empty wire.

backprop differentiates the scans and the adjoint rule (``_adjoint.py``) sweeps them backwards
with ``adjoint_region``. The shift rules' programs stay unrolled: ``vmap``-ed over shifted rows,
the regions' gathers ran 2x slower than the rows' fused one-qubit kernels. With templates kept whole (``_lift.py``) the
slab tables are built from a few gathers of the weight arrays, so neither the program nor its
trace grows with the number of layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._dtypes import complex_dtype
from ._gates import Gate, GateValues

Array = Any

# A region with fewer layers than this compiles no slower unrolled.
MIN_LAYERS = 2
# Slabs must hold at least this share of (layer, wire) slots, or the region stays unrolled.
MIN_OCCUPANCY = 0.5

_IDENTITY, _PAULI_X = 0, 1  # rows of every region's value table

_enabled = [True]


def set_compact(enabled: bool) -> None:
    """Turn compact programs on (the default) or off, for programs built from now on.

    Off, every gate is its own kernel (the program before compact regions existed): for
    comparisons and benchmarks. Built programs are cached per setting.

    Examples:
        >>> from qjaxiface.executors.xla import set_compact
        >>> set_compact(False)
        >>> set_compact(True)
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_compact takes True or False, not {enabled!r}")
    _enabled[0] = enabled


def compact_enabled() -> bool:
    """Whether programs built now use compact regions."""
    return _enabled[0]


def is_one_qubit(gate: Gate) -> bool:
    """A gate a slab can absorb: a 2x2 matrix, diagonal or bit flip on one wire."""
    return not gate.controls and len(gate.axes) == 1 and gate.kind in ("matrix", "diag", "x")


def is_network(gate: Gate) -> bool:
    """A gate of an entangling network: CNOT (an ``x`` with one control on 1) or SWAP."""
    if gate.kind == "swap":
        return not gate.controls
    return gate.kind == "x" and len(gate.controls) == 1 and gate.control_values == (1,)


@dataclass(frozen=True)
class Region:
    """Consecutive gates run as layers.

    Attributes:
        gate_ids: indices of the region's gates in the program, in circuit order.
        slots: ``(depth, layers, n)`` rows of the region's value table; the slab matrix of
            ``(layer, wire)`` is ``table[slots[depth-1]] @ ... @ table[slots[0]]``.
        src: ``(hi, lo)`` tables, ``(layers, 2**(n-h))`` and ``(layers, 2**h)``: the gather
            indices of each layer's network (the identity for a last layer without one).
    """

    gate_ids: tuple[int, ...]
    slots: np.ndarray
    src: tuple[np.ndarray, np.ndarray]


def plan_regions(gates: Sequence[Gate], n: int) -> list[int | Region]:
    """The program as a list of gate indices (unrolled) and ``Region``\\ s (layers)."""
    if n < 2 or not compact_enabled():
        return list(range(len(gates)))
    plan: list[int | Region] = []
    run: list[int] = []

    def flush():
        if run:
            region = _region(gates, run, n)
            plan.extend([region] if region is not None else run)
            run.clear()

    for i, gate in enumerate(gates):
        if gate.kind == "none":
            continue  # no-ops never break a region
        if is_one_qubit(gate) or is_network(gate):
            run.append(i)
        else:
            flush()
            plan.append(i)
    flush()
    return plan


def _region(gates: Sequence[Gate], ids: list[int], n: int) -> Region | None:
    layers: list[tuple[list[list[int]], list[Gate]]] = []
    slab: list[list[int]] = [[] for _ in range(n)]
    network: list[Gate] = []
    for pos, i in enumerate(ids):
        gate = gates[i]
        if is_one_qubit(gate):
            if network:
                layers.append((slab, network))
                slab, network = [[] for _ in range(n)], []
            slab[gate.axes[0]].append(pos)
        else:
            network.append(gate)
    layers.append((slab, network))
    occupied = sum(bool(s) for slab, _ in layers for s in slab)
    if len(layers) < MIN_LAYERS or occupied < MIN_OCCUPANCY * len(layers) * n:
        return None
    depth = max(1, max(len(s) for slab, _ in layers for s in slab))
    # Table rows: 0 identity, 1 Pauli X, then one per gate of the region in order.
    slots = np.full((depth, len(layers), n), _IDENTITY, dtype=np.int32)
    for layer, (slab, _) in enumerate(layers):
        for wire, members in enumerate(slab):
            for d, pos in enumerate(members):
                slots[d, layer, wire] = 2 + pos
    tables = [_network_tables(network, n) for _, network in layers]
    src = (np.stack([t[0] for t in tables]), np.stack([t[1] for t in tables]))
    return Region(tuple(ids), slots, src)


def _network_tables(network: Sequence[Gate], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather tables of a CNOT/SWAP network: ``new[j] = old[hi[j >> h] ^ lo[j & mask]]``.

    ``src`` maps an output index to the input index it reads, i.e. the gates' inverses applied
    to ``j`` in reverse order; each gate is linear over GF(2), so ``src`` is determined by the
    images of the single-bit indices. State axis ``a`` is bit ``n - 1 - a``.
    """

    def bit(axis: int) -> int:
        return n - 1 - axis

    images = np.array([1 << b for b in range(n)], dtype=np.int64)
    for gate in reversed(network):  # both kinds are their own inverses
        if gate.kind == "swap":
            a, b = bit(gate.axes[0]), bit(gate.axes[1])
            va, vb = (images >> a) & 1, (images >> b) & 1
            images = images ^ ((va ^ vb) << a) ^ ((va ^ vb) << b)
        else:
            c, t = bit(gate.controls[0]), bit(gate.axes[0])
            images = images ^ (((images >> c) & 1) << t)
    h = n // 2

    def table(values: np.ndarray, shift: int) -> np.ndarray:
        out = np.zeros(values.shape, dtype=np.int64)
        for b in range(n):
            out ^= ((((values << shift) >> b) & 1) * images[b]).astype(np.int64)
        return out.astype(np.int32)

    return table(np.arange(2 ** (n - h)), h), table(np.arange(2**h), 0)


# --------------------------------------------------------------------------- values


def _table(region: Region, gates: Sequence[Gate], values: GateValues) -> tuple[Array, np.ndarray]:
    """(table of 2x2 matrices, ``region.slots`` as rows of it).

    Rows: the identity, Pauli X, then the region's gate values in blocks, one per gate formula
    (``GateValues.blocks``): no per-gate slicing, so the table costs a few ops at any depth.
    """
    valued = [i for i in region.gate_ids if is_one_qubit(gates[i]) and gates[i].kind != "x"]
    blocks, row_of = values.blocks(valued)
    eye = jnp.eye(2, dtype=complex_dtype())
    parts = [eye[None], jnp.asarray([[[0, 1], [1, 0]]], complex_dtype())]
    for block in blocks:
        block = jnp.asarray(block, complex_dtype())
        parts.append(block[..., :, None] * eye if block.ndim == 2 else block)  # diagonals
    remap = [_IDENTITY, _PAULI_X]
    for i in region.gate_ids:
        if gates[i].kind == "x" and is_one_qubit(gates[i]):
            remap.append(_PAULI_X)
        else:
            remap.append(2 + row_of[i] if i in row_of else _IDENTITY)
    return jnp.concatenate(parts), np.asarray(remap, dtype=np.int32)[region.slots]


def region_matrices(region: Region, gates: Sequence[Gate], values: GateValues) -> Array:
    """``(layers, n, 2, 2)`` slab matrices of ``region`` from its gates' values."""
    table, rows = _table(region, gates, values)
    mats = table[rows[0]]
    for d in range(1, rows.shape[0]):
        mats = _matmul(table[rows[d]], mats)
    return mats


def _matmul(a: Array, b: Array) -> Array:
    """Batched 2x2 products as a multiply and a sum: the ``dot_general`` that ``a @ b`` becomes
    under ``vmap`` of a JVP failed XLA's HLO verifier (jax 0.10.2, "Expected instruction to
    have shape equal to c128[2,2,24,2,2]")."""
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


# --------------------------------------------------------------------------- kernels


def apply_slab(state: Array, mats: Array, unrolled: bool = False) -> Array:
    """Apply ``mats[w]`` (``(n, 2, 2)``) to wire ``w`` of a flat ``2**n`` state, for every w.

    A ``lax.scan`` over the wires: apply on the top wire and write it back as the lowest, so
    one body serves every wire and n steps restore the order. ``unrolled``: n static-shape
    passes instead, which XLA fuses: 3x faster vmapped over a shift rule's rows and 1.6x on one
    state (n=12, 2-core CPU), but under reverse-mode AD the n passes and their residuals made
    the first call of ``jit(grad)`` 3x slower, so only the shift rules' rows use it.
    """
    if unrolled:
        for w in range(mats.shape[0]):
            s = state.reshape(2**w, 2, -1)
            s0, s1 = s[:, 0], s[:, 1]
            m = mats[w]
            state = jnp.stack([m[0, 0] * s0 + m[0, 1] * s1, m[1, 0] * s0 + m[1, 1] * s1], axis=1)
        return state.reshape(-1)

    def step(s, m):
        half = s.shape[0] // 2
        s0, s1 = s[:half], s[half:]
        out = jnp.stack([m[0, 0] * s0 + m[0, 1] * s1, m[1, 0] * s0 + m[1, 1] * s1], axis=-1)
        return out.reshape(-1), None

    return jax.lax.scan(step, state, mats)[0]


def permute(state: Array, hi: Array, lo: Array) -> Array:
    """``new[j] = state[hi[j >> h] ^ lo[j & mask]]`` (one CNOT/SWAP network)."""
    index = jnp.bitwise_xor(hi[:, None], lo[None, :]).reshape(-1)
    # A permutation: unique, in-bounds indices make the gather and its transpose (a scatter,
    # under reverse-mode AD) plain loops; without the promise XLA:CPU's scatter was 2x slower
    # than the whole forward pass.
    return state.at[index].get(unique_indices=True, mode="promise_in_bounds")


def inverse_tables(region: Region) -> tuple[np.ndarray, np.ndarray]:
    """Gather tables that undo each layer's network (its ``dst`` map)."""
    hi, lo = region.src
    n_lo = lo.shape[1].bit_length() - 1
    out_hi, out_lo = np.empty_like(hi), np.empty_like(lo)
    for layer in range(hi.shape[0]):
        src = (hi[layer][:, None] ^ lo[layer][None, :]).reshape(-1)
        dst = np.empty_like(src)
        dst[src] = np.arange(src.shape[0], dtype=src.dtype)
        out_hi[layer] = dst[np.arange(hi.shape[1]) << n_lo]
        out_lo[layer] = dst[: lo.shape[1]]
    return out_hi, out_lo


def run_region(state: Array, region: Region, mats: Array, unrolled: bool = False) -> Array:
    """The state after every layer of ``region`` (``unrolled``: see ``apply_slab``)."""
    hi, lo = (jnp.asarray(t) for t in region.src)

    def layer(s, x):
        m, h, low = x
        return permute(apply_slab(s, m, unrolled), h, low), None

    return jax.lax.scan(layer, state, (mats, hi, lo))[0]


def adjoint_region(
    ket: Array, bras: Array, region: Region, mats: Array
) -> tuple[Array, Array, Array]:
    """Sweep ``region`` backwards: (ket before it, bras before it, transition matrices).

    ``ket`` is the state after the region and ``bras`` ``(m, 2**n)`` the observables' bras
    there, carried conjugated (as ``_adjoint.py`` does: un-applying ``U`` from ``conj(bra)`` is
    applying ``U^T``). The transition matrices ``(m, layers, n, 2, 2)`` hold, for each slab
    slot, ``T[j, i] = Σ_rest ket_before[j, rest] conj(bra_after[i, rest])`` on its wire, so
    the derivative of ``<bra|ket>`` through the slot's matrix ``M`` is ``tr(dM T)``.
    """
    inv_hi, inv_lo = (jnp.asarray(t) for t in inverse_tables(region))

    def unapply(m, pairs):
        # pairs[..., r, b]: the wire is the last axis; it comes back as the first (most
        # significant) one, which undoes one step of ``apply_slab`` when ``m = U^†``.
        s0, s1 = pairs[..., 0], pairs[..., 1]
        return jnp.concatenate([m[0, 0] * s0 + m[0, 1] * s1, m[1, 0] * s0 + m[1, 1] * s1], axis=-1)

    def unstep(carry, m):
        ket, bras = carry
        ket = unapply(jnp.conj(m).T, ket.reshape(-1, 2))
        pairs = bras.reshape(bras.shape[0], -1, 2)
        trans = jnp.einsum("jr,mri->mji", ket.reshape(2, -1), pairs)
        return (ket, unapply(m.T, pairs)), trans

    def unlayer(carry, x):
        m, h, low = x
        ket, bras = carry
        ket = permute(ket, h, low)
        bras = jax.vmap(lambda b: permute(b, h, low))(bras)
        carry, trans = jax.lax.scan(unstep, (ket, bras), m, reverse=True)
        return carry, jnp.swapaxes(trans, 0, 1)

    (ket, bras), trans = jax.lax.scan(unlayer, (ket, bras), (mats, inv_hi, inv_lo), reverse=True)
    return ket, bras, jnp.moveaxis(trans, 1, 0)
