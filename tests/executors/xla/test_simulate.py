"""How a tape program reads its gates' parameters (``_simulate._TapeParams``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qjaxiface.executors.xla._simulate import _TapeParams

# Three gates: one parameter each, then a gate with two.
SLICES = [slice(0, 1), slice(1, 2), slice(2, 4)]


def _source(leaves):
    return _TapeParams(tuple(leaves), SLICES)


def test_scalars_of_one_dtype_are_read_from_one_vector():
    leaves = [jnp.asarray(x) for x in (0.1, 0.2, 0.3, 0.4)]
    source = _source(leaves)
    np.testing.assert_array_equal(source.stacked([2, 0], 0), [0.3, 0.1])
    np.testing.assert_array_equal(source.stacked([2], 1), [0.4])
    assert source._vector is not None

    # Reverse mode: each leaf's cotangent is how often it was read.
    def f(*leaves):
        s = _source(leaves)
        return jnp.sum(s.stacked([2, 0, 1], 0)) + 3 * jnp.sum(s.stacked([2, 2], 1))

    grads = jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))(*leaves)
    np.testing.assert_array_equal(grads, [1.0, 1.0, 1.0, 6.0])


@pytest.mark.parametrize(
    "odd",
    [np.float32(0.2), jnp.ones((2, 2))],
    ids=["another dtype", "an array"],
)
def test_other_leaves_are_stacked_one_by_one(odd):
    leaves = [jnp.asarray(0.1), jnp.asarray(odd), jnp.asarray(0.3), jnp.asarray(0.4)]  # x64 on
    source = _source(leaves)
    assert source._vector is None
    np.testing.assert_allclose(source.stacked([2, 0], 0), [0.3, 0.1], rtol=1e-7)
