"""Gate application on a flat ``2**n`` state vector.

Every operation of a tape is compiled once (per tape structure) into a ``Gate``: the state
axes it acts on, how it acts (a dense matrix, a diagonal, a bit flip, an axis swap, a global
phase), optional control axes, and a function from the op's traced parameters to its matrix or
diagonal. The functions here are written for a single, unbatched state; broadcasting, shifted
parameter batches and tape batches are added by ``jax.vmap`` around them.

Closed-form matrices are used for the common gates because ``qml.matrix`` on tracers builds
larger graphs (and is slower to trace); anything else with a matrix falls back to
``qml.matrix`` of the op rebuilt around the traced parameters.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ..._dtypes import complex_dtype

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
        kind: ``"matrix"`` (dense on ``axes``), ``"diag"`` (diagonal on ``axes``), ``"x"`` (bit
            flip of ``axes[0]``), ``"swap"`` (exchange ``axes[0]`` and ``axes[1]``) or
            ``"phase"`` (global phase ``fn(params)``, a scalar).
        axes: target axes, in the op's wire order.
        controls: control axes (the target acts where these axes equal ``control_values``).
        control_values: 0/1 per control axis.
        fn: traced parameters -> matrix ``(2**k, 2**k)`` / diagonal ``(2**k,)`` / phase; ``None``
            for parameter-free ``x``/``swap``.
        n_params: how many tape parameters the op consumes.
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


def _c(x):
    return jnp.asarray(x, dtype=complex_dtype())


def _mat2(a, b, c, d):
    return jnp.stack([jnp.stack([_c(a), _c(b)]), jnp.stack([_c(c), _c(d)])])


def _rx(p):
    c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
    return _mat2(c, -1j * s, -1j * s, c)


def _ry(p):
    c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
    return _mat2(c, -s, s, c)


def _rz_diag(p):
    e = jnp.exp(-0.5j * p[0])
    return jnp.stack([_c(e), _c(jnp.conj(e))])


def _phase_diag(p):
    return jnp.stack([_c(1.0), _c(jnp.exp(1j * p[0]))])


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
        return _c(c) * jnp.eye(4, dtype=complex_dtype()) - 1j * _c(s) * _c(_PAULI2[pauli2])

    return fn


def _parity_signs(k: int) -> np.ndarray:
    """(+1, -1) eigenvalues of Z^{⊗k} in computational-basis order."""
    idx = np.arange(2**k)
    parity = np.array([bin(i).count("1") % 2 for i in idx])
    return 1.0 - 2.0 * parity


@functools.cache
def _multirz_diag(k: int):
    signs = _parity_signs(k)

    def fn(p):
        return jnp.exp(-0.5j * p[0] * signs).astype(complex_dtype())

    return fn


def _const(m):
    arr = np.asarray(m)
    return lambda p: _c(arr)


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
    "CCZ": [1, 1, 1, 1, 1, 1, 1, -1],
}
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
}
# name -> (number of control wires, base gate name); the targets are the remaining wires.
_CONTROLLED = {
    "CNOT": (1, "PauliX"),
    "Toffoli": (2, "PauliX"),
    "CY": (1, "PauliY"),
    "CH": (1, "Hadamard"),
    "CSWAP": (1, "SWAP"),
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
        return "matrix", _const(_CONST_MATRIX[name]), 0
    if name in _CONST_DIAG:
        return "diag", _const(_CONST_DIAG[name]), 0
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
        return _c(qml.matrix(rebind(list(p)), wire_order=op.wires))

    return fn


def _rebinder(op: qml.operation.Operator) -> Callable[[list], qml.operation.Operator]:
    if isinstance(op, qml.ops.Evolution) and op.base.data:
        # PennyLane 0.45's bind_new_parameters treats an Evolution like Exp (time, then the
        # generator's data), but its data is the time alone: a parametrized generator fails
        # with IndexError. The generator's coefficients are constants here; rebuild with them.
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
        return Gate(name, "phase", (), fn=lambda p: jnp.exp(-1j * _c(p[0])), n_params=1)
    if name in _CONTROLLED:
        nc, base_name = _CONTROLLED[name]
        target = _base_gate(base_name, axes[nc:])
        assert target is not None, base_name  # every _CONTROLLED base has a closed form
        kind, fn, _ = target
        return Gate(name, kind, axes[nc:], axes[:nc], (1,) * nc, fn, n_params, True)
    if name == "MultiControlledX":
        values = tuple(int(v) for v in op.hyperparameters["control_values"])
        return Gate(name, "x", axes[-1:], axes[:-1], values, None, 0)
    if name == "DiagonalQubitUnitary":
        return Gate(name, "diag", axes, fn=lambda p: _c(p[0]), n_params=1)
    if name == "QubitUnitary":
        return Gate(name, "matrix", axes, fn=lambda p: _c(p[0]), n_params=1)
    base = _base_gate(name, axes)
    if base is not None:
        kind, fn, _ = base
        return Gate(name, kind, axes, fn=fn, n_params=n_params, closed_form=True)
    if not op.has_matrix:
        raise ValueError(f"{name} has no matrix")
    return Gate(name, "matrix", axes, fn=_generic_fn(op), n_params=n_params)


# --------------------------------------------------------------------------- application
#
# The state is a flat vector of length 2**n (wire axis 0 most significant). Each gate reshapes
# it to a low-rank view that splits out only the axes the gate touches:
# (rest, 2, rest, 2, ..., rest). Reshapes of a contiguous vector are free, and XLA compiles
# rank-3..7 arrays much faster than rank-n ones (rank-12 tensors took tens of seconds).


class _Style(threading.local):
    elementwise = False


_STYLE = _Style()


@contextlib.contextmanager
def elementwise_gates():
    """Trace single-qubit matrices as fused elementwise updates inside this block."""
    old = _STYLE.elementwise
    _STYLE.elementwise = True
    try:
        yield
    finally:
        _STYLE.elementwise = old


def num_wires_of(state: Array) -> int:
    """n for a flat state of length 2**n."""
    return int(state.shape[0]).bit_length() - 1


def _view(state: Array, axes: Sequence[int]) -> tuple[Array, dict[int, int]]:
    """(state reshaped to split out ``axes``, wire axis -> position in the view)."""
    n = num_wires_of(state)
    dims: list[int] = []
    pos: dict[int, int] = {}
    prev = -1
    for a in sorted(set(axes)):
        dims.append(2 ** (a - prev - 1))
        pos[a] = len(dims)
        dims.append(2)
        prev = a
    dims.append(2 ** (n - prev - 1))
    return jnp.reshape(state, dims), pos


def _apply_matrix(view: Array, mat: Array, axes: Sequence[int]) -> Array:
    # One dot_general per gate: XLA:CPU compiles it far faster than the equivalent elementwise
    # slices/stack (which it fuses gate after gate into ever larger kernels).
    k = len(axes)
    if k == 1 and _STYLE.elementwise:
        # Slices and a stack: XLA fuses them into one pass over the state, several times
        # faster for batches of states (parameter-shift rows), but slower to compile and to
        # differentiate -- so only used where elementwise_gates() asks for it.
        (a,) = axes
        s0 = jax.lax.index_in_dim(view, 0, a, keepdims=False)
        s1 = jax.lax.index_in_dim(view, 1, a, keepdims=False)
        n0 = mat[0, 0] * s0 + mat[0, 1] * s1
        n1 = mat[1, 0] * s0 + mat[1, 1] * s1
        return jnp.stack([n0, n1], axis=a)
    m = jnp.reshape(mat, (2,) * (2 * k))
    out = jnp.tensordot(m, view, axes=(list(range(k, 2 * k)), list(axes)))
    return jnp.moveaxis(out, list(range(k)), list(axes))


def _apply_diag(view: Array, diag: Array, axes: Sequence[int]) -> Array:
    k = len(axes)
    d = jnp.reshape(diag, (2,) * k)
    order = sorted(range(k), key=lambda i: axes[i])
    d = jnp.transpose(d, order)
    shape = [1] * view.ndim
    for ax in axes:
        shape[ax] = 2
    return view * jnp.reshape(d, shape)


def _apply_targets(view: Array, gate: Gate, value: Array | None, axes, adjoint: bool) -> Array:
    kind = gate.kind
    if kind == "x":
        return jnp.flip(view, axes[0])
    if kind == "swap":
        return jnp.swapaxes(view, axes[0], axes[1])
    assert value is not None, kind  # only x and swap have no value
    if kind == "diag":
        return _apply_diag(view, jnp.conj(value) if adjoint else value, axes)
    if kind == "matrix":
        return _apply_matrix(view, jnp.conj(value).T if adjoint else value, axes)
    raise AssertionError(kind)


def gate_value(gate: Gate, params: Sequence[Array]) -> Array | None:
    """The gate's matrix / diagonal / phase for these parameters (None if parameter-free)."""
    return None if gate.fn is None else gate.fn(params)


