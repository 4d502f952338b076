"""A gate-list interpreter: a stretch of distinct gates as one ``lax.scan`` over a table.

Compact regions (``_compact.py``) and repeated patterns (``_repeat.py``) keep programs small
when circuits have structure. A hand-written circuit without repetition still compiled one XLA
kernel per gate, and XLA:CPU spends about 35 ms of LLVM time on each whatever its shape (a
48-gate circuit compiled in 8-9 s with tensordot, matmul or dense-controlled kernels alike).
Here such a stretch becomes *data*: one row per gate, and one scan whose body applies any row.

Every row is "a 2x2 matrix on a target wire, where the control wires hold their values", or "a
diagonal on two wires" (which covers CNOT, Toffoli, multi-controlled X, CRX/CRY/CRZ/CRot,
controlled phases, one-qubit gates, CZ, IsingZZ). With ``v`` the row's four values, amplitude
``x`` becomes ``v[3 x_t] s[x] + v[1 + x_t] s[x ^ bit_t]`` for a matrix on target ``t``,
``v[2 x_p + x_q] s[x]`` for a diagonal on wires ``p, q`` (``p = q`` for one wire), where the
controls hold. ``lax.switch`` over the wires picks the target's kernel, one pass over the state
as a ``(2**t, 2, rest)`` view: ``n + 1`` kernels to compile, whatever the number of gates. (A
generic kernel reading the partner amplitudes with a gather ``s[idx ^ bit]`` compiled slightly
faster but stepped 1.6x slower at n=12, and its transpose is a scatter.)

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._dtypes import state_dtype
from ._compact import compact_enabled
from ._gates import Gate, GateValues

Array = Any

# A stretch needs this many interpretable gates; shorter ones compile fast enough unrolled and
# step faster so.
MIN_GATES = 16
# Adjoint steps against the unrolled program (random circuits, 2-core CPU): 0.6x at n=8, 0.95x
# at n=12, 1.0x at n=14, 1.3x at n=16. Wider programs keep their kernels: there the step, not
# the compile, dominates a training run.
MAX_WIRES = 14

# The transposed 2x2 matrix, flattened. int32 indices: int64 ones fail in jax's indexing
# when the arrays were traced with x64 off.
_SWAP_OFF = np.array([0, 2, 1, 3], dtype=np.int32)


@dataclass(frozen=True)
class Interp:
    """A stretch of gates run by the interpreter.

    Attributes:
        ids: gate indices in the program, in circuit order (one row each).
        rows: the static table, ``(len(ids), 7)`` int32 columns: the kernel's branch (the
            target axis, or ``n`` for a diagonal), the shifts of the bits ``p``,
            ``q`` and ``t`` in the flat index, the control mask, the control values under the
            mask, and 1 for a diagonal.
    """

    ids: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]

    @property
    def first(self) -> int:
        """The first gate's index."""
        return self.ids[0]


def row_of(gate: Gate, n: int) -> tuple[int, ...] | None:
    """The gate's static row (``Interp.rows``), or None if the interpreter cannot run it."""
    shift = [n - 1 - a for a in range(n)]
    mask = sum(1 << shift[c] for c in gate.controls)
    want = sum(v << shift[c] for c, v in zip(gate.controls, gate.control_values))
    axes = gate.axes
    if gate.kind in ("x", "matrix") and len(axes) == 1:
        s = shift[axes[0]]
        return (axes[0], s, s, s, mask, want, 0)
    if gate.kind == "diag" and len(axes) == 1:
        s = shift[axes[0]]
        return (n, s, s, s, mask, want, 1)
    if gate.kind == "diag" and len(axes) == 2:
        return (n, shift[axes[0]], shift[axes[1]], 0, mask, want, 1)
    return None


def find_interps(plan: Sequence[Any], gates: Sequence[Gate], n: int) -> list:
    """``plan`` with its stretches of interpretable unrolled gates as ``Interp``\\ s."""
    if not compact_enabled() or n > MAX_WIRES:
        return list(plan)
    out: list = []
    stretch: list[int] = []  # the unrolled gates since the last item that is not one
    rows: dict[int, tuple[int, ...]] = {}

    def flush():
        kept = [i for i in stretch if i in rows]  # ``none`` gates need no row
        if len(kept) >= MIN_GATES:
            out.append(Interp(tuple(kept), tuple(rows[i] for i in kept)))
        else:
            out.extend(stretch)
        stretch.clear()

    for item in plan:
        if isinstance(item, int):
            row = row_of(gates[item], n)
            if row is not None:
                rows[item] = row
            if row is not None or gates[item].kind == "none":
                stretch.append(item)
                continue
        flush()
        out.append(item)
    flush()
    return out


def table(interp: Interp, gates: Sequence[Gate], values: GateValues, tangent: bool = False):
    """The rows' values ``(len(ids), 4)``: a matrix flattened, a one-wire diagonal as
    ``[d0, 0, 0, d1]``, a two-wire diagonal as is, a bit flip ``[0, 1, 1, 0]`` (zeros for
    ``tangent``: ``values`` are then tangents). One gather per gate formula and one for the
    order (``GateValues.blocks``), so reverse mode scatters into each formula whole."""
    blocks, row_of_gate = values.blocks(interp.ids)
    flat = [_as_rows(b) for b in blocks]
    dtype = flat[0].dtype if flat else state_dtype()
    flip = np.zeros(4) if tangent else np.array([0.0, 1.0, 1.0, 0.0])
    flat.append(jnp.asarray(flip, dtype=dtype)[None])
    end = sum(int(b.shape[0]) for b in flat[:-1])
    order = np.array([row_of_gate.get(i, end) for i in interp.ids], dtype=np.int32)
    return jnp.concatenate(flat)[order]


