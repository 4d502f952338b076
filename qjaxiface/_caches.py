"""Every cache qjaxiface keeps registers its clear function here; one call clears them all.

Registered by the module that owns the cache, when it is imported: a cache of a module never
imported is empty anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_clear_functions: dict[str, Callable[[], None]] = {}


def register(name: str, clear: Callable[[], None]) -> None:
    """Register ``clear`` (no arguments) under ``name``; registering a name again replaces it."""
    with _lock:
        _clear_functions[name] = clear


def registered() -> tuple[str, ...]:
    """The names of the registered caches."""
    with _lock:
        return tuple(_clear_functions)


def clear_caches() -> None:
    """Clear every cache qjaxiface keeps: built XLA programs and recorded device faults.

    Needed after changing a setting programs were built with that their cache key does not
    cover, and to free memory. JAX's own caches (traces of jitted functions, compiled
    executables) are JAX's: clear them with ``jax.clear_caches()``.

    Examples:
        >>> import qjaxiface
        >>> qjaxiface.clear_caches()
    """
    with _lock:
        functions = list(_clear_functions.values())
    for clear in functions:
        clear()


__all__ = ["clear_caches", "register", "registered"]
