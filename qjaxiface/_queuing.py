"""Thread-affine queuing for PennyLane while qjaxiface is installed.

PennyLane records a QNode's circuit by pushing a queue on a *process-global* stack
(``QueuingManager._active_contexts``); every operator constructed anywhere while that stack is
non-empty is appended to the top queue. A QNode recording in one thread therefore captures the
operators that another thread builds at the same moment, e.g. the shifted tapes of a
parameter-shift rule or the tapes qjaxiface prepares for a host callback, and fails with
"All measurements must be returned in the order they are measured" or, worse, runs a circuit
with extra gates. ``QueuingManager.stop_recording`` has the mirror problem: it empties the
global stack, so a thread that merely builds operators makes another thread's recording drop
its gates.

:func:`patch` makes both thread-affine, without a lock that could deadlock against host
callbacks: each active queue remembers the thread that opened it, ``recording()`` is true only
in that thread, and ``stop_recording()`` in any other thread has nothing to stop. PennyLane
already serializes recordings with one lock, so the stack only ever holds queues of one thread.
:func:`unpatch` restores PennyLane's methods exactly. The hook calls both.
"""

from __future__ import annotations

import contextlib
import threading

from pennylane.queuing import QueuingManager

_METHODS = ("add_active_queue", "remove_active_queue", "recording", "stop_recording")
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


@contextlib.contextmanager
def _stop_recording(cls):
    if not cls.recording():  # nothing of this thread's is recording: leave the others alone
        yield
        return
    with _originals["stop_recording"].__get__(None, cls)():
        yield


_PATCHES = {
    "add_active_queue": classmethod(_add_active_queue),
    "remove_active_queue": classmethod(_remove_active_queue),
    "recording": classmethod(_recording),
    "stop_recording": classmethod(_stop_recording),
}


def patch() -> None:
    """Make PennyLane's queuing thread-affine (idempotent)."""
    global _originals
    if _originals is not None:
        return
    _owner.clear()  # queues still open from an earlier patch keep PennyLane's behaviour
    _originals = {name: QueuingManager.__dict__[name] for name in _METHODS}
    for name, method in _PATCHES.items():
        setattr(QueuingManager, name, method)


def unpatch() -> None:
    """Restore PennyLane's queuing methods (idempotent)."""
    global _originals
    if _originals is None:
        return
    for name, method in _originals.items():
        setattr(QueuingManager, name, method)
    _originals = None


def is_patched() -> bool:
    return _originals is not None
