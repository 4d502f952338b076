"""A gate-list interpreter: a stretch of distinct gates as one ``lax.scan`` over a table.

Compact regions (``_compact.py``) and repeated patterns (``_repeat.py``) keep programs small
when circuits have structure. A hand-written circuit without repetition still compiled one XLA
kernel per gate, and XLA:CPU spends about 35 ms of LLVM time on each whatever its shape (a
48-gate circuit compiled in 8-9 s with tensordot, matmul or dense-controlled kernels alike).
Here such a stretch becomes *data*: rows of a table, and one scan whose body applies any row.

Every row is "a 2x2 matrix on a target wire, where the control wires hold their values", or "a
diagonal on two wires" (which covers CNOT, Toffoli, multi-controlled X, CRX/CRY/CRZ/CRot,
controlled phases, one-qubit gates, CZ, IsingZZ, GlobalPhase). With ``v`` the row's four
values, amplitude ``x`` becomes ``v[3 x_t] s[x] + v[1 + x_t] s[x ^ bit_t]`` for a matrix on
target ``t``, ``v[2 x_p + x_q] s[x]`` for a diagonal on wires ``p, q`` (``p = q`` for one wire
and for a global phase, whose four values are equal), where the controls hold. ``lax.switch``
over the kinds of row picks the kernel, one pass over the state, and a stretch compiles only
the kernels it uses (``_static``; a switch traces and compiles every branch it is given). On
up to ``GATHER_WIRES`` wires the one-wire kernel (``BIT``) reads the partner ``x ^ bit_t``
with a gather, so that one kernel serves every target wire; wider programs keep a kernel per
target wire (``VIEW + t``: a ``(2**t, 2, rest)`` view), whose passes take about 0.9x as long,
for ``n`` kernels each traced and compiled four times (forward, ket, bras, weights). Random
circuits, adjoint, n=12: first calls 0.48x (5 layers: 1.5 s against 3.0 s) and 0.54x (20
layers: 2.4 s against 4.4 s), steps 1.13x.

The pair kernel reads the partner amplitudes with a gather, for the two-wire gates that are
one 2x2 matrix on the pairs ``x, x ^ (bit_p | bit_q)``: on every pair (IsingXX) or where
``x_p != x_q`` (SWAP, CSWAP, IsingXY, SingleExcitation, PSWAP, ISWAP, SISWAP); its row reads
four entries of the gate's 4x4 matrix. A view per pair of wires would be ``n**2``
kernels, and three rows (the matrix between two CNOTs) three passes. Against stretches split at
every such gate (random circuits of CRX, SingleExcitation, IsingXX, SWAP, RY and IsingXY,
adjoint, 5 layers): first calls 0.3x at n=8-12; steps 0.85x at n=8, 1.0x at n=10 and 0.9x at
n=12 once the weights below took one pass (before: 1.25x and 1.35x).

Any other two-wire matrix (IsingYY, a two-wire ``QubitUnitary``, SingleExcitationPlus/Minus,
...) is a row of the dense kernel (``DENSE``): all 16 entries of the 4x4 matrix, each amplitude
reading its three partners ``x ^ bit_p``, ``x ^ bit_q``, ``x ^ (bit_p | bit_q)`` by gathers. A
stretch that holds such a row carries 16 values per row instead of 4. A DoubleExcitation is a
row of the two-level kernel (``LEVELS``): a 2x2 matrix on the pairs ``x, x ^ F`` (``F`` its four
wires' bits) where those bits read ``0011`` or ``1100``, the other amplitudes left alone. A
MultiRZ on three or more wires is a row of the parity kernel (``PARITY``): a diagonal whose two
values are picked by the parity of the bits under its mask. A PauliRot whose word has an X or
a Y is a row of the Pauli kernel (``PAULI``): ``cos(p/2) s[x] - i sin(p/2) P[x, x ^ F] s[x ^
F]``, ``F`` its X and Y bits, with ``P``'s entries ``±`` one value by the parity of ``x``'s Y
and Z bits: one gather.

The diagonal, one-wire (``BIT``) and pair kernels' weights are sums over classes of amplitudes
(``_class_sums``): one variadic reduction of real and imaginary parts, 2.3x (pairs) and 1.3x
(diagonals) faster at n=12 than products with a one-hot matrix (XLA:CPU reduces complex
numbers slowly and took a pass per class).

Up to ``LOOP_WIRES`` wires, a repeated pattern (``_repeat.py``) of interpretable gates joins
the stretch around it: a loop compiles one kernel per gate of its pattern, the interpreter
one per kind of row for any number of gates.

The adjoint rule sweeps the scan backwards (``adjoint_interp``): un-apply each row from the
ket and the bras and emit its four weights, so that the tangent is one contraction with the
table's tangent. Programs are interpreted under the adjoint rule only
(``executors/xla/__init__._program``): backprop through the scan stepped 1.8-3x slower than
through the unrolled kernels, and the shift rules' vmapped rows keep their kernels, as for
repeats. (At n=12, 589 rows: the scan's value took 4.3 ms, a JVP 10.7 ms, reverse mode 56 ms
against 18 ms unrolled. One residual layout for every branch, a ``(pairs, 2)`` view, gave
55 ms: JAX's ``lax.switch`` merges residuals by shape, but that was not the cost.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from ..._dtypes import state_dtype
from ._compact import compact_enabled
from ._gates import Gate, GateValues, PauliPair, PauliWord, two_levels
from ._kernels import num_wires_of
from ._repeat import Repeat

Array = Any

# A stretch needs this many interpretable gates; shorter ones compile fast enough unrolled and
# step faster so.
MIN_GATES = 16
# Adjoint steps against the unrolled program (random circuits, 2-core CPU): 0.6x at n=8, 0.95x
# at n=12, 1.0x at n=14, 1.3x at n=16. Wider programs keep their kernels: there the step, not
# the compile, dominates a training run.
MAX_WIRES = 14
# Up to this many wires, repeated patterns of interpretable gates are interpreted instead of
# looped (``find_interps``). Layered CRX/IsingZZ circuits, adjoint, against the loops: first
# calls 0.53-0.81x at n=8-14; steps 0.9-1.0x at n <= 12, 1.08x at n=14.
LOOP_WIRES = 12

# Up to this many wires, a one-wire matrix on any target is a row of one kernel (``BIT``: the
# partner ``x ^ bit_t`` by a gather); wider programs have a kernel per target wire. Random
# circuits, adjoint, interleaved fresh processes, against views on 9+ wires: first calls
# 0.48-0.59x at n=10-12, steps 1.08-1.14x. At n=14 first calls were 0.44-0.6x but steps 1.15x
# (100 ms at 20 layers): after about 100 steps the views have won their compile back.
GATHER_WIRES = 12

# The kernels of the interpreter's switch (a row's first column; ``_branch``): a diagonal on at
# most two wires, a one-wire matrix, a 2x2 matrix on pairs that differ in two bits, a 4x4
# matrix, a two-level row, a parity diagonal, a Pauli rotation.
DIAG, BIT, PAIR, DENSE, LEVELS, PARITY, PAULI = range(7)
# On more than ``GATHER_WIRES`` wires, a one-wire matrix on target axis ``t`` is a row of kernel
# ``VIEW + t`` instead of ``BIT``: the ``(2**t, 2, rest)`` view of the state.
VIEW = 7

# The transposed 2x2 matrix, flattened. int32 indices: int64 ones fail in jax's indexing
# when the arrays were traced with x64 off.
_SWAP_OFF = np.array([0, 2, 1, 3], dtype=np.int32)


@dataclass(frozen=True)
class Interp:
    """A stretch of gates run by the interpreter.

    Attributes:
        ids: gate indices in the program, in circuit order.
        rows: the static table, one row per gate (``row_of``), int32 columns: the kernel
            (``DIAG``, ``BIT``, ``PAIR``, ``DENSE``, ``LEVELS``, ``PARITY``, ``PAULI``, or
            ``VIEW + t`` for a one-wire matrix on target axis ``t`` of a wide program), the
            shifts of the bits ``p`` and ``q`` in the flat index (a one-wire row: its target's
            twice; a two-level row: its flip mask ``F`` in place of ``p``; a parity row: its
            mask of wires in place of ``p``; a Pauli row: the masks of its X and Y bits and of
            its Y and Z bits), the control mask, the control values under the mask (a
            two-level row: the mask of every bit it reads, and the low side's values there), 1
            for a diagonal, and 1 for a pair row that acts where ``x_p != x_q`` alone.
        cols: per row, the four entries of its gate's value it reads (all 16 for a dense
            row; ``table``; None: a bit flip, a constant).
    """

    ids: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]
    cols: tuple[tuple[int, ...] | None, ...]

    @property
    def first(self) -> int:
        """The first gate's index."""
        return self.ids[0]


