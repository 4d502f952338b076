"""Gate application on a ``(2,) * n`` state tensor.

Every operation of a tape is compiled once (per tape structure) into a :class:`Gate`: the state
axes it acts on, how it acts (a dense matrix, a diagonal, a bit flip, an axis swap, a global
phase), optional control axes, and a function from the op's traced parameters to its matrix or
diagonal. The functions here are written for a single, unbatched state; broadcasting, shifted
parameter batches and tape batches are added by ``jax.vmap`` around them.

Closed-form matrices are used for the common gates because ``qml.matrix`` on tracers builds
larger graphs (and is slower to trace); anything else with a matrix falls back to
``qml.matrix`` of the op rebuilt around the traced parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

Array = Any
MatrixFn = Callable[[Sequence[Array]], Array]

# Ops that do nothing to the state vector.
NO_OPS = frozenset({"Identity", "Snapshot", "Barrier", "WireCut"})
# Ops that set the initial state; only valid as the first operation (default.qubit decomposes
# them anywhere else).
STATE_PREPS = frozenset({"StatePrep", "QubitStateVector", "BasisState"})


def complex_dtype():
    """complex128 with x64 enabled, else complex64 (what default.qubit returns under JAX)."""
    return jnp.complex128 if jax.config.jax_enable_x64 else jnp.complex64


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


def _ising(pauli2):
    def fn(p):
        c, s = jnp.cos(p[0] / 2), jnp.sin(p[0] / 2)
        return _c(c) * jnp.eye(4, dtype=complex_dtype()) - 1j * _c(s) * _c(pauli2)

    return fn


def _parity_signs(k: int) -> np.ndarray:
    """(+1, -1) eigenvalues of Z^{⊗k} in computational-basis order."""
    idx = np.arange(2**k)
    parity = np.array([bin(i).count("1") % 2 for i in idx])
    return 1.0 - 2.0 * parity


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
    "IsingXX": ("matrix", _ising(_XX), 1),
    "IsingYY": ("matrix", _ising(_YY), 1),
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
    """Matrix of ``op`` rebuilt around traced parameters (for ops without a closed form)."""

    def fn(p):
        new = qml.ops.functions.bind_new_parameters(op, list(p))
        return _c(qml.matrix(new, wire_order=op.wires))

    return fn


def compile_gate(op: qml.operation.Operator, axis_of: dict) -> Gate:
    """Compile one (non state-prep) operation into a :class:`Gate`.

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
        nc, base = _CONTROLLED[name]
        kind, fn, _ = _base_gate(base, axes[nc:])
        return Gate(name, kind, axes[nc:], axes[:nc], (1,) * nc, fn, n_params)
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
        return Gate(name, kind, axes, fn=fn, n_params=n_params)
    if not op.has_matrix:
        raise ValueError(f"{name} has no matrix")
    return Gate(name, "matrix", axes, fn=_generic_fn(op), n_params=n_params)


# --------------------------------------------------------------------------- application


def _apply_matrix(state: Array, mat: Array, axes: Sequence[int]) -> Array:
    k = len(axes)
    if k == 1:
        # Elementwise form: XLA fuses it into one pass over the state, which on CPU beats a
        # dot_general with a 2x2 operand.
        (a,) = axes
        s0 = jax.lax.index_in_dim(state, 0, a, keepdims=False)
        s1 = jax.lax.index_in_dim(state, 1, a, keepdims=False)
        n0 = mat[0, 0] * s0 + mat[0, 1] * s1
        n1 = mat[1, 0] * s0 + mat[1, 1] * s1
        return jnp.stack([n0, n1], axis=a)
    m = jnp.reshape(mat, (2,) * (2 * k))
    out = jnp.tensordot(m, state, axes=(list(range(k, 2 * k)), list(axes)))
    return jnp.moveaxis(out, list(range(k)), list(axes))


def _apply_diag(state: Array, diag: Array, axes: Sequence[int]) -> Array:
    k = len(axes)
    d = jnp.reshape(diag, (2,) * k)
    order = sorted(range(k), key=lambda i: axes[i])
    d = jnp.transpose(d, order)
    shape = [1] * state.ndim
    for ax in axes:
        shape[ax] = 2
    return state * jnp.reshape(d, shape)


def _apply_targets(state: Array, gate: Gate, value: Array | None, axes, adjoint: bool) -> Array:
    kind = gate.kind
    if kind == "x":
        return jnp.flip(state, axes[0])
    if kind == "swap":
        return jnp.swapaxes(state, axes[0], axes[1])
    if kind == "diag":
        return _apply_diag(state, jnp.conj(value) if adjoint else value, axes)
    if kind == "matrix":
        return _apply_matrix(state, jnp.conj(value).T if adjoint else value, axes)
    raise AssertionError(kind)


def gate_value(gate: Gate, params: Sequence[Array]) -> Array | None:
    """The gate's matrix / diagonal / phase for these parameters (None if parameter-free)."""
    return None if gate.fn is None else gate.fn(params)


def apply_gate(state: Array, gate: Gate, params: Sequence[Array], adjoint: bool = False) -> Array:
    """Apply ``gate`` (or its inverse, with ``adjoint=True``) to an unbatched state tensor."""
    if gate.kind == "none":
        return state
    value = gate_value(gate, params)
    if gate.kind == "phase":
        return state * (jnp.conj(value) if adjoint else value)
    if not gate.controls:
        return _apply_targets(state, gate, value, gate.axes, adjoint)
    # Act on the slice where the controls hold their values; the slice drops the control axes,
    # so the target axes shift down by the number of controls before them.
    index = [slice(None)] * state.ndim
    for ax, v in zip(gate.controls, gate.control_values):
        index[ax] = v
    index = tuple(index)
    sub_axes = tuple(a - sum(c < a for c in gate.controls) for a in gate.axes)
    sub = _apply_targets(state[index], gate, value, sub_axes, adjoint)
    return state.at[index].set(sub)
