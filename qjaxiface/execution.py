"""``qjaxiface.execute``: the entry point, a drop-in for ``qml.execute`` with JAX parameters.

The pipeline, top to bottom:

1. user transforms (``transform_program``), as in PennyLane;
2. interface: ``"jax"`` (concrete values) or ``"jax-jit"`` (abstract tracers), see
   ``qjaxiface.detect``;
3. configuration: PennyLane's resolution and the device's ``setup_execution_config``, so devices
   see exactly the config they would see under ``qml.execute``;
4. ``qml.counts`` under jit becomes samples counted in JAX (``qjaxiface.counts``);
5. the executor: ``executors.run_on_xla`` when its policy (``executors/xla/_select.py``) takes
   the call, the tapes becoming one traced JAX computation, derivative rule included; otherwise
   ``executors.run_on_device``: the device's preprocessing, a Jacobian-product calculator, and
   the binding ``boundary.choose_binding`` picks (``custom_jvp`` / ``custom_vjp``, eager or
   through ``pure_callback``; ``backprop`` traces the device directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pennylane as qml
from pennylane.math import Interface
from pennylane.transforms.core import CompilePipeline
from pennylane.workflow.resolution import _resolve_execution_config

from ._compat import jax_core_shim
from ._hints import hinted
from .counts import counts_as_samples, has_counts
from .detect import resolve_interface, validate_interface
from .executors import run_on_device, run_on_xla
from .executors.xla import AmplitudeMesh, using_mesh
from .executors.xla._lift import templates_with_stand_ins

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
    mesh=None,
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
        mesh (jax.sharding.Mesh, optional): shard the state vector over the mesh's devices
            (a power of two of them): the XLA executor runs each circuit with its top
            ``log2(devices)`` qubits global (docs/distributed.md). Implies ``executor="xla"``
            when ``executor`` is ``"auto"``.

    Returns:
        tuple: one result per tape, as JAX arrays (and dictionaries for ``qml.counts``).

    Raises:
        ValueError: for an interface other than ``"auto"``, ``"jax"``, ``"jax-jit"``, an
            unknown ``executor``, or a ``mesh`` that is not a mesh of a power of two of devices
            or comes with ``executor="device"``.

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
    amplitude_mesh = None
    if mesh is not None:
        if executor == "device":
            raise ValueError(
                "qjaxiface.execute got mesh= with executor='device'; a sharded state runs on "
                "the XLA executor: pass executor='xla' (or 'auto')"
            )
        amplitude_mesh = AmplitudeMesh.of(mesh)
        executor = "xla"
    if not isinstance(device, qml.devices.Device):
        device = qml.devices.LegacyDeviceFacade(device)
    tapes = tuple(tapes)
    if not tapes:
        return ()
    with jax_core_shim(), using_mesh(amplitude_mesh):  # the shim: see _compat
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
    resolve_tapes = tapes
    if diff_method == "adjoint" and isinstance(device, qml.devices.DefaultQubit):
        # default.qubit decides whether it supports adjoint by decomposing the tapes; a
        # template's decomposition with traced weights is one traced slice per gate (4 s of a
        # 5 s first call at 100 layers of 12 qubits), and only its structure matters here.
        resolve_tapes = tuple(templates_with_stand_ins(t, device) for t in tapes)
    with hinted(device, diff_method):
        config = _resolve_execution_config(config, device, resolve_tapes)
    # PennyLane calls every JAX execution inside a jit trace "jax-jit", even with concrete
    # parameters; follow it, so the device was set up for the interface the binding uses.
    if config.interface == Interface.JAX_JIT:
        iface = "jax-jit"

    counts_post = _identity
    if iface == "jax-jit" and has_counts(tapes):
        tapes, counts_post = counts_as_samples(tapes, device)

    results = run_on_xla(tapes, device, config, iface, executor)
    if results is None:
        results = run_on_device(
            tapes, device, config, iface, diff_method=diff_method, cache=cache, cachesize=cachesize
        )
    return user_post(counts_post(results))


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


__all__ = ["execute"]