# Where a row reads its four values in its gate's value flattened to 16 entries (``table``):
# a one-wire value as ``[a, b, c, d]`` (``_as_rows``), or four entries of a two-wire gate's
# 4x4 matrix (wire order: the gate's).
_VALUE = (0, 1, 2, 3)
_OUTER = (0, 3, 12, 15)  # G = CNOT(a, b) (U ⊗ I) CNOT(a, b): U = G on |00>, |11>
_INNER = (5, 6, 9, 10)  # G acts on |01>, |10> alone: U = G there
_DENSE = tuple(range(16))  # every entry, row-major: G[i, j] at 4 i + j
# Rows of a stretch that holds a dense row carry 16 values: the others read their 4 and pad.
_PADDING = (0,) * 12
# What un-applies a row, as a permutation of its 16 values: the transposed 4x4 matrix (dense
# rows), or the transposed 2x2 matrix in the first four (the others).
_TRANSPOSE_DENSE = np.array([4 * (k % 4) + k // 4 for k in range(16)], dtype=np.int32)
_TRANSPOSE_PADDED = np.array([0, 2, 1, 3, *range(4, 16)], dtype=np.int32)
# Two-wire gates that are one 2x2 matrix ``U`` on pairs of amplitudes that differ in both
# bits: every pair (``_OUTER``: ``CNOT(a, b) (U ⊗ I) CNOT(a, b)``), or the pair
# ``|01>, |10>`` alone (``_INNER``).
_PAIR_GATES = {
    "IsingXX": _OUTER,
    "IsingXY": _INNER,
    "SingleExcitation": _INNER,
    "PSWAP": _INNER,
    "ISWAP": _INNER,
    "SISWAP": _INNER,
}


def row_of(gate: Gate, n: int) -> tuple[tuple[int, ...], tuple[int, ...] | None] | None:
    """The gate's static row (``Interp.rows``) and where it reads its values (``Interp.cols``),
    or None if the interpreter cannot run the gate."""
    shift = [n - 1 - a for a in range(n)]
    mask = sum(1 << shift[c] for c in gate.controls)
    want = sum(v << shift[c] for c, v in zip(gate.controls, gate.control_values))
    axes = gate.axes
    if gate.kind in ("x", "matrix") and len(axes) == 1:
        s = shift[axes[0]]
        kernel = BIT if n <= GATHER_WIRES else VIEW + axes[0]
        return (kernel, s, s, mask, want, 0, 0), (_VALUE if gate.fn else None)
    if gate.kind == "diag" and len(axes) == 1:
        s = shift[axes[0]]
        return (DIAG, s, s, mask, want, 1, 0), _VALUE
    if gate.kind == "diag" and len(axes) == 2:
        return (DIAG, shift[axes[0]], shift[axes[1]], mask, want, 1, 0), _VALUE
    if gate.kind == "phase":  # a diagonal of one value, read at any bit
        return (DIAG, 0, 0, mask, want, 1, 0), _VALUE
    if gate.name == "MultiRZ" and len(axes) > 2:  # the parity kernel: even and odd values
        wires = sum(1 << shift[a] for a in axes)
        return (PARITY, wires, 0, mask, want, 1, 0), _VALUE
    if isinstance(gate.fn, PauliWord):  # the Pauli kernel
        flip = sum(1 << shift[a] for a, c in zip(axes, gate.fn.word) if c in "XY")
        signs = sum(1 << shift[a] for a, c in zip(axes, gate.fn.word) if c in "YZ")
        if flip:
            return (PAULI, flip, signs, mask, want, 0, 0), _VALUE
        if signs:  # Z and I alone: a MultiRZ on the Z wires, a parity diagonal
            return (PARITY, signs, 0, mask, want, 1, 0), _VALUE
        return None
    if gate.name == "DoubleExcitation":  # the two-level kernel: |0011> <-> |1100>
        flip = sum(1 << shift[a] for a in axes)
        low = (1 << shift[axes[2]]) | (1 << shift[axes[3]])
        return (LEVELS, flip, 0, mask | flip, want | low, 0, 0), _VALUE
    if len(axes) != 2 or gate.kind not in ("swap", "matrix"):
        return None
    if gate.kind == "matrix" and gate.name not in _PAIR_GATES:
        # The dense kernel: any 4x4 matrix, three partners per amplitude.
        return (DENSE, shift[axes[0]], shift[axes[1]], mask, want, 0, 0), _DENSE
    # The pair kernel: a 2x2 matrix on the amplitudes x, x ^ (bit_a | bit_b), on every pair
    # (``_OUTER``) or on those with x_a != x_b (``_INNER``; a SWAP: a bit flip there).
    cols = None if gate.kind == "swap" else _PAIR_GATES[gate.name]
    inner = int(cols != _OUTER)
    return (PAIR, shift[axes[0]], shift[axes[1]], mask, want, 0, inner), cols


def find_interps(plan: Sequence[Any], gates: Sequence[Gate], n: int) -> list:
    """``plan`` with its stretches of interpretable unrolled gates as ``Interp``\\ s.

    Up to ``LOOP_WIRES`` wires, a repeated pattern (``_repeat.Repeat``) whose every gate has a
    row joins the stretch around it: its loop's body compiles one kernel per gate of the
    pattern, the interpreter one per kind of row for any number of gates.
    """
    if not compact_enabled() or n > MAX_WIRES:
        return list(plan)
    out: list = []
    stretch: list = []  # the items since the last one that cannot join
    rows: dict[int, tuple] = {}

    def row(i: int) -> bool:
        """Whether gate ``i`` can be in a stretch (a ``none`` gate needs no row)."""
        if i not in rows:
            found = row_of(gates[i], n)
            if found is None:
                return gates[i].kind == "none"
            rows[i] = found
        return True

    def flush():
        ids = [i for item in stretch for i in _gate_ids(item)]
        kept = [i for i in ids if i in rows]
        if len(kept) >= MIN_GATES:
            static, cols = zip(*(rows[i] for i in kept))
            out.append(Interp(tuple(kept), static, cols))
        else:
            out.extend(stretch)
        stretch.clear()

    for item in plan:
        joins = isinstance(item, int) or (isinstance(item, Repeat) and n <= LOOP_WIRES)
        if joins and all(row(i) for i in _gate_ids(item)):
            stretch.append(item)
            continue
        flush()
        out.append(item)
    flush()
    return out


def _gate_ids(item: int | Repeat) -> list[int]:
    """A gate's index, or a repeat's gates in circuit order."""
    return [item] if isinstance(item, int) else [i for rep in item.ids for i in rep]


def table(interp: Interp, gates: Sequence[Gate], values: GateValues, tangent: bool = False):
    """The rows' values ``(len(ids), 4)``: a matrix flattened, a one-wire diagonal as
    ``[d0, 0, 0, d1]`` (a global phase as ``[g, 0, 0, g]``, a parity diagonal as ``[even, 0,
    0, odd]``), a two-wire diagonal as is, four entries of a two-wire matrix (``row_of``), a
    bit flip ``[0, 1, 1, 0]`` (zeros for ``tangent``: ``values`` are then tangents).
    ``(len(ids), 16)`` where a row is dense (``_wide``): its 4x4 matrix flattened, the other
    rows' four values then padding. One gather per gate formula (``GateValues.blocks``) and
    one for the rows, so reverse mode scatters into each formula whole."""
    blocks, row_of_gate = values.blocks(interp.ids)
    gate_at = {row: i for i, row in row_of_gate.items()}
    starts = np.cumsum([0] + [int(b.shape[0]) for b in blocks])
    # Per block, each gate's two levels (``_gates.two_levels``): a family of PauliRots shares
    # one block, each word with its own.
    levels = [
        [two_levels(gates[gate_at[r]]) for r in range(a, b)] for a, b in itertools.pairwise(starts)
    ]
    # 16 entries per gate only where a 4x4 matrix is read from: the tables are per gate, and
    # the adjoint rule keeps them (and their cotangents) alive across the sweep.
    width = 16 if any(c not in (None, _VALUE) for c in interp.cols) else 4
    # A block of ``PauliPair`` values ``(a, b)``: each gate's four entries are ``(a, b) @ R``.
    pairs = [
        [_pair_row(gates[gate_at[r]]) for r in range(a, b)] for a, b in itertools.pairwise(starts)
    ]
    flat = [_padded(b, width, lv, pr) for b, lv, pr in zip(blocks, levels, pairs)]
    dtype = flat[0].dtype if flat else state_dtype()
    flip = np.zeros(width)
    if not tangent:
        flip[1] = flip[2] = 1.0
    flat.append(jnp.asarray(flip, dtype=dtype)[None])
    end = sum(int(b.shape[0]) for b in flat[:-1])
    where = [end if c is None else row_of_gate[i] for i, c in zip(interp.ids, interp.cols)]
    cols = [_VALUE if c is None else c for c in interp.cols]
    if _wide(interp):
        cols = [c if c == _DENSE else c + _PADDING for c in cols]
    order = np.array(where, dtype=np.int32)[:, None]
    return jnp.concatenate(flat)[order, np.array(cols, dtype=np.int32)]


def _wide(interp: Interp) -> bool:
    """Whether the stretch holds a dense row, so that every row carries 16 values."""
    return _DENSE in interp.cols


def _pair_row(gate: Gate) -> np.ndarray | None:
    return gate.fn.row() if isinstance(gate.fn, PauliPair) else None


def _padded(
    block: Array,
    width: int,
    levels: Sequence[tuple[int, int] | None],
    pair_rows: Sequence[np.ndarray | None],
) -> Array:
    """A block of gate values as ``(k, width)``: the 2x2 matrix on each gate's two ``levels``
    (``_gates.two_levels``; from ``(a, b)`` and ``PauliPair.row`` for a pair), a 4x4 matrix
    flattened, others as ``_as_rows``, then zeros."""
    if pair_rows[0] is not None:
        r = jnp.asarray(np.stack(cast(list, pair_rows)), dtype=block.dtype)  # (k, 2, 4)
        rows = block[:, :1] * r[:, 0] + block[:, 1:] * r[:, 1]
    elif levels[0] is not None:
        pairs = np.array(levels, dtype=np.int32)
        a, b = pairs[:, :1], pairs[:, 1:]  # (k, 1) each
        gate = np.arange(len(pairs), dtype=np.int32)[:, None]
        rows = block[gate, np.hstack([a, a, b, b]), np.hstack([a, b, a, b])]
    elif block.ndim == 3 and block.shape[1] == 4:
        return jnp.reshape(block, (block.shape[0], 16))
    else:
        rows = _as_rows(block)
    if width == 4:
        return rows
    return jnp.concatenate([rows, jnp.zeros((rows.shape[0], width - 4), rows.dtype)], axis=1)


def _as_rows(block: Array) -> Array:
    """One-wire values, global phases, two-wire and parity diagonals as ``(k, 4)`` rows."""
    if block.ndim == 1:  # (k,) global phases
        zero = jnp.zeros_like(block)
        return jnp.stack([block, zero, zero, block], axis=1)
    if block.ndim == 3:  # (k, 2, 2) matrices
        return jnp.reshape(block, (block.shape[0], 4))
    if block.shape[1] > 4:  # (k, 2**m) MultiRZ diagonals: entries 0 and 1 are even and odd
        block = block[:, :2]
    if block.shape[1] == 2:  # (k, 2) one-wire diagonals
        zero = jnp.zeros_like(block[:, 0])
        return jnp.stack([block[:, 0], zero, zero, block[:, 1]], axis=1)
    return block  # (k, 4) two-wire diagonals


def _static(interp: Interp) -> tuple[list[int], Array]:
    """The kernels the stretch uses (``Interp.rows[:, 0]``), and its table with each row's
    kernel as a position among them: ``lax.switch`` traces and XLA compiles every branch it
    is given, used or not."""
    used = sorted({row[0] for row in interp.rows})
    rows = np.array(interp.rows, dtype=np.int32)
    rows[:, 0] = np.searchsorted(used, rows[:, 0])
    return used, jnp.asarray(rows)


def _mask(idx: Array, row: Array) -> Array:
    """Where the row's controls hold."""
    return (idx & row[3]) == row[4]


def _indices(n: int) -> Array:
    """The flat index of every amplitude. An iota, not an argument: XLA computes the indices
    inside each kernel's loop instead of reading an int32 array next to the state (the steps
    changed within noise at n=12-14, but nothing is read that need not be)."""
    return jax.lax.iota(jnp.int32, 2**n)


def _low_indices(t: int, n: int) -> Array:
    """The flat indices of the amplitudes whose bit ``t`` is 0, as the ``(2**t, rest)``
    view's ``[:, 0]`` half."""
    rest = 2 ** (n - 1 - t)
    high = jax.lax.broadcasted_iota(jnp.int32, (2**t, rest), 0)
    return high * (2 * rest) + jax.lax.broadcasted_iota(jnp.int32, (2**t, rest), 1)


def _matrix_kernel(t: int, n: int):
    """Apply a row's 2x2 matrix on wire ``t``: one pass over the state (the controls are not
    the target, so both halves share the mask)."""

    def apply(s, v, row):
        view = jnp.reshape(s, (2**t, 2, -1))
        on = _mask(_low_indices(t, n), row)
        s0, s1 = view[:, 0], view[:, 1]
        n0 = jnp.where(on, v[0] * s0 + v[1] * s1, s0)
        n1 = jnp.where(on, v[2] * s0 + v[3] * s1, s1)
        return jnp.reshape(jnp.stack([n0, n1], axis=1), (-1,))

    return apply


def _selection(idx: Array, row: Array) -> Array:
    """``2 x_p + x_q`` per amplitude: which of a diagonal row's entries applies."""
    return 2 * ((idx >> row[1]) & 1) + ((idx >> row[2]) & 1)


def _pick(sel: Array, values: Sequence[Array]) -> Array:
    """``values[sel]`` per amplitude, for four scalars: selects XLA fuses into the pass."""
    a, b, c, d = values
    return jnp.where(sel == 0, a, jnp.where(sel == 1, b, jnp.where(sel == 2, c, d)))


def _odd(idx: Array, mask: Array) -> Array:
    """1 where ``x & mask`` has an odd number of bits, else 0."""
    return jax.lax.population_count(idx & mask) & 1


def _parity(idx: Array, row: Array) -> Array:
    """``3 * parity(x & mask)`` per amplitude: a parity row's selection of ``v[0]`` (even) or
    ``v[3]`` (odd), as a one-wire diagonal's (``_selection``)."""
    return 3 * _odd(idx, row[1])


def _pauli_kernel(n: int):
    """Apply a Pauli rotation row: ``v[0] s[x] + (-1)^{|x & YZ|} v[1] s[x ^ F]`` where the
    controls hold (``v[1] = M[0, F]``; for the transpose, ``v[2] = M[F, 0]`` takes its place),
    one pass and a gather."""

    def apply(s, v, row):
        idx = _indices(n)
        other = jnp.where(_odd(idx, row[2]) == 1, -v[1], v[1])
        return jnp.where(_mask(idx, row), v[0] * s + other * s[idx ^ row[1]], s)

    return apply


def _diag_kernel(n: int, selection=_selection):
    """Apply a diagonal row: ``v[sel]`` where the controls hold, with ``sel`` by
    ``selection`` (``_selection``, ``_parity``)."""

    def apply(s, v, row):
        idx = _indices(n)
        d = _pick(selection(idx, row), [v[0], v[1], v[2], v[3]])
        return jnp.where(_mask(idx, row), d * s, s)

    return apply


def _flips(row: Array) -> tuple:
    """The index flips to an amplitude's partners in a two-wire row, by ``f = 0..3``: the
    partner of selection ``sel`` (``_selection``) has selection ``sel ^ f``."""
    p, q = 1 << row[1], 1 << row[2]
    return (0, q, p, p | q)


def _dense_kernel(n: int):
    """Apply a row's 4x4 matrix ``G`` (16 values, row-major) on the bits ``p``, ``q``:
    ``new[x] = Σ_f G[sel, sel ^ f] s[x ^ flip_f]``, one pass with three gathers."""

    def apply(s, v, row):
        idx = _indices(n)
        sel = _selection(idx, row)
        out = _pick(sel, [v[5 * i] for i in range(4)]) * s
        for f, flip in enumerate(_flips(row)[1:], start=1):
            coeff = _pick(sel, [v[4 * i + (i ^ f)] for i in range(4)])
            out = out + coeff * s[idx ^ flip]
        return jnp.where(_mask(idx, row), out, s)

    return apply


def _level_sides(idx: Array, row: Array) -> tuple[Array, Array, Array]:
    """(low side, where the row acts, flip) of a two-level row: the low side's masked bits read
    the row's values, the high side's those values flipped by ``F``, its partner ``x ^ F``."""
    bits = idx & row[3]
    low = bits == row[4]
    return low, low | (bits == (row[4] ^ row[1])), row[1]


def _bit_sides(idx: Array, row: Array) -> tuple[Array, Array, Array]:
    """(where ``x_t`` is 0, where the controls hold, flip) of a one-wire row: the partner of
    ``x`` is ``x ^ bit_t``. Leaner than ``_pair_sides`` with ``p = q``, whose passes took
    1.05-1.3x as long at n=12."""
    return ((idx >> row[1]) & 1) == 0, _mask(idx, row), 1 << row[1]


def _pair_sides(idx: Array, row: Array) -> tuple[Array, Array, Array]:
    """(where ``x_p`` is 0, where the pair row acts, flip): the partner of ``x`` is ``x ^
    (bit_p | bit_q)``, and the row acts where the controls hold and, if ``row[6]``, where
    ``x_p != x_q``."""
    xp, xq = (idx >> row[1]) & 1, (idx >> row[2]) & 1
    on = _mask(idx, row) & ((row[6] == 0) | (xp != xq))
    return xp == 0, on, (1 << row[1]) | (1 << row[2])


def _partner_kernel(sides, n: int):
    """Apply a row's 2x2 matrix to the amplitudes ``x`` and ``x ^ flip`` where it acts, by
    ``sides`` (``_pair_sides``, ``_level_sides``): one pass and a gather for the partners, for
    any wires (a view per pair of wires would be ``n**2`` kernels)."""

    def apply(s, v, row):
        idx = _indices(n)
        low, on, flip = sides(idx, row)
        # The row's coefficients chosen per amplitude, then two products (not four).
        own, other = jnp.where(low, v[0], v[3]), jnp.where(low, v[1], v[2])
        return jnp.where(on, own * s + other * s[idx ^ flip], s)

    return apply


def _branch(kind: int, n: int):
    """(kernel, adjoint weigher) of the rows of ``kind`` (``DIAG``, ``BIT``, ...,
    ``VIEW + t``) on ``n`` wires."""
    if kind >= VIEW:
        return _matrix_kernel(kind - VIEW, n), _matrix_weights(kind - VIEW, n)
    if kind == DIAG:
        return _diag_kernel(n), _diag_weights(n)
    if kind == BIT:
        return _partner_kernel(_bit_sides, n), _partner_weights(_bit_sides, n)
    if kind == PAIR:
        return _partner_kernel(_pair_sides, n), _partner_weights(_pair_sides, n)
    if kind == DENSE:
        return _dense_kernel(n), _dense_weights(n)
    if kind == LEVELS:
        return _partner_kernel(_level_sides, n), _partner_weights(_level_sides, n)
    if kind == PARITY:
        return _diag_kernel(n, _parity), _diag_weights(n, _parity)
    return _pauli_kernel(n), _pauli_weights(n)


@jax.custom_jvp
def _class_sums(xs: tuple, wheres: tuple) -> Array:
    """``Σ xs[k]`` over the last axis where ``wheres[k]``, for each ``k``: ``(..., len(xs))``.

    One variadic reduction of the real and imaginary parts: XLA:CPU reads the inputs once,
    where separate complex sums (or a product with a one-hot matrix) each took a pass and
    reduced complex numbers slowly (the pair kernel's weights: 2.3x faster at n=12).
    """
    zero = jnp.zeros((), xs[0].real.dtype)
    parts = []
    for x, where in zip(xs, wheres):
        parts += [jnp.where(where, x.real, zero), jnp.where(where, x.imag, zero)]
    axis = parts[0].ndim - 1
    sums = jax.lax.reduce(parts, [zero] * len(parts), _add_all, (axis,))
    return jnp.stack([jax.lax.complex(re, im) for re, im in zip(sums[::2], sums[1::2])], -1)


def _add_all(a: list, b: list) -> list:
    return [u + v for u, v in zip(a, b)]


@_class_sums.defjvp
def _class_sums_jvp(primals, tangents):
    # Linear in ``xs``. The tangent takes plain sums, which JAX can transpose (a variadic
    # reduction it cannot); only derivatives of the weights come here (Hessians through the
    # adjoint rule), never a step of ``jit(grad)``.
    xs, wheres = primals
    sums = [jnp.sum(jnp.where(w, dx, 0), axis=-1) for dx, w in zip(tangents[0], wheres)]
    return _class_sums(xs, wheres), jnp.stack(sums, axis=-1)


def _matrix_weights(t: int, n: int):
    def weigh(ket, bras, row):
        on = _mask(_low_indices(t, n), row)
        k = jnp.where(on[:, None], jnp.reshape(ket, (2**t, 2, -1)), 0)
        b = jnp.reshape(bras, (bras.shape[0], 2**t, 2, -1))
        return jnp.reshape(jnp.einsum("mhxr,hyr->mxy", b, k), (-1, 4))

    return weigh


def _diag_weights(n: int, selection=_selection):
    def weigh(ket, bras, row):
        idx = _indices(n)
        sel, on = selection(idx, row), _mask(idx, row)
        return _class_sums((bras * ket,) * 4, tuple(on & (sel == k) for k in range(4)))

    return weigh


def _partner_weights(sides, n: int):
    def weigh(ket, bras, row):
        idx = _indices(n)
        low, on, flip = sides(idx, row)
        a, b = bras * ket, bras * ket[idx ^ flip]
        below, above = on & low, on & ~low
        return _class_sums((a, b, b, a), (below, below, above, above))

    return weigh


def _dense_weights(n: int):
    def weigh(ket, bras, row):
        idx = _indices(n)
        sel, on = _selection(idx, row), _mask(idx, row)
        # The weight of G[i, j] sums bra[x] ket[x ^ flip_(i ^ j)] over the amplitudes of
        # selection i.
        prods = [bras * (ket if f == 0 else ket[idx ^ flip]) for f, flip in enumerate(_flips(row))]
        classes = [on & (sel == i) for i in range(4)]
        pairs = [(prods[i ^ j], classes[i]) for i in range(4) for j in range(4)]
        return _class_sums(*zip(*pairs))

    return weigh


def _pauli_weights(n: int):
    def weigh(ket, bras, row):
        idx = _indices(n)
        on, odd = _mask(idx, row), _odd(idx, row[2]) == 1
        a, b = bras * ket, bras * ket[idx ^ row[1]]
        w = _class_sums((a, b, b), (on, on & ~odd, on & odd))
        zero = jnp.zeros_like(w[..., 0])
        # The row's diagonal is v[0] everywhere and its other entries ±v[1]: v[2] and v[3]
        # (the same values, read for the transpose) get no weight.
        return jnp.stack([w[..., 0], w[..., 1] - w[..., 2], zero, zero], axis=-1)

    return weigh


def _padded_weights(weigh):
    """``weigh`` with its ``(m, 4)`` weights padded with zeros to ``(m, 16)``: the padding
    values of a wide stretch's rows (``table``) get no weight."""

    def padded(ket, bras, row):
        w = weigh(ket, bras, row)
        return jnp.concatenate([w, jnp.zeros((w.shape[0], 12), w.dtype)], axis=1)

    return padded


def run_interp(state: Array, interp: Interp, vals: Array) -> Array:
    """The state after the stretch (``vals``: ``table``)."""
    n = num_wires_of(state)
    used, static = _static(interp)
    kernels = [_branch(b, n)[0] for b in used]

    def body(s, x):
        v, row = x
        return jax.lax.switch(row[0], kernels, s, v, row), None

    # Checkpointed: second derivatives (the adjoint rule's Hessian) differentiate this loop,
    # and then keep one state per row instead of every kernel's intermediates.
    return jax.lax.scan(jax.checkpoint(body), state, (vals, static))[0]


def adjoint_interp(ket: Array, bras: Array, interp: Interp, vals: Array):
    """Sweep the stretch backwards: (ket before it, bras before it, weights ``(len(ids), m,
    4)`` with ``Σ_k W[g, r, k] dV[g, k] = <bra_r| dU_g |ket>`` at gate ``g``; 16 instead of 4
    where the stretch holds a dense row).

    The bras are carried conjugated (``_adjoint.adjoint_jvp``): un-applying ``U`` from them
    applies ``U^T``, from the ket ``U†`` (for a diagonal, the transpose is itself).
    """
    n = num_wires_of(ket)
    used, static = _static(interp)
    kernels, weighers = zip(*(_branch(b, n) for b in used))
    diag = (static[:, 5] == 1)[:, None]
    if _wide(interp):
        dense = np.array([c == _DENSE for c in interp.cols])[:, None]
        weighers = tuple(w if b == DENSE else _padded_weights(w) for b, w in zip(used, weighers))
        transposed = jnp.where(
            dense, vals[:, _TRANSPOSE_DENSE], jnp.where(diag, vals, vals[:, _TRANSPOSE_PADDED])
        )
    else:
        transposed = jnp.where(diag, vals, vals[:, _SWAP_OFF])
    dagger = jnp.conj(transposed)

    def body(carry, x):
        ket, bras = carry
        v_t, v_d, row = x
        ket = jax.lax.switch(row[0], kernels, ket, v_d, row)
        w = jax.lax.switch(row[0], weighers, ket, bras, row)
        bras = jax.vmap(lambda b: jax.lax.switch(row[0], kernels, b, v_t, row))(bras)
        return (ket, bras), w

    (ket, bras), w = jax.lax.scan(body, (ket, bras), (transposed, dagger, static), reverse=True)
    return ket, bras, w
