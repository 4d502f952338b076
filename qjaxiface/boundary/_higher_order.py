"""Higher-order derivatives through first-order methods: an error, never a silent zero."""

from __future__ import annotations


class HigherOrderError(ValueError):
    """A higher-order derivative was requested from a first-order derivative method.

    Raised instead of returning a silently zero second derivative (PennyLane's boundary returns
    zeros) for adjoint, device derivatives, host callbacks and gradient transforms with
    ``max_diff=1``. The message names the remedy: a gradient transform with ``max_diff=2``, or
    ``diff_method="backprop"``. A ``ValueError``, so existing handlers still catch it.
    """


def higher_order_message(what: str) -> str:
    return (
        f"a higher-order derivative (e.g. jax.hessian, or jax.grad of a gradient) was requested, "
        f"but {what} computes first derivatives only, so the second derivative would be silently "
        "zero. Use a gradient transform (diff_method='parameter-shift', 'finite-diff', ...) with "
        "max_diff=2, or diff_method='backprop'."
    )


class FirstOrderJacobians:
    """Wraps a Jacobian-product calculator that cannot be differentiated again.

    Devices turn tracers into NumPy values by reading their primal, so a second derivative through
    a first-order calculator would come out as zero. This wrapper raises instead whenever it is
    asked for derivatives at a point that is itself being differentiated.
    """

    def __init__(self, jpc, description: str):
        self._jpc = jpc
        self._description = description

    def __repr__(self):
        return f"FirstOrderJacobians({self._jpc!r})"

    def _check(self, tapes):
        from ..detect import is_differentiation_tracer

        for tape in tapes:
            for p in tape.get_parameters(trainable_only=False):
                if is_differentiation_tracer(p):
                    raise HigherOrderError(higher_order_message(self._description))

    def execute_and_compute_jacobian(self, tapes):
        self._check(tapes)
        return self._jpc.execute_and_compute_jacobian(tapes)

    def compute_jacobian(self, tapes):
        self._check(tapes)
        return self._jpc.compute_jacobian(tapes)

    def execute_and_compute_jvp(self, tapes, tangents):
        self._check(tapes)
        return self._jpc.execute_and_compute_jvp(tapes, tangents)

    def compute_vjp(self, tapes, dy):
        self._check(tapes)
        return self._jpc.compute_vjp(tapes, dy)

    def __getattr__(self, name):
        return getattr(self._jpc, name)
