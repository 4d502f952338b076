"""Every supported JAX: the version gate, the scoped shim, and gradients that used to break.

These tests run on every leg of the CI matrix (jax 0.7.1, 0.10.x, the newest JAX on Python 3.13,
custom_vjp3 on). The gradient tests are the regressions of the newest JAX: eager non-backprop
gradients failed inside PennyLane's ``qml.math`` and argnum transforms failed in its
``cotransform_cache``.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import xla_env

import qjaxiface
from qjaxiface import _compat

ARGNUMS_MODULE = "pennylane.transforms.core.cotransform_cache"
ARGNUMS_NAME = "_jax_argnums_to_tape_trainable"


# --- the version gate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.12.0.1", (0, 12, 0, 1)), ("0.13.0.dev20260101", (0, 13, 0)), ("0.12.0rc1", (0, 12, 0))],
)
def test_version_tuple(version, expected):
    assert _compat.version_tuple(version) == expected


@pytest.mark.parametrize(
    ("version", "support"),
    [("0.6.2", "too old"), ("0.7.1", "tested"), ("0.10.2", "tested"), ("0.12.0.1", "tested"),
     ("0.13.0", "newer")],
)  # fmt: skip
def test_jax_support(version, support):
    assert _compat.jax_support(version) == support


def test_installed_jax_is_in_the_supported_range():
    assert _compat.jax_support() == "tested", jax.__version__


def test_too_old_jax_fails_at_import_with_the_range():
    with pytest.raises(ImportError, match=r"jax>=0\.7\.1,<0\.13.*jax 0\.6\.2 is installed"):
        _compat.check_jax_version("0.6.2")


def test_newer_jax_warns_once_at_import():
    with pytest.warns(UserWarning, match=r"jax 0\.13\.0 is newer and untested"):
        _compat.check_jax_version("0.13.0")


def test_pyproject_bounds_match_the_gate():
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")) as f:
        text = f.read()
    assert f'"jax>={_compat.MIN_JAX},<{_compat.JAX_UPPER_BOUND}"' in text


# --- the shim -----------------------------------------------------------------------------


def _snapshot():
    module = importlib.import_module(ARGNUMS_MODULE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax 0.10 deprecates both
        names = {n: getattr(jax.core, n, None) for n in ("concrete_or_error", "is_concrete")}
    return names, getattr(module, ARGNUMS_NAME)


def test_shim_provides_what_this_jax_lacks_and_puts_everything_back(no_session_shim):
    before = _snapshot()
    missing = _compat.missing_jax_core_names()
    with _compat.jax_core_shim():
        for name in ("concrete_or_error", "is_concrete"):
            assert hasattr(jax.core, name)  # JAX's own object, shimmed or not
        module = importlib.import_module(ARGNUMS_MODULE)
        replaced = getattr(module, ARGNUMS_NAME) is _compat.argnums_trainable_parameters
        assert replaced == ("TraceTag" in missing)
        assert set(_compat.active_shims()) == {
            *(f"jax.core.{n}" for n in missing if n != "TraceTag"),
            *([f"{ARGNUMS_MODULE}.{ARGNUMS_NAME}"] if replaced else []),
        }
    assert _snapshot() == before
    assert _compat.active_shims() == ()


def test_shim_adds_only_missing_names_and_nested_holders_keep_it(monkeypatch, no_session_shim):
    # A name this JAX lacks in any version, so the test means the same on every leg.
    sentinel = object()
    monkeypatch.setitem(_compat._JAX_CORE_NAMES, "qjaxiface_probe", lambda: sentinel)
    uncached = _compat.missing_jax_core_names.__wrapped__
    monkeypatch.setattr(_compat, "missing_jax_core_names", uncached)
    assert not hasattr(jax.core, "qjaxiface_probe")
    qjaxiface.install()
    with _compat.jax_core_shim():  # an execute() call while installed
        assert jax.core.qjaxiface_probe is sentinel
    assert jax.core.qjaxiface_probe is sentinel  # install() still holds it
    qjaxiface.install("xla")  # re-install: no second hold
    qjaxiface.uninstall()
    assert not hasattr(jax.core, "qjaxiface_probe")
    qjaxiface.uninstall()  # harmless, and releases nothing twice
    assert _compat.active_shims() == ()


def test_release_without_holders_is_harmless(no_session_shim):
    _compat.release_jax_core_shim()
    assert _compat.active_shims() == ()


# --- gradients through the boundary on this JAX ---------------------------------------------

NON_BACKPROP = [
    ("default.qubit", "parameter-shift"),
    ("default.qubit", "adjoint"),
    ("default.qubit", "finite-diff"),
    ("default.qubit", "hadamard"),
    ("default.qubit", "spsa"),
    ("lightning.qubit", "adjoint"),
    ("default.mixed", "parameter-shift"),
]


def _qnode(device, diff_method):
    kwargs = {}
    if diff_method == "spsa":
        kwargs["gradient_kwargs"] = {"num_directions": 200, "sampler_rng": 7, "h": 1e-4}
    if diff_method == "finite-diff":
        kwargs["gradient_kwargs"] = {"h": 1e-6}
    if diff_method == "hadamard":
        kwargs["gradient_kwargs"] = {"aux_wire": 2}

    @qml.qnode(qml.device(device, wires=3), diff_method=diff_method, **kwargs)
    def circuit(x, y):
        qml.RX(x, 0)
        qml.RY(jnp.asarray(0.4), 1)  # a concrete JAX constant among the parameters
        qml.CNOT([0, 1])
        qml.RY(y, 0)
        return qml.expval(qml.Z(0))

    return circuit


def _expected(x, y):
    # <Z0> = cos(x) cos(y) for RX(x), CNOT, RY(y) on qubit 0 (the RY on qubit 1 commutes out).
    return -math.sin(x) * math.cos(y), -math.cos(x) * math.sin(y)


@pytest.mark.parametrize(("device", "diff_method"), NON_BACKPROP)
@pytest.mark.parametrize("how", ["eager", "jit", "vmap"])
def test_installed_gradients_on_every_path(device, diff_method, how):
    circuit = _qnode(device, diff_method)
    grad = jax.grad(circuit, argnums=(0, 1))
    tol = 0.1 if diff_method == "spsa" else 1e-5
    with qjaxiface.installed():
        if how == "vmap":
            xs = jnp.array([0.3, 0.9])
            got = jax.vmap(grad, in_axes=(0, None))(xs, 0.5)
            want = np.array([_expected(float(x), 0.5) for x in xs]).T
        else:
            got = (jax.jit(grad) if how == "jit" else grad)(0.3, 0.5)
            want = _expected(0.3, 0.5)
    np.testing.assert_allclose(np.asarray(got), want, atol=tol)


WITHOUT_SHIM = textwrap.dedent(
    """
    import math, jax, jax.numpy as jnp, pennylane as qml, qjaxiface
    from qjaxiface import _compat
    jax.config.update("jax_enable_x64", True)
    missing = _compat.missing_jax_core_names()

    def cost(x, diff_method, device, max_diff=1):
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), qml.RY(jnp.asarray(0.3), 0)], [qml.expval(qml.Z(0))]
        )
        return qjaxiface.execute([tape], device, diff_method=diff_method, max_diff=max_diff)[0]

    # <Z> = cos(x) cos(0.3) after RX(x), RY(0.3).
    want = -math.sin(0.5) * math.cos(0.3)
    for name, method in [("default.qubit", "parameter-shift"), ("default.qubit", "adjoint"),
                         ("lightning.qubit", "adjoint"), ("default.mixed", "finite-diff")]:
        dev = qml.device(name, wires=1)
        got = float(jax.grad(cost)(0.5, method, dev))
        assert abs(got - want) < 1e-5, (name, method, got)
        assert _compat.active_shims() == (), _compat.active_shims()  # released after the call
    hess = float(jax.hessian(cost)(0.5, "parameter-shift", qml.device("default.qubit"), 2))
    assert abs(hess + math.cos(0.5) * math.cos(0.3)) < 1e-6, hess
    assert not qjaxiface.is_installed()
    print("OK", ",".join(missing) or "-")
    """
)


def test_execute_without_install_in_a_fresh_interpreter():
    # A fresh process: no session shim, nothing installed. On jax 0.12 the eager gradients
    # failed here inside qml.math.to_numpy before the eager bindings handed devices NumPy.
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_SHIM], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2] == "OK", out.stdout


def _argnum_circuit():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def circuit(x, y):
        qml.RX(x, 0)
        qml.RY(y, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(0))

    return circuit


@pytest.mark.parametrize("jit", [False, True])
def test_metric_tensor_argnums_matches_closed_form(jit):
    circuit = _argnum_circuit()
    x, y = jnp.asarray(0.3), jnp.asarray(0.5)
    metric = qml.metric_tensor(circuit, approx="block-diag", argnums=[0, 1])
    with qjaxiface.installed():
        got = (jax.jit(metric) if jit else metric)(x, y)
    # Block-diagonal metric of RX(x) then RY(y): Var(X)/4 = 1/4 and Var(Y)/4 = cos(x)^2 / 4.
    np.testing.assert_allclose(np.asarray(got), [0.25, math.cos(0.3) ** 2 / 4], atol=1e-10)


def test_gradient_transforms_with_argnums_match_closed_form():
    circuit = _argnum_circuit()
    x, y = jnp.asarray(0.3), jnp.asarray(0.5)
    dx, dy = -math.sin(0.3) * math.cos(0.5), -math.cos(0.3) * math.sin(0.5)
    with qjaxiface.installed():
        (ps,) = qml.gradients.param_shift(circuit, argnums=[1])(x, y)
        fd = qml.gradients.finite_diff(circuit, argnums=[0, 1], h=1e-7)(x, y)
        adjoint_metric = qml.adjoint_metric_tensor(circuit)(x, y)
    np.testing.assert_allclose(ps, dy, atol=1e-10)
    np.testing.assert_allclose(fd, [dx, dy], atol=1e-5)
    np.testing.assert_allclose(adjoint_metric, [[0.25]], atol=1e-10)


def test_argnums_trainable_parameters_marks_only_the_argnums():
    circuit = _argnum_circuit()
    program = qml.CompilePipeline()
    (params,) = _compat.argnums_trainable_parameters(
        circuit, [1], program, (jnp.asarray(0.3), jnp.asarray(0.5)), {}
    )
    assert qml.math.get_trainable_indices(params) == {1}


# --- program capture (jax 0.7 only) ---------------------------------------------------------


@pytest.mark.skipif(
    _compat.version_tuple(jax.__version__) >= (0, 8),
    reason="qml.capture needs jax 0.7.x (PennyLane 0.45); runs on the jax 0.7.1 leg",
)
def test_captured_qnodes_step_aside_with_one_log_line(caplog):
    @qml.qnode(qml.device("default.qubit", wires=1), diff_method="adjoint")
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    caplog.set_level(logging.DEBUG, logger="qjaxiface")
    qml.capture.enable()
    try:
        with qjaxiface.installed():
            value = circuit(0.5)
            grad = jax.jit(jax.grad(circuit))(0.5)
            again = circuit(0.7)
    finally:
        qml.capture.disable()
    np.testing.assert_allclose([value, grad, again], [math.cos(0.5), -math.sin(0.5), math.cos(0.7)],
                               atol=1e-6)  # fmt: skip
    messages = [r.getMessage() for r in caplog.records if r.name == "qjaxiface"]
    assert messages.count(qjaxiface.pennylane_hook.CAPTURE_MESSAGE) == 1
    assert not any("boundary entry" in m for m in messages)  # nothing went through qjaxiface
    capture = importlib.import_module("pennylane.workflow._capture_qnode")
    assert not getattr(capture.capture_qnode, "__qjaxiface_passthrough__", False)


# --- several devices: the README quickstart on forced host devices ----------------------------

QUICKSTART = textwrap.dedent(
    """
    import jax, pennylane as qml, qjaxiface
    assert len(jax.devices()) == 4
    qjaxiface.install()

    @qml.qnode(qml.device("default.qubit"), diff_method="parameter-shift")
    def circuit(params):
        qml.RX(params["a"], 0)
        qml.RY(params["b"], 0)
        return qml.expval(qml.Z(0))

    g = jax.jit(jax.grad(circuit))({"a": 0.1, "b": 0.2})
    h = jax.jit(jax.hessian(circuit))({"a": 0.1, "b": 0.2})
    print("OK", float(g["a"]), float(g["b"]), float(h["a"]["a"]))
    """
)


def test_readme_quickstart_float32_on_four_devices():
    # jax 0.7.1 failed this with "Custom JVP rule must produce primal and tangent outputs with
    # corresponding shapes and dtypes. Expected float32[] ... but got float32[]".
    env = xla_env("--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", QUICKSTART], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    word, ga, gb, haa = out.stdout.split()[-4:]
    assert word == "OK"
    # <Z> = cos(a) cos(b).
    np.testing.assert_allclose(
        [float(ga), float(gb), float(haa)],
        [-math.sin(0.1) * math.cos(0.2), -math.cos(0.1) * math.sin(0.2),
         -math.cos(0.1) * math.cos(0.2)],
        atol=1e-5,
    )  # fmt: skip
