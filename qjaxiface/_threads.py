"""Thread safety for PennyLane while qjaxiface is installed: queuing and QNode call state.

PennyLane records a QNode's circuit by pushing a queue on a *process-global* stack
(``QueuingManager._active_contexts``); every operator constructed anywhere while that stack is
non-empty is appended to the top queue. A QNode recording in one thread therefore captures the
operators that another thread builds at the same moment, e.g. the shifted tapes of a
parameter-shift rule or the tapes qjaxiface prepares for a host callback, and fails with
"All measurements must be returned in the order they are measured" or, worse, runs a circuit
with extra gates. ``QueuingManager.stop_recording`` has the mirror problem: it empties the
global stack, so a thread that merely builds operators makes another thread's recording drop
its gates.

``patch`` makes both thread-affine, without a lock that could deadlock against host
callbacks: each active queue remembers the thread that opened it, ``recording()`` is true only
in that thread, and ``stop_recording()`` in any other thread has nothing to stop. The last one
swaps the code of PennyLane's ``stop_recording`` generator, because PennyLane applies it as a
decorator at import time to functions that keep a reference to the generator itself. PennyLane
already serializes recordings with one lock, so the stack only ever holds queues of one thread.
``unpatch`` restores PennyLane's methods exactly. The hook calls both.

A QNode also keeps per-call state on the instance: ``construct`` stores the quantum function's
output in ``self._qfunc_output`` and reads it back to validate the measurements and, after
execution, to shape the results. Two threads calling the same QNode overwrite each other's
value ("All measurements must be returned in the order they are measured", or results shaped
like the other call's). ``patch`` makes ``_qfunc_output`` and ``_tape`` per thread (a data
descriptor on the class; single-threaded behaviour is unchanged: reading from a thread that
never called the QNode gives the last value any thread stored).

Can go when PennyLane keeps its queuing stack and a QNode's call state per thread (PennyLane
0.45 does not); ``tests/test_threads.py`` fails on PennyLane alone until then.
"""

from __future__ import annotations

import threading

from pennylane.queuing import QueuingManager
from pennylane.workflow.qnode import QNode

_METHODS = ("add_active_queue", "remove_active_queue", "recording")
_originals: dict | None = None
_owner: dict[int, int] = {}  # id(queue) -> ident of the thread that activated it


def _add_active_queue(cls, queue):
    _owner[id(queue)] = threading.get_ident()
    _originals["add_active_queue"].__get__(None, cls)(queue)


def _remove_active_queue(cls):
    queue = _originals["remove_active_queue"].__get__(None, cls)()
    _owner.pop(id(queue), None)
    return queue


def _recording(cls):
    stack = cls._active_contexts
    if not stack:
        return False
    # Queues activated before the patch have no owner: keep PennyLane's behaviour for them.
    return _owner.get(id(stack[-1]), threading.get_ident()) == threading.get_ident()


def _stop_recording_body(cls):
    # Becomes the body of PennyLane's own ``stop_recording`` generator (see ``patch``), so that
    # functions PennyLane decorated with it at import time behave the same. Names: only ``cls``
    # (the code runs with pennylane.queuing's globals).
    if not cls.recording():  # nothing of this thread's is recording: leave the others alone
        yield
        return
    previously_active_contexts = cls._active_contexts
    cls._active_contexts = []
    try:
        yield
    finally:
        cls._active_contexts = previously_active_contexts


_MISSING = object()
_QNODE_STATE = ("_qfunc_output", "_tape")


class _PerThread:
    """A QNode attribute with one value per thread (falling back to the last value stored)."""

    def __init__(self, name: str):
        self.name = name

    def _local(self, obj) -> threading.local:
        return obj.__dict__.setdefault("_qjaxiface_per_thread", threading.local())

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = getattr(self._local(obj), self.name, _MISSING)
        return obj.__dict__.get(self.name) if value is _MISSING else value

    def __set__(self, obj, value):
        setattr(self._local(obj), self.name, value)
        obj.__dict__[self.name] = value


def _stop_recording_generator():
    """PennyLane's generator function behind ``QueuingManager.stop_recording``."""
    return QueuingManager.__dict__["stop_recording"].__func__.__wrapped__


_PATCHES = {
    "add_active_queue": classmethod(_add_active_queue),
    "remove_active_queue": classmethod(_remove_active_queue),
    "recording": classmethod(_recording),
}


def patch() -> None:
    """Make PennyLane's queuing and QNode call state thread-affine (idempotent)."""
    global _originals
    if _originals is not None:
        return
    _owner.clear()  # queues still open from an earlier patch keep PennyLane's behaviour
    _originals = {name: QueuingManager.__dict__[name] for name in _METHODS}
    for name, method in _PATCHES.items():
        setattr(QueuingManager, name, method)
    # stop_recording: PennyLane decorated functions with it at import time, and those hold its
    # generator function, not the class attribute. Swapping the generator's code reaches them.
    generator = _stop_recording_generator()
    _originals["stop_recording_code"] = generator.__code__
    generator.__code__ = _stop_recording_body.__code__
    for name in _QNODE_STATE:
        setattr(QNode, name, _PerThread(name))


def unpatch() -> None:
    """Restore PennyLane exactly (idempotent)."""
    global _originals
    if _originals is None:
        return
    _stop_recording_generator().__code__ = _originals.pop("stop_recording_code")
    for name in _QNODE_STATE:
        if isinstance(QNode.__dict__.get(name), _PerThread):
            delattr(QNode, name)
    for name, method in _originals.items():
        setattr(QueuingManager, name, method)
    _originals = None


def is_patched() -> bool:
    return _originals is not None
