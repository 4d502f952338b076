"""``qml.counts`` under ``jit``: measured as samples, counted in JAX.

A counts dictionary has data-dependent keys, so it has no shape a compiled program (or a
``pure_callback``) could announce. Under ``jit`` qjaxiface therefore measures the same quantity as
``qml.sample`` and counts the samples with traceable JAX code into a dictionary holding **every
possible outcome, zeros included** (what ``qml.counts(..., all_outcomes=True)`` returns eagerly):

* wires (or all device wires): keys ``"00"``, ``"01"``, ... in binary order;
* an observable: one key per distinct eigenvalue (a float), in ascending order;
* mid-circuit measurement values: one key per possible processed value (a float), ascending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import pennylane as qml
from pennylane.measurements import CountsMP, MeasurementValue

from ._dtypes import jax_dtype
from .shapes import num_device_wires


def has_counts(tapes: Sequence) -> bool:
    """Whether any tape measures ``qml.counts``."""
    return any(isinstance(m, CountsMP) for t in tapes for m in t.measurements)


def counts_as_samples(tapes: Sequence, device=None) -> tuple[tuple, Callable]:
    """Replace every ``qml.counts`` by ``qml.sample`` of the same quantity.

    Args:
        tapes (Sequence[QuantumScript]): tapes that may measure counts.
        device (Device, optional): fixes what "all wires" means.

    Returns:
        tuple: the new tapes, and a function mapping their results to results with counts
        dictionaries (built with ``jax.numpy``, so it can run under ``jit``).

    Examples:
        >>> import pennylane as qml
        >>> tape = qml.tape.QuantumScript([qml.X(0)], [qml.counts(wires=[0, 1])], shots=5)
        >>> (new,), post = counts_as_samples([tape])
        >>> new.measurements
        [sample(wires=[0, 1])]
        >>> dev = qml.device("default.qubit")
        >>> {k: int(v) for k, v in post(dev.execute([new]))[0].items()}
        {'00': 0, '01': 0, '10': 5, '11': 0}
    """
    new_tapes, counters = [], []
    for tape in tapes:
        tape_counters = [_counter(mp, tape, device) for mp in tape.measurements]
        counters.append(tape_counters)
        if not any(c is not None for c in tape_counters):
            new_tapes.append(tape)
            continue
        mps = [
            _as_sample(mp) if counter is not None else mp
            for mp, counter in zip(tape.measurements, tape_counters)
        ]
        new_tapes.append(tape.copy(measurements=mps))

    def postprocess(results):
        return tuple(
            _count_tape(res, tape, tape_counters)
            for res, tape, tape_counters in zip(results, new_tapes, counters)
        )

    return tuple(new_tapes), postprocess


def _as_sample(mp: CountsMP):
    if mp.mv is not None:
        return qml.sample(mp.mv)
    if mp.obs is not None:
        return qml.sample(mp.obs)
    return qml.sample(wires=mp.wires or None)


def bitstring_keys(n_wires: int) -> list[str]:
    """Every outcome of ``n_wires`` qubits as a counts key: ``"00"``, ``"01"``, ... in order."""
    return [format(i, f"0{n_wires}b") for i in range(2**n_wires)]


def eigenvalue_keys(obs) -> list[float]:
    """Every outcome of measuring ``obs`` as a counts key: its distinct eigenvalues, sorted.

    Rounded to 12 digits, so eigenvalues equal up to floating-point noise are one key.
    """
    return [float(v) for v in np.unique(np.round(np.real(np.asarray(qml.eigvals(obs))), 12))]


def _counter(mp, tape, device):
    """A function samples -> counts dict for one counts measurement, or None for other MPs."""
    if not isinstance(mp, CountsMP):
        return None
    int_dtype = jax_dtype(int)
    if mp.mv is not None:
        values = _possible_mv_values(mp.mv)
        return _value_counter(values, int_dtype)
    if mp.obs is not None:
        return _value_counter(eigenvalue_keys(mp.obs), int_dtype)
    n = len(mp.wires) if mp.wires else num_device_wires(tape, device)
    keys = bitstring_keys(n)
    weights = 2 ** jnp.arange(n - 1, -1, -1)

    def count_bits(samples):
        index = jnp.asarray(samples, dtype=int_dtype).reshape(-1, n) @ weights.astype(int_dtype)
        hist = jnp.bincount(index, length=2**n).astype(int_dtype)
        return {k: hist[i] for i, k in enumerate(keys)}

    return count_bits


def _possible_mv_values(mv) -> np.ndarray:
    if isinstance(mv, MeasurementValue):
        values = [v for _, v in mv.items()]
    else:  # a list of measurement values is sampled as bit strings
        raise NotImplementedError(
            "qml.counts of a list of mid-circuit measurements is not supported under jit by "
            "qjaxiface; measure qml.sample([...]) and count in JAX instead."
        )
    return np.unique(np.asarray(values, dtype=float))


def _value_counter(values, int_dtype):
    def count_values(samples):
        samples = jnp.ravel(jnp.asarray(samples))
        return {
            float(v): jnp.sum(jnp.isclose(samples, v, atol=1e-8)).astype(int_dtype) for v in values
        }

    return count_values


def _count_tape(result, tape, tape_counters):
    if all(c is None for c in tape_counters):
        return result
    single = len(tape.measurements) == 1

    def per_setting(setting_result):
        items = (setting_result,) if single else setting_result
        out = tuple(
            r if counter is None else _maybe_batched(counter, r, tape.batch_size)
            for r, counter in zip(items, tape_counters)
        )
        return out[0] if single else out

    if tape.shots.has_partitioned_shots:
        return tuple(per_setting(r) for r in result)
    return per_setting(result)


def _maybe_batched(counter, samples, batch_size):
    if batch_size:
        return tuple(counter(samples[b]) for b in range(batch_size))
    return counter(samples)
