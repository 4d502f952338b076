"""Interface detection: eager JAX (``"jax"``) or traced JAX (``"jax-jit"``).

The question the boundary must answer is not "are we inside ``jax.jit``" but "can the executor
see concrete parameter values". Eager differentiation wraps values in JVP/linearize tracers whose
primal is still concrete, so those are unwrapped; any other tracer (``jit``'s
``DynamicJaxprTracer``, ``vmap``'s ``BatchTracer``, ...) is abstract and forces the callback path.
That is also why ``jax.vmap`` over an eager QNode works here: a batch tracer is routed to
``pure_callback``, which knows how to be vmapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import jax

InterfaceName = Literal["jax", "jax-jit"]

_VALID_INTERFACES = ("auto", "jax", "jax-jit")


def _differentiation_tracer_types() -> tuple[type, ...]:
    # The module moved between JAX releases; look the classes up by name so that both the oldest
    # supported JAX (0.7.1) and current releases work.
    from jax._src.interpreters import ad

    return tuple(
        getattr(ad, name) for name in ("JVPTracer", "LinearizeTracer") if hasattr(ad, name)
    )


_DIFF_TRACERS: tuple[Any, ...] = _differentiation_tracer_types()


def is_abstract(value: Any) -> bool:
    """Whether ``value`` hides its concrete value from Python.

    Args:
        value: any parameter value (JAX array, tracer, NumPy array, Python number).

    Returns:
        bool: ``True`` for a tracer whose innermost primal is not concrete.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> is_abstract(jnp.array(1.0))
        False
        >>> _ = jax.jit(lambda x: print(is_abstract(x)) or x)(1.0)
        True
    """
    while isinstance(value, _DIFF_TRACERS):
        value = value.primal
    return isinstance(value, jax.core.Tracer)


def is_differentiation_tracer(value) -> bool:
    """Whether ``value`` is being differentiated (a JVP or linearize tracer).

    Inside a derivative rule this means a derivative *of the rule* was asked for: a second
    (or higher) order derivative.
    """
    return isinstance(value, _DIFF_TRACERS)


def inside_staging_trace() -> bool:
    """Whether new values are being staged into a program (``jit``, ``make_jaxpr``, ...).

    Under ``jit`` every JAX operation is recorded, even one on constants; eagerly, and under
    eager ``grad``/``vmap`` of constants, it runs at once. A QNode called with concrete values
    inside a jitted function is part of a compiled program; the same call outside is one-off.

    Examples:
        >>> import jax
        >>> inside_staging_trace()
        False
        >>> jax.jit(lambda x: print(inside_staging_trace()) or x)(1.0)
        True
        Array(1., dtype=float32, weak_type=True)
    """
    return isinstance(jax.numpy.zeros(()), jax.core.Tracer)


def _all_parameters(tapes: Iterable) -> Iterable:
    for tape in tapes:
        # get_parameters covers operations and observables of the measurements.
        yield from tape.get_parameters(trainable_only=False)


def get_jax_interface_name(tapes: Sequence) -> InterfaceName:
    """Return ``"jax-jit"`` if any tape parameter is abstract, otherwise ``"jax"``.

    Every parameter of every operation and measured observable is inspected. JVP (and linearize)
    tracers of eager differentiation are looked through, so ``jax.grad`` outside of ``jit``
    stays on the cheap eager path.

    Args:
        tapes (Sequence[QuantumScript]): the batch of tapes.

    Returns:
        str: ``"jax"`` or ``"jax-jit"``.

    Examples:
        >>> import jax, jax.numpy as jnp, pennylane as qml
        >>> def name(x):
        ...     tape = qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])
        ...     return get_jax_interface_name([tape])
        >>> name(jnp.array(0.1))
        'jax'
        >>> _ = jax.jit(lambda x: print(name(x)) or x)(0.1)
        jax-jit
    """
    for param in _all_parameters(tapes):
        if is_abstract(param):
            return "jax-jit"
    return "jax"


def custom_rule_traces_primals(kind: Literal["jvp", "vjp"]) -> bool:
    """Whether JAX traces a ``custom_jvp`` / ``custom_vjp`` function even when called eagerly.

    JAX's new custom-derivative machinery (the ``jax_custom_jvp3`` / ``jax_custom_vjp3`` flags,
    jax 0.10+) stages the decorated function and its rule into jaxprs, so an eager binding that
    reads concrete values inside them would be handed tracers. Under those flags the eager
    bindings hand over to the callback bindings, which work with tracers (the callback then
    runs at once, on concrete values).

    Examples:
        >>> custom_rule_traces_primals("jvp") in (True, False)
        True
    """
    return bool(getattr(jax.config, f"jax_custom_{kind}3", False))


def validate_interface(interface) -> str:
    """Normalise the ``interface`` argument of ``qjaxiface.execute``.

    Accepts ``"auto"``, ``"jax"``, ``"jax-jit"`` (as strings or PennyLane ``Interface`` members).

    Raises:
        ValueError: for anything else, naming the accepted values.
    """
    value = getattr(interface, "value", interface)
    if value is None or value not in _VALID_INTERFACES:
        raise ValueError(
            f"qjaxiface.execute got interface={interface!r}; qjaxiface is the JAX boundary and "
            f"accepts only {', '.join(map(repr, _VALID_INTERFACES))}. For other frameworks call "
            "pennylane.execute directly."
        )
    return value


def resolve_interface(requested: str, tapes: Sequence) -> InterfaceName:
    """The interface a call runs under: the detected one, unless ``"jax-jit"`` was requested.

    ``"jax"`` with abstract parameters is upgraded to ``"jax-jit"`` (the eager binding cannot
    read tracers); ``"jax-jit"`` is honoured even for concrete values (callbacks then run
    immediately), as in PennyLane.
    """
    requested = validate_interface(requested)
    if requested == "jax-jit":
        return "jax-jit"
    return get_jax_interface_name(tapes)
