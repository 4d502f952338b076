"""Derivative rules for a ``TapeProgram``: which rule, for which ``diff_method``.

* ``backprop`` / ``None``: the program's function as is (JAX differentiates the simulation).
* ``parameter-shift`` / ``finite-diff`` / ``spsa`` (``_shift.py``): a ``jax.custom_jvp`` whose rule evaluates
  the function -- traced once -- ``jax.vmap``-ed over a matrix of shifted parameter vectors and
  contracts the results with recipe coefficients times tangents. The rule calls the
  ``custom_jvp`` function itself, so second derivatives are shifts of shifts (as PennyLane's
  parameter-shift Hessian), and it is linear in the tangents, so grad/jacrev/jacfwd/hessian/
  vmap all compose.
* ``adjoint`` (``_adjoint.py``): a ``jax.custom_jvp`` whose rule computes the Jacobian of the expectation values
  with an adjoint sweep in ``jnp`` (un-apply each gate to the ket and to one bra per
  expectation value, accumulating ``2 Re <bra| dU/dθ |ket>``), memory ``O(#expvals · 2^n)``,
  and contracts it with the tangents. A ``custom_jvp`` rather than a ``custom_vjp``: reverse
  mode costs the same (the Jacobian is a primal quantity, computed once), and forward mode,
  ``jacfwd`` and the Hessian work too (second derivatives differentiate the sweep itself).

Parameters the rule cannot shift (no recipe, complex or non-scalar, observable coefficients
for parameter-shift, state preparations for adjoint) get their tangent contribution by plain
JAX forward-mode differentiation of the simulation -- exact for analytic results;
``xla_unsupported_reason`` refuses the finite-shot cases where
that would be wrong.
"""

from __future__ import annotations

from ._adjoint import make_adjoint_fn
from ._jvp_parts import Fn
from ._shift import SHIFT_METHODS, make_shift_fn
from ._simulate import TapeProgram


def make_fn(program: TapeProgram, diff_method: str | None, kwargs: dict | None) -> Fn:
    """The program's unbroadcast function ``(leaves, key) -> result`` for ``diff_method``."""
    if diff_method in (None, "backprop"):
        return program.run_single
    if diff_method == "adjoint":
        return make_adjoint_fn(program, getattr(program, "adjoint_jvp", None))
    if diff_method in SHIFT_METHODS:
        return make_shift_fn(program, diff_method, dict(kwargs or {}))
    raise ValueError(f"unknown diff_method {diff_method!r}")
