"""Decision 3: does this execution run on the XLA executor, and with what?

``run_on_xla`` preprocesses the tapes for plain execution and asks ``select_xla``, the policy:
``executor="auto"`` selects XLA for default.qubit under ``jit`` (analytic, or finite shots with a
JAX PRNG key); ``"xla"`` selects it wherever it can run; ``"device"`` never. Every refusal is
logged at DEBUG with its reason, and the call goes on to the device executor.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import pennylane as qml

from ..._log import log_entry
from ...detect import get_jax_interface_name, inside_staging_trace
from . import execute_checked, has_program, xla_unsupported_reason
from ._distributed import MeshError, current_mesh
from ._lift import cached_lift

logger = logging.getLogger("qjaxiface")

_TRANSFORM_NAMES = {
    "param_shift": "parameter-shift",
    "finite_diff": "finite-diff",
    "spsa_grad": "spsa",
}


def _xla_diff_method(method) -> str | None:
    """The XLA executor's name for a resolved gradient method; raises if it has none."""
    if method is None or isinstance(method, str):
        return method
    name = getattr(method, "__name__", None) or getattr(
        getattr(method, "tape_transform", None), "__name__", None
    )
    if name in _TRANSFORM_NAMES:
        return _TRANSFORM_NAMES[name]
    raise LookupError(f"gradient transform {name or method!r} has no XLA implementation")


_EXECUTION_METHODS = (
    "execute",
    "compute_derivatives",
    "execute_and_compute_derivatives",
    "compute_vjp",
    "execute_and_compute_vjp",
    "preprocess_transforms",
)


def _is_default_qubit(device) -> bool:
    return isinstance(device, qml.devices.DefaultQubit)


def _runs_as_default_qubit(device) -> bool:
    """default.qubit itself, or a subclass that computes results exactly as it does.

    A subclass that overrides how tapes are executed or differentiated (a noisy variant, a test
    device injecting faults) must keep its own behaviour, so "auto" leaves it on the device.
    """
    if not _is_default_qubit(device):
        return False
    cls, base = type(device), qml.devices.DefaultQubit
    return all(getattr(cls, name) is getattr(base, name) for name in _EXECUTION_METHODS)


def _prng_key(device):
    """The device's JAX PRNG key for this execution (reset per execution, as default.qubit does)."""
    if getattr(device, "_prng_key", None) is None:
        return None
    device.reset_prng_key()
    return device.get_prng_keys()[0]


def _one_off(tapes) -> bool:
    """An eager call: concrete parameters (or eager ``grad`` tracers), not inside ``jit``.

    PennyLane names every execution of a QNode declared ``interface="jax-jit"`` "jax-jit",
    eager ones too. Compiling a program for such a call costs seconds where the device takes
    milliseconds, so ``executor="auto"`` keeps it on the device unless an earlier call built
    the program (eager ``grad``/``vmap`` then run its compiled copy too).
    """
    return not (get_jax_interface_name(tapes) == "jax-jit" or inside_staging_trace())


def _reusable(tapes, diff_method, config, wire_order, lifted=None) -> bool:
    """Whether an earlier call built the program of this eager call.

    ``lifted``: per tape, (original tape, ``_lift.Lifted``), as ``XLAPlan.lifted``.
    """
    kwargs = dict(config.gradient_keyword_arguments)
    per_tape = [None] * len(tapes) if lifted is None else list(lifted)
    return all(
        has_program(t, diff_method, kwargs, wire_order, lift) for t, lift in zip(tapes, per_tape)
    )


def log_refusal(reason: str) -> None:
    """The DEBUG record saying why a call does not run on the XLA executor."""
    logger.debug("XLA executor not used (%s); using the device executor instead", reason)


def _refuse_sharded(reason: str) -> None:
    raise MeshError(
        f"mesh= runs circuits on the XLA executor, which cannot run this call: {reason}. "
        "Drop mesh= to run it on the device, unsharded."
    )


_announced: set[str] = set()  # device names already told about (once per process)
_announced_lock = threading.Lock()


def announce_takeover(device) -> None:
    """Say once per device name, at INFO, that ``executor="xla"`` runs its circuits instead.

    With ``executor="xla"`` a QNode on lightning.qubit (or any device) runs on qjaxiface's JAX
    simulator, not on that device: right for speed under ``jit``, a surprise for a user who
    chose the device for its own features.
    """
    name = getattr(device, "name", None) or type(device).__name__
    with _announced_lock:
        if name in _announced:
            return
        _announced.add(name)
    logger.info(
        "executor='xla': circuits for %s run on qjaxiface's XLA state-vector simulator, not on "
        "%s itself; pass executor='auto' (XLA only for default.qubit) or 'device' to run them "
        "on %s",
        name,
        name,
        name,
    )


def might_use_xla(device, iface: str, executor: str) -> bool:
    """Cheap pre-check: could ``select_xla`` pick the XLA executor for this call at all?"""
    if executor == "device":
        return False
    return executor == "xla" or (iface == "jax-jit" and _runs_as_default_qubit(device))


