"""The bindings: how a batch of tapes becomes a differentiable JAX computation.

| binding | interface | derivative |
|---|---|---|
| ``jax_jvp_execute`` | jax | ``custom_jvp`` (grad, jacfwd, jacrev, hessian, vmap) |
| ``jax_vjp_execute`` | jax | ``custom_vjp`` with device VJPs (reverse mode only) |
| ``jax_jit_jvp_execute`` | jax-jit | ``pure_callback`` + ``custom_jvp`` |
| ``jax_jit_vjp_execute`` | jax-jit | ``pure_callback`` + ``custom_vjp`` |

``choose_binding`` picks one for an execution.
"""

from ._choice import choose_binding
from .eager import jax_jvp_execute, jax_vjp_execute
from .jit import jax_jit_jvp_execute, jax_jit_vjp_execute

__all__ = [
    "choose_binding",
    "jax_jit_jvp_execute",
    "jax_jit_vjp_execute",
    "jax_jvp_execute",
    "jax_vjp_execute",
]
