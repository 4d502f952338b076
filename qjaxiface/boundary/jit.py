"""Traced bindings (interface ``"jax-jit"``): the executor runs on the host through callbacks.

Under ``jit`` (or ``vmap``) the parameters are abstract, so the device is reached through
``jax.pure_callback`` with the exact ``ShapeDtypeStruct`` of each tape's result
(``qjaxiface.shapes``).

``jax_jit_jvp_execute`` registers a ``custom_jvp`` whose rule fetches the Jacobian through a
second callback and contracts it with the tangents in ``jax.numpy``; JAX derives ``grad``,
``jacrev`` and ``vmap`` of it. ``jax_jit_vjp_execute`` registers a ``custom_vjp`` around device
VJPs. Both batch under ``vmap`` into a single host call (see ``_callback``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax
import pennylane as qml
from pennylane.measurements import CountsMP, MidMeasureMP

from .._log import executor_name, log_entry
from .._tangents import zero_tangent_like
from ..detect import is_differentiation_tracer
from ..faults import reraised_here
from ..params import with_trainable
from ..shapes import jacobian_shape_dtype, result_shape_dtype
from ._callback import batched_pure_callback
from ._higher_order import HigherOrderError, higher_order_message
from ._jvp import assemble_jvps, split_broadcast, trainable_split
from ._tapebox import TapeBox
from ._vjp import FORWARD_MODE_HINT, device_vjp_backward, reraise_forward_mode

ExecuteFn = Callable[[Sequence], tuple]


class _Device:
    """Hashable, identity-compared holder for the device (a non-diff argument)."""

    __slots__ = ("device",)

    def __init__(self, device):
        self.device = device


def _preflight_gradient_transform(jpc, tapes) -> None:
    """Apply ``jpc``'s gradient transform to traced ``tapes`` once, discarding the result.

    Under ``jit`` the transform runs inside a host callback, where an error it raises about the
    circuit itself (e.g. parameter-shift of ``qml.state()``) would reach the user as JAX's
    ``JaxRuntimeError`` at run time. Raising it here, at trace time, gives the same exception as
    the eager path. Only PennyLane's validation errors are raised; anything else (a transform that
    needs concrete values, say) is left for the host call, which sees concrete values.
    """
    inner = getattr(jpc, "_jpc", jpc)
    transform = getattr(inner, "_gradient_transform", None)
    if transform is None:
        return
    kwargs = getattr(inner, "_gradient_kwargs", None) or {}
    try:
        transform(tuple(tapes), **kwargs)
    except (jax.errors.JAXTypeError, jax.errors.JAXIndexError):
        return
    except (ValueError, NotImplementedError, qml.exceptions.QuantumFunctionError):
        raise
    except Exception:  # anything else is decided on concrete values
        return


def _check_no_counts(tapes):
    if any(isinstance(m, CountsMP) for t in tapes for m in t.measurements):
        raise NotImplementedError(
            "qml.counts has no fixed shape, so a jitted host callback cannot return it. "
            "qjaxiface.execute (and QNodes after qjaxiface.install()) measure counts under jit "
            "as samples and count them in JAX; call the bindings through qjaxiface.execute, or "
            "measure qml.sample yourself."
        )


def _native_broadcast(device, tapes) -> bool:
    """Whether ``device.execute`` accepts broadcast tapes as they are at this point."""
    if device is None or any(t.batch_size for t in tapes):
        return False
    if any(isinstance(op, MidMeasureMP) or hasattr(op, "meas_val") for t in tapes for op in t):
        return False
    program = device.preprocess_transforms()
    names = {getattr(getattr(t, "tape_transform", None), "__name__", "") for t in program}
    return "broadcast_expand" not in names


def _result_structs(tapes, device):
    return tuple(result_shape_dtype(t, device) for t in tapes)


def _callback_execute(params, box: TapeBox, execute_fn: ExecuteFn, jpc, dev: _Device):
    tapes = box.tapes
    positions = [tuple(t.trainable_params) for t in tapes]
    structs = _result_structs(tapes, dev.device)
    n = len(tapes)

    def bind(p):
        return with_trainable(tapes, p, positions, [range(len(x)) for x in p])

    def run_many(batch):
        results = execute_fn(tuple(t for p in batch for t in bind(p)))
        return [tuple(results[i * n : (i + 1) * n]) for i in range(len(batch))]

    run_broadcast = None
    if _native_broadcast(dev.device, tapes):

        def run_broadcast(p):
            return tuple(execute_fn(bind(p)))

    return batched_pure_callback(run_many, structs, params, run_broadcast=run_broadcast)


def _callback_jvp(box: TapeBox, execute_fn: ExecuteFn, jpc, dev: _Device, primals, tangents):
    (params,), (tangents,) = primals, tangents
    if any(is_differentiation_tracer(p) for p in jax.tree_util.tree_leaves(params)):
        raise HigherOrderError(higher_order_message("a host callback"))
    tapes = box.tapes
    indices, values = trainable_split(tapes, tangents)
    if not any(indices):
        results = _callback_execute(params, box, execute_fn, jpc, dev)
        return results, jax.tree_util.tree_map(zero_tangent_like, results)

    positions = [tuple(t.trainable_params) for t in tapes]
    # Shapes are fixed at trace time from the expansion of the traced tapes; the host repeats
    # the same expansion on concrete values.
    traced = with_trainable(tapes, params, positions, indices)
    expanded, groups = split_broadcast(traced)
    _preflight_gradient_transform(jpc, expanded)
    res_structs = _result_structs(expanded, dev.device)
    jac_structs = tuple(
        jacobian_shape_dtype(t, dev.device) if t.trainable_params else () for t in expanded
    )
    n = len(expanded)

    def run_many(batch):
        all_tapes = tuple(
            t
            for p in batch
            for t in split_broadcast(with_trainable(tapes, p, positions, indices))[0]
        )
        results, jacs = jpc.execute_and_compute_jacobian(all_tapes)
        return [
            (tuple(results[i * n : (i + 1) * n]), tuple(jacs[i * n : (i + 1) * n]))
            for i in range(len(batch))
        ]

    results, jacobians = batched_pure_callback(run_many, (res_structs, jac_structs), params)
    return assemble_jvps(tapes, groups, expanded, results, jacobians, values)


_jit_jvp_execute = jax.custom_jvp(_callback_execute, nondiff_argnums=(1, 2, 3, 4))
_jit_jvp_execute.defjvp(_callback_jvp, symbolic_zeros=True)


def jax_jit_jvp_execute(
    tapes: Sequence, execute_fn: ExecuteFn, jpc, device=None, *, interface: str = "jax-jit"
) -> tuple:
    """Execute tapes with traced JAX parameters via ``pure_callback`` and a ``custom_jvp``.

    Args:
        tapes (Sequence[QuantumScript]): tapes whose trainable parameters
            (``tape.trainable_params``) are the differentiable (possibly traced) inputs.
        execute_fn (Callable): maps a batch of tapes with concrete parameters to results.
        jpc (JacobianProductCalculator): supplies ``execute_and_compute_jacobian``.
        device (Device, optional): fixes the wire count of "all wires" measurements and tells
            whether the device broadcasts natively; without it the tape's wires are used and
            batches are expanded.
        interface (str): the interface named in the log record (``"jax"`` when an eager
            binding hands over, e.g. under ``jax_custom_jvp3``).

    Returns:
        tuple: one result per tape, as JAX arrays with exactly the eager shapes.

    Raises:
        NotImplementedError: for ``qml.counts`` (shapeless);
            [``qjaxiface.execute``][qjaxiface.execute] rewrites counts to samples before reaching
            this binding.

    Examples:
        >>> import jax, pennylane as qml
        >>> from pennylane.workflow.jacobian_products import TransformJacobianProducts
        >>> dev = qml.device("default.qubit")
        >>> execute_fn = lambda tapes: dev.execute(tapes)
        >>> jpc = TransformJacobianProducts(execute_fn, qml.gradients.param_shift)
        >>> @jax.jit
        ... def cost(x):
        ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        ...     tape.trainable_params = [0]
        ...     return jax_jit_jvp_execute([tape], execute_fn, jpc, dev)[0]
        >>> round(float(jax.grad(cost)(0.5)), 6)
        -0.479426
    """
    log_entry(interface, "callback+custom_jvp", executor_name(device), len(tapes))
    _check_no_counts(tapes)
    params = tuple(tuple(t.get_parameters(trainable_only=True)) for t in tapes)
    # With concrete values (eager under jax_custom_jvp3) the callback runs inside this call.
    with reraised_here():
        return _jit_jvp_execute(params, TapeBox(tuple(tapes)), execute_fn, jpc, _Device(device))


def _vjp_forward(params, box, execute_fn, jpc, dev):
    if any(is_differentiation_tracer(p) for p in jax.tree_util.tree_leaves(params)):
        # Forward mode over the reverse pass (jax.hessian under jit): JAX would differentiate
        # the pure_callback itself and fail with an internal error.
        raise TypeError(FORWARD_MODE_HINT)
    return _callback_execute(params, box, execute_fn, jpc, dev), params


def _vjp_backward(box, execute_fn, jpc, dev, params, dy):
    return (device_vjp_backward(box.tapes, jpc, params, dy),)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _jit_vjp_execute(params, box, execute_fn, jpc, dev):
    return _callback_execute(params, box, execute_fn, jpc, dev)


_jit_vjp_execute.defvjp(_vjp_forward, _vjp_backward)


def jax_jit_vjp_execute(
    tapes: Sequence, execute_fn: ExecuteFn, jpc, device=None, *, interface: str = "jax-jit"
) -> tuple:
    """Execute tapes with traced JAX parameters via ``pure_callback`` and a ``custom_vjp``.

    The backward pass calls ``jpc.compute_vjp`` in a second callback. Reverse mode only.

    Args:
        tapes (Sequence[QuantumScript]): the tapes; their trainable parameters are the inputs.
        execute_fn (Callable): maps a batch of tapes with concrete parameters to results.
        jpc (JacobianProductCalculator): supplies ``compute_vjp``.
        device (Device, optional): as for [``jax_jit_jvp_execute``][qjaxiface.jax_jit_jvp_execute].
        interface (str): the interface named in the log record.

    Returns:
        tuple: one result per tape, as JAX arrays.
    """
    log_entry(interface, "callback+custom_vjp", executor_name(device), len(tapes))
    _check_no_counts(tapes)
    params = tuple(tuple(t.get_parameters(trainable_only=True)) for t in tapes)
    with reraise_forward_mode(), reraised_here():
        return _jit_vjp_execute(params, TapeBox.of(tapes), execute_fn, jpc, _Device(device))