def _grouped(gates: Sequence[Gate], params: Sequence[Sequence[Array]], one, many) -> list:
    """Apply ``one(gate, p)`` per gate, or ``many(fn, stacked)`` per group of same-formula gates.

    Twelve RX gates become one ``vmap`` of the RX formula over twelve angles instead of twelve
    small graphs: far fewer HLO ops, so faster compiles.
    """
    out: list = [None] * len(gates)
    groups: dict[Any, list[int]] = {}
    for i, (gate, p) in enumerate(zip(gates, params)):
        if gate.fn is None or gate.kind == "none":
            continue
        scalar = all(jnp.ndim(x) == 0 for x in p)
        if gate.closed_form and gate.n_params and scalar:
            groups.setdefault((gate.fn, tuple(jnp.result_type(x) for x in p)), []).append(i)
        else:
            out[i] = one(gate, p)
    for (fn, _), idx in groups.items():
        stacked = [jnp.stack([params[i][k] for i in idx]) for k in range(len(params[idx[0]]))]
        batch = many(fn, stacked)
        for j, i in enumerate(idx):
            out[i] = jax.tree.map(lambda x, j=j: x[j], batch)
    return out


def gate_values(gates: Sequence[Gate], params: Sequence[Sequence[Array]]) -> list[Array | None]:
    """Every gate's value (matrix/diagonal/phase), computed per gate formula in one call."""
    return _grouped(
        gates,
        params,
        lambda gate, p: gate.fn(p),
        lambda fn, stacked: jax.vmap(lambda *p: fn(p))(*stacked),
    )


