"""``qjaxiface doctor``: an environment report and a short self-test.

The report lists what usually explains a bug report: package versions, the JAX backend and its
devices, the x64 setting, the PennyLane devices that are installed (entry points of the group
``"pennylane.plugins"``), whether the qjaxiface hook is installed, and where the installed
JAX/PennyLane pair stands: inside the tested range or not, and which known incompatibilities
qjaxiface works around in it. The self-test takes eager and jitted gradients on the callback path
and on the XLA path, and compares each with the analytic value and the route qjaxiface logged.

Examples:
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

from ._compilation_cache import compilation_cache_status
from .detect import custom_rule_traces_primals

__all__ = [
    "SELF_TEST_CHECKS",
    "SelfTestCheck",
    "SelfTestResult",
    "compatibility_report",
    "environment_report",
    "pennylane_devices",
    "run_doctor",
    "self_test",
]

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

    Examples:
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


def _capacity() -> dict[str, Any]:
    from .executors.xla._distributed import capacity

    return capacity()


def environment_report() -> dict[str, Any]:
    """Collect the environment report as plain data.

    Returns:
        dict: keys ``"python"``, ``"versions"``, ``"backend"``, ``"devices"``, ``"x64"``,
        ``"sharded_state"`` (see ``executors.xla._distributed.capacity``),
        ``"compilation_cache"`` (see ``compilation_cache_status``), ``"pennylane_devices"``, ``"hook_installed"`` and ``"compatibility"`` (see
        ``compatibility_report``).
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
        "x64": bool(jax.config.read("jax_enable_x64")),
        "sharded_state": _capacity(),
        "compilation_cache": compilation_cache_status(),
        "pennylane_devices": pennylane_devices(),
        "hook_installed": _hook_state(),
        "compatibility": compatibility_report(),
    }


def compatibility_report() -> dict[str, Any]:
    """Where the installed JAX and PennyLane stand, and the workarounds qjaxiface applies.

    Returns:
        dict: ``"jax"`` and ``"pennylane"`` (``"tested"``, ``"newer"``, ``"too old"`` or
        ``"untested"``), ``"jax_range"``, ``"pennylane_range"``, ``"workarounds"`` (sentences)
        and ``"capture"`` (whether ``qml.capture`` is enabled).

    Examples:
        >>> compatibility_report()["jax"] in ("tested", "newer")
        True
    """
    import jax
    import pennylane as qml

    from . import _compat

    pl = _compat.version_tuple(qml.__version__)
    workarounds = []
    missing = _compat.missing_jax_core_names()
    if missing:
        workarounds.append(
            f"PennyLane {qml.__version__} relies on jax.core names this JAX lacks "
            f"({', '.join(missing)}): qjaxiface routes around them while installed and during "
            "qjaxiface.execute (eager bindings hand devices NumPy values; argnum transforms "
            "and qml.math get a scoped shim, see docs/compatibility.md)"
        )
    broken = _compat.unprovidable_jax_core_names()
    if broken:
        workarounds.append(
            f"NOT worked around: this JAX has no {', '.join(broken)} anywhere; PennyLane code "
            "that calls it fails with this JAX"
        )
    if _compat.version_tuple(jax.__version__) < (0, 8):
        workarounds.append(
            "jax 0.7: shift-rule tangents are put on the rows mesh of the primal, so row "
            "sharding over several devices passes JAX's custom_jvp type check"
        )
        workarounds.append(
            "jax 0.7: XLA:CPU compiles 1.7-2.6x slower than jax 0.10 at its default LLVM "
            "optimization; XLA_FLAGS=--xla_backend_optimization_level=1 (set before JAX starts) "
            "matches jax 0.10's compile time; backprop and adjoint steps stay about the same, "
            "parameter-shift steps get about 1.6x slower (docs/compatibility.md)"
        )
    return {
        "jax": _compat.jax_support(),
        "jax_range": _compat.supported_range(),
        "pennylane": "tested" if (0, 45) <= pl < (0, 46) else "untested",
        "pennylane_range": f"pennylane{_compat.PENNYLANE_RANGE}",
        "workarounds": workarounds,
        "capture": bool(qml.capture.enabled()),
    }