def _as_rows(block: Array) -> Array:
    if block.ndim == 3:  # (k, 2, 2) matrices
        return jnp.reshape(block, (block.shape[0], 4))
    if block.shape[1] == 2:  # (k, 2) one-wire diagonals
        zero = jnp.zeros_like(block[:, 0])
        return jnp.stack([block[:, 0], zero, zero, block[:, 1]], axis=1)
    return block  # (k, 4) two-wire diagonals


def _static(interp: Interp) -> Array:
    return jnp.asarray(np.array(interp.rows, dtype=np.int32))


def _mask(idx: Array, row: Array) -> Array:
    """Where the row's controls hold."""
    return (idx & row[4]) == row[5]


def _matrix_kernel(t: int):
    """Apply a row's 2x2 matrix on wire ``t``: one pass over the state (the controls are not
    the target, so both halves share the mask)."""

    def apply(s, v, row, idx):
        view = jnp.reshape(s, (2**t, 2, -1))
        on = _mask(jnp.reshape(idx, (2**t, 2, -1))[:, 0], row)
        s0, s1 = view[:, 0], view[:, 1]
        n0 = jnp.where(on, v[0] * s0 + v[1] * s1, s0)
        n1 = jnp.where(on, v[2] * s0 + v[3] * s1, s1)
        return jnp.reshape(jnp.stack([n0, n1], axis=1), (-1,))

    return apply


def _select(idx: Array, v: Array, row: Array) -> tuple[Array, Array]:
    """(``2 x_p + x_q`` per amplitude, the diagonal's entry there)."""
    sel = 2 * ((idx >> row[1]) & 1) + ((idx >> row[2]) & 1)
    d = jnp.where(sel == 0, v[0], jnp.where(sel == 1, v[1], jnp.where(sel == 2, v[2], v[3])))
    return sel, d


def _diag_kernel(s, v, row, idx):
    return jnp.where(_mask(idx, row), _select(idx, v, row)[1] * s, s)


def _kernels(n: int) -> list:
    """``lax.switch`` branches: per target wire its matrix kernel, last the diagonal one."""
    return [_matrix_kernel(t) for t in range(n)] + [_diag_kernel]


def _matrix_weights(t: int):
    def weigh(ket, bras, row, idx):
        on = _mask(jnp.reshape(idx, (2**t, 2, -1))[:, 0], row)
        k = jnp.where(on[:, None], jnp.reshape(ket, (2**t, 2, -1)), 0)
        b = jnp.reshape(bras, (bras.shape[0], 2**t, 2, -1))
        return jnp.reshape(jnp.einsum("mhxr,hyr->mxy", b, k), (-1, 4))

    return weigh


def _diag_weights(ket, bras, row, idx):
    sel = _select(idx, jnp.zeros(4, ket.dtype), row)[0]
    onehot = (sel[:, None] == jnp.arange(4, dtype=sel.dtype)).astype(ket.dtype)
    return bras @ (jnp.where(_mask(idx, row), ket, 0)[:, None] * onehot)


def run_interp(state: Array, interp: Interp, vals: Array) -> Array:
    """The state after the stretch (``vals``: ``table``)."""
    n = int(state.shape[0]).bit_length() - 1
    kernels = _kernels(n)
    idx = jnp.arange(2**n, dtype=jnp.int32)

    def body(s, x):
        v, row = x
        return jax.lax.switch(row[0], kernels, s, v, row, idx), None

    # Checkpointed: second derivatives (the adjoint rule's Hessian) differentiate this loop,
    # and then keep one state per row instead of every kernel's intermediates.
    return jax.lax.scan(jax.checkpoint(body), state, (vals, _static(interp)))[0]


def adjoint_interp(ket: Array, bras: Array, interp: Interp, vals: Array):
    """Sweep the stretch backwards: (ket before it, bras before it, weights ``(len(ids), m,
    4)`` with ``Σ_k W[g, r, k] dV[g, k] = <bra_r| dU_g |ket>`` at gate ``g``).

    The bras are carried conjugated (``_adjoint.adjoint_jvp``): un-applying ``U`` from them
    applies ``U^T``, from the ket ``U†`` (for a diagonal, the transpose is itself).
    """
    n = int(ket.shape[0]).bit_length() - 1
    kernels = _kernels(n)
    weighers = [_matrix_weights(t) for t in range(n)] + [_diag_weights]
    idx = jnp.arange(2**n, dtype=jnp.int32)
    static = _static(interp)
    diag = (static[:, 6] == 1)[:, None]
    transposed = jnp.where(diag, vals, vals[:, _SWAP_OFF])
    dagger = jnp.conj(transposed)

    def body(carry, x):
        ket, bras = carry
        v_t, v_d, row = x
        ket = jax.lax.switch(row[0], kernels, ket, v_d, row, idx)
        w = jax.lax.switch(row[0], weighers, ket, bras, row, idx)
        bras = jax.vmap(lambda b: jax.lax.switch(row[0], kernels, b, v_t, row, idx))(bras)
        return (ket, bras), w

    (ket, bras), w = jax.lax.scan(body, (ket, bras), (transposed, dagger, static), reverse=True)
    return ket, bras, w