def gate_value_derivatives(gates: Sequence[Gate], params: Sequence[Sequence[Array]]) -> list:
    """Per gate, the list ``[d value / d θ_k for k]`` (vectorized like ``gate_values``).

    ``None`` for integer-valued parameters, which have no derivative.
    """

    def inexact(x) -> bool:
        return jnp.issubdtype(jnp.result_type(x), jnp.inexact)

    def tangent(x, on: bool):
        if not inexact(x):  # integer parameters (e.g. an int matrix) have no derivative
            return np.zeros(jnp.shape(x), jax.dtypes.float0)
        return jnp.ones_like(x) if on else jnp.zeros_like(x)

    def tangents(p, k):
        return tuple(tangent(x, i == k) for i, x in enumerate(p))

    def one(gate, p):
        return [
            jax.jvp(lambda q: gate.fn(q), (tuple(p),), (tangents(p, k),))[1]
            if inexact(p[k])
            else None
            for k in range(len(p))
        ]

    def many(fn, stacked):
        vfn = jax.vmap(lambda *q: fn(q))
        return [
            jax.jvp(vfn, tuple(stacked), tangents(stacked, k))[1] if inexact(stacked[k]) else None
            for k in range(len(stacked))
        ]

    return _grouped(gates, params, one, many)


def apply_gate(
    state: Array,
    gate: Gate,
    params: Sequence[Array],
    adjoint: bool = False,
    value: Array | None = None,
) -> Array:
    """Apply ``gate`` (or its inverse, with ``adjoint=True``) to an unbatched flat state.

    ``value`` is the gate's precomputed matrix/diagonal (see ``gate_values``); computed
    from ``params`` when not given.
    """
    if gate.kind == "none":
        return state
    if value is None:
        value = gate_value(gate, params)
    if gate.kind == "phase":
        assert value is not None
        return state * (jnp.conj(value) if adjoint else value)
    view, pos = _view(state, gate.axes + gate.controls)
    axes = tuple(pos[a] for a in gate.axes)
    if not gate.controls:
        return _apply_targets(view, gate, value, axes, adjoint).reshape(state.shape)
    controls = [(pos[c], v) for c, v in zip(gate.controls, gate.control_values)]
    out = _controlled(view, controls, lambda v: _apply_targets(v, gate, value, axes, adjoint))
    return out.reshape(state.shape)


