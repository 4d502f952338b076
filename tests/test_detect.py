"""Interface detection: which tracers count as abstract."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from qjaxiface import get_jax_interface_name
from qjaxiface.detect import is_abstract, resolve_interface, validate_interface


def _tape(*params, obs_param=None):
    ops = [qml.RX(p, 0) for p in params]
    obs = qml.Hermitian(obs_param, 0) if obs_param is not None else qml.Z(0)
    return qml.tape.QuantumScript(ops, [qml.expval(obs)])


def test_concrete_values_are_eager():
    assert get_jax_interface_name([_tape(jnp.array(0.1), 0.2, np.array(0.3))]) == "jax"


def test_no_parameters_is_eager():
    assert get_jax_interface_name([qml.tape.QuantumScript([qml.X(0)], [qml.probs()])]) == "jax"


@pytest.mark.parametrize("transform", [jax.grad, jax.jacfwd, jax.jacrev, jax.hessian])
def test_eager_differentiation_is_eager(transform):
    seen = []

    def f(x):
        seen.append(get_jax_interface_name([_tape(x)]))
        return x**2

    transform(f)(1.0)
    assert seen and set(seen) == {"jax"}


@pytest.mark.parametrize(
    "wrap, arg",
    [
        (jax.jit, 1.0),
        (jax.vmap, jnp.ones(2)),
        (lambda f: jax.jit(jax.grad(f)), 1.0),
        (lambda f: jax.vmap(jax.grad(f)), jnp.ones(2)),
        (lambda f: jax.grad(jax.jit(f)), 1.0),
    ],
    ids=["jit", "vmap", "jit-grad", "vmap-grad", "grad-jit"],
)
def test_abstract_tracers_are_jit(wrap, arg):
    seen = []

    def f(x):
        seen.append(get_jax_interface_name([_tape(x)]))
        return jnp.sum(x**2)

    wrap(f)(arg)
    assert seen and set(seen) == {"jax-jit"}


def test_observable_parameters_are_inspected():
    seen = []

    def f(x):
        seen.append(get_jax_interface_name([_tape(0.1, obs_param=x * jnp.eye(2))]))
        return x

    jax.jit(f)(1.0)
    assert seen == ["jax-jit"]


def test_is_abstract_on_plain_values():
    assert not is_abstract(1.0)
    assert not is_abstract(np.ones(2))
    assert not is_abstract(jnp.ones(2))


@pytest.mark.parametrize("bad", ["torch", "autograd", "numpy", None, "JAX"])
def test_validate_interface_rejects_non_jax(bad):
    with pytest.raises(ValueError, match="accepts only 'auto', 'jax', 'jax-jit'"):
        validate_interface(bad)


def test_validate_interface_accepts_enum():
    assert validate_interface(qml.math.Interface.JAX_JIT) == "jax-jit"


def test_resolve_interface_upgrades_and_honours():
    tape = _tape(jnp.array(0.1))
    assert resolve_interface("jax", [tape]) == "jax"
    assert resolve_interface("jax-jit", [tape]) == "jax-jit"
    out = []
    jax.jit(lambda x: out.append(resolve_interface("jax", [_tape(x)])) or x)(0.1)
    assert out == ["jax-jit"]


def test_inside_staging_trace_is_true_under_jit_only():
    from qjaxiface.detect import inside_staging_trace

    seen = []

    def probe(x):
        seen.append(inside_staging_trace())
        return x * 2.0

    probe(1.0)
    jax.grad(probe)(1.0)
    jax.vmap(probe)(jnp.ones(2))
    jax.jit(probe)(1.0)
    jax.make_jaxpr(lambda x: probe(x))(1.0)  # a new function: jit's trace is cached
    assert seen == [False, False, False, True, True]
