"""Decision 4: the binding that makes the device pipeline's results differentiable.

One function, ``choose_binding``, picks among the bindings of this package (PennyLane's
``workflow/run.py::_get_ml_boundary_execute`` is the model): device VJPs, nested gradient
transforms, the interface, and whether the device executes JAX tracers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
from pennylane.workflow.jacobian_products import TransformJacobianProducts

from .._log import logger
from .eager import jax_jvp_execute, jax_vjp_execute, traced_jvp_execute
from .jit import jax_jit_jvp_execute, jax_jit_vjp_execute


def choose_binding(config, jpc, iface: str) -> Callable:
    """The binding that makes the device pipeline's results differentiable (decision 4).

    ``custom_vjp`` around the device's VJPs when the user asked for them; otherwise a
    ``custom_jvp``: traced where its rule can be traced (nested gradient transforms, a device
    that executes tracers itself), through ``pure_callback`` under ``jit``, eager otherwise.
    """
    traced = iface == "jax-jit"
    nested = config.derivative_order > 1 and isinstance(jpc, TransformJacobianProducts)
    match (config.use_device_jacobian_product, nested, traced, config.convert_to_numpy):
        case (True, _, True, _):
            return jax_jit_vjp_execute
        case (True, _, False, _):
            return jax_vjp_execute
        case (False, True, _, _):
            # The calculator differentiates through nested boundaries, so its rule is traceable
            # even under jit: no callback at this level (inner levels pick their own).
            return partial(traced_jvp_execute, interface=iface)
        case (False, False, True, False):
            return _traced_else_callback
        case (False, False, True, True):
            return jax_jit_jvp_execute
        case _:
            return jax_jvp_execute


# What a traced device raises where it needs a concrete value (a Python branch on a tracer).
_NEEDS_CONCRETE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _traced_else_callback(tapes, execute_fn, jpc, device=None) -> tuple:
    """Trace a device that executes JAX tracers itself; where its trace fails, use a callback.

    A device whose config says ``convert_to_numpy=False`` (default.qubit seeded with a JAX PRNG
    key) is traced into the program, mid-circuit measurements and sampling included, as
    PennyLane does. Some of its paths still branch on values (tree-traversal mid-circuit
    measurements): PennyLane's boundary raises there, qjaxiface runs them behind
    ``pure_callback``, as for any other device. Tracing has no side effects, so retrying is safe.
    """
    try:
        return traced_jvp_execute(tapes, execute_fn, jpc, device=device, interface="jax-jit")
    except _NEEDS_CONCRETE as err:
        logger.debug("the device cannot be traced (%s); running it behind a callback", err)
        return jax_jit_jvp_execute(tapes, execute_fn, jpc, device=device)


__all__ = ["choose_binding"]
