"""Catalyst's environment (jax 0.7.1): a ``qjit`` program and installed QNodes side by side.

Catalyst users cannot leave jax 0.7.1; the CI leg that pins it installs
``pennylane-catalyst==0.15.0`` and sets ``QJAXIFACE_REQUIRE_CATALYST=1``, so there this test
must run. Elsewhere it is skipped (Catalyst 0.15 cannot be installed next to another JAX).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface

if os.environ.get("QJAXIFACE_REQUIRE_CATALYST") == "1":
    import catalyst  # the Catalyst leg: a missing Catalyst is a failure, not a skip
else:
    catalyst = pytest.importorskip("catalyst", reason="Catalyst runs on the jax 0.7.1 CI leg")


def _circuit(x, y):
    qml.RX(x, 0)
    qml.RY(y, 1)
    qml.CNOT([0, 1])
    return qml.expval(qml.Z(1))


def test_qjit_and_installed_jit_qnodes_coexist():
    # <Z1> = cos(x) cos(y).
    x, y = 0.3, 0.5
    want = [-math.sin(x) * math.cos(y), -math.cos(x) * math.sin(y)]

    qjit_qnode = qml.qnode(qml.device("lightning.qubit", wires=2), diff_method="adjoint")(_circuit)

    @catalyst.qjit
    def qjit_grad(a, b):
        return catalyst.grad(qjit_qnode, argnums=(0, 1))(a, b)

    with qjaxiface.installed():
        for device, method in [("default.qubit", "adjoint"), ("lightning.qubit", "adjoint"),
                               ("default.qubit", "parameter-shift")]:  # fmt: skip
            qnode = qml.qnode(qml.device(device, wires=2), diff_method=method)(_circuit)
            jit_grad = jax.jit(jax.grad(qnode, argnums=(0, 1)))
            first = np.asarray(qjit_grad(x, y))
            ours = np.asarray(jit_grad(jnp.asarray(x), jnp.asarray(y)))
            second = np.asarray(qjit_grad(x + 0.1, y))  # qjit still works after our jit ran
            np.testing.assert_allclose(first, want, atol=1e-6)
            np.testing.assert_allclose(ours, want, atol=1e-6)
            np.testing.assert_allclose(
                second, [-math.sin(x + 0.1) * math.cos(y), -math.cos(x + 0.1) * math.sin(y)],
                atol=1e-6,
            )  # fmt: skip