@dataclass
class SelfTestResult:
    """The outcome of ``self_test``.

    Attributes:
        passed: whether every check passed.
        check: what was exercised, e.g. ``"callback path, eager"``.
        diff_method: the differentiation method of the test QNode.
        x: the input of the test circuit.
        value: the gradient qjaxiface returned (``nan`` if the call failed).
        expected: ``-sin(x)``.
        seconds: wall time of the test, compilation included.
        routes: the messages (boundary entries) qjaxiface logged during the call.
        problems: human-readable reasons for a failure.
    """

    passed: bool
    check: str
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


@dataclass(frozen=True)
class SelfTestCheck:
    """One self-test case: a gradient of ``RX(x) -> <Z>`` taken one way through qjaxiface.

    Attributes:
        label: what it exercises, for the report.
        diff_method: the QNode's differentiation method.
        executor: the ``executor`` qjaxiface is installed with.
        jit: ``jax.jit(jax.grad(f))`` when true, eager ``jax.grad(f)`` otherwise.
        route: a fragment the logged boundary entry must contain (the path really taken).
    """

    label: str
    diff_method: str
    executor: str
    jit: bool
    route: str


#: The self-test matrix: eager and jitted gradients on the callback and XLA paths, and backprop.
SELF_TEST_CHECKS = (
    SelfTestCheck(
        "callback path, eager",
        "parameter-shift",
        "device",
        False,
        # Under jax_custom_jvp3 JAX stages custom rules, so eager calls use the callback binding.
        "interface=jax binding=callback+custom_jvp"
        if custom_rule_traces_primals("jvp")
        else "interface=jax binding=custom_jvp",
    ),
    SelfTestCheck("callback path, jit", "parameter-shift", "device", True, "binding=callback"),
    SelfTestCheck(
        "XLA path, eager",
        "parameter-shift",
        "xla",
        False,
        "interface=jax binding=traced executor=xla",
    ),
    SelfTestCheck(
        "XLA path, jit", "adjoint", "auto", True, "interface=jax-jit binding=traced executor=xla"
    ),
    SelfTestCheck("backprop, jit", "backprop", "device", True, "binding=traced executor=device"),
)


