"""Eager bindings (interface ``"jax"``): the executor sees concrete values.

``jax_jvp_execute`` registers a ``custom_jvp``: its rule asks the Jacobian product calculator for
the Jacobian at the (concrete) primal point and contracts it with the tangents in ``jax.numpy``.
Because that contraction is linear and traceable, JAX derives reverse mode (``grad``, ``jacrev``)
and, when the calculator itself differentiates through a JAX boundary (``max_diff > 1``), higher
orders. ``jax_vjp_execute`` registers a ``custom_vjp`` for device-provided VJPs: reverse mode only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax

from .._compat import outside_traces
from .._log import executor_name, log_entry
from ..detect import custom_rule_traces_primals, get_jax_interface_name
from ..params import host_parameters, with_trainable
from ._jvp import assemble_jvps, jvp_from_jacobian, split_broadcast, to_jax, trainable_split
from ._tapebox import TapeBox
from ._vjp import FORWARD_MODE_HINT, device_vjp_backward, reraise_forward_mode
from .jit import jax_jit_jvp_execute, jax_jit_vjp_execute

ExecuteFn = Callable[[Sequence], tuple]


def _positions(tapes) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.trainable_params) for t in tapes)


def _bind(box: TapeBox, params):
    return with_trainable(
        box.tapes, params, _positions(box.tapes), [range(len(p)) for p in params], host=True
    )


def _execute(params, box: TapeBox, execute_fn: ExecuteFn, jpc):
    return to_jax(execute_fn(_bind(box, params)))


def _execute_jvp(box: TapeBox, execute_fn: ExecuteFn, jpc, primals, tangents):
    (params,), (tangents,) = primals, tangents
    indices, values = trainable_split(box.tapes, tangents)
    tapes = with_trainable(box.tapes, params, _positions(box.tapes), indices, host=True)
    if not any(indices):
        results = to_jax(execute_fn(tapes))
        jacobians = tuple(() for _ in tapes)
        jvps = tuple(
            jvp_from_jacobian(jac, vals, tape, res)
            for jac, vals, tape, res in zip(jacobians, values, tapes, results)
        )
        return results, jvps
    expanded, groups = split_broadcast(tapes)
    if any(isinstance(p, jax.core.Tracer) for p in jax.tree_util.tree_leaves(params)):
        results, jacobians = jpc.execute_and_compute_jacobian(expanded)
    else:
        # Concrete primals, but under eager grad the tangent trace is current: operators a
        # gradient transform builds (stoch_pulse_grad's split ParametrizedEvolutions) would hold
        # tracers the device cannot read.
        with outside_traces():
            results, jacobians = jpc.execute_and_compute_jacobian(expanded)
    return assemble_jvps(tapes, groups, expanded, to_jax(results), jacobians, values)


_jvp_execute = jax.custom_jvp(_execute, nondiff_argnums=(1, 2, 3))
_jvp_execute.defjvp(_execute_jvp, symbolic_zeros=True)


def jax_jvp_execute(tapes: Sequence, execute_fn: ExecuteFn, jpc, device=None) -> tuple:
    """Execute tapes with eager JAX parameters, differentiable through a ``custom_jvp``.

    Args:
        tapes (Sequence[QuantumScript]): tapes whose trainable parameters
            (``tape.trainable_params``) are JAX values; they are the differentiable inputs.
        execute_fn (Callable): maps a batch of tapes to their results.
        jpc (JacobianProductCalculator): anything with PennyLane's calculator methods; only
            ``execute_and_compute_jacobian`` is used.
        device (Device, optional): used only to name the executor in logs.

    Returns:
        tuple: one result per tape, as JAX arrays.

    Abstract (jitted or vmapped) parameters are handed to
    [``jax_jit_jvp_execute``][qjaxiface.jax_jit_jvp_execute], since the executor cannot read
    them; so is every call while ``jax_custom_jvp3`` is on, since JAX then traces the rule even
    for concrete values.

    Examples:
        >>> import jax, pennylane as qml
        >>> from pennylane.workflow.jacobian_products import TransformJacobianProducts
        >>> dev = qml.device("default.qubit")
        >>> execute_fn = lambda tapes: dev.execute(tapes)
        >>> jpc = TransformJacobianProducts(execute_fn, qml.gradients.param_shift)
        >>> def cost(x):
        ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        ...     tape.trainable_params = [0]
        ...     return jax_jvp_execute([tape], execute_fn, jpc)[0]
        >>> round(float(jax.grad(cost)(jax.numpy.array(0.5))), 6)  # -sin(0.5)
        -0.479426
    """
    if get_jax_interface_name(tapes) == "jax-jit":
        # The executor cannot read tracers; the callback binding can.
        return jax_jit_jvp_execute(tapes, execute_fn, jpc, device)
    if custom_rule_traces_primals("jvp"):
        if not any(isinstance(p, jax.core.Tracer) for t in tapes for p in t.get_parameters()):
            # Nothing to differentiate: run the tapes as they are (the device's own errors and
            # shapes, no callback).
            log_entry("jax", "direct", executor_name(device), len(tapes))
            return to_jax(execute_fn(host_parameters(tapes)))
        return jax_jit_jvp_execute(tapes, execute_fn, jpc, device, interface="jax")
    return traced_jvp_execute(tapes, execute_fn, jpc, device, interface="jax")


def traced_jvp_execute(tapes, execute_fn, jpc, device=None, interface="jax-jit") -> tuple:
    """The ``custom_jvp`` binding without a callback, for calculators that JAX can trace.

    Used for the outer level of higher-order pipelines, whose forward pass and Jacobian go
    through further JAX boundaries, so tracers are fine even under ``jit``.
    """
    log_entry(interface, "custom_jvp", executor_name(device), len(tapes))
    params = tuple(tuple(t.get_parameters(trainable_only=True)) for t in tapes)
    return _jvp_execute(params, TapeBox(tuple(tapes)), execute_fn, jpc)


def _vjp_forward(params, box: TapeBox, execute_fn: ExecuteFn, jpc, device):
    return _execute(params, box, execute_fn, jpc), params


def _vjp_backward(box: TapeBox, execute_fn: ExecuteFn, jpc, device, params, dy):
    return (device_vjp_backward(box.tapes, jpc, params, dy),)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _vjp_execute(params, box: TapeBox, execute_fn: ExecuteFn, jpc, device):
    return _execute(params, box, execute_fn, jpc)


_vjp_execute.defvjp(_vjp_forward, _vjp_backward)


def jax_vjp_execute(tapes: Sequence, execute_fn: ExecuteFn, jpc, device=None) -> tuple:
    """Execute tapes with eager JAX parameters, differentiable through a ``custom_vjp``.

    For calculators that provide vector-Jacobian products directly (``device_vjp=True``). The
    backward pass calls ``jpc.compute_vjp`` through ``jax.pure_callback``, so it also works when
    the cotangents are traced (``jit`` or ``vmap`` around ``grad``). Forward mode (``jax.jvp``,
    ``jacfwd``, ``hessian``) is not available with a ``custom_vjp``: use reverse mode or
    ``device_vjp=False``.

    Args:
        tapes (Sequence[QuantumScript]): the tapes; their trainable parameters are the inputs.
        execute_fn (Callable): maps a batch of tapes to their results.
        jpc (JacobianProductCalculator): supplies ``compute_vjp``.
        device (Device, optional): used only to name the executor in logs.

    Returns:
        tuple: one result per tape, as JAX arrays.
    """
    iface = get_jax_interface_name(tapes)
    if iface == "jax-jit" or custom_rule_traces_primals("vjp"):
        return jax_jit_vjp_execute(tapes, execute_fn, jpc, device, interface=iface)
    log_entry("jax", "custom_vjp", executor_name(device), len(tapes))
    params = tuple(tuple(t.get_parameters(trainable_only=True)) for t in tapes)
    with reraise_forward_mode():
        return _vjp_execute(params, TapeBox.of(tapes), execute_fn, jpc, device)


__all__ = ["FORWARD_MODE_HINT", "jax_jvp_execute", "jax_vjp_execute"]
