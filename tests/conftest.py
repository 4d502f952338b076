"""Shared fixtures: x64 on, the hook off by default, reference runs with PennyLane's boundary.

Keep this the only ``conftest.py``: test modules import helpers from it as ``conftest``, and a
second one in a subfolder would shadow it under pytest's default import mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

# The tests check results, not speed, and XLA compiles dominate their time: LLVM's optimization
# of XLA:CPU's kernels is a quarter of the suite (measured: 466 s -> 357 s on three modules)
# and changes no result beyond rounding. Users and benchmarks keep XLA's default.
# QJAXIFACE_TEST_XLA_OPT=default keeps the default here too. Subprocesses inherit the flag
# (``xla_env`` adds theirs to it).
if os.environ.get("QJAXIFACE_TEST_XLA_OPT") != "default":
    _TEST_XLA_FLAG = "--xla_backend_optimization_level=0"
    if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_TEST_XLA_FLAG}".strip()

import jax
import numpy as np
import pennylane as qml
import pytest

jax.config.update("jax_enable_x64", True)

import qjaxiface  # noqa: E402
from qjaxiface import _compat  # noqa: E402

# The references these tests compare with are PennyLane itself (its own boundary, default.qubit
# under jit, its transforms), and PennyLane 0.45 calls jax.core names that jax 0.12 removed. The
# test process therefore holds qjaxiface's compatibility shim for the whole session, as an
# installed qjaxiface does for a user. That qjaxiface needs no shim itself is tested in a fresh
# interpreter (tests/test_compat.py); tests of the shim's own state use ``no_session_shim``.
_compat.acquire_jax_core_shim()


def xla_env(*flags: str, **env: str) -> dict[str, str]:
    """This process's environment for a subprocess, with ``flags`` added to ``XLA_FLAGS``."""
    return dict(
        os.environ, XLA_FLAGS=" ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip(), **env
    )


@pytest.fixture
def no_session_shim():
    """The session's hold on the compatibility shim released for one test."""
    _compat.release_jax_core_shim()
    try:
        yield
    finally:
        _compat.acquire_jax_core_shim()


@pytest.fixture(autouse=True)
def _hook_off_after_each_test():
    """Every test starts and ends with PennyLane's own boundary in place."""
    qjaxiface.uninstall()
    yield
    qjaxiface.uninstall()


@pytest.fixture
def scan_walks(monkeypatch):
    """Counts the calls of ``scan``'s partial-evaluation rule, which walks the loop's body:
    ``jax.grad`` of a custom rule calls it for every loop the rule binds outside ``one_call``."""
    from jax._src.interpreters import partial_eval as pe
    from jax._src.lax.control_flow import loops

    walks: list[int] = []
    rule = pe.custom_partial_eval_rules[loops.scan_p]

    def counted(*args, **params):
        walks.append(1)
        return rule(*args, **params)

    monkeypatch.setitem(pe.custom_partial_eval_rules, loops.scan_p, counted)
    return walks


@pytest.fixture
def rng():
    """A seeded NumPy generator, so random parameters are the same on every run."""
    return np.random.default_rng(1234)


@contextlib.contextmanager
def classic_custom_rules():
    """JAX's classic ``custom_jvp``/``custom_vjp`` machinery inside the block.

    On the CI leg with ``jax_custom_jvp3``/``jax_custom_vjp3`` on, PennyLane 0.45's own eager
    boundary is handed tracers by the new machinery and fails; references computed with
    PennyLane are therefore computed with the classic machinery, while qjaxiface runs with the
    flags on outside the block.
    """
    flags = [f for f in ("jax_custom_jvp3", "jax_custom_vjp3") if getattr(jax.config, f, False)]
    for flag in flags:
        jax.config.update(flag, False)
    try:
        yield
    finally:
        for flag in flags:
            jax.config.update(flag, True)


@contextlib.contextmanager
def builtin_boundary():
    """PennyLane's built-in JAX boundary (qjaxiface uninstalled) inside the block."""
    was = qjaxiface.is_installed()
    qjaxiface.uninstall()
    try:
        with classic_custom_rules():
            yield
    finally:
        if was:
            qjaxiface.install()


class DerivativesOnlyDevice(qml.devices.Device):
    """A device that provides derivatives only through ``compute_derivatives``.

    It executes with default.qubit and differentiates with parameter-shift on the host, so the
    boundary must use the device-derivative path (``diff_method="device"``).
    """

    name = "derivatives-only"

    def __init__(self, wires=None, shots=None):
        super().__init__(wires=wires, shots=shots)
        self._dq = qml.device("default.qubit", wires=wires)
        self.derivative_calls = 0

    def preprocess_transforms(self, execution_config=None):
        return self._dq.preprocess_transforms(execution_config)

    def execute(self, circuits, execution_config=None):
        return self._dq.execute(circuits)

    def setup_execution_config(self, config=None, circuit=None):
        config = super().setup_execution_config(config, circuit)
        if config.gradient_method == "device":
            grad_on_execution = bool(config.grad_on_execution)
            config = dataclasses.replace(
                config, use_device_gradient=True, grad_on_execution=grad_on_execution
            )
        return config

    def supports_derivatives(self, execution_config=None, circuit=None):
        return execution_config is None or execution_config.gradient_method in ("device", None)

    def compute_derivatives(self, circuits, execution_config=None):
        self.derivative_calls += 1
        tapes, fn = qml.gradients.param_shift(circuits)
        return fn(self._dq.execute(tapes))


def assert_tree_allclose(actual, expected, atol=1e-8, rtol=1e-6):
    """Structure, shape and value equality of two result pytrees."""
    a_leaves, a_tree = jax.tree_util.tree_flatten(actual)
    e_leaves, e_tree = jax.tree_util.tree_flatten(expected)
    assert a_tree == e_tree, f"structure differs: {a_tree} != {e_tree}"
    for a, e in zip(a_leaves, e_leaves):
        assert np.shape(a) == np.shape(e)
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=rtol)


# --- support matrix collection (controller side; works with and without xdist) -----------------

_MATRIX_ROWS: list = []
_MATRIX_TESTS: set = set()


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "support_matrix":
            _MATRIX_ROWS.extend(tuple(row) for row in value)
            _MATRIX_TESTS.add(report.nodeid)


def pytest_addoption(parser):
    parser.addoption(
        "--update-support-matrix",
        action="store_true",
        help="rewrite docs/support-matrix.md from this run of tests/test_support_matrix.py "
        "(otherwise each case checks that the page shows what it measured)",
    )


def pytest_sessionfinish(session, exitstatus):
    if not session.config.getoption("--update-support-matrix"):
        return
    if hasattr(session.config, "workerinput") or not _MATRIX_ROWS:
        return
    from test_support_matrix import CASES

    if len(_MATRIX_TESTS) != len(CASES):
        return  # a partial run must not overwrite the full matrix
    from support_matrix_report import write_support_matrix

    write_support_matrix(_MATRIX_ROWS)
