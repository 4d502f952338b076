"""Configuration from the environment: read once, validated, in one place.

qjaxiface has one setting outside function arguments:

``QJAXIFACE_XLA_SHARDING``
    Whether the XLA executor spreads the rows of a shift rule over several JAX devices.
    ``auto`` (the default, also ``1`` or ``on``): on when JAX sees more than one device;
    ``0`` or ``off``: never. ``qjaxiface.executors.xla.set_sharding`` overrides it at run time.

A value is read the first time it is needed and kept for the life of the process; a value that
is not one of the valid ones raises a ``ValueError`` listing them, instead of being taken as a
default.
"""

from __future__ import annotations

import functools
import os

SHARDING_VARIABLE = "QJAXIFACE_XLA_SHARDING"
_SHARDING_VALUES = {"": True, "auto": True, "1": True, "on": True, "0": False, "off": False}


@functools.cache
def xla_sharding_allowed() -> bool:
    """Whether ``QJAXIFACE_XLA_SHARDING`` allows row sharding (it is used with >1 device only).

    Raises:
        ValueError: if the variable holds anything but ``auto``, ``1``, ``on``, ``0`` or ``off``.
    """
    raw = os.environ.get(SHARDING_VARIABLE, "auto")
    value = _SHARDING_VALUES.get(raw.strip().lower())
    if value is None:
        raise ValueError(
            f"{SHARDING_VARIABLE}={raw!r} is not a valid setting; use 'auto' (the default: shard "
            "shift-rule rows when JAX sees more than one device), '1'/'on' (the same) or "
            "'0'/'off' (never shard)."
        )
    return value


__all__ = ["SHARDING_VARIABLE", "xla_sharding_allowed"]