@dataclasses.dataclass(frozen=True, eq=False)
class XLAPlan:
    """A checked decision to run tapes on the XLA executor, with what the run needs."""

    tapes: tuple
    diff_method: str | None
    gradient_kwargs: dict
    wire_order: Any
    prng_key: Any
    lifted: Any = None  # per tape, (original tape, _lift.Lifted), or None

    def run(self) -> tuple:
        """The tapes' results (the support check already passed: it is not repeated)."""
        return execute_checked(
            self.tapes,
            diff_method=self.diff_method,
            gradient_kwargs=self.gradient_kwargs,
            wire_order=self.wire_order,
            prng_key=self.prng_key,
            lifted=self.lifted,
        )


def select_xla(tapes, device, config, iface: str, executor: str, lifted=None) -> XLAPlan | None:
    """A plan running ``tapes`` on the XLA executor, or ``None`` to use the device executor.

    ``tapes`` have been through the device's preprocessing (device wires filled in and
    checked), as in ``run_on_xla``; ``lifted`` as ``XLAPlan.lifted``.

    ``executor="auto"`` selects XLA for default.qubit under ``jit`` (analytic, or finite shots
    with a JAX PRNG key); ``"xla"`` selects it wherever it can run; ``"device"`` never. Every
    refusal is logged at DEBUG level with its reason.
    """
    if not might_use_xla(device, iface, executor):
        return None

    # With mesh= the user asked for a sharded state; running it unsharded on the device
    # instead could run out of memory far from the cause, so the reason is raised.
    refuse = log_refusal if current_mesh() is None else _refuse_sharded

    tracker = getattr(device, "tracker", None)
    if executor == "auto" and getattr(tracker, "active", False):
        # The user is counting this device's executions; the XLA executor would make none.
        refuse("a qml.Tracker is recording the device's executions")
        return None

    try:
        diff_method = _xla_diff_method(config.gradient_method)
    except LookupError as err:
        refuse(str(err))
        return None
    if config.use_device_jacobian_product and (executor == "auto" or diff_method != "adjoint"):
        # device_vjp=True asks for the device's reverse-mode-only VJPs; only an explicit
        # executor="xla" swaps them for the XLA adjoint rule (which also runs forward mode).
        refuse("device_vjp=True asks for the device's VJPs (use executor='xla' with adjoint)")
        return None
    if config.device_options.get("max_workers"):
        refuse("the device is configured with max_workers")
        return None
    key = None
    if any(t.shots for t in tapes):
        key = _prng_key(device) if _is_default_qubit(device) else None
        if key is None:
            refuse("finite shots need a JAX PRNG key on the device, e.g. seed=jax.random.key(0)")
            return None
    wires = getattr(device, "wires", None)
    for i, tape in enumerate(tapes):
        reason = _support_reason(tape, diff_method, None if lifted is None else lifted[i][1])
        if reason is not None:
            refuse(reason)
            return None
    wire_order = wires if wires else None
    if (
        executor == "auto"
        and _one_off(tapes)
        and not _reusable(tapes, diff_method, config, wire_order, lifted)
    ):
        refuse(
            "an eager call (concrete values outside jit): the device runs it at once, where "
            "the XLA executor would first compile a program (executor='xla' compiles it)"
        )
        return None

    if not _runs_as_default_qubit(device):
        announce_takeover(device)
    return XLAPlan(
        tuple(tapes),
        diff_method=diff_method,
        gradient_kwargs=dict(config.gradient_keyword_arguments),
        wire_order=wire_order,
        prng_key=key,
        lifted=lifted,
    )


def _support_reason(tape, diff_method, lift) -> str | None:
    """``xla_unsupported_reason``, asked once per shared lifted decomposition and method."""
    if lift is None:
        return xla_unsupported_reason(tape, diff_method)
    if diff_method not in lift.support:
        lift.support[diff_method] = xla_unsupported_reason(tape, diff_method)
    return lift.support[diff_method]


def run_on_xla(tapes, device, config, iface: str, executor: str):
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
        pipeline = device.preprocess_transforms(plain)
        lifted = _lifted(tapes, pipeline, config, plain, device)
        if lifted is None:
            xla_tapes, post = pipeline(tapes)
    except Exception as err:  # the device pipeline raises it again, where PennyLane would
        log_refusal(f"the device's preprocessing failed: {err}")
        return None
    if lifted is not None:
        xla_tapes = tuple(lift.tape for _, lift in lifted)

        def post(results):
            return tuple(lift.post((r,))[0] for (_, lift), r in zip(lifted, results))

    plan = select_xla(xla_tapes, device, config, iface, executor, lifted)
    if plan is None:
        return None
    log_entry(iface, "traced", "xla", len(xla_tapes))
    return post(plan.run())


# Diff methods whose programs read whole template leaves (the shift rules through
# ``_lift.per_parameter``).
_LIFT_METHODS = (None, "backprop", "adjoint", "parameter-shift", "finite-diff", "spsa")


def _lifted(tapes, pipeline, config, plain, device) -> tuple | None:
    """Per tape (original, ``Lifted``) when every tape's templates can stay whole, else None.

    ``config``: the call's execution config; ``plain``: the one ``pipeline`` was made for.
    """
    try:
        diff_method = _xla_diff_method(config.gradient_method)
    except LookupError:
        return None
    if diff_method not in _LIFT_METHODS or not tapes:
        return None
    out = []
    context = repr(plain)  # with the device, what decided the pipeline
    for tape in tapes:
        lift = cached_lift(tape, pipeline, device, context)
        if lift is None:
            return None
        out.append((tape, lift))
    return tuple(out)


__all__ = ["XLAPlan", "log_refusal", "might_use_xla", "run_on_xla", "select_xla"]
