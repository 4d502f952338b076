"""Which JAX qjaxiface runs on, and the shim that keeps PennyLane 0.45 working on newer JAX.

Users do not choose their JAX: Catalyst 0.15 pins ``jax==0.7.1``, and ``pip install`` on Python
3.12+ brings the newest release. qjaxiface supports the range below on every one of those, and
the CI matrix (``.ci/run``) tests its ends.

PennyLane 0.45.1 itself uses JAX internals that later releases removed or changed:

- ``jax.core.TraceTag``, ``take_current_trace``, ``set_current_trace`` and ``JVPTrace`` (gone
  from ``jax.core`` in 0.10, changed in 0.12): PennyLane's ``_jax_argnums_to_tape_trainable``,
  behind every argnum-based transform of a JAX QNode (``qml.metric_tensor``,
  ``qml.adjoint_metric_tensor``, ``param_shift(qnode, argnums=...)``);
- ``jax.core.concrete_or_error`` (gone in 0.12): ``qml.math.to_numpy``, which every device run
  with JAX values reaches, so every eager gradient that is not backprop failed;
- ``jax.core.is_concrete`` (gone in 0.12): ``qml.math.is_abstract``, used by gradient
  transforms on traced parameters.

qjaxiface's own bindings need none of it: its eager bindings hand devices NumPy values, as the
callback path does. PennyLane code around the boundary does: gradient transforms differentiated
to higher order (``max_diff=2``), transforms applied to an installed QNode, the metric tensor.
So while qjaxiface is installed, and while a ``qjaxiface.execute`` call runs, the shim

- puts the two missing ``jax.core`` names back: the very objects JAX keeps in
  ``jax.extend.core`` / ``jax._src.core``, nothing re-implemented;
- replaces ``_jax_argnums_to_tape_trainable`` with ``argnums_trainable_parameters``, which
  does the same on public API (``jax.jvp``), where the installed JAX lacks ``TraceTag``.

When the last holder lets go (``qjaxiface.uninstall``, the end of the call), exactly what was
changed is put back. On a JAX that has everything (0.7.x) the shim changes nothing. Remove it when
qjaxiface requires a PennyLane release that no longer uses these internals (PennyLane > 0.45).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import threading
import warnings
from collections.abc import Callable, Iterator

import jax

#: The oldest JAX qjaxiface supports (Catalyst 0.15's pin, PennyLane 0.45's tested version).
MIN_JAX = "0.7.1"
#: The newest JAX release tested (by the CI matrix leg on Python 3.13).
MAX_TESTED_JAX = "0.12.0.1"
#: The first JAX release outside the tested range (pyproject.toml's upper bound).
JAX_UPPER_BOUND = "0.13"
#: The PennyLane releases qjaxiface is tested with.
PENNYLANE_RANGE = ">=0.45,<0.46"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.12.0.1"`` -> ``(0, 12, 0, 1)``; a pre-release or local suffix is dropped.

    Examples:
        >>> version_tuple("0.7.1")
        (0, 7, 1)
        >>> version_tuple("0.13.0.dev20260101")
        (0, 13, 0)
    """
    parts = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(part):  # "0rc1": keep the 0, stop there
            break
    return tuple(parts)


def jax_support(version: str | None = None) -> str:
    """Where a JAX version stands: ``"tested"``, ``"newer"`` (untested) or ``"too old"``.

    Examples:
        >>> jax_support("0.10.2"), jax_support("0.13.1"), jax_support("0.6.2")
        ('tested', 'newer', 'too old')
    """
    v = version_tuple(version or jax.__version__)
    if v < version_tuple(MIN_JAX):
        return "too old"
    if v >= version_tuple(JAX_UPPER_BOUND):
        return "newer"
    return "tested"


def supported_range() -> str:
    """The supported JAX range, as a sentence fragment for messages."""
    return f"jax>={MIN_JAX},<{JAX_UPPER_BOUND} (tested: {MIN_JAX} to {MAX_TESTED_JAX})"


def check_jax_version(version: str | None = None) -> None:
    """Fail at import for a JAX qjaxiface cannot work with; warn for an untested newer one.

    Raises:
        ImportError: for a JAX older than ``MIN_JAX`` (it lacks the APIs the boundary is
            built on), naming the supported range and the command that fixes it.
    """
    version = version or jax.__version__
    support = jax_support(version)
    if support == "too old":
        raise ImportError(
            f"qjaxiface needs {supported_range()}, but jax {version} is installed. "
            f'Upgrade it: pip install "jax>={MIN_JAX},<{JAX_UPPER_BOUND}".'
        )
    if support == "newer":
        warnings.warn(
            f"qjaxiface is tested with {supported_range()}; jax {version} is newer and "
            "untested. Run `qjaxiface doctor` to check this environment, and report problems.",
            UserWarning,
            stacklevel=3,
        )


def _from_core(name: str) -> Callable[[], object]:
    # The public home first (jax.extend.core), then JAX's internal module.
    def locate() -> object:
        extend_core = importlib.import_module("jax.extend.core")
        if hasattr(extend_core, name):
            return getattr(extend_core, name)
        return getattr(importlib.import_module("jax._src.core"), name)

    return locate


# The ``jax.core`` names PennyLane 0.45 calls, and where the installed JAX keeps them now.
_JAX_CORE_NAMES: dict[str, Callable[[], object]] = {
    "concrete_or_error": _from_core("concrete_or_error"),
    "is_concrete": _from_core("is_concrete"),
}

_ARGNUMS_SITE = ("pennylane.transforms.core.cotransform_cache", "_jax_argnums_to_tape_trainable")

