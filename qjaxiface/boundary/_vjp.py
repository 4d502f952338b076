"""The backward pass for device-provided vector-Jacobian products."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import jax
import numpy as np

from .._dtypes import jax_dtype
from ..detect import is_differentiation_tracer
from ..params import with_trainable
from ._callback import batched_pure_callback

FORWARD_MODE_HINT = (
    "qjaxiface: device_vjp=True binds the circuit with a jax.custom_vjp, which supports reverse "
    "mode only (jax.grad, jax.vjp, jax.jacrev). For forward mode (jax.jvp, jax.jacfwd, "
    "jax.hessian) pass device_vjp=False."
)


@contextlib.contextmanager
def reraise_forward_mode():
    """Turn JAX's terse custom_vjp forward-mode error into one that says what to do."""
    try:
        yield
    except TypeError as err:
        if "forward-mode" in str(err) and "custom_vjp" in str(err):
            raise TypeError(FORWARD_MODE_HINT) from err
        raise


def _param_struct(p):
    # np.result_type(array) is deprecated in NumPy (dtype=arr); read the array's own dtype.
    dtype = p.dtype if hasattr(p, "dtype") else np.result_type(p)
    if not np.issubdtype(dtype, np.inexact):
        dtype = jax_dtype(float)
    return jax.ShapeDtypeStruct(np.shape(p), dtype)


def device_vjp_backward(tapes: Sequence, jpc, params, dy):
    """Cotangents of ``params`` from ``jpc.compute_vjp``, through one host callback.

    Works for concrete and traced cotangents alike, and under ``vmap`` (one call per batch).
    """
    if any(is_differentiation_tracer(x) for x in jax.tree_util.tree_leaves((params, dy))):
        # Differentiating the backward pass is forward mode over a custom_vjp in disguise.
        raise TypeError(FORWARD_MODE_HINT)
    positions = [tuple(t.trainable_params) for t in tapes]
    out_structs = jax.tree_util.tree_map(_param_struct, params)

    def run_many(batch):
        all_tapes, all_dy = [], []
        for p, d in batch:
            all_tapes.extend(with_trainable(tapes, p, positions, [range(len(x)) for x in p]))
            all_dy.extend(d)
        vjps = jpc.compute_vjp(tuple(all_tapes), tuple(all_dy))
        n = len(tapes)
        return [tuple(vjps[i * n : (i + 1) * n]) for i in range(len(batch))]

    return batched_pure_callback(run_many, out_structs, (params, dy))
