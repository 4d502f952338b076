"""The package logger.

Every boundary entry logs one DEBUG record on the ``"qjaxiface"`` logger, naming the interface,
the binding, the executor and the number of tapes, so that ``logging.getLogger("qjaxiface")
.setLevel(logging.DEBUG)`` shows how each call was routed.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("qjaxiface")
logger.addHandler(logging.NullHandler())


def log_entry(interface: str, binding: str, executor: str, num_tapes: int) -> None:
    """Log one boundary entry at DEBUG level."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "boundary entry: interface=%s binding=%s executor=%s tapes=%d",
            interface,
            binding,
            executor,
            num_tapes,
        )


def executor_name(device) -> str:
    """A short name of the executor for log records: ``"device:<name>"``."""
    name = getattr(device, "name", None) or type(device).__name__ if device is not None else None
    return f"device:{name}" if name else "device"