def _controlled(view: Array, controls: list[tuple[int, int]], act: Callable) -> Array:
    """Apply ``act`` where every control position holds its value.

    Splits each control axis into its two halves (keeping the axis, so positions do not move)
    and concatenates them back. An in-place ``.at[].set`` of the acted-on slice was
    miscompiled by XLA:CPU when the update read the same buffer reversed (a CNOT's flip).
    """
    if not controls:
        return act(view)
    (p, v), rest = controls[0], controls[1:]
    halves = [jax.lax.slice_in_dim(view, 0, 1, axis=p), jax.lax.slice_in_dim(view, 1, 2, axis=p)]
    halves[v] = _controlled(halves[v], rest, act)
    return jnp.concatenate(halves, axis=p)


def apply_matrix_on(state: Array, mat: Array, axes: Sequence[int]) -> Array:
    """Apply a dense ``(2**k, 2**k)`` matrix on wire ``axes`` of a flat state."""
    view, pos = _view(state, axes)
    return _apply_matrix(view, mat, [pos[a] for a in axes]).reshape(state.shape)


def transition_matrix(
    bra: Array, ket: Array, axes: Sequence[int], bra_conjugated: bool = False
) -> Array:
    """``T[j, i] = Σ_rest ket[.., j, ..] conj(bra[.., i, ..])`` over the wire ``axes``.

    For any operator ``A`` on those wires, ``<bra| A ⊗ 1 |ket> = trace(A @ T)``: one
    contraction gives the derivative of every parameter of a gate. With ``bra_conjugated``
    the caller passes ``conj(bra)`` (saving a full-state conjugation per gate).
    """
    k = len(axes)
    kv, pos = _view(ket, axes)
    bv, _ = _view(bra, axes)
    p = [pos[a] for a in axes]
    kt = jnp.moveaxis(kv, p, list(range(k))).reshape(2**k, -1)
    bt = jnp.moveaxis(bv, p, list(range(k))).reshape(2**k, -1)
    return kt @ (bt if bra_conjugated else jnp.conj(bt)).T


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
        if value is None or gate.kind not in ("matrix", "diag", "phase"):
            continue
        groups.setdefault((gate.kind == "matrix", jnp.shape(value)), []).append(i)
    for (is_matrix, _), idx in groups.items():
        stacked = jnp.stack([cast(Array, values[i]) for i in idx])
        flipped = jnp.swapaxes(stacked, -1, -2) if is_matrix else stacked
        conj = jnp.conj(flipped)
        for j, i in enumerate(idx):
            dagger[i] = conj[j]
            transposed[i] = flipped[j]
    return dagger, transposed


def full_matrix(gate: Gate, value: Array) -> Array:
    """The gate's matrix on ``controls + axes`` (in that wire order) from its value."""
    k = len(gate.axes)
    if gate.kind == "diag":
        mat = jnp.diag(value)
    elif gate.kind == "matrix":
        mat = value
    else:
        raise AssertionError(gate.kind)
    if not gate.controls:
        return mat
    c = len(gate.controls)
    index = int("".join(str(v) for v in gate.control_values), 2)
    proj = np.zeros((2**c, 2**c))
    proj[index, index] = 1.0
    # Derivatives only: the identity on the other control values has zero derivative.
    return jnp.kron(_c(proj), mat) if k else mat
