"""Routing PennyLane's own entry points through qjaxiface.

PennyLane resolves a QNode call to ``pennylane.workflow.qnode.execute`` (imported by name), and
users call ``qml.execute``. ``install`` replaces ``execute`` at every place PennyLane binds
that name with a router: calls whose interface resolves to JAX go to ``qjaxiface.execute``,
all others to the original function, untouched. It also wraps ``QNode.construct``, whose tape
gets its angles read in one gather per array argument (``_angle_reads``). ``uninstall`` puts
the originals back. The patching is the package's only global state; it is guarded by a lock
and reversible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pennylane as qml
from pennylane.math import Interface
from pennylane.workflow.qnode import QNode

from . import _angle_reads, _compat, _threads
from .execution import _EXECUTORS, execute
from .executors.xla import AmplitudeMesh

# Modules that bind the name ``execute`` to PennyLane's workflow entry point.
_PATCH_SITES = (
    "pennylane",
    "pennylane.workflow",
    "pennylane.workflow.execution",
    "pennylane.workflow.qnode",
    "pennylane.gradients.fisher",
    "pennylane.optimize.qnspsa",
)

_JAX_INTERFACES = {Interface.JAX.value, Interface.JAX_JIT.value}

# Where a QNode call goes when ``qml.capture`` is enabled (read by name at every call).
_CAPTURE_SITE = "pennylane.workflow._capture_qnode"

CAPTURE_MESSAGE = (
    "program capture is enabled (qml.capture.enable()): captured QNodes run on PennyLane's own "
    "capture path, not through qjaxiface; call qml.capture.disable() to route them through "
    "qjaxiface"
)


@dataclasses.dataclass(frozen=True)
class _Installation:
    executor: str
    originals: dict  # module name -> the ``execute`` it had
    capture_original: object = None  # ``capture_qnode`` before install (None: not importable)
    mesh: Any = None  # ``jax.sharding.Mesh`` the state is sharded over (None: one device)
    construct_original: Any = None  # ``QNode.construct`` before install


_lock = threading.RLock()
_state: _Installation | None = None


# Active ``installed()`` blocks, in entry order: [identity, the state to restore on exit].
_active: list[list[Any]] = []


def _original_execute():
    state = _state  # read once: another thread may uninstall in between
    return qml.workflow.execution.execute if state is None else state.originals[_PATCH_SITES[2]]


def _routes_to_jax(tapes, interface) -> bool:
    value = getattr(interface, "value", interface)
    if value in _JAX_INTERFACES:
        return True
    if value not in (None, Interface.AUTO.value):
        return False
    params = [p for t in tapes for p in t.get_parameters(trainable_only=False)]
    return qml.math.get_interface(*params) == "jax" if params else False


def _make_router(original, executor: str, mesh=None):
    @functools.wraps(original)
    def execute_router(tapes, device, diff_method=None, interface=Interface.AUTO, **kwargs):
        tapes = tuple(tapes)
        if not _routes_to_jax(tapes, interface):
            return original(tapes, device, diff_method, interface, **kwargs)
        value = getattr(interface, "value", interface)
        return execute(
            tapes,
            device,
            diff_method,
            "auto" if value is None else value,
            executor=executor,
            mesh=mesh,
            **kwargs,
        )

    execute_router.__qjaxiface_router__ = True  # type: ignore[attr-defined]
    return execute_router


def _make_construct(original):
    """``QNode.construct`` that reads a traced circuit's angles in one gather per argument."""

    @functools.wraps(original)
    def construct(self, args, kwargs):
        tape = original(self, args, kwargs)
        state = _state
        if state is None:
            return tape
        new = _angle_reads.gathered(self, tape, args, kwargs, state.executor)
        if new is not tape:
            self._tape = new
        return new

    construct.__qjaxiface_construct__ = True
    return construct


_capture_announced = threading.Event()


def _make_capture_passthrough(original):
    """``capture_qnode`` that says once that qjaxiface steps aside, then runs PennyLane's path.

    Captured QNodes become a JAX primitive that PennyLane's capture interpreter executes; no
    tape reaches ``execute``, so qjaxiface could not route them even if it wanted to. Saying so
    keeps a user who installed qjaxiface from believing it ran their program.
    """

    @functools.wraps(original)
    def capture_qnode(*args, **kwargs):
        if not _capture_announced.is_set():
            _capture_announced.set()
            logging.getLogger("qjaxiface").info(CAPTURE_MESSAGE)
        return original(*args, **kwargs)

    capture_qnode.__qjaxiface_passthrough__ = True
    return capture_qnode


def _capture_module():
    try:
        return importlib.import_module(_CAPTURE_SITE)
    except Exception:  # capture cannot run on this JAX at all (its internals moved)
        return None


