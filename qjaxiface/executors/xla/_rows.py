"""The rows of a shift rule: evaluated in cache-sized chunks, and spread over JAX devices.

A shift rule evaluates the circuit at many shifted parameter vectors (rows). On one device the
rows go through ``lax.map`` in chunks whose states stay in a core's cache. With more than one
device (e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` on a CPU, or several GPUs),
the rows are padded to a multiple of the device count and constrained to a ``NamedSharding``
over a 1-D mesh, so XLA's SPMD partitioner runs each device's share there.
``QJAXIFACE_XLA_SHARDING`` and ``set_sharding`` switch that off.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..._config import xla_sharding_allowed
from ..._dtypes import state_dtype

Fn = Callable[[tuple, Any], Any]

_ENABLED: bool | None = None  # None: automatic (QJAXIFACE_XLA_SHARDING, default on with >1 device)


def set_sharding(enabled: bool | None) -> None:
    """Force row sharding on (``True``), off (``False``) or back to automatic (``None``).

    Automatic follows the ``QJAXIFACE_XLA_SHARDING`` environment variable (``auto``, the
    default: on when JAX sees more than one device; ``0``/``off``: never). Sharding only ever
    applies with more than one JAX device.

    Args:
        enabled: ``True``, ``False`` or ``None``.
    """
    global _ENABLED
    _ENABLED = enabled


_OFF = contextvars.ContextVar("qjaxiface_rows_sharding_off", default=False)


@contextlib.contextmanager
def rows_sharding_off() -> Iterator[None]:
    """No row sharding while tracing inside the block (amplitude-sharded programs)."""
    token = _OFF.set(True)
    try:
        yield
    finally:
        _OFF.reset(token)


def sharding_devices() -> list:
    """The devices rows are spread over (empty when sharding is off)."""
    if _OFF.get():
        return []
    enabled = _ENABLED
    if enabled is None:
        enabled = xla_sharding_allowed()
    devices = jax.devices()
    return devices if enabled and len(devices) > 1 else []


def shard_rows(stacked: list, in_axes: list, keys: Any) -> tuple[list, Any]:
    """Pad the row axis of the stacked leaves (and keys) and shard it over the devices.

    A stacked leaf may be a pytree of arrays with the row axis first.

    Returns the new stacked leaves and keys; callers slice the outputs back to the original
    number of rows.
    """
    devices = sharding_devices()
    batched = [x for x, ax in zip(stacked, in_axes) if ax == 0]
    if not devices or not batched:
        return stacked, keys
    n_rows = jax.tree.leaves(batched[0])[0].shape[0]
    n_dev = len(devices)
    pad = (-n_rows) % n_dev
    sharding = NamedSharding(Mesh(np.asarray(devices), ("rows",)), PartitionSpec("rows"))

    def prep(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])
        return jax.lax.with_sharding_constraint(x, sharding)

    stacked = [jax.tree.map(prep, x) if ax == 0 else x for x, ax in zip(stacked, in_axes)]
    if keys is not None:
        keys = prep(keys)
    return stacked, keys


def replicate_over_rows_mesh(tree: Any) -> Any:
    """Constrain the inexact array leaves of ``tree`` to be replicated over the rows mesh.

    A shift rule's tangent is contracted from sharded rows, its primal is not. jax 0.7.x records
    the mesh of a ``NamedSharding`` constraint in the abstract value of everything computed
    from it, and its ``custom_jvp`` check compares those avals with ``==``: the tangent
    ``float32[]`` on the ``rows`` mesh is then "not the tangent type" of the primal
    ``float32[]`` (a ``TypeError`` on every multi-device jit). Putting primal and tangent on the
    same replicated mesh makes the avals equal on every JAX; from jax 0.8 the constraint is
    free (XLA already replicates the contracted result). Remove with jax 0.7 support.
    """
    devices = sharding_devices()
    if not devices:
        return tree
    sharding = NamedSharding(Mesh(np.asarray(devices), ("rows",)), PartitionSpec())

    def put(x):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.inexact):
            return jax.lax.with_sharding_constraint(x, sharding)
        return x

    return jax.tree.map(put, tree)


CHUNK_BYTES = 1 << 19


def state_size(leaves, raw) -> int:
    """Bytes of one state vector of the program behind ``raw``."""
    program = getattr(getattr(raw, "func", raw), "__self__", None)  # a method, or a partial of one
    n = getattr(program, "n_wires", 10)
    return (2**n) * state_dtype().itemsize


def map_rows(f: Fn, stacked: list, in_axes: list, keys, key_axis, bytes_per_row: int):
    """``vmap(f)`` over the rows, evaluated chunk by chunk (``lax.map`` with ``batch_size``)."""
    batched = [j for j, ax in enumerate(in_axes) if ax == 0]
    n_rows = jax.tree.leaves(stacked[batched[0]])[0].shape[0]
    chunk = max(1, CHUNK_BYTES // max(bytes_per_row, 1))
    if chunk >= n_rows or sharding_devices():
        return jax.vmap(f, in_axes=(tuple(in_axes), key_axis))(tuple(stacked), keys)

    def one(xs):
        row_leaves, row_key = xs
        full = list(stacked)
        for j, v in zip(batched, row_leaves):
            full[j] = v
        return f(tuple(full), row_key)

    # Equal chunks, padded by repeating the first row: lax.map(batch_size=...) would trace the
    # circuit a second time for a remainder chunk, doubling the compile time.
    n_chunks = -(-n_rows // chunk)
    size = -(-n_rows // n_chunks)
    pad = n_chunks * size - n_rows

    def chunked(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)])
        return x.reshape((n_chunks, size, *x.shape[1:]))

    xs = jax.tree.map(chunked, ([stacked[j] for j in batched], keys))
    out = jax.lax.map(jax.vmap(one), xs)
    return jax.tree.map(lambda y: y.reshape((n_chunks * size, *y.shape[2:]))[:n_rows], out)
