"""``jax.pure_callback`` with batching that costs one host call per batch.

JAX's ``vmap`` of a callback either loops in Python (``"sequential"``) or hands the callback the
whole batch (``"broadcast_all"``). We always take the whole batch, then either build broadcast
tapes (one device execution, where the device broadcasts natively) or expand the batch into
tapes and still make a single executor call, which a device can parallelise.

An exception raised by the host code is recorded (``qjaxiface.faults``) before JAX wraps it in
a ``JaxRuntimeError``; when the callback runs here and now (concrete values), the original
exception is re-raised in place of JAX's wrapper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import numpy as np

from .. import faults
from ..shapes import conform


def _batched_struct(structs, batch_shape):
    return jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(tuple(batch_shape) + tuple(s.shape), s.dtype), structs
    )


def batched_pure_callback(
    run_many: Callable[[Sequence], Sequence],
    out_structs,
    args,
    *,
    run_broadcast: Callable | None = None,
):
    """Call host code on concrete values of ``args``, once per (possibly vmapped) batch.

    Args:
        run_many: maps a list of argument pytrees to the list of their outputs, in one host call.
        out_structs: ``ShapeDtypeStruct`` pytree of one output.
        args: pytree of JAX values (tracers under ``jit``).
        run_broadcast: optional; maps argument leaves with one leading batch axis to outputs with
            that leading axis (native parameter broadcasting). Used instead of ``run_many`` for
            batches when given.

    Returns:
        The output pytree, as JAX values.
    """
    leaves, treedef = jax.tree_util.tree_flatten(args)
    ndims = [np.ndim(leaf) for leaf in leaves]

    def host(*flat):
        # Copies: JAX hands the callback read-only buffers, and C++ simulators (lightning's
        # Hermitian expval) reject read-only arrays, while gradient code may write in place.
        flat = [np.array(x) for x in flat]
        extra = flat[0].ndim - ndims[0] if flat else 0
        if extra == 0:
            return conform(run_many([jax.tree_util.tree_unflatten(treedef, flat)])[0], out_structs)
        batch_shape = flat[0].shape[:extra]
        size = math.prod(batch_shape)
        flat = [x.reshape((size, *x.shape[extra:])) for x in flat]
        target = _batched_struct(out_structs, batch_shape)
        if run_broadcast is not None:
            out = run_broadcast(jax.tree_util.tree_unflatten(treedef, flat))
            return conform(out, target)
        outs = run_many(
            [jax.tree_util.tree_unflatten(treedef, [x[b] for x in flat]) for b in range(size)]
        )
        outs = [conform(o, out_structs) for o in outs]
        stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *outs)
        return conform(stacked, target)

    def guarded_host(*flat):
        try:
            return host(*flat)
        except Exception as err:
            raise faults.record(err) from err

    # Concrete arguments: the callback runs inside this call. Give back what the host raised.
    with faults.reraised_here():
        return jax.pure_callback(guarded_host, out_structs, *leaves, vmap_method="broadcast_all")
