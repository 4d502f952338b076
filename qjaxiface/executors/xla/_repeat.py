"""Repeated gate patterns as one ``lax.scan``: programs that grow with structure, not depth.

Gates that no compact region takes (``_compact.py``: controlled rotations, Ising couplings,
multi-qubit matrices) are one XLA kernel each, and XLA:CPU spends tens of milliseconds
compiling each. Variational circuits repeat them: a layer of CRX/IsingZZ gates, a Trotter step,
a template's block. When a run of such gates is a pattern repeated with different parameters,
the program holds the pattern once, as the body of a ``lax.scan`` over the repetitions, with
each position's values stacked along the scan axis.

``find_repeats`` looks for the patterns in a plan (``plan_regions``'s output): in every stretch
of unrolled gates, greedily from the left, the period that saves the most kernels (a gate
*signature* says when two gates run the same kernel: kind, wires, controls, formula). Patterns
that save fewer than ``MIN_SAVED`` kernels stay unrolled.

backprop differentiates the scan and the adjoint rule sweeps it backwards
(``_adjoint.adjoint_repeat``). The shift rules' rows keep the gates unrolled: ``vmap``-ed over
the rows, the unrolled kernels ran faster per step (``executors/xla/__init__._program``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ._compact import Region, compact_enabled
from ._gates import Gate, GateValues
from ._kernels import apply_gate

Array = Any

# A repeat must save this many kernels (period * (repetitions - 1)); below it the scan's loop
# costs about what it saves.
MIN_SAVED = 8
# The longest pattern looked for, in gates (bounds the search's memory and time).
MAX_PERIOD = 256


@dataclass(frozen=True)
class Repeat:
    """A pattern of gates repeated with different values.

    Attributes:
        ids: gate indices in the program, ``ids[r][p]`` the gate at position ``p`` of
            repetition ``r``; every column's gates have one signature.
    """

    ids: tuple[tuple[int, ...], ...]

    @property
    def columns(self) -> list[tuple[int, ...]]:
        """Per position of the pattern, its gates in every repetition."""
        return [tuple(col) for col in zip(*self.ids)]

    @property
    def first(self) -> int:
        """The first gate's index."""
        return self.ids[0][0]


def signature(gate: Gate, i: int) -> Hashable:
    """Equal for gates that run the same kernel with their own values (gate ``i``'s)."""
    # A closed form is shared by every gate of its kind; other formulas are built per op.
    formula = gate.fn if gate.closed_form or gate.fn is None else ("own", i)
    return (gate.kind, gate.axes, gate.controls, gate.control_values, gate.n_params, formula)


def find_repeats(plan: Sequence[int | Region], gates: Sequence[Gate]) -> list:
    """``plan`` with repeated patterns of its unrolled gates as ``Repeat``\\ s."""
    if not compact_enabled():
        return list(plan)
    out: list = []
    stretch: list[int] = []

    def flush():
        if stretch:
            out.extend(_split(stretch, gates))
            stretch.clear()

    for item in plan:
        if isinstance(item, int):
            stretch.append(item)
        else:
            flush()
            out.append(item)
    flush()
    return out


def _split(ids: list[int], gates: Sequence[Gate]) -> list:
    """Gate indices and ``Repeat``\\ s covering ``ids`` in order."""
    size = len(ids)
    if size < MIN_SAVED + 1:
        return list(ids)
    codes_of: dict[Hashable, int] = {}
    codes = np.array([codes_of.setdefault(signature(gates[i], i), len(codes_of)) for i in ids])
    periods = np.arange(1, min(MAX_PERIOD, size // 2) + 1)
    # agree[p - 1, j]: how many positions from j on agree with the position p further on.
    agree = np.zeros((len(periods), size), dtype=np.int64)
    for p in periods:
        same = codes[p:] == codes[:-p]
        nxt = np.where(same, len(same), np.arange(len(same)))
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        agree[p - 1, : len(same)] = nxt - np.arange(len(same))
    out: list = []
    j = 0
    while j < size:
        reps = 1 + agree[:, j] // periods
        saved = periods * (reps - 1)
        best = int(np.argmax(saved))  # the shortest period among the best
        if saved[best] < MIN_SAVED:
            out.append(ids[j])
            j += 1
            continue
        period, count = int(periods[best]), int(reps[best])
        rows = (ids[j + r * period : j + (r + 1) * period] for r in range(count))
        out.append(Repeat(tuple(tuple(row) for row in rows)))
        j += period * count
    return out


def repeat_values(repeat: Repeat, values: GateValues) -> list[Array | None]:
    """Per position of the pattern, its values over the repetitions (None: parameter-free)."""
    return [values.stack(col) for col in repeat.columns]


def run_repeat(
    state: Array,
    repeat: Repeat,
    gates: Sequence[Gate],
    stacks: Sequence[Array | None],
    elementwise: bool = False,
) -> Array:
    """The state after every repetition of ``repeat`` (``stacks``: ``repeat_values``)."""
    pattern = [gates[i] for i in repeat.ids[0]]
    xs = [s for s in stacks if s is not None]

    def body(s, x):
        given = iter(x)
        for gate, stack in zip(pattern, stacks):
            value = None if stack is None else next(given)
            s = apply_gate(s, gate, (), value=value, elementwise=elementwise)
        return s, None

    return jax.lax.scan(body, state, xs)[0]
