"""Executors: what actually computes tape results.

* the **device executor** (``device.py``): the PennyLane device's own ``execute`` / derivative
  methods, reached directly (eager), traced (backprop) or through ``jax.pure_callback`` (jit);
* the **XLA executor** (``xla/``): the tapes as one pure JAX function, derivative rule
  included, compiled by XLA. ``xla/_select.py`` decides, per execution, whether it takes the call.
"""

from __future__ import annotations

from .device import run_on_device
from .xla._select import XLAPlan, log_refusal, might_use_xla, run_on_xla, select_xla

__all__ = ["XLAPlan", "log_refusal", "might_use_xla", "run_on_device", "run_on_xla", "select_xla"]
