"""Finite-shot measurements: sampling basis states with a JAX PRNG key.

Each measurement samples on its own (a key folded with its index), in the eigenbasis of its
observable, from the exact probabilities of the final state. Sums of observables are estimated
term by term (as default.qubit does for expectation values); ``var``/``sample``/``counts``/
``probs`` need an observable with one eigenbasis (checked by ``sampleable_observable``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from pennylane.measurements import CountsMP, ExpectationMP, ProbabilityMP, SampleMP, VarianceMP

from ..._dtypes import int_dtype, real_dtype
from ...counts import bitstring_keys, eigenvalue_keys
from ._gates import as_complex
from ._kernels import apply_matrix_on
from ._measure import marginal_probs, rotate_to_eigenbasis

Array = Any


def sampleable_observable(obs: qml.operation.Operator) -> str | None:
    """None if ``obs`` has one eigenbasis we can sample in, else why not."""
    if isinstance(obs, qml.ops.Sum | qml.ops.SProd | qml.ops.LinearCombination):
        return (
            f"sampling {obs.name} needs one eigenbasis; only expectation values are split by term"
        )
    if obs.name == "Hermitian":
        return None
    if isinstance(obs, qml.ops.Prod):
        wires = [w for f in obs.operands for w in f.wires]
        if len(wires) != len(set(wires)):
            return "sampling a product of observables on overlapping wires"
        for factor in obs.operands:
            reason = sampleable_observable(factor)
            if reason:
                return reason
        return None
    if obs.data:
        return f"sampling the parametrized observable {obs.name}"
    if not obs.has_diagonalizing_gates:
        return f"{obs.name} has no diagonalizing gates"
    return None


def eigenbasis(obs, state: Array, axis_of: dict) -> tuple[Array, Array]:
    """(state rotated to the eigenbasis of ``obs``, eigenvalues in that basis's order)."""
    if obs.name == "Hermitian":
        # Our own eigh: PennyLane caches Hermitian eigendecompositions by the matrix's repr,
        # which is not safe for tracers.
        evals, evecs = jnp.linalg.eigh(as_complex(obs.data[0]))
        axes = [axis_of[w] for w in obs.wires]
        return apply_matrix_on(state, jnp.conj(evecs).T, axes), evals.astype(real_dtype())
    if isinstance(obs, qml.ops.Prod):
        evals = jnp.ones((1,), real_dtype())
        for factor in obs.operands:
            state, ev = eigenbasis(factor, state, axis_of)
            evals = jnp.kron(evals, ev)
        return state, evals
    state = rotate_to_eigenbasis(obs, state, axis_of)
    return state, jnp.asarray(np.asarray(obs.eigvals(), dtype=float), dtype=real_dtype())


def obs_wires(obs) -> list:
    """The wires of ``obs`` in the order its eigenvalues enumerate them."""
    if isinstance(obs, qml.ops.Prod):
        return [w for f in obs.operands for w in obs_wires(f)]
    return list(obs.wires)


def sample_indices(probs: Array, shots: int, key) -> Array:
    """``shots`` basis-state indices drawn from ``probs`` (inverse-CDF; O(shots log dim))."""
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(key, (shots,), dtype=cdf.dtype) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    return jnp.clip(idx, 0, probs.shape[0] - 1)


def index_bits(idx: Array, k: int) -> Array:
    """Bits (most significant first) of basis-state indices: shape ``idx.shape + (k,)``."""
    shifts = jnp.arange(k - 1, -1, -1)
    return ((idx[..., None] >> shifts) & 1).astype(int_dtype())


#: ``draw(obs, wires, shots, key) -> (indices, eigenvalues)``: ``shots`` draws of a basis
#: state of ``wires`` (in that order), in the eigenbasis of ``obs`` on them when it is not
#: None, whose eigenvalues (in the same order, else None) come along. A whole state's is
#: ``state_draw``; a sharded state's brings the wires local first (``_distributed``).
Draw = Callable[[Any, Sequence, int, Any], tuple[Array, Array | None]]


def state_draw(state: Array, axis_of: dict) -> Draw:
    """The ``Draw`` of a whole state vector (``axis_of``: wire -> state axis)."""
    state = jax.lax.stop_gradient(state)

    def draw(obs, wires, shots, key):
        rotated, evals = (state, None) if obs is None else eigenbasis(obs, state, axis_of)
        probs = marginal_probs(rotated, [axis_of[w] for w in wires])
        return sample_indices(probs, shots, key), evals

    return draw


def sampled_terms(obs) -> list:
    """The observables an expectation value with finite shots samples one by one."""
    if isinstance(obs, qml.ops.LinearCombination):
        return [t for o in obs.terms()[1] for t in sampled_terms(o)]
    if isinstance(obs, qml.ops.Sum):
        return [t for o in obs.operands for t in sampled_terms(o)]
    if isinstance(obs, qml.ops.SProd):
        return sampled_terms(obs.base)
    return [obs]


def _expval_by_terms(obs, draw: Draw, shots, key) -> Array:
    if isinstance(obs, qml.ops.LinearCombination):
        coeffs, ops = obs.terms()
    elif isinstance(obs, qml.ops.Sum):
        coeffs, ops = [1.0] * len(obs.operands), obs.operands
    elif isinstance(obs, qml.ops.SProd):
        return jnp.real(obs.scalar) * _expval_by_terms(obs.base, draw, shots, key)
    else:
        if obs.name == "Identity":
            return jnp.ones((), real_dtype())
        idx, evals = draw(obs, obs_wires(obs), shots, key)
        assert evals is not None  # an observable's draws come with its eigenvalues
        return jnp.mean(evals[idx])
    return sum(
        jnp.real(c) * _expval_by_terms(o, draw, shots, jax.random.fold_in(key, i))
        for i, (c, o) in enumerate(zip(coeffs, ops))
    )


def counts_keys(mp, wires) -> list:
    """The keys of a counts dictionary with every outcome (bit strings or eigenvalues)."""
    return bitstring_keys(len(wires)) if mp.obs is None else eigenvalue_keys(mp.obs)


def measure_with_shots(mp, draw: Draw, shots: int, key, wires, moments: bool = False) -> Any:
    """One finite-shot measurement, shaped as default.qubit returns it.

    Args:
        mp: the measurement process (observable rebuilt around traced parameters).
        draw: samples the final state (``state_draw``).
        shots: number of shots.
        key: PRNG key for this measurement.
        wires: the measured wires when ``mp`` has no observable.
        moments: return a variance as the sample moments ``[mean, mean of squares]``.

    Returns:
        The estimate (expval, var, probs), the samples (bits per wire, or eigenvalues) or the
        counts dictionary with every outcome as a key.
    """
    kind = type(mp)
    if kind is ExpectationMP:
        return _expval_by_terms(mp.obs, draw, shots, key).astype(real_dtype())
    idx, evals = draw(mp.obs, wires if mp.obs is None else obs_wires(mp.obs), shots, key)
    if kind is VarianceMP:
        assert evals is not None  # a variance always has an observable
        values = evals[idx]
        if moments:
            return jnp.stack([jnp.mean(values), jnp.mean(values**2)])
        return jnp.var(values)
    if kind is ProbabilityMP:
        k = len(obs_wires(mp.obs)) if mp.obs is not None else len(wires)
        counts = jnp.bincount(idx, length=2**k)
        return (counts / shots).astype(real_dtype())
    if kind is SampleMP:
        if evals is None:
            return index_bits(idx, len(wires))
        return evals[idx]
    if kind is CountsMP:
        if evals is None:
            counts = jnp.bincount(idx, length=2 ** len(wires)).astype(int_dtype())
            return dict(zip(counts_keys(mp, wires), counts))
        keys = counts_keys(mp, wires)
        # Several basis states can share an eigenvalue (e.g. Z@Z): count per distinct value.
        hits = jnp.round(evals[idx], 12)[:, None] == jnp.asarray(keys, real_dtype())[None, :]
        counts = jnp.sum(hits, axis=0).astype(int_dtype())
        return {k: counts[i] for i, k in enumerate(keys)}
    raise AssertionError(kind)