def install(executor: str = "auto", mesh=None) -> None:
    """Route PennyLane's JAX executions (QNodes and ``qml.execute``) through qjaxiface.

    After this, every QNode and ``qml.execute`` call whose interface resolves to ``"jax"`` or
    ``"jax-jit"`` (including ``"auto"`` with JAX arguments) runs through
    [``qjaxiface.execute``][qjaxiface.execute]; other interfaces are untouched. Calling it again
    only updates ``executor`` and ``mesh``.

    On JAX releases that removed ``jax.core`` names PennyLane 0.45 calls (``concrete_or_error``,
    ``is_concrete``, ``TraceTag``, ...), it puts those names back on ``jax.core`` (JAX's own
    objects) for as long as it is installed; see ``qjaxiface._compat``. ``qjaxiface doctor``
    lists them.

    With program capture enabled (``qml.capture.enable()``, jax 0.7 only), QNodes are captured
    as a JAX primitive that PennyLane executes itself; they do not reach qjaxiface. The first
    such call logs one INFO line on the ``"qjaxiface"`` logger saying so.

    It also wraps ``QNode.construct``: under ``jit`` on default.qubit, the angles a quantum
    function reads from its array arguments (``w[l, k]``) are read with one gather per argument
    instead of a slice each, which XLA compiles much faster (see ``qjaxiface._angle_reads``;
    the quantum function runs a second time per trace, under ``jax.make_jaxpr``).

    It also makes PennyLane's operator queuing and QNode call state thread-affine (see
    ``qjaxiface._threads``): a QNode recording its circuit in one thread no longer captures
    operators that another thread constructs at the same moment, and one QNode object can be
    called from several threads at once.

    Args:
        executor (str): ``"auto"``, ``"xla"`` or ``"device"``; see
            [``qjaxiface.execute``][qjaxiface.execute].
        mesh (jax.sharding.Mesh, optional): shard every circuit's state vector over the mesh's
            devices (the XLA executor; docs/distributed.md).

    Raises:
        ValueError: for an unknown ``executor``, or a ``mesh`` that
            [``qjaxiface.execute``][qjaxiface.execute] would refuse.

    Examples:
        >>> import jax, pennylane as qml
        >>> import qjaxiface
        >>> qjaxiface.install()
        >>> @qml.qnode(qml.device("default.qubit"), interface="jax")
        ... def circuit(x):
        ...     qml.RX(x, 0)
        ...     return qml.expval(qml.Z(0))
        >>> round(float(jax.jit(jax.grad(circuit))(0.5)), 6)
        -0.479426
        >>> qjaxiface.uninstall()
    """
    global _state
    if executor not in _EXECUTORS:
        raise ValueError(
            f"qjaxiface.install got executor={executor!r}; use one of "
            f"{', '.join(map(repr, _EXECUTORS))}."
        )
    if mesh is not None:
        if executor == "device":
            raise ValueError(
                "qjaxiface.install got mesh= with executor='device'; a sharded state runs on "
                "the XLA executor: pass executor='xla' (or 'auto')"
            )
        AmplitudeMesh.of(mesh)  # refuse a bad mesh now, not at the first QNode call
    with _lock:
        if _state is None:
            _compat.acquire_jax_core_shim()
        originals = (
            _state.originals
            if _state is not None
            else {name: importlib.import_module(name).execute for name in _PATCH_SITES}
        )
        for name in _PATCH_SITES:
            module = importlib.import_module(name)
            router = _make_router(originals[name], executor, mesh)
            module.execute = router  # type: ignore[attr-defined]
        capture = _capture_module()
        if _state is not None:
            capture_original = _state.capture_original
            construct_original = _state.construct_original
        else:
            capture_original = capture.capture_qnode if capture is not None else None
            _capture_announced.clear()
            if capture is not None:
                capture.capture_qnode = _make_capture_passthrough(capture_original)
            construct_original = QNode.construct
            QNode.construct = _make_construct(construct_original)
        _state = _Installation(
            executor=executor,
            originals=originals,
            capture_original=capture_original,
            mesh=mesh,
            construct_original=construct_original,
        )
        _threads.patch()


def uninstall() -> None:
    """Restore PennyLane's own ``execute`` everywhere; harmless if not installed."""
    global _state
    with _lock:
        if _state is None:
            return
        for name, original in _state.originals.items():
            importlib.import_module(name).execute = original  # type: ignore[attr-defined]
        if _state.capture_original is not None:
            module = importlib.import_module(_CAPTURE_SITE)
            module.capture_qnode = _state.capture_original  # type: ignore[attr-defined]
        QNode.construct = _state.construct_original
        _threads.unpatch()
        _compat.release_jax_core_shim()
        _state = None


def is_installed() -> bool:
    """Whether [``install``][qjaxiface.install] is in effect."""
    return _state is not None


def installed_executor() -> str | None:
    """The ``executor`` the hook routes with, or ``None`` when not installed."""
    state = _state
    return None if state is None else state.executor


@contextlib.contextmanager
def installed(executor: str = "auto", mesh=None) -> Iterator[None]:
    """Context manager: qjaxiface installed inside the block, the previous state restored after.

    ``executor`` and ``mesh`` as in [``install``][qjaxiface.install].

    Examples:
        >>> import qjaxiface
        >>> with qjaxiface.installed():
        ...     qjaxiface.is_installed()
        True
        >>> qjaxiface.is_installed()
        False
    """
    with _lock:
        entry: list[Any] = [object(), _state]
        install(executor, mesh)
        _active.append(entry)
    try:
        yield
    finally:
        with _lock:
            # Blocks in several threads may exit out of order. The last-entered block restores
            # its previous state; a block that exits before a later one hands its previous state
            # to that one, so the state after all blocks exit is the state before the first.
            index = next(i for i, e in enumerate(_active) if e is entry)
            del _active[index]
            if index < len(_active):
                _active[index][1] = entry[1]
            elif entry[1] is None:
                uninstall()
            else:
                install(entry[1].executor, entry[1].mesh)
