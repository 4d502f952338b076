"""qjaxiface: the JAX boundary for PennyLane.

``qjaxiface.execute`` is a drop-in for ``qml.execute`` with JAX parameters; ``qjaxiface.install()``
routes ordinary QNodes with ``interface="jax"``, ``"jax-jit"`` or ``"auto"`` through it. Under
``jax.jit``, default.qubit circuits compile into one XLA program (derivative rule included); host
devices are reached through ``jax.pure_callback`` with exact result shapes.

**Example**

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

from ._compat import check_jax_version

check_jax_version()  # a JAX outside the supported range fails here, not inside a gradient

from ._version import __version__  # noqa: E402
from .boundary import jax_jit_jvp_execute, jax_jit_vjp_execute, jax_jvp_execute, jax_vjp_execute  # noqa: E402
from .detect import get_jax_interface_name  # noqa: E402
from .execution import execute  # noqa: E402
from .faults import reraise_device_errors  # noqa: E402
from .params import set_parameters_on_copy  # noqa: E402
from .pennylane_hook import install, installed, is_installed, uninstall  # noqa: E402

__all__ = [
    "__version__",
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
