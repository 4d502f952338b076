"""``one_call``: a rule's primal-only work as one ``custom_jvp`` call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from qjaxiface._tangents import one_call


def _rule_with(wrap):
    """``Σ sin(x)`` whose JVP rule takes ``cos(x)`` from a ``lax.map`` (a scan) of the primal."""

    @jax.custom_jvp
    def f(x):
        return jnp.sum(jnp.sin(x))

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        cos = wrap(lambda x: jax.lax.map(jnp.cos, x))(x)
        return f(x), jnp.dot(cos, dx)

    return f


def test_values_and_derivatives_are_the_functions_own():
    fn = lambda x, k: jax.lax.map(jnp.sin, x) * k  # noqa: E731
    call = one_call(fn)
    x, k = jnp.linspace(0.1, 0.9, 3), jnp.arange(3)
    np.testing.assert_allclose(call(x, k), fn(x, k))
    check_grads(lambda x: call(x, k), (x,), order=2, modes=("fwd", "rev"))
    np.testing.assert_allclose(
        jax.vmap(lambda x: call(x, k))(jnp.stack([x, 2 * x]))[1], fn(2 * x, k)
    )


def test_grad_passes_a_known_loop_through_whole(scan_walks):
    x = jnp.linspace(0.1, 0.9, 4)
    grad = jax.grad(_rule_with(one_call))
    assert "scan" in str(jax.make_jaxpr(grad)(x))
    assert scan_walks == []
    np.testing.assert_allclose(jax.jit(grad)(x), jnp.cos(x))
