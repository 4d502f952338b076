"""``qjaxiface.execute``: the entry point, a drop-in for ``qml.execute`` with JAX parameters.

The pipeline, top to bottom:

1. user transforms (``transform_program``), as in PennyLane;
2. interface: ``"jax"`` (concrete values) or ``"jax-jit"`` (abstract tracers), see
   ``qjaxiface.detect``;
3. configuration: PennyLane's resolution and the device's ``setup_execution_config``, so devices
   see exactly the config they would see under ``qml.execute``;
4. ``qml.counts`` under jit becomes samples counted in JAX (``qjaxiface.counts``);
5. device preprocessing (outer transforms), then the executor and binding:

   * the XLA executor (``qjaxiface.executors.xla``) when selected: the tapes become one traced
     JAX computation, derivative rule included;
   * ``backprop``: the device is traced directly;
   * otherwise a Jacobian-product calculator around the device, bound with ``custom_jvp`` /
     ``custom_vjp``, eagerly or through ``pure_callback``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal

import jax
import pennylane as qml
from pennylane.math import Interface
from pennylane.transforms.core import CompilePipeline
from pennylane.workflow import _setup_transform_program
from pennylane.workflow.jacobian_products import (
    DeviceDerivatives,
    DeviceJacobianProducts,
    NoGradients,
    TransformJacobianProducts,
)
from pennylane.workflow.resolution import _resolve_execution_config

from ._compat import jax_core_shim
from ._hints import hinted
from ._log import log_entry, logger
from .boundary import jax_jit_jvp_execute, jax_jit_vjp_execute, jax_jvp_execute, jax_vjp_execute
from .boundary._common import FirstOrderJacobians
from .boundary.eager import executor_name, traced_jvp_execute
from .counts import counts_as_samples, has_counts
from .detect import resolve_interface, validate_interface
from .executors import log_refusal, might_use_xla, select_xla
from .params import mark_jax_parameters_trainable

ExecutorChoice = Literal["auto", "device", "xla"]
_EXECUTORS = ("auto", "device", "xla")


def execute(
    tapes: Sequence,
    device,
    diff_method="best",
    interface="auto",
    *,
    grad_on_execution="best",
    device_vjp: bool | None = False,
    max_diff: int = 1,
    gradient_kwargs: dict | None = None,
    transform_program: CompilePipeline | None = None,
    cache="auto",
    cachesize: int = 10000,
    postselect_mode=None,
    mcm_method=None,
    executor: ExecutorChoice = "auto",
    executor_backend=None,
) -> tuple:
    """Execute a batch of tapes with JAX parameters, differentiably.

    A drop-in replacement for ``pennylane.execute`` for JAX: every argument has the same
    meaning, and results have the same nesting (one entry per tape), as JAX arrays. Works eagerly
    and under ``jax.jit``, ``jax.grad``, ``jax.jacfwd``/``jacrev``, ``jax.hessian`` (with
    ``max_diff=2`` for gradient transforms) and ``jax.vmap``, for any pytree of trainable values
    that flows into the tapes' parameters.

    Args:
        tapes (Sequence[QuantumScript]): the batch of tapes.
        device (pennylane.devices.Device): the device (legacy devices are wrapped).
        diff_method (str | Transform | None): ``"best"``, ``"backprop"``, ``"adjoint"``,
            ``"parameter-shift"``, ``"finite-diff"``, ``"spsa"``, ``"hadamard"``, ``"device"``,
            any gradient transform, or ``None`` (not differentiable).
        interface (str): ``"auto"``, ``"jax"`` or ``"jax-jit"``. ``"auto"`` and ``"jax"`` pick
            ``"jax-jit"`` when any parameter is abstract (``jit``, ``vmap``).
        grad_on_execution (bool | "best"): compute device derivatives with the forward pass.
        device_vjp (bool | None): use the device's vector-Jacobian products (``custom_vjp``; reverse
            mode only).
        max_diff (int): the highest order of derivative gradient transforms must support.
        gradient_kwargs (dict): keyword arguments for the gradient method.
        transform_program (CompilePipeline): user transforms applied before execution.
        cache (bool | dict | "auto"): cache of tape executions ("auto": only if ``max_diff > 1``).
        cachesize (int): size of the cache.
        postselect_mode (str): ``"hw-like"`` or ``"fill-shots"`` for mid-circuit postselection.
        mcm_method (str): ``"deferred"``, ``"one-shot"`` or ``"tree-traversal"``.
        executor (str): ``"auto"`` (the XLA executor for default.qubit under ``jit``, the device
            otherwise), ``"xla"`` (the XLA executor wherever it can run the tapes) or
            ``"device"`` (never the XLA executor).
        executor_backend (optional): PennyLane's concurrent executor backend, passed to the
            device config.

    Returns:
        tuple: one result per tape, as JAX arrays (and dictionaries for ``qml.counts``).

    Raises:
        ValueError: for an interface other than ``"auto"``, ``"jax"``, ``"jax-jit"`` or an
            unknown ``executor``.

    Note:
        Under ``jit``, ``qml.counts`` returns **every** outcome, zeros included (the keys a
        compiled program needs to know in advance), like ``qml.counts(all_outcomes=True)``.

    Examples:
        >>> import jax, jax.numpy as jnp, pennylane as qml
        >>> import qjaxiface
        >>> dev = qml.device("default.qubit")
        >>> def cost(x):
        ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        ...     return qjaxiface.execute([tape], dev, diff_method="parameter-shift")[0]
        >>> round(float(jax.jit(jax.grad(cost))(jnp.array(0.5))), 6)
        -0.479426
    """
    requested = validate_interface(interface)
    if executor not in _EXECUTORS:
        raise ValueError(
            f"qjaxiface.execute got executor={executor!r}; use one of "
            f"{', '.join(map(repr, _EXECUTORS))}."
        )
    if not isinstance(device, qml.devices.Device):
        device = qml.devices.LegacyDeviceFacade(device)
    tapes = tuple(tapes)
    if not tapes:
        return ()
    with jax_core_shim():  # PennyLane 0.45 code reached below calls removed jax.core names
        return _execute(
            tapes,
            device,
            diff_method,
            requested,
            grad_on_execution=grad_on_execution,
            device_vjp=device_vjp,
            max_diff=max_diff,
            gradient_kwargs=gradient_kwargs,
            transform_program=transform_program,
            cache=cache,
            cachesize=cachesize,
            postselect_mode=postselect_mode,
            mcm_method=mcm_method,
            executor=executor,
            executor_backend=executor_backend,
        )


def _execute(
    tapes: tuple,
    device,
    diff_method,
    requested: str,
    *,
    grad_on_execution,
    device_vjp,
    max_diff,
    gradient_kwargs,
    transform_program,
    cache,
    cachesize,
    postselect_mode,
    mcm_method,
    executor,
    executor_backend,
):
    transform_program = transform_program or CompilePipeline()
    tapes, user_post = transform_program(tapes)
    if transform_program.is_informative:
        return user_post(tapes)
    if not tapes:
        return user_post(())

    _check_batch_sizes(tapes)
    iface = resolve_interface(requested, tapes)
    config = qml.devices.ExecutionConfig(
        interface=Interface(iface),
        gradient_method=diff_method,
        grad_on_execution=None if grad_on_execution == "best" else grad_on_execution,
        use_device_jacobian_product=device_vjp,
        mcm_config=qml.devices.MCMConfig(postselect_mode=postselect_mode, mcm_method=mcm_method),
        gradient_keyword_arguments=gradient_kwargs or {},
        derivative_order=max_diff,
        executor_backend=executor_backend,
    )
    with hinted(device, diff_method):
        config = _resolve_execution_config(config, device, tapes)
    # PennyLane calls every JAX execution inside a jit trace "jax-jit", even with concrete
    # parameters; follow it, so the device was set up for the interface the binding uses.
    if config.interface == Interface.JAX_JIT:
        iface = "jax-jit"

    counts_post = _identity
    if iface == "jax-jit" and has_counts(tapes):
        tapes, counts_post = counts_as_samples(tapes, device)

    results = _run_on_xla(tapes, device, config, iface, executor)
    if results is None:
        outer, inner = _setup_transform_program(device, config, cache, cachesize)
        with hinted(device, diff_method):
            tapes, outer_post = outer(tapes)
        results = outer_post(_run(tapes, device, config, inner, iface, executor))
    return user_post(counts_post(results))


def _run_on_xla(tapes, device, config, iface: str, executor: str):
    """The results from the XLA executor, or ``None`` when it does not take the call.

    The tapes are preprocessed for plain execution rather than for ``diff_method``: the XLA
    executor differentiates any gate with a matrix, so it needs no decomposition into gates
    with generators (default.qubit's adjoint preprocessing turns each ``Rot`` into three
    rotations, tripling the compiled program) nor gradient-transform expansions. Where it
    declines, the call goes through the device pipeline, preprocessed for ``diff_method``.
    """
    if not might_use_xla(device, iface, executor):
        return None
    # The device's preprocessing for plain execution (gradient_method=None: no method-specific
    # decompositions or checks). Gradient expansions and caching of device executions do not
    # apply to the XLA executor.
    plain = dataclasses.replace(
        config,
        gradient_method=None,
        use_device_gradient=False,
        use_device_jacobian_product=False,
        grad_on_execution=False,
    )
    try:
        xla_tapes, post = device.preprocess_transforms(plain)(tapes)
    except Exception as err:  # the device pipeline raises it again, where PennyLane would
        log_refusal(f"the device's preprocessing failed: {err}")
        return None
    xla_fn = select_xla(xla_tapes, device, config, iface, executor)
    if xla_fn is None:
        return None
    log_entry(iface, "traced", "xla", len(xla_tapes))
    return post(xla_fn())


def _check_batch_sizes(tapes) -> None:
    """Bad parameter shapes and mismatched broadcasts: a clear error now, not a NumPy one later."""
    for i, tape in enumerate(tapes):
        try:
            tape.batch_size  # noqa: B018 - computing it validates parameter shapes
        except ValueError as err:
            if "do not match" in str(err):
                hint = (
                    "Give every broadcast parameter (leading axis) the same length, or use "
                    "jax.vmap over one of them."
                )
            elif "wrong number(s) of dimensions" in str(err):
                hint = (
                    "Pass each gate parameter with the shape the gate expects, optionally with "
                    "one leading axis for broadcasting (use jax.vmap for more batch axes)."
                )
            else:
                raise
            raise ValueError(f"tape {i} of the batch: {err} {hint}") from err


def _identity(results):
    return results


def _make_inner_execute(device, inner: CompilePipeline, config) -> Callable:
    def inner_execute(tapes):
        transformed, post = inner(tapes)
        results = device.execute(transformed, execution_config=config) if transformed else ()
        return post(results)

    return inner_execute


def _run(tapes, device, config, inner, iface: str, executor: str):
    inner_execute = _make_inner_execute(device, inner, config)
    if config.gradient_method == "backprop":
        log_entry(iface, "traced", executor_name(device), len(tapes))
        return inner_execute(tapes)

    jpc, execute_fn = _jacobian_pipeline(config, device, inner_execute)
    if config.derivative_order == 1 and not isinstance(jpc, NoGradients):
        jpc = FirstOrderJacobians(jpc, _describe(config))
    mark_jax_parameters_trainable(tapes)

    if config.use_device_jacobian_product:
        binding = jax_jit_vjp_execute if iface == "jax-jit" else jax_vjp_execute
    elif config.derivative_order > 1 and isinstance(jpc, TransformJacobianProducts):
        # The calculator differentiates through nested boundaries, so its rule is traceable
        # even under jit: no callback at this level (inner levels pick their own).
        binding = partial(traced_jvp_execute, interface=iface)
    elif iface == "jax-jit" and not config.convert_to_numpy:
        binding = _traced_else_callback
    else:
        binding = jax_jit_jvp_execute if iface == "jax-jit" else jax_jvp_execute
    return binding(tapes, execute_fn, jpc, device=device)


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
    with respect to the parameters does not depend on wire labels.
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


__all__ = ["execute"]
