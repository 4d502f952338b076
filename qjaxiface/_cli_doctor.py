"""``qjaxiface doctor``: an environment report and a short self-test.

The report lists what usually explains a bug report: package versions, the JAX backend and its
devices, the x64 setting, the PennyLane devices that are installed (entry points of the group
``"pennylane.plugins"``) and whether the qjaxiface hook is installed. The self-test runs one
jitted gradient through qjaxiface and compares it with the analytic value.

**Example**

>>> from qjaxiface._cli_doctor import environment_report
>>> report = environment_report()
>>> sorted(report["versions"])[:3]
['jax', 'jaxlib', 'pennylane']
"""

from __future__ import annotations

import logging
import math
import platform
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["SelfTestResult", "environment_report", "pennylane_devices", "run_doctor", "self_test"]

_PACKAGES = ("jax", "jaxlib", "pennylane", "pennylane_lightning", "qjaxiface")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        if dist == "qjaxiface":
            # A source checkout on sys.path without an installed distribution.
            import qjaxiface

            return getattr(qjaxiface, "__version__", "source checkout (not pip-installed)")
        return "not installed"


def pennylane_devices() -> dict[str, list[str]]:
    """The installed PennyLane devices, grouped by the distribution that provides them.

    Returns:
        dict[str, list[str]]: ``"distribution version"`` mapped to sorted device names.

    **Example**

    >>> devices = pennylane_devices()
    >>> any("default.qubit" in names for names in devices.values())
    True
    """
    grouped: dict[str, list[str]] = {}
    for ep in metadata.entry_points(group="pennylane.plugins"):
        dist = getattr(ep, "dist", None)
        owner = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
        grouped.setdefault(owner, []).append(ep.name)
    return {owner: sorted(set(names)) for owner, names in sorted(grouped.items())}


def _hook_state() -> str:
    try:
        import qjaxiface
    except Exception as exc:  # pragma: no cover - broken installs only
        return f"unknown (import qjaxiface failed: {exc!r})"
    is_installed = getattr(qjaxiface, "is_installed", None)
    if is_installed is None:
        return "unknown (this qjaxiface has no is_installed())"
    return "yes" if is_installed() else "no"


def environment_report() -> dict[str, Any]:
    """Collect the environment report as plain data.

    Returns:
        dict: keys ``"python"``, ``"versions"``, ``"backend"``, ``"devices"``, ``"x64"``,
        ``"pennylane_devices"`` and ``"hook_installed"``.
    """
    import jax

    return {
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "backend": jax.default_backend(),
        "devices": [
            f"{d.platform}:{d.id} ({getattr(d, 'device_kind', '?')})" for d in jax.devices()
        ],
        "x64": bool(jax.config.jax_enable_x64),
        "pennylane_devices": pennylane_devices(),
        "hook_installed": _hook_state(),
    }


