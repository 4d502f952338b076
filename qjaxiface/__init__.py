"""qjaxiface: the JAX boundary for PennyLane.

``qjaxiface.execute`` is a drop-in for ``qml.execute`` with JAX parameters; ``qjaxiface.install()``
routes ordinary QNodes with ``interface="jax"``, ``"jax-jit"`` or ``"auto"`` through it. Under
``jax.jit``, default.qubit circuits compile into one XLA program (derivative rule included); host
devices are reached through ``jax.pure_callback`` with exact result shapes.

Examples:
    >>> import jax, pennylane as qml
    >>> import qjaxiface
    >>> with qjaxiface.installed():
    ...     @qml.qnode(qml.device("default.qubit"), diff_method="parameter-shift")
    ...     def circuit(x):
    ...         qml.RX(x, 0)
    ...         return qml.expval(qml.Z(0))
    ...     print(round(float(jax.jit(jax.grad(circuit))(0.5)), 6))
    -0.479426
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import TYPE_CHECKING

from ._version import __version__

# Public name -> the module that defines it. They are imported on first use (PEP 562), so that
# ``import qjaxiface.cli`` (``qjaxiface --help``) does not pay for importing JAX and PennyLane.
_EXPORTS = {
    "clear_caches": "_caches",
    "compilation_cache_status": "_compilation_cache",
    "disable_compilation_cache": "_compilation_cache",
    "enable_compilation_cache": "_compilation_cache",
    "execute": "execution",
    "get_jax_interface_name": "detect",
    "install": "pennylane_hook",
    "installed": "pennylane_hook",
    "is_installed": "pennylane_hook",
    "uninstall": "pennylane_hook",
    "jax_jit_jvp_execute": "boundary",
    "jax_jit_vjp_execute": "boundary",
    "jax_jvp_execute": "boundary",
    "jax_vjp_execute": "boundary",
    "reraise_device_errors": "faults",
    "set_parameters_on_copy": "params",
    # The exceptions users catch.
    "HigherOrderError": "boundary._higher_order",
    "HostCallbackError": "faults",
    "MeshError": "executors.xla",
    "XLAUnsupported": "executors.xla",
}

__all__ = [
    "HigherOrderError",
    "HostCallbackError",
    "MeshError",
    "XLAUnsupported",
    "__version__",
    "clear_caches",
    "compilation_cache_status",
    "disable_compilation_cache",
    "enable_compilation_cache",
    "execute",
    "get_jax_interface_name",
    "install",
    "installed",
    "is_installed",
    "jax_jit_jvp_execute",
    "jax_jit_vjp_execute",
    "jax_jvp_execute",
    "jax_vjp_execute",
    "reraise_device_errors",
    "set_parameters_on_copy",
    "uninstall",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from ._caches import clear_caches as clear_caches
    from ._compilation_cache import compilation_cache_status as compilation_cache_status
    from ._compilation_cache import disable_compilation_cache as disable_compilation_cache
    from ._compilation_cache import enable_compilation_cache as enable_compilation_cache
    from .boundary import jax_jit_jvp_execute as jax_jit_jvp_execute
    from .boundary import jax_jit_vjp_execute as jax_jit_vjp_execute
    from .boundary import jax_jvp_execute as jax_jvp_execute
    from .boundary import jax_vjp_execute as jax_vjp_execute
    from .boundary._higher_order import HigherOrderError as HigherOrderError
    from .detect import get_jax_interface_name as get_jax_interface_name
    from .execution import execute as execute
    from .executors.xla import MeshError as MeshError
    from .executors.xla import XLAUnsupported as XLAUnsupported
    from .faults import HostCallbackError as HostCallbackError
    from .faults import reraise_device_errors as reraise_device_errors
    from .params import set_parameters_on_copy as set_parameters_on_copy
    from .pennylane_hook import install as install
    from .pennylane_hook import installed as installed
    from .pennylane_hook import is_installed as is_installed
    from .pennylane_hook import uninstall as uninstall

_jax_checked = False
_jax_check_lock = threading.Lock()


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        # A submodule not imported yet (``qjaxiface.faults.HostCallbackError`` right after
        # ``import qjaxiface``), as when this package imported everything eagerly.
        if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'qjaxiface' has no attribute {name!r}")
        _check_jax()
        return importlib.import_module(f".{name}", __name__)
    _check_jax()
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def _check_jax() -> None:
    # A JAX outside the supported range fails on first use, not inside a gradient.
    global _jax_checked
    if _jax_checked:
        return
    with _jax_check_lock:  # once, also when threads make their first calls together
        if not _jax_checked:
            from ._compat import check_jax_version

            check_jax_version()
            _jax_checked = True


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
