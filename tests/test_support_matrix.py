"""The support matrix: transform x diff method x measurement x device, qjaxiface vs built-in.

Every cell runs the same QNode through qjaxiface and through PennyLane's built-in boundary
(qjaxiface uninstalled) and compares both with an independent reference: JAX autodiff of
default.qubit/default.mixed backprop, which involves no interface boundary at all.

Each case also checks that ``docs/support-matrix.md`` shows the cells it measured, when this
run has the page's PennyLane and JAX versions (the built-in boundary's column depends on them).
Regenerate the page with ``python -m pytest tests/test_support_matrix.py
--update-support-matrix``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from conftest import builtin_boundary
from support_matrix_report import current_versions, read_support_matrix, symbol

import qjaxiface

MEASUREMENTS = {
    "expval": lambda: qml.expval(qml.Z(0) @ qml.X(1)),
    "var": lambda: qml.var(qml.Z(0)),
    "probs": lambda: qml.probs(wires=[0, 1]),
}
TRANSFORMS = {
    "value": lambda f: f,
    "jit": jax.jit,
    "jacrev": jax.jacrev,
    "jacfwd": jax.jacfwd,
    "hessian": jax.hessian,
    "vmap(jacrev)": lambda f: jax.vmap(jax.jacrev(f)),
    "jit(jacrev)": lambda f: jax.jit(jax.jacrev(f)),
    "jit(vmap(jacrev))": lambda f: jax.jit(jax.vmap(jax.jacrev(f))),
}
BATCHED = {"vmap(jacrev)", "jit(vmap(jacrev))"}
CASES = [
    ("default.qubit", "backprop"),
    ("default.qubit", "parameter-shift"),
    ("default.qubit", "adjoint"),
    ("default.qubit", "finite-diff"),
    ("default.qubit", "hadamard"),
    ("lightning.qubit", "parameter-shift"),
    ("lightning.qubit", "adjoint"),
    ("lightning.qubit", "adjoint+device_vjp"),
    ("lightning.qubit", "finite-diff"),
    ("default.mixed", "backprop"),
    ("default.mixed", "parameter-shift"),
]
X = np.array([0.3, -0.5])
XS = np.array([[0.3, -0.5], [1.1, 0.2], [-0.7, 0.9]])


def _qnode(devname, method, measurement):
    diff_method, _, extra = method.partition("+")
    kwargs = {"device_vjp": True} if extra == "device_vjp" else {}
    if diff_method in ("parameter-shift", "finite-diff"):
        kwargs["max_diff"] = 2  # hadamard has no second-order form in PennyLane 0.45
    if diff_method == "finite-diff":
        kwargs["gradient_kwargs"] = {"h": 1e-5, "approx_order": 2}
    if diff_method == "hadamard":
        kwargs["gradient_kwargs"] = {"aux_wire": 2}
    wires = 3 if diff_method == "hadamard" else 2
    dev = qml.device(devname, wires=wires)

    @qml.qnode(dev, interface="jax", diff_method=diff_method, **kwargs)
    def circuit(x):
        qml.RX(x[0], 0)
        qml.RY(x[1], 1)
        qml.CNOT([0, 1])
        qml.RY(0.4 * x[0], 1)
        return MEASUREMENTS[measurement]()

    return circuit


def _reference(devname, measurement, transform):
    ref_dev = "default.mixed" if devname == "default.mixed" else "default.qubit"
    return _reference_on(ref_dev, measurement, transform)


@functools.cache  # the same 48 references serve all 11 cases (a third of the module's time)
def _reference_on(ref_dev, measurement, transform):
    dev = qml.device(ref_dev, wires=2)

    @qml.qnode(dev, interface="jax", diff_method="backprop")
    def circuit(x):
        qml.RX(x[0], 0)
        qml.RY(x[1], 1)
        qml.CNOT([0, 1])
        qml.RY(0.4 * x[0], 1)
        return MEASUREMENTS[measurement]()

    arg = XS if transform in BATCHED else X
    return np.asarray(TRANSFORMS[transform](circuit)(jnp.asarray(arg)))


def _run(qnode, transform):
    arg = XS if transform in BATCHED else X
    return np.asarray(TRANSFORMS[transform](qnode)(jnp.asarray(arg)))


def _status(run, expected, tol):
    try:
        got = run()
    except Exception as err:
        return "error", f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
    if got.shape != expected.shape or not np.allclose(got, expected, atol=tol):
        return "wrong", f"got {got.ravel()[:4]} expected {expected.ravel()[:4]}"
    return "ok", ""


@pytest.mark.parametrize("devname, method", CASES, ids=[f"{d}-{m}" for d, m in CASES])
def test_support_matrix(devname, method, record_property, request):
    tol = 1e-4 if method.startswith("finite-diff") else 1e-7
    rows, problems = [], []
    for measurement in MEASUREMENTS:
        qnode = _qnode(devname, method, measurement)
        for transform in TRANSFORMS:
            expected = _reference(devname, measurement, transform)
            if method == "adjoint+device_vjp" and transform in ("jacfwd", "hessian"):
                expect_error = True  # custom_vjp: reverse mode only, by design
            else:
                expect_error = False
            run = lambda q=qnode, t=transform: _run(q, t)  # noqa: E731
            with builtin_boundary():
                builtin, _ = _status(run, expected, tol)
            with qjaxiface.installed():
                ours, detail = _status(run, expected, tol)
            rows.append((devname, method, measurement, transform, ours, builtin, detail))
            if ours == "wrong":
                problems.append(f"{measurement}/{transform}: silently wrong: {detail}")
            elif ours == "error" and builtin == "ok" and not expect_error:
                problems.append(f"{measurement}/{transform}: built-in works, we fail: {detail}")
    record_property("support_matrix", rows)
    assert not problems, "\n".join(problems)
    if not request.config.getoption("--update-support-matrix"):
        _assert_page_shows(rows)


def _assert_page_shows(rows):
    page, versions = read_support_matrix()
    if _minor(versions) != _minor(current_versions()):
        return  # the page describes other versions: nothing to compare with
    stale = []
    for dev, method, meas, transform, ours, builtin, _ in rows:
        shown = page.get((dev, method, meas), {}).get(transform)
        if shown != symbol(ours, builtin):
            stale.append(
                f"{dev}/{method}/{meas}/{transform}: page {shown}, measured {symbol(ours, builtin)}"
            )
    assert not stale, (
        "docs/support-matrix.md is out of date; regenerate it with "
        "`python -m pytest tests/test_support_matrix.py --update-support-matrix`:\n"
        + "\n".join(stale)
    )


def _minor(versions: str) -> str:
    """``"PennyLane 0.45.1, JAX 0.10.2"`` -> ``"PennyLane 0.45.1, JAX 0.10"``."""
    head, _, jax_version = versions.rpartition("JAX ")
    return head + ".".join(jax_version.split(".")[:2])
