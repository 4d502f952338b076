"""The gate catalogue: each operation compiled into a ``Gate``, and the values it applies.

Every operation of a tape is compiled once (per tape structure) into a ``Gate``: the state
axes it acts on, how it acts (a dense matrix, a diagonal, a bit flip, an axis swap, a global
phase), optional control axes, and a function from the op's traced parameters to its matrix or
diagonal. ``GateValues`` evaluates those functions for a whole circuit at once (batched by
kind and shape), ``inverse_values`` gives what un-applies each gate in an adjoint sweep.

Closed-form matrices are used for the common gates because ``qml.matrix`` on tracers builds
larger graphs (and is slower to trace); anything else with a matrix falls back to
``qml.matrix`` of the op rebuilt around the traced parameters. The kernels that apply these
values to a state are in ``_kernels.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ..._dtypes import state_dtype

Array = Any
MatrixFn = Callable[[Sequence[Array]], Array]

# Ops that do nothing to the state vector.
NO_OPS = frozenset({"Identity", "Snapshot", "Barrier", "WireCut"})
# Ops that set the initial state; only valid as the first operation (default.qubit decomposes
# them anywhere else).
STATE_PREPS = frozenset({"StatePrep", "QubitStateVector", "BasisState"})


@dataclass(frozen=True)
class Gate:
    """One operation, compiled against the state's axis order.

    Attributes:
        name: the PennyLane op name (for messages).
        kind: ``"matrix"`` (dense on ``axes``), ``"diag"`` (diagonal on ``axes``), ``"pauli"``
            (``a I + b P``, ``P`` the word of a ``PauliPair``), ``"x"`` (bit flip of
            ``axes[0]``), ``"swap"`` (exchange ``axes[0]`` and ``axes[1]``),
            ``"phase"`` (global phase ``fn(params)``, a scalar) or ``"none"`` (leaves the state
            alone: ``NO_OPS``).
        axes: target axes, in the op's wire order.
        controls: control axes (the target acts where these axes equal ``control_values``).
        control_values: 0/1 per control axis.
        fn: traced parameters -> matrix ``(2**k, 2**k)`` / diagonal ``(2**k,)`` / ``(a, b)``
            (``pauli``) / phase; ``None`` for parameter-free ``x``/``swap``.
        n_params: how many tape parameters the op consumes.
        closed_form: ``fn`` is one of this module's closed forms (not PennyLane's matrix of the
            rebuilt op), so the gates sharing ``fn`` are evaluated in one batch (``GateValues``).
    """

    name: str
    kind: str
    axes: tuple[int, ...]
    controls: tuple[int, ...] = ()
    control_values: tuple[int, ...] = ()
    fn: MatrixFn | None = None
    n_params: int = 0
    closed_form: bool = False


# --------------------------------------------------------------------------- closed forms


def as_complex(x):
    return jnp.asarray(x, dtype=state_dtype())


def _mat2(a, b, c, d):
    return jnp.stack(
        [jnp.stack([as_complex(a), as_complex(b)]), jnp.stack([as_complex(c), as_complex(d)])]
    )


def _rx(p):
    c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
    return _mat2(c, -1j * s, -1j * s, c)


def _ry(p):
    c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
    return _mat2(c, -s, s, c)


def _rz_diag(p):
    e = jnp.exp(-0.5j * p[0])
    return jnp.stack([as_complex(e), as_complex(jnp.conj(e))])


def _phase_diag(p):
    return jnp.stack([as_complex(1.0), as_complex(jnp.exp(1j * p[0]))])


def _rot(p):
    phi, theta, omega = p
    c, s = jnp.cos(theta / 2), jnp.sin(theta / 2)
    ep = jnp.exp(-0.5j * (phi + omega))
    em = jnp.exp(0.5j * (phi - omega))
    return _mat2(ep * c, -em * s, jnp.conj(em) * s, jnp.conj(ep) * c)


def _u3(p):
    theta, phi, delta = p
    c, s = jnp.cos(theta / 2), jnp.sin(theta / 2)
    return _mat2(
        c, -jnp.exp(1j * delta) * s, jnp.exp(1j * phi) * s, jnp.exp(1j * (phi + delta)) * c
    )


def _u2(p):
    phi, delta = p
    r = 1 / np.sqrt(2)
    return _mat2(
        r, -jnp.exp(1j * delta) * r, jnp.exp(1j * phi) * r, jnp.exp(1j * (phi + delta)) * r
    )


_XX = np.kron([[0, 1], [1, 0]], [[0, 1], [1, 0]])
_YY = np.kron([[0, -1j], [1j, 0]], [[0, -1j], [1j, 0]])
_PAULI2 = {"XX": _XX, "YY": _YY}


@functools.cache
def _ising(pauli2):
    def fn(p):
        c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
        return as_complex(c) * jnp.eye(4, dtype=state_dtype()) - 1j * as_complex(s) * as_complex(
            _PAULI2[pauli2]
        )

    return fn


def _on_01_10(block, outer=None):
    """A two-wire gate that is ``block(p)`` on ``|01>, |10>`` and the identity elsewhere
    (SingleExcitation, IsingXY, PSWAP), or the phase ``outer(p)`` on ``|00>, |11>``
    (SingleExcitationPlus/Minus): one closed form for every such gate, where PennyLane's
    matrix of each rebuilt op was its own dozens of operations (and was traced per op, not
    once per formula)."""

    def fn(p):
        u = block(p)
        zero = jnp.zeros((), u.dtype)
        one = jnp.ones((), u.dtype) if outer is None else as_complex(outer(p))
        return jnp.stack(
            [
                jnp.stack([one, zero, zero, zero]),
                jnp.stack([zero, u[0, 0], u[0, 1], zero]),
                jnp.stack([zero, u[1, 0], u[1, 1], zero]),
                jnp.stack([zero, zero, zero, one]),
            ]
        )

    return fn


# DoubleExcitation is the identity but on |0011>, |1100> (these indices of its wires), where
# it is RY(p): I + (cos - 1) E + sin A.
DOUBLE_LEVELS = (3, 12)
_LO, _HI = DOUBLE_LEVELS
_LEVELS_E = np.zeros((16, 16))
_LEVELS_E[_LO, _LO] = _LEVELS_E[_HI, _HI] = 1.0
_LEVELS_A = np.zeros((16, 16))
_LEVELS_A[_HI, _LO], _LEVELS_A[_LO, _HI] = 1.0, -1.0


def _double_excitation(p):
    c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
    eye = jnp.eye(16, dtype=state_dtype())
    return eye + as_complex(c - 1) * as_complex(_LEVELS_E) + as_complex(s) * as_complex(_LEVELS_A)


_PAULI_MATRICES = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]]),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.array([[1, 0], [0, -1]]),
}


# Words of this many letters or more (not counting ``I``) run as ``PauliPair`` gates of the
# kind ``"pauli"``, one letter as its 2x2 matrix (``PauliRotation``). Against the ``2**m``
# matrix, six words on 10 wires (benchmarks/pauli_words.py): adjoint steps equal at m=2, 0.8x
# at m=4, 0.6x at m=6, 0.2x at m=8; first calls 0.8-1.2x up to m=8, 0.2-0.4x at m=10.
LONG_WORD = 2


@dataclass(frozen=True)
class PauliWord:
    """What every form of ``PauliRot(p, word)`` knows about its word ``P``.

    Equal words compare equal (within one form), so that their gates repeat
    (``_repeat.signature``).
    """

    word: str

    @property
    def constant(self) -> np.ndarray:
        """``P`` as a dense ``2**m`` matrix."""
        return functools.reduce(np.kron, [_PAULI_MATRICES[c] for c in self.word])

    @property
    def flip(self) -> int:
        """The index ``F`` (the word's own wire order, first wire the top bit) that ``P`` maps
        ``|0...0>`` to: its X and Y letters."""
        return sum(1 << (len(self.word) - 1 - k) for k, c in enumerate(self.word) if c in "XY")

    @property
    def levels(self) -> tuple[int, int] | None:
        """The two levels whose 2x2 matrix the interpreter reads (``two_levels``): ``0`` and
        ``F``; without X and Y, ``0`` and one Z letter's bit (the diagonal's even and odd
        values); one wire: the whole matrix. None for a word of identities."""
        m = len(self.word)
        if m == 1:
            return 0, 1
        z = next((1 << (m - 1 - k) for k, c in enumerate(self.word) if c == "Z"), 0)
        other = self.flip or z
        return (0, other) if other else None

    @property
    def transpose_sign(self) -> int:
        """``P^T = ±P``: ``Y^T = -Y``, the other letters are symmetric."""
        return -1 if self.word.count("Y") % 2 else 1


@dataclass(frozen=True)
class PauliRotation(PauliWord):
    """``PauliRot(p, word)`` as its matrix ``cos(p/2) I - i sin(p/2) P`` (short words).

    Words of one length are one ``family``: ``GateValues`` evaluates them in one batch, with
    ``P`` (the ``constant``) stacked per gate. A formula per word compiled its own small graph:
    random three-wire words at n=8, 20 layers took 3.2 s to compile against 0.6 s for one word.
    """

    def __call__(self, p):
        return self.with_constant(p, self.constant)

    @property
    def family(self) -> tuple[str, int]:
        return "PauliRot", len(self.word)

    @staticmethod
    def with_constant(p, pauli):
        c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
        eye = jnp.eye(pauli.shape[-1], dtype=state_dtype())
        return as_complex(c) * eye - 1j * as_complex(s) * as_complex(pauli)


@dataclass(frozen=True)
class PauliPair(PauliWord):
    """``PauliRot(p, word)`` as the two numbers ``(a, b)`` of ``U = a I + b P``: ``a =
    cos(p/2)``, ``b = -i sin(p/2)`` (gates of the kind ``"pauli"``, words of ``LONG_WORD``
    letters or more).

    ``_kernels`` applies it as ``a ψ + b P ψ``, one pass whatever the word's length, where the
    matrix took ``4**m`` values and ``2**m`` products per amplitude (six 10-letter words on 10
    wires: 130 ms a ``jit(grad)`` step with adjoint). ``U† = a* I + b* P`` (``P`` is
    Hermitian) and ``U^T = a I ± b P`` (``transpose_sign``). The formula does not depend on the
    word, so every word is one batch in ``GateValues``.

    Examples:
        >>> pair = PauliPair("XYZ")
        >>> pair.flip, pair.transpose_sign  # P flips the X and Y bits; Y^T = -Y
        (6, -1)
        >>> pair.masks(axes=(2, 0, 1), n=3)[:2]  # on wires 2, 0, 1: F and the Y, Z bits
        (5, 6)
    """

    family = "PauliPair"

    def __call__(self, p):
        c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
        return jnp.stack([as_complex(c), -1j * as_complex(s)])

    def masks(self, axes: Sequence[int], n: int) -> tuple[int, int, complex]:
        """``(F, YZ, c)`` on ``n`` wires, the word's letters on ``axes`` (wire 0 the top bit):
        ``P[x, x ^ F] = c (-1)^{|x & YZ|}``, with ``F`` the X and Y bits, ``YZ`` the Y and Z
        bits and ``c = P[0, F] = (-i)^{#Y}``."""
        bits = {
            c: sum(1 << (n - 1 - a) for a, ch in zip(axes, self.word) if ch in c)
            for c in ("XY", "YZ")
        }
        return bits["XY"], bits["YZ"], (-1j) ** self.word.count("Y")

    def row(self) -> np.ndarray:
        """``R`` ``(2, 4)`` with ``(a, b) @ R`` the matrix's four entries on ``levels``."""
        m = len(self.word)
        flip, signs, phase = self.masks(range(m), m)

        def entry(y: int, x: int) -> complex:  # P[y, x]
            return phase * (-1) ** (y & signs).bit_count() if x == y ^ flip else 0

        lo, hi = cast(tuple, self.levels)
        pauli = [entry(lo, lo), entry(lo, hi), entry(hi, lo), entry(hi, hi)]
        return np.array([[1, 0, 0, 1], pauli], dtype=complex)


def two_levels(gate: Gate) -> tuple[int, int] | None:
    """``(a, b)`` for a gate that is one 2x2 matrix on the pairs of amplitudes that differ
    like its indices ``a`` and ``b`` (its values there: ``M[a, a], M[a, b], M[b, a], M[b,
    b]``), or None: DoubleExcitation (``DOUBLE_LEVELS``) and PauliRot
    (``PauliWord.levels``)."""
    if gate.fn is _double_excitation:
        return DOUBLE_LEVELS
    if isinstance(gate.fn, PauliWord):
        return gate.fn.levels
    return None


def _swap_phase(p):
    e = jnp.exp(1j * p[0])
    return _mat2(0, e, e, 0)


def _parity_signs(k: int) -> np.ndarray:
    """(+1, -1) eigenvalues of Z^{⊗k} in computational-basis order."""
    idx = np.arange(2**k)
    parity = np.array([bin(i).count("1") % 2 for i in idx])
    return 1.0 - 2.0 * parity


@functools.cache
def _multirz_diag(k: int):
    signs = _parity_signs(k)

    def fn(p):
        return jnp.exp(-0.5j * p[0] * signs).astype(state_dtype())

    return fn


def _const(m):
    arr = np.asarray(m)
    return lambda p: as_complex(arr)


_SQ2 = 1 / np.sqrt(2)
_CONST_MATRIX = {
    "Hadamard": [[_SQ2, _SQ2], [_SQ2, -_SQ2]],
    "PauliY": [[0, -1j], [1j, 0]],
    "SX": [[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]],
}
_CONST_DIAG = {
    "PauliZ": [1, -1],
    "S": [1, 1j],
    "T": [1, np.exp(0.25j * np.pi)],
    "CZ": [1, 1, 1, -1],
}
# One fn per constant gate, so that equal gates share one value (``GateValues``) and compare
# equal (``_repeat.signature``).
_CONST_FN = {name: _const(m) for name, m in {**_CONST_MATRIX, **_CONST_DIAG}.items()}
# name -> (kind, fn, n_params) for gates acting on all their wires (no controls).
_PARAM_GATES: dict[str, tuple[str, MatrixFn, int]] = {
    "RX": ("matrix", _rx, 1),
    "RY": ("matrix", _ry, 1),
    "RZ": ("diag", _rz_diag, 1),
    "PhaseShift": ("diag", _phase_diag, 1),
    "U1": ("diag", _phase_diag, 1),
    "Rot": ("matrix", _rot, 3),
    "U2": ("matrix", _u2, 2),
    "U3": ("matrix", _u3, 3),
    "IsingXX": ("matrix", _ising("XX"), 1),
    "IsingYY": ("matrix", _ising("YY"), 1),
    "IsingXY": ("matrix", _on_01_10(lambda p: _rx([-p[0]])), 1),
    "SingleExcitation": ("matrix", _on_01_10(_ry), 1),
    "SingleExcitationPlus": ("matrix", _on_01_10(_ry, lambda p: jnp.exp(0.5j * p[0])), 1),
    "SingleExcitationMinus": ("matrix", _on_01_10(_ry, lambda p: jnp.exp(-0.5j * p[0])), 1),
    "PSWAP": ("matrix", _on_01_10(_swap_phase), 1),
    "DoubleExcitation": ("matrix", _double_excitation, 1),
}
# name -> (number of control wires, base gate name); the targets are the remaining wires.
_CONTROLLED = {
    "CNOT": (1, "PauliX"),
    "Toffoli": (2, "PauliX"),
    "CY": (1, "PauliY"),
    "CH": (1, "Hadamard"),
    "CSWAP": (1, "SWAP"),
    "CCZ": (2, "PauliZ"),
    "CRX": (1, "RX"),
    "CRY": (1, "RY"),
    "CRZ": (1, "RZ"),
    "CRot": (1, "Rot"),
    "ControlledPhaseShift": (1, "PhaseShift"),
}


def _base_gate(name: str, axes: tuple[int, ...]) -> tuple[str, MatrixFn | None, int] | None:
    """(kind, fn, n_params) for a closed-form gate acting on ``axes``, or None."""
    if name == "PauliX":
        return "x", None, 0
    if name == "SWAP":
        return "swap", None, 0
    if name in _CONST_MATRIX:
        return "matrix", _CONST_FN[name], 0
    if name in _CONST_DIAG:
        return "diag", _CONST_FN[name], 0
    if name in _PARAM_GATES:
        return _PARAM_GATES[name]
    if name in ("MultiRZ", "IsingZZ"):
        return "diag", _multirz_diag(len(axes)), 1
    return None


def _generic_fn(op: qml.operation.Operator) -> MatrixFn:
    """Matrix of ``op`` rebuilt around traced parameters (for ops without a closed form).

    Raises:
        ValueError: if PennyLane cannot rebuild ``op`` from its own parameters (the support
            check then leaves the tape to the device).
    """
    rebind = _rebinder(op)
    try:
        rebind(list(op.data))
    except Exception as err:
        raise ValueError(f"PennyLane cannot rebind the parameters of {op.name} ({err!r})") from err

    def fn(p):
        return as_complex(qml.matrix(rebind(list(p)), wire_order=op.wires))

    return fn


def _rebinder(op: qml.operation.Operator) -> Callable[[list], qml.operation.Operator]:
    if isinstance(op, qml.ops.Evolution) and op.base.data:
        # PennyLane 0.45's bind_new_parameters treats an Evolution like Exp (time, then the
        # generator's data), but its data is the time alone: a parametrized generator fails
        # with IndexError. The generator's coefficients are constants here; rebuild with them.
        # Can go when bind_new_parameters handles Evolution (tests/test_composite_ops.py).
        return lambda p: type(op)(op.base, p[0])
    return functools.partial(qml.ops.functions.bind_new_parameters, op)


def compile_gate(op: qml.operation.Operator, axis_of: dict) -> Gate:
    """Compile one (non state-prep) operation into a ``Gate``.

    Args:
        op: the operation (its parameter values are ignored; only its structure is used).
        axis_of: wire label -> state axis.

    Raises:
        ValueError: if the op has no matrix and no special handling.
    """
    name = op.name
    axes = tuple(axis_of[w] for w in op.wires)
    n_params = len(op.data)
    if name in NO_OPS:
        return Gate(name, "none", (), n_params=n_params)
    if name == "GlobalPhase":
        return Gate(name, "phase", (), fn=lambda p: jnp.exp(-1j * as_complex(p[0])), n_params=1)
    if name in _CONTROLLED:
        nc, base_name = _CONTROLLED[name]
        target = _base_gate(base_name, axes[nc:])
        assert target is not None, base_name  # every _CONTROLLED base has a closed form
        kind, fn, _ = target
        return Gate(name, kind, axes[nc:], axes[:nc], (1,) * nc, fn, n_params, True)
    if name == "MultiControlledX":
        values = tuple(int(v) for v in op.hyperparameters["control_values"])
        return Gate(name, "x", axes[-1:], axes[:-1], values, None, 0)
    if name == "PauliRot":
        word = op.hyperparameters["pauli_word"]
        if sum(c != "I" for c in word) >= LONG_WORD:  # identities need no axis
            kept = [(a, c) for a, c in zip(axes, word) if c != "I"]
            pair = PauliPair("".join(c for _, c in kept))
            return Gate(
                name, "pauli", tuple(a for a, _ in kept), fn=pair, n_params=1, closed_form=True
            )
        fn = PauliRotation(word)
        return Gate(name, "matrix", axes, fn=fn, n_params=1, closed_form=True)
    if name == "DiagonalQubitUnitary":
        return Gate(name, "diag", axes, fn=lambda p: as_complex(p[0]), n_params=1)
    if name == "QubitUnitary":
        return Gate(name, "matrix", axes, fn=lambda p: as_complex(p[0]), n_params=1)
    base = _base_gate(name, axes)
    if base is not None:
        kind, fn, _ = base
        return Gate(name, kind, axes, fn=fn, n_params=n_params, closed_form=True)
    if not op.has_matrix:
        raise ValueError(f"{name} has no matrix")
    return Gate(name, "matrix", axes, fn=_generic_fn(op), n_params=n_params)


def gate_value(gate: Gate, params: Sequence[Array]) -> Array | None:
    """The gate's matrix / diagonal / phase for these parameters (None if parameter-free)."""
    return None if gate.fn is None else gate.fn(params)


class ParamSource(Protocol):
    """Where a program's gates read their parameters (``_simulate.py`` has the two kinds)."""

    def at(self, sl: slice) -> tuple:
        """The tape's parameters ``sl`` (in the program's tape) as arrays."""
        ...

    def params(self, i: int) -> tuple:
        """Gate ``i``'s parameters as arrays."""
        ...

    def scalar_dtypes(self, i: int) -> tuple | None:
        """The dtypes of gate ``i``'s parameters if all are scalars, else None."""
        ...

    def stacked(self, ids: Sequence[int], k: int) -> Array:
        """Parameter ``k`` of the gates ``ids``, as one vector."""
        ...


class GateValues:
    """Every gate's matrix/diagonal/phase, computed per gate formula in one vmapped call.

    Twelve RX gates become one ``vmap`` of the RX formula over twelve angles instead of twelve
    small graphs: far fewer HLO ops, so faster compiles. ``values[i]`` reads one gate's value
    (None if parameter-free); ``blocks`` gives many at once without slicing them apart (compact
    regions build their tables from it).
    """

    def __init__(self, gates: Sequence[Gate], source: ParamSource):
        self._batches: list[Array] = []
        self._at: dict[int, tuple[int, int]] = {}
        self._direct: dict[int, Array] = {}
        self._read: dict[int, Array] = {}
        # A constant gate's value is computed once, for its first gate; later ones alias it.
        self._alias: dict[int, int] = {}
        groups: dict[Any, list[int]] = {}
        first: dict[Any, int] = {}
        for i, gate in enumerate(gates):
            if gate.fn is None or gate.kind == "none":
                continue
            if gate.closed_form and not gate.n_params:
                if gate.fn in first:
                    self._alias[i] = first[gate.fn]
                    self._direct[i] = self._direct[first[gate.fn]]
                else:
                    first[gate.fn] = i
                    self._direct[i] = gate.fn(())
                continue
            dtypes = source.scalar_dtypes(i) if gate.closed_form else None
            if dtypes is not None:
                word = gate.fn if isinstance(gate.fn, (PauliRotation, PauliPair)) else None
                family = gate.fn if word is None else word.family
                groups.setdefault((family, dtypes), []).append(i)
            else:
                self._direct[i] = gate.fn(source.params(i))
        for (_, dtypes), ids in groups.items():
            stacked = [source.stacked(ids, k) for k in range(len(dtypes))]
            fn = gates[ids[0]].fn
            if isinstance(fn, PauliRotation):  # a family: its constants stacked per gate
                paulis = np.stack([cast(PauliRotation, gates[i].fn).constant for i in ids])
                batch = jax.vmap(lambda c, *p: PauliRotation.with_constant(p, c))(paulis, *stacked)
            else:
                batch = jax.vmap(lambda *p, fn=fn: fn(p))(*stacked)
            self._batches.append(batch)
            for row, i in enumerate(ids):
                self._at[i] = (len(self._batches) - 1, row)

    def __getitem__(self, i: int) -> Array | None:
        if i in self._direct:
            return self._direct[i]
        if i not in self._at:
            return None
        if i not in self._read:
            batch, row = self._at[i]
            self._read[i] = self._batches[batch][row]
        return self._read[i]

    def arrays(self) -> tuple[list[Array], dict[int, Array]]:
        """Every value as few arrays: one per gate formula (a row per gate) and the gates
        computed apart. A JVP of them gives the tangents without a slice per gate, whose
        transpose (reverse mode) pads each gate's cotangent to its whole formula's array.
        A constant gate's value appears once (UCCSD's 936 Hadamards were as many arrays
        through the adjoint sweep's boundary, and as many slices in each of its tables)."""
        return list(self._batches), {i: v for i, v in self._direct.items() if i not in self._alias}

    def over(self, batches: Sequence[Array], direct: dict[int, Array]) -> GateValues:
        """These values' layout over other arrays of the same shapes (``arrays()`` of other
        parameters, or their tangents)."""
        new = object.__new__(GateValues)
        new._batches = list(batches)
        new._direct = {i: direct[self._alias.get(i, i)] for i in self._direct}
        new._at, new._read, new._alias = self._at, {}, self._alias
        return new

    def weighted_sum(self, weights: dict[int, Array]) -> Array:
        """``Σ_i Re Σ values[i] * weights[i]`` over each value's axes, with ``weights[i]`` of
        shape ``(m, *values[i].shape)``: an ``(m,)`` vector, one multiply per gate formula
        (so reverse mode gives each formula's cotangent whole, with no per-gate padding)."""
        total = None
        for b, batch in enumerate(self._batches):
            rows = [i for i, (bb, _) in sorted(self._at.items(), key=lambda kv: kv[1]) if bb == b]
            if not any(i in weights for i in rows):
                continue
            m = next(weights[i] for i in rows if i in weights).shape[0]
            zero = jnp.zeros((m, *batch.shape[1:]), batch.dtype)
            w = jnp.stack([weights.get(i, zero) for i in rows], axis=1)  # (m, rows, ...)
            term = jnp.real(jnp.sum(w * batch[None], axis=tuple(range(1, w.ndim))))
            total = term if total is None else total + term
        for i, value in self._direct.items():
            if i in weights:
                axes = tuple(range(1, weights[i].ndim))
                term = jnp.real(jnp.sum(weights[i] * value[None], axis=axes))
                total = term if total is None else total + term
        assert total is not None, "weighted_sum needs at least one weighted gate"
        return total

    def blocks(self, ids: Sequence[int]) -> tuple[list[Array], dict[int, int]]:
        """The values of gates ``ids`` as stacked blocks, and each gate's row in their
        concatenation: one gather per formula instead of one slice per gate. Gates that share
        one value (a constant gate's) share its row: UCCSD's 936 Hadamards were as many
        traced slices, 0.3 s of trace per table."""
        per_batch: dict[int, list[int]] = {}
        blocks: list[Array] = []
        row_of: dict[int, int] = {}
        shared: dict[int, int] = {}  # the gate a direct value was computed for -> its row
        start = 0
        for i in ids:
            if i in self._at:
                per_batch.setdefault(self._at[i][0], []).append(i)
            elif i in self._direct:
                owner = self._alias.get(i, i)
                if owner not in shared:
                    blocks.append(self._direct[i][None])
                    shared[owner] = start
                    start += 1
                row_of[i] = shared[owner]
        for batch, members in per_batch.items():
            rows = np.array([self._at[i][1] for i in members])
            full = len(rows) == self._batches[batch].shape[0] and np.all(
                rows == np.arange(len(rows))
            )
            blocks.append(self._batches[batch] if full else self._batches[batch][rows])
            for k, i in enumerate(members):
                row_of[i] = start + k
            start += len(members)
        return blocks, row_of

    def stack(self, ids: Sequence[int]) -> Array | None:
        """The values of gates ``ids`` stacked on a new leading axis (None if parameter-free).

        One gather when they share a formula: its transpose (reverse mode) is one scatter into
        the formula's cotangent, where a stack of per-gate slices pads every gate's cotangent
        to the whole formula.
        """
        at = [self._at.get(i) for i in ids]
        if at[0] is not None and all(a is not None and a[0] == at[0][0] for a in at):
            batch = self._batches[at[0][0]]
            rows = np.array([cast(tuple, a)[1] for a in at])
            if len(rows) == batch.shape[0] and np.all(rows == np.arange(len(rows))):
                return batch
            return batch[rows]
        values = [self[i] for i in ids]
        if all(v is None for v in values):
            return None
        if all(v is values[0] for v in values):  # a constant gate: one shared value
            value = cast(Array, values[0])
            return jnp.broadcast_to(value, (len(values), *jnp.shape(value)))
        return jnp.stack([cast(Array, v) for v in values])


def inverse_values(gates: Sequence[Gate], values: Sequence[Array | None]) -> tuple[list, list]:
    """Per gate, the values that apply ``U†`` and ``U^T`` (``conj(U†)``) with ``adjoint=False``.

    ``U†`` un-applies a gate from a ket; ``U^T`` un-applies it from a conjugated bra, so an
    adjoint sweep never conjugates a whole state. The conjugations are done on all gate values
    of one shape at once. Parameter-free gates (``x``, ``swap``) are their own inverses and
    keep ``None``.
    """
    dagger: list = [None] * len(gates)
    transposed: list = [None] * len(gates)
    groups: dict[Any, list[int]] = {}
    for i, (gate, value) in enumerate(zip(gates, values)):
        if value is None or gate.kind not in ("matrix", "diag", "phase", "pauli"):
            continue
        sign = gate.fn.transpose_sign if isinstance(gate.fn, PauliPair) else 1
        groups.setdefault((gate.kind, jnp.shape(value), sign), []).append(i)
    for idx in groups.values():
        conj, flipped = inverse_value(
            gates[idx[0]], jnp.stack([cast(Array, values[i]) for i in idx])
        )
        for j, i in enumerate(idx):
            dagger[i] = conj[j]
            transposed[i] = flipped[j]
    return dagger, transposed


def inverse_value(gate: Gate, value: Array) -> tuple[Array, Array]:
    """The values of ``U†`` and ``U^T`` from ``U``'s (``value`` may have leading batch axes).

    For a matrix, ``U† = conj(U^T)``. For a ``"pauli"`` gate the value is ``(a, b)`` of ``a I +
    b P`` and ``P`` is not real: ``U† = a* I + b* P`` (``P`` is Hermitian) and ``U^T = a I ±
    b P`` (``PauliWord.transpose_sign``).
    """
    if gate.kind == "matrix":
        flipped = jnp.swapaxes(value, -1, -2)
        return jnp.conj(flipped), flipped
    if gate.kind == "pauli" and cast(PauliPair, gate.fn).transpose_sign < 0:
        return jnp.conj(value), value * jnp.asarray([1, -1], dtype=value.dtype)
    return jnp.conj(value), value


def full_matrix(gate: Gate, value: Array) -> Array:
    """The gate's matrix on ``controls + axes`` (in that wire order) from its value."""
    k = len(gate.axes)
    if gate.kind == "diag":
        mat = jnp.diag(value)
    elif gate.kind == "matrix":
        mat = value
    elif gate.kind == "pauli":
        word = cast(PauliPair, gate.fn)
        mat = value[0] * jnp.eye(2**k, dtype=value.dtype) + value[1] * as_complex(word.constant)
    else:
        raise AssertionError(gate.kind)
    if not gate.controls:
        return mat
    c = len(gate.controls)
    index = int("".join(str(v) for v in gate.control_values), 2)
    proj = np.zeros((2**c, 2**c))
    proj[index, index] = 1.0
    # Derivatives only: the identity on the other control values has zero derivative.
    return jnp.kron(as_complex(proj), mat) if k else mat
