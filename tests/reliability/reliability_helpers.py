"""Shared pieces of the reliability tests: a device that fails on demand, small circuits."""

from __future__ import annotations

import jax.numpy as jnp
import pennylane as qml

import qjaxiface


class DeviceFault(RuntimeError):
    """The custom exception type the faulty device raises (never raised by JAX or PennyLane)."""


class FaultyQubit(qml.devices.DefaultQubit):
    """default.qubit whose entry points raise :class:`DeviceFault` on demand.

    ``fail`` holds the names of the methods that should raise: ``"execute"``,
    ``"derivatives"`` (``compute_derivatives`` and ``execute_and_compute_derivatives``) and
    ``"vjp"`` (``compute_vjp`` and ``execute_and_compute_vjp``). The fault is raised from a
    low-level cause, so tests can check that ``__cause__`` survives.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail: set[str] = set()
        self.calls: dict[str, int] = {"execute": 0, "derivatives": 0, "vjp": 0}

    def _maybe_fail(self, what: str):
        self.calls[what] += 1
        if what in self.fail:
            try:
                raise OSError(f"low-level {what} failure")
            except OSError as low:
                raise DeviceFault(f"{what} failed on purpose") from low

    def execute(self, circuits, execution_config=None):
        self._maybe_fail("execute")
        return super().execute(circuits, execution_config)

    def compute_derivatives(self, circuits, execution_config=None):
        self._maybe_fail("derivatives")
        return super().compute_derivatives(circuits, execution_config)

    def execute_and_compute_derivatives(self, circuits, execution_config=None):
        self._maybe_fail("derivatives")
        return super().execute_and_compute_derivatives(circuits, execution_config)

    def compute_vjp(self, circuits, cotangents, execution_config=None):
        self._maybe_fail("vjp")
        return super().compute_vjp(circuits, cotangents, execution_config)

    def execute_and_compute_vjp(self, circuits, cotangents, execution_config=None):
        self._maybe_fail("vjp")
        return super().execute_and_compute_vjp(circuits, cotangents, execution_config)


def ry_cnot_tape(x, measurement=None):
    """RY(x) on wire 0, CNOT, <Z(1)> by default: cos(x)."""
    return qml.tape.QuantumScript(
        [qml.RY(x, 0), qml.CNOT([0, 1])], [measurement or qml.expval(qml.Z(1))]
    )


def execute_one(tape, device, **kwargs):
    return qjaxiface.execute([tape], device, **kwargs)[0]


def cos(x):
    return jnp.cos(x)
