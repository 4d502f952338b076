"""An opt-in persistent compilation cache: from the second process on, nothing recompiles.

JAX can keep compiled executables on disk, keyed by the lowered program (with the compile
options and the backend). A new Python process -- a restarted notebook, the next run of a
training script -- that traces the same step then loads the executable instead of compiling
it. qjaxiface's programs are built from a circuit's structure only (no object ids, no
addresses, no timestamps), so the key is the same in every process for the same circuit
structure, parameter shapes and JAX version; ``tests/test_compilation_cache.py`` checks that
with two processes.

It is opt-in because it writes to disk: ``enable_compilation_cache()`` turns it on for the
process (every jitted function, not only circuits), ``compilation_cache_status()`` and
``qjaxiface doctor`` say where it is and how large.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax

_DIR_FLAG = "jax_compilation_cache_dir"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/qjaxiface/jax`` (``~/.cache/qjaxiface/jax`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qjaxiface" / "jax"


def enable_compilation_cache(
    path: str | os.PathLike | None = None, *, min_compile_time_secs: float = 0.0
) -> Path:
    """Turn on JAX's persistent compilation cache in ``path``, for the rest of the process.

    Compiled programs are written there, and a later process tracing the same program (the same
    circuit structure, parameter shapes and JAX version) loads them instead of compiling.

    Args:
        path: the cache folder (created if missing); default ``default_cache_dir()``. Several
            processes may share one.
        min_compile_time_secs: programs that compile faster than this are not stored. JAX's
            own default is one second; 0 stores every program.

    Returns:
        Path: the cache folder in use.

    Raises:
        ValueError: if ``path`` is an existing file, or ``min_compile_time_secs`` is negative.

    Examples:
        >>> import tempfile, qjaxiface
        >>> folder = qjaxiface.enable_compilation_cache(tempfile.mkdtemp())
        >>> qjaxiface.compilation_cache_status()["enabled"]
        True
        >>> qjaxiface.disable_compilation_cache()
    """
    folder = Path(path).expanduser() if path is not None else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"enable_compilation_cache: {str(folder)!r} is a file; pass a folder (it is created "
            "if missing), or no argument for the default folder."
        )
    if min_compile_time_secs < 0:
        raise ValueError(
            f"min_compile_time_secs={min_compile_time_secs!r} is negative; pass 0 to store "
            "every program, or a number of seconds."
        )
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update(_DIR_FLAG, str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    _reset_jax_cache()
    return folder


def disable_compilation_cache() -> None:
    """Stop using the persistent cache in this process (its files stay on disk)."""
    jax.config.update(_DIR_FLAG, None)
    _reset_jax_cache()


def compilation_cache_status() -> dict[str, Any]:
    """Whether the persistent cache is on, its folder, and how many files and bytes it holds.

    Returns:
        dict: ``"enabled"`` (bool), ``"path"`` (str or None), ``"entries"`` and ``"bytes"``
        (ints, 0 when off).
    """
    raw = getattr(jax.config, _DIR_FLAG)  # jax.config.read refuses this flag on jax 0.7
    if not raw:
        return {"enabled": False, "path": None, "entries": 0, "bytes": 0}
    folder = Path(raw)
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return {
        "enabled": True,
        "path": str(folder),
        "entries": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }


def _reset_jax_cache() -> None:
    # JAX opens the cache at the first compilation and keeps that folder; a folder set later
    # takes effect only after a reset (a private function, present from jax 0.4.26 to 0.12).
    from jax._src import compilation_cache

    reset = getattr(compilation_cache, "reset_cache", None)
    if reset is not None:
        reset()
