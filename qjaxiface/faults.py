"""Host exceptions raised inside ``jax.pure_callback``, given back to the user as themselves.

JAX reports any exception raised by a host callback as a ``JaxRuntimeError`` whose message holds
the formatted traceback: the original type is lost, so ``except MyDeviceError`` stops working as
soon as a circuit runs through a callback. qjaxiface therefore records every exception its host
callbacks raise (under a token that travels in JAX's message) and re-raises the original object,
traceback and ``__cause__`` intact:

* automatically, wherever qjaxiface itself is on the stack when the callback runs (concrete
  ``"jax-jit"`` executions, the eager backward pass of ``device_vjp=True``, eager ``vmap``);
* inside a function compiled with ``jax.jit``, where JAX runs the callback after qjaxiface has
  returned, through ``reraise_device_errors`` around the call (a context manager and a
  decorator).

Either way the error is reported once. JAX also logs every failing callback at ERROR level with
the same traceback; that record is dropped for qjaxiface's own callbacks, because the exception
that reaches the user carries all of it: the original itself, or a ``JaxRuntimeError`` whose text
holds the original's message and traceback.

Recorded exceptions are kept in a small bounded registry, so an error nobody translates cannot
grow memory.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import threading
import traceback
import uuid
from collections.abc import Iterator

from . import _caches

_MAX_RECORDED = 64
_TOKEN = re.compile(r"\[qjaxiface host fault ([0-9a-f]{32})\]")

# The one-line hint on an exception re-raised automatically (the remedy for the case that is not).
AUTO_NOTE = (
    "qjaxiface: raised by the device inside a host callback and re-raised as itself; inside your "
    "own jax.jit, wrap the call in qjaxiface.reraise_device_errors() to get it the same way."
)

_lock = threading.Lock()
_recorded: collections.OrderedDict[str, BaseException] = collections.OrderedDict()


class HostCallbackError(RuntimeError):
    """Raised inside a host callback in place of the original exception, which is its cause.

    Users only see it as text inside JAX's ``JaxRuntimeError`` when no translation happened.
    """

    def __init__(self, token: str, original: BaseException):
        self.token = token
        # JAX's JaxRuntimeError shows only this exception's text and frames, not its cause: the
        # original's own traceback goes into the text, so the user sees where the device failed.
        origin = "".join(traceback.format_exception(original)).rstrip()
        super().__init__(
            f"{type(original).__name__}: {original} [qjaxiface host fault {token}] "
            "(raised by the device or gradient code that qjaxiface called from a jax.pure_callback;"
            " JAX reports it as JaxRuntimeError. To get the original exception from a jitted "
            "call, run the call inside `with qjaxiface.reraise_device_errors():`.)\n"
            f"The original exception:\n{origin}"
        )


class _DropCallbackLogRecords(logging.Filter):
    """Drops JAX's ERROR record for a failing qjaxiface callback: the raised error says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HostCallbackError)


_JAX_CALLBACK_LOG = logging.getLogger("jax._src.callback")
if not any(isinstance(f, _DropCallbackLogRecords) for f in _JAX_CALLBACK_LOG.filters):
    _JAX_CALLBACK_LOG.addFilter(_DropCallbackLogRecords())


def _forget_all() -> None:
    with _lock:
        _recorded.clear()


_caches.register("recorded device faults", _forget_all)


def record(err: BaseException) -> HostCallbackError:
    """Remember ``err`` and return the marker exception to raise inside the callback."""
    token = uuid.uuid4().hex
    with _lock:
        _recorded[token] = err
        while len(_recorded) > _MAX_RECORDED:
            _recorded.popitem(last=False)
    return HostCallbackError(token, err)


def original_exception(err: BaseException) -> BaseException | None:
    """The recorded host exception that ``err`` (JAX's wrapper) reports, removing it; or ``None``."""
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        token: str | None
        if isinstance(current, HostCallbackError):
            token = current.token
        else:
            match = _TOKEN.search(str(current))
            token = match.group(1) if match else None
        if token is not None:
            with _lock:
                found = _recorded.pop(token, None)
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
    return None


def raise_original(err: BaseException, *, note: str | None = None) -> None:
    """Re-raise the recorded host exception behind ``err``, if any; otherwise return.

    ``note`` (PEP 678) is added to the re-raised exception once.
    """
    original = original_exception(err)
    if original is None:
        return
    if note is not None and note not in getattr(original, "__notes__", ()):
        original.add_note(note)
    # Keep the original's traceback and __cause__; hide JAX's wrapper (its text is the same
    # traceback again) from the printed chain.
    original.__suppress_context__ = True
    raise original.with_traceback(original.__traceback__)


@contextlib.contextmanager
def reraised_here() -> Iterator[None]:
    """qjaxiface's own translation, where the callback runs inside the call: adds ``AUTO_NOTE``."""
    try:
        yield
    except BaseException as exc:
        raise_original(exc, note=AUTO_NOTE)
        raise


class reraise_device_errors(contextlib.ContextDecorator):
    """Re-raise exceptions from devices and gradient code as themselves inside ``jax.jit``.

    Under ``jax.jit`` qjaxiface reaches host devices through ``jax.pure_callback``, and JAX turns
    any exception raised there into a ``JaxRuntimeError``. Inside this context (or a function
    decorated with it), such an error is replaced by the exception the device raised, with its
    original type, message, traceback and ``__cause__``. Other exceptions pass through unchanged.

    Examples:
        >>> import jax, pennylane as qml
        >>> import qjaxiface
        >>> class Flaky(qml.devices.DefaultQubit):
        ...     def execute(self, circuits, execution_config=None):
        ...         raise ConnectionError("backend offline")
        >>> def cost(x):
        ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        ...     return qjaxiface.execute([tape], Flaky(), executor="device")[0]
        >>> try:
        ...     with qjaxiface.reraise_device_errors():
        ...         jax.jit(cost)(0.5)
        ... except ConnectionError as err:
        ...     print(err)
        backend offline
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None:
            raise_original(exc)
        return False


__all__ = ["HostCallbackError", "original_exception", "raise_original", "reraise_device_errors"]