@dataclass
class SelfTestResult:
    """The outcome of :func:`self_test`.

    Attributes:
        passed: whether every check passed.
        diff_method: the differentiation method of the test QNode.
        x: the input of the test circuit.
        value: the gradient qjaxiface returned (``nan`` if the call failed).
        expected: ``-sin(x)``.
        seconds: wall time of the test, compilation included.
        routes: the messages (boundary entries) qjaxiface logged during the call.
        problems: human-readable reasons for a failure.
    """

    passed: bool
    diff_method: str
    x: float
    value: float
    expected: float
    seconds: float
    routes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def self_test(
    x: float = 0.7, atol: float = 1e-5, diff_method: str = "parameter-shift"
) -> SelfTestResult:
    """Differentiate ``RX(x) -> <Z>`` with ``jax.jit(jax.grad(...))`` through qjaxiface.

    The QNode uses ``default.qubit`` and ``interface="auto"``; the call runs inside
    :func:`qjaxiface.installed`, so PennyLane routes it through qjaxiface. The check passes when
    the gradient equals ``-sin(x)`` within ``atol`` and the hook is active inside the context
    and restored after it.

    Args:
        x: the point at which the gradient is taken.
        atol: the absolute tolerance (float32 by default in JAX).
        diff_method: the QNode's differentiation method.

    Returns:
        SelfTestResult: the outcome; it never raises for a failing check.

    **Example**

    >>> result = self_test()
    >>> result.passed, round(result.expected, 6)
    (True, -0.644218)
    """
    start = time.perf_counter()
    expected = -math.sin(x)
    problems: list[str] = []
    value = float("nan")
    handler = _Collect()
    logger = logging.getLogger("qjaxiface")
    old_level = logger.level
    try:
        import jax
        import jax.numpy as jnp
        import pennylane as qml

        import qjaxiface

        before = qjaxiface.is_installed()
        dev = qml.device("default.qubit", wires=1)

        @qml.qnode(dev, diff_method=diff_method)
        def circuit(theta):
            qml.RX(theta, wires=0)
            return qml.expval(qml.Z(0))

        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        with warnings.catch_warnings(), qjaxiface.installed():
            # default.qubit asks for complex128 when x64 is off; JAX warns and uses complex64.
            warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
            if not qjaxiface.is_installed():
                problems.append("qjaxiface.is_installed() is False inside qjaxiface.installed()")
            value = float(jax.jit(jax.grad(circuit))(jnp.asarray(x)))
        if qjaxiface.is_installed() != before:
            problems.append("qjaxiface.installed() did not restore the previous hook state")
        if not math.isfinite(value) or abs(value - expected) > atol:
            problems.append(f"gradient {value!r} differs from -sin(x) = {expected!r}")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return SelfTestResult(
        passed=not problems,
        diff_method=diff_method,
        x=x,
        value=value,
        expected=expected,
        seconds=time.perf_counter() - start,
        routes=handler.messages,
        problems=problems,
    )


def _print_report(report: dict[str, Any], out: Callable[[str], None]) -> None:
    out("qjaxiface doctor")
    out("")
    out("Versions")
    out(f"  {'python':<22}{report['python']}")
    for name, ver in report["versions"].items():
        out(f"  {name:<22}{ver}")
    out(f"  {'platform':<22}{report['platform']}")
    out("")
    out("JAX")
    out(f"  {'backend':<22}{report['backend']}")
    out(f"  {'devices':<22}{', '.join(report['devices'])}")
    out(f"  {'x64':<22}{'on' if report['x64'] else 'off'}")
    out("")
    out("PennyLane devices (entry points 'pennylane.plugins')")
    if not report["pennylane_devices"]:
        out("  none found")
    for owner, names in report["pennylane_devices"].items():
        lines = textwrap.wrap(
            ", ".join(names), width=96, initial_indent=f"  {owner}: ", subsequent_indent="    "
        )
        for line in lines:
            out(line)
    out("")
    out(f"qjaxiface hook installed: {report['hook_installed']}")


def _print_self_test(result: SelfTestResult, out: Callable[[str], None]) -> None:
    verdict = "PASS" if result.passed else "FAIL"
    out(
        f"  {result.diff_method:<16} got {result.value:.6f}, expected {result.expected:.6f}"
        f"  {verdict} ({result.seconds:.1f} s)"
    )
    if result.routes:
        for route in dict.fromkeys(result.routes):
            out(f"    qjaxiface log: {route}")
    else:
        out("    qjaxiface log: no boundary entry was logged")
    for problem in result.problems:
        out(f"    problem: {problem}")


SELF_TEST_METHODS = ("parameter-shift", "backprop")


def run_doctor(run_self_test: bool = True) -> int:
    """Print the environment report and (by default) run the self-test.

    Args:
        run_self_test: run :func:`self_test` after the report, once for each of
            ``SELF_TEST_METHODS`` (parameter-shift: the custom_jvp boundary; backprop: the
            traced device).

    Returns:
        int: 0 if the self-test passed or was skipped, 1 if it failed.
    """
    _print_report(environment_report(), print)
    if not run_self_test:
        return 0
    print("")
    print(
        "Self-test: jax.jit(jax.grad(RX(x) -> <Z>)) at x = 0.7 on default.qubit, inside "
        "qjaxiface.installed(); expected -sin(x)"
    )
    results = [self_test(diff_method=method) for method in SELF_TEST_METHODS]
    for result in results:
        _print_self_test(result, print)
    passed = all(r.passed for r in results)
    print(f"Self-test: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1
