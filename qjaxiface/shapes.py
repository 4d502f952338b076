"""Exact result shapes and dtypes of tapes, for ``jax.pure_callback``.

Under ``jit`` a host callback must announce what it returns before it runs. These functions derive
that from the tape alone (measurements, shots and shot vectors, parameter broadcasting, the device
wire count) and from the x64 setting, matching what PennyLane's devices return eagerly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pennylane.exceptions import MeasurementShapeError
from pennylane.measurements import CountsMP, MeasurementValue, SampleMP

from ._dtypes import jax_dtype


def num_device_wires(tape, device) -> int:
    """How many wires "all wires" means: the device's, else the tape's."""
    wires = getattr(device, "wires", None)
    return len(wires) if wires else len(tape.wires)


def _measurement_shape(mp, shots, n_wires: int) -> tuple[int, ...]:
    if isinstance(mp, CountsMP):
        raise TypeError(
            "qml.counts has no fixed shape; under jit qjaxiface measures it as samples and "
            "counts them in JAX (see qjaxiface.counts). This is a bug if you see it."
        )
    if isinstance(mp, SampleMP) and isinstance(mp.mv, MeasurementValue):
        # A single mid-circuit measurement is sampled as a flat vector; mp.shape says (shots, 1).
        return (shots,) if shots is not None else ()
    try:
        return tuple(mp.shape(shots=shots, num_device_wires=n_wires))
    except MeasurementShapeError as err:
        raise MeasurementShapeError(
            f"{mp} has no fixed result shape with shots={shots}, and a jitted host callback must "
            f"announce its shape in advance ({err}). Give the circuit finite shots (e.g. "
            "qml.set_shots(qnode, 100) or shots=... on the tape), or measure an analytic "
            "quantity such as qml.expval or qml.probs."
        ) from err


def result_shape_dtype(tape, device=None):
    """The ``jax.ShapeDtypeStruct`` pytree of one tape's result.

    Args:
        tape (QuantumScript): the tape, after device preprocessing.
        device (Device, optional): supplies the wire count for measurements on all wires.

    Returns:
        A ``ShapeDtypeStruct`` for a single measurement, a tuple of them for several, and one more
        level of tuple over the copies of a shot vector; a leading batch dimension is added for
        parameter broadcasting.

    Examples:
        >>> import pennylane as qml
        >>> tape = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0)), qml.probs([0, 1])])
        >>> result_shape_dtype(tape)  # doctest: +NORMALIZE_WHITESPACE
        (ShapeDtypeStruct(shape=(), dtype=float...), ShapeDtypeStruct(shape=(4,), dtype=float...))
    """
    n_wires = num_device_wires(tape, device)
    batch = (tape.batch_size,) if tape.batch_size else ()

    def one_shot_setting(shots):
        structs = tuple(
            jax.ShapeDtypeStruct(
                batch + _measurement_shape(mp, shots, n_wires), jax_dtype(mp.numeric_type)
            )
            for mp in tape.measurements
        )
        return structs[0] if len(structs) == 1 else structs

    if tape.shots.has_partitioned_shots:
        return tuple(one_shot_setting(s) for s in tape.shots)
    return one_shot_setting(tape.shots.total_shots)


def jacobian_shape_dtype(tape, device=None, num_params: int | None = None):
    """The ``ShapeDtypeStruct`` pytree of one tape's Jacobian, nested as PennyLane nests it.

    One trainable parameter: the result's structure. Several: a tuple over parameters for each
    measurement (inside the shot-vector level). Real-valued results give real Jacobians.

    Args:
        tape (QuantumScript): the tape.
        device (Device, optional): supplies the wire count.
        num_params (int, optional): number of trainable parameters (default: the tape's).
    """
    trainable = tape.get_parameters(trainable_only=True)
    num_params = len(trainable) if num_params is None else num_params
    res = result_shape_dtype(tape, device)
    # An array-valued parameter (a pulse's coefficients) appends its shape to the result's; a
    # broadcast parameter's leading axis is the result's batch axis already.
    if tape.batch_size is None and len(trainable) == num_params:
        extra = [tuple(np.shape(p)) for p in trainable]
    else:
        extra = [()] * num_params

    def as_float(s, param_shape=()):
        dtype = s.dtype if jnp.issubdtype(s.dtype, jnp.inexact) else jax_dtype(float)
        return jax.ShapeDtypeStruct(s.shape + param_shape, dtype)

    def per_measurement(s):
        if num_params == 1:
            return as_float(s, extra[0])
        return tuple(as_float(s, e) for e in extra)

    def per_setting(setting):
        if len(tape.measurements) == 1:
            return per_measurement(setting)
        return tuple(per_measurement(s) for s in setting)

    if tape.shots.has_partitioned_shots:
        return tuple(per_setting(s) for s in res)
    return per_setting(res)


def conform(value, struct):
    """Cast a host result onto ``struct`` (dtype and shape), as ``pure_callback`` requires.

    Devices return float64/int64 NumPy data regardless of the x64 setting, and a few measurements
    come back as ``(n,)`` where the declared shape is ``(n, 1)`` or vice versa; both are fixed
    here so the callback never fails on a representation detail. A size mismatch is a real error.
    """
    if isinstance(struct, jax.ShapeDtypeStruct):
        arr = np.asarray(value)
        if np.iscomplexobj(arr) and not jnp.issubdtype(struct.dtype, jnp.complexfloating):
            arr = arr.real
        arr = arr.astype(struct.dtype, copy=False)
        if arr.shape != struct.shape:
            if arr.size != int(np.prod(struct.shape, dtype=np.int64)):
                raise ValueError(
                    f"the device returned a result of shape {arr.shape} where qjaxiface expected "
                    f"{struct.shape}; please report this with the circuit that produced it."
                )
            arr = arr.reshape(struct.shape)
        return arr
    if isinstance(struct, dict):
        return {k: conform(value[k], s) for k, s in struct.items()}
    if len(value) != len(struct):
        raise ValueError(
            f"the device returned {len(value)} results where qjaxiface expected {len(struct)}; "
            "please report this with the circuit that produced it."
        )
    return tuple(conform(v, s) for v, s in zip(value, struct))


__all__ = [
    "conform",
    "jacobian_shape_dtype",
    "num_device_wires",
    "result_shape_dtype",
]
