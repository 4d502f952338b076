"""The device executor: the PennyLane device's own pipeline behind a binding.

PennyLane's outer transform program (the device's preprocessing, gradient expansions, caching)
runs on the tapes; the inner program and ``device.execute`` run inside the binding, eagerly, traced
(backprop) or through ``jax.pure_callback``; a Jacobian-product calculator
(``pennylane.workflow.jacobian_products``) supplies derivatives: device derivatives, device
VJPs, or a gradient transform, nested for ``max_diff > 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pennylane as qml
from pennylane.transforms.core import CompilePipeline
from pennylane.workflow import _setup_transform_program
from pennylane.workflow.jacobian_products import (
    DeviceDerivatives,
    DeviceJacobianProducts,
    NoGradients,
    TransformJacobianProducts,
)

from .._hints import hinted
from .._log import executor_name, log_entry
from ..boundary import choose_binding, jax_jvp_execute
from ..boundary._higher_order import FirstOrderJacobians
from ..params import mark_jax_parameters_trainable


def run_on_device(tapes, device, config, iface: str, *, diff_method, cache, cachesize) -> tuple:
    """The results of ``tapes`` through the device's pipeline, made differentiable."""
    outer, inner = _setup_transform_program(device, config, cache, cachesize)
    with hinted(device, diff_method):
        tapes, outer_post = outer(tapes)
    return outer_post(_run(tapes, device, config, inner, iface))


def _make_inner_execute(device, inner: CompilePipeline, config) -> Callable:
    def inner_execute(tapes):
        transformed, post = inner(tapes)
        results = device.execute(transformed, execution_config=config) if transformed else ()
        return post(results)

    return inner_execute


def _run(tapes, device, config, inner, iface: str):
    inner_execute = _make_inner_execute(device, inner, config)
    if config.gradient_method == "backprop":
        log_entry(iface, "traced", executor_name(device), len(tapes))
        return inner_execute(tapes)

    jpc, execute_fn = _jacobian_pipeline(config, device, inner_execute)
    if config.derivative_order == 1 and not isinstance(jpc, NoGradients):
        jpc = FirstOrderJacobians(jpc, _describe(config))
    mark_jax_parameters_trainable(tapes)

    binding = choose_binding(config, jpc, iface)
    return binding(tapes, execute_fn, jpc, device=device)


def _describe(config) -> str:
    method = config.gradient_method
    name = method if isinstance(method, str) else getattr(method, "__name__", repr(method))
    if config.use_device_jacobian_product or config.use_device_gradient:
        return f"the device's own derivatives (diff_method={name!r})"
    return f"diff_method={name!r} with max_diff=1"


def _auto_boundary(tapes, execute_fn, jpc, device):
    """An inner level of a higher-order pipeline: eager or callback, decided per call."""
    tapes = tuple(t.copy() for t in tapes)
    mark_jax_parameters_trainable(tapes)
    return jax_jvp_execute(tapes, execute_fn, jpc, device=device)


class _StandardWiresVJPs:
    """Maps tapes to wires ``0..n-1`` before default.qubit's ``compute_vjp``.

    default.qubit's ``compute_vjp`` (PennyLane 0.45) skips the wire mapping its other adjoint
    entry points apply, and fails (``IndexError`` in ``apply_operation``) for tapes whose wires
    are not ``0..n-1`` in order, e.g. a circuit starting on wire 1 of a 4-wire device. The VJP
    with respect to the parameters does not depend on wire labels. Can go when default.qubit's
    ``compute_vjp`` maps wires itself (PennyLane 0.45 does not).
    """

    def __init__(self, jpc):
        self._jpc = jpc

    def compute_vjp(self, tapes, dy):
        return self._jpc.compute_vjp(tuple(t.map_to_standard_wires() for t in tapes), dy)

    def __getattr__(self, name):
        return getattr(self._jpc, name)


def _jacobian_pipeline(config, device, inner_execute):
    """The Jacobian-product calculator and the forward execution function for ``config``."""
    if config.gradient_method is None:
        return NoGradients(), inner_execute
    if config.use_device_jacobian_product:
        jpc = DeviceJacobianProducts(device, config)
        if isinstance(device, qml.devices.DefaultQubit):
            jpc = _StandardWiresVJPs(jpc)
        return jpc, inner_execute
    if config.use_device_gradient:
        jpc = DeviceDerivatives(device, config)
        return jpc, (jpc.execute_and_cache_jacobian if config.grad_on_execution else inner_execute)
    if config.grad_on_execution is True:
        raise ValueError(
            # Starts with PennyLane's own wording, so code matching on it keeps working.
            "Gradient transforms cannot be used with grad_on_execution=True: it needs device "
            f"derivatives, but diff_method={config.gradient_method!r} is a gradient transform "
            "applied on the backward pass; "
            "pass grad_on_execution=False or 'best', or a device gradient method such as "
            "'adjoint'."
        )
    kwargs = config.gradient_keyword_arguments
    jpc = TransformJacobianProducts(inner_execute, config.gradient_method, kwargs)
    execute_fn = inner_execute
    for _ in range(1, config.derivative_order):
        execute_fn = partial(_auto_boundary, execute_fn=execute_fn, jpc=jpc, device=device)
        jpc = TransformJacobianProducts(execute_fn, config.gradient_method, kwargs)
    return jpc, execute_fn


__all__ = ["run_on_device"]