def self_test(
    x: float = 0.7,
    atol: float = 1e-5,
    diff_method: str = "parameter-shift",
    *,
    executor: str = "auto",
    jit: bool = True,
    route: str = "boundary entry",
    check: str | None = None,
) -> SelfTestResult:
    """Differentiate ``RX(x) -> <Z>`` through qjaxiface, eagerly or under ``jax.jit``.

    The QNode uses ``default.qubit`` and ``interface="auto"``; the call runs inside
    ``qjaxiface.installed`` with ``executor``, so PennyLane routes it through qjaxiface.
    The check passes when the gradient equals ``-sin(x)`` within ``atol``, a logged boundary
    entry contains ``route`` (the path that was meant to be exercised was taken), and the hook
    is active inside the context and restored after it.

    Args:
        x: the point at which the gradient is taken.
        atol: the absolute tolerance (float32 by default in JAX).
        diff_method: the QNode's differentiation method.
        executor: the executor qjaxiface is installed with.
        jit: take ``jax.jit(jax.grad(f))`` (true) or eager ``jax.grad(f)`` (false).
        route: a fragment that one logged boundary entry must contain.
        check: a label for the report (default: derived from the arguments).

    Returns:
        SelfTestResult: the outcome; it never raises for a failing check.

    Examples:
        >>> result = self_test()
        >>> result.passed, round(result.expected, 6)
        (True, -0.644218)
        >>> self_test(jit=False, executor="device").passed
        True
    """
    check = check or f"{diff_method}, {'jit' if jit else 'eager'}, executor={executor}"
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

        gradient = jax.grad(circuit)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        with warnings.catch_warnings(), qjaxiface.installed(executor):
            # default.qubit asks for complex128 when x64 is off; JAX warns and uses complex64.
            warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
            if not qjaxiface.is_installed():
                problems.append("qjaxiface.is_installed() is False inside qjaxiface.installed()")
            value = float((jax.jit(gradient) if jit else gradient)(jnp.asarray(x)))
        if qjaxiface.is_installed() != before:
            problems.append("qjaxiface.installed() did not restore the previous hook state")
        if not math.isfinite(value) or abs(value - expected) > atol:
            problems.append(f"gradient {value!r} differs from -sin(x) = {expected!r}")
        if not any(route in message for message in handler.messages):
            problems.append(f"no logged boundary entry contains {route!r}: another path ran")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return SelfTestResult(
        passed=not problems,
        check=check,
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
    cap = report["sharded_state"]
    if cap["device_bytes"] is None:
        out(f"  {'largest state':<22}unknown (the devices report no memory)")
    else:
        n = cap["largest_n"]
        out(
            f"  {'largest state':<22}{n['forward']} qubits, complex128 (adjoint {n['adjoint']}), "
            f"{cap['devices']} x {cap['device_bytes'] / 2**30:.1f} GiB; mesh= shards it"
        )
    cache = report["compilation_cache"]
    if cache["enabled"]:
        size = f"{cache['entries']} files, {cache['bytes'] / 2**20:.1f} MiB"
        out(f"  {'compilation cache':<22}on: {cache['path']} ({size})")
    else:
        out(f"  {'compilation cache':<22}off (qjaxiface.enable_compilation_cache() turns it on)")
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
    compat = report["compatibility"]
    out("")
    out("Compatibility")
    out(f"  {'jax':<22}{compat['jax']} (supported: {compat['jax_range']})")
    out(f"  {'pennylane':<22}{compat['pennylane']} (supported: {compat['pennylane_range']})")
    out(f"  {'program capture':<22}{'enabled' if compat['capture'] else 'off'}")
    if compat["capture"]:
        out("    captured QNodes run on PennyLane's capture path, not through qjaxiface")
    if not compat["workarounds"]:
        out(f"  {'workarounds':<22}none needed")
    for item in compat["workarounds"]:
        for i, line in enumerate(textwrap.wrap(item, width=92)):
            out(("  - " if i == 0 else "    ") + line)


def _print_self_test(result: SelfTestResult, out: Callable[[str], None]) -> None:
    verdict = "PASS" if result.passed else "FAIL"
    out(
        f"  {result.check:<22} {result.diff_method:<16} got {result.value:.6f}, expected "
        f"{result.expected:.6f}  {verdict} ({result.seconds:.1f} s)"
    )
    if result.routes:
        for route in dict.fromkeys(result.routes):
            out(f"    qjaxiface log: {route}")
    else:
        out("    qjaxiface log: no boundary entry was logged")
    for problem in result.problems:
        out(f"    problem: {problem}")


def run_doctor(run_self_test: bool = True) -> int:
    """Print the environment report and (by default) run the self-test.

    Args:
        run_self_test: run ``self_test`` after the report, once for each case of
            ``SELF_TEST_CHECKS`` (eager and jitted, callback and XLA paths, backprop).

    Returns:
        int: 0 if the self-test passed or was skipped, 1 if it failed.
    """
    report = environment_report()
    _print_report(report, print)
    if not run_self_test:
        return 0
    print("")
    print(
        "Self-test: jax.grad(RX(x) -> <Z>) at x = 0.7 on default.qubit, eager and under "
        "jax.jit, inside qjaxiface.installed(); expected -sin(x)"
    )
    results = [
        self_test(
            diff_method=c.diff_method, executor=c.executor, jit=c.jit, route=c.route, check=c.label
        )
        for c in SELF_TEST_CHECKS
    ]
    for result in results:
        _print_self_test(result, print)
    passed = all(r.passed for r in results)
    print(f"Self-test: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1