_lock = threading.Lock()
_holders = 0  # install() and running execute() calls that hold the shim
_added: dict[str, object] = {}  # the names the shim put on jax.core, while held
_replaced: dict[tuple[str, str], tuple[object, object]] = {}  # site -> (original, replacement)


def _jax_core_has(name: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax 0.10 warns on some reads
        return hasattr(jax.core, name)


@functools.cache
def missing_jax_core_names() -> tuple[str, ...]:
    """The ``jax.core`` names PennyLane 0.45 relies on that the installed JAX lacks.

    Read once, before the shim can have added any (``jax.core`` changes only through it).

    Examples:
        >>> set(missing_jax_core_names()) <= {"TraceTag", "concrete_or_error", "is_concrete"}
        True
    """
    return tuple(n for n in ("TraceTag", *_JAX_CORE_NAMES) if not _jax_core_has(n))


def argnums_trainable_parameters(qnode, argnums, program, args, kwargs) -> tuple:
    """The tapes' parameters with the ``argnums`` arguments' values as JVP tracers.

    PennyLane's argnum-based transforms ask which tape parameters depend on the QNode arguments
    in ``argnums``: those parameters are JAX tracers when the tape is built from tracer
    arguments. PennyLane 0.45 builds the tracers by hand from JAX internals; this builds the
    tape inside ``jax.jvp`` instead and returns the parameters it saw (only their being tracers
    is read afterwards, by ``qml.math.get_trainable_indices``).

    Args:
        qnode: the QNode.
        argnums: indices of the positional arguments that are trainable.
        program: the compile pipeline that turns the QNode's tape into the transform's tapes.
        args: the positional arguments.
        kwargs: the keyword arguments.

    Returns:
        tuple: per transformed tape, its parameters (``trainable_only=False``).
    """
    import pennylane as qml

    from ._tangents import zero_tangent_like

    seen: list[tuple] = []

    def build(*traced):
        full = list(args)
        for i, value in zip(argnums, traced):
            full[i] = value
        tape = qml.workflow.construct_tape(qnode, level=0)(*full, **kwargs)
        tapes, _ = program((tape,))
        seen.append(tuple(t.get_parameters(trainable_only=False) for t in tapes))
        return 0.0

    primals = tuple(jax.numpy.asarray(args[i]) for i in argnums)
    jax.jvp(build, primals, tuple(zero_tangent_like(p) for p in primals))
    return seen[0]


def _apply() -> None:
    missing = missing_jax_core_names()
    for name, locate in _JAX_CORE_NAMES.items():
        if name not in missing:
            continue
        try:
            value = locate()
        except (ImportError, AttributeError):  # moved again: see unprovidable_jax_core_names
            continue
        setattr(jax.core, name, value)
        _added[name] = value
    if "TraceTag" in missing:
        module = importlib.import_module(_ARGNUMS_SITE[0])
        original = getattr(module, _ARGNUMS_SITE[1])
        setattr(module, _ARGNUMS_SITE[1], argnums_trainable_parameters)
        _replaced[_ARGNUMS_SITE] = (original, argnums_trainable_parameters)


def _remove() -> None:
    for name, value in _added.items():
        if getattr(jax.core, name, None) is value:
            delattr(jax.core, name)
    _added.clear()
    for (module_name, attr), (original, replacement) in _replaced.items():
        module = importlib.import_module(module_name)
        if getattr(module, attr, None) is replacement:
            setattr(module, attr, original)
    _replaced.clear()


def acquire_jax_core_shim() -> None:
    """Hold the shim: the first holder applies it."""
    global _holders
    missing_jax_core_names()  # read JAX before anything is added
    with _lock:
        if _holders == 0:
            _apply()
        _holders += 1


def release_jax_core_shim() -> None:
    """Let go of the shim: the last holder puts back exactly what was changed."""
    global _holders
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            _remove()


@contextlib.contextmanager
def jax_core_shim() -> Iterator[None]:
    """The shim held for the duration of the block (``qjaxiface.execute`` runs inside one)."""
    acquire_jax_core_shim()
    try:
        yield
    finally:
        release_jax_core_shim()


def active_shims() -> tuple[str, ...]:
    """What the shim changes right now: ``jax.core`` names and replaced PennyLane functions."""
    with _lock:
        return (*(f"jax.core.{n}" for n in _added), *(".".join(site) for site in _replaced))


def unprovidable_jax_core_names() -> tuple[str, ...]:
    """Missing names this JAX does not have internally either (PennyLane features that fail)."""
    out = []
    for name in missing_jax_core_names():
        if name not in _JAX_CORE_NAMES:
            continue  # replaced by argnums_trainable_parameters
        try:
            _JAX_CORE_NAMES[name]()
        except (ImportError, AttributeError):
            out.append(name)
    return tuple(out)


@contextlib.contextmanager
def outside_traces() -> Iterator[None]:
    """Evaluate JAX operations at once inside the block, whatever trace is current.

    JAX runs a ``custom_jvp`` rule under eager ``jax.grad`` (``jax.linearize``) with the tangent
    trace current, even when its primals are concrete. Host work in the rule that builds JAX
    arrays from NumPy values (PennyLane operators do: ``ParametrizedEvolution`` casts its
    parameters with ``jnp.array``) then yields tracers that no device can read. Only for blocks
    whose inputs are all concrete. JAX has no public API for it; where the private one is
    missing, the block runs as it is.
    """
    from jax._src import core

    set_current_trace = getattr(core, "set_current_trace", None)
    eval_trace = getattr(core, "eval_trace", None)
    if set_current_trace is None or eval_trace is None:
        yield
        return
    with set_current_trace(eval_trace):
        yield
