"""Remedies for PennyLane errors that say what is wrong but not what to do.

qjaxiface does not replace such an error: it keeps its type and message (code that catches it
keeps working) and attaches the remedy as a PEP 678 note, which Python prints after the message.
Each remedy is attached once, however many nested executions the error passes through.

Examples:
    >>> import pennylane as qml
    >>> err = qml.exceptions.DeviceError(
    ...     "Measurement sample(wires=[0]) not accepted for analytic simulation on default.qubit."
    ... )
    >>> add_shots_hint(err)
    >>> print(err.__notes__[0].splitlines()[0])
    qjaxiface hint: this measurement draws samples, so the circuit needs shots. Set them on the QNode
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pennylane as qml
from pennylane.exceptions import DeviceError, QuantumFunctionError

SHOTS_HINT = (
    "qjaxiface hint: this measurement draws samples, so the circuit needs shots. Set them on the "
    "QNode\nwith `@qml.set_shots(100)` (above `@qml.qnode`) or `qml.set_shots(qnode, shots=100)`, "
    "or on a tape with\n`qml.tape.QuantumScript(ops, measurements, shots=100)`. For a "
    "shot-free result, measure `qml.probs` or `qml.expval` instead."
)

#: Diff methods a device implements itself; gradient transforms work on any device.
_DEVICE_METHODS = ("backprop", "adjoint", "device")
_TRANSFORM_METHODS = ("parameter-shift", "finite-diff", "spsa")


def add_shots_hint(err: BaseException) -> None:
    """Note how to set shots on an error about a sampling measurement without shots."""
    if "not accepted for analytic simulation" in str(err):
        _note(err, SHOTS_HINT)


def add_diff_method_hint(err: BaseException, device, diff_method) -> None:
    """Note which diff methods ``device`` supports on an error refusing ``diff_method``."""
    if not (isinstance(diff_method, str) and "does not support" in str(err)):
        return
    methods = [m for m in _DEVICE_METHODS if _supports(device, m)] + list(_TRANSFORM_METHODS)
    methods = [m for m in methods if m != diff_method]
    _note(
        err,
        f"qjaxiface hint: {getattr(device, 'name', device)} cannot differentiate with "
        f'diff_method="{diff_method}". Methods that work with it: '
        + ", ".join(f'"{m}"' for m in methods)
        + ' (or "best", which picks one).',
    )


@contextlib.contextmanager
def hinted(device, diff_method) -> Iterator[None]:
    """Attach the remedies above to the PennyLane errors raised inside the block."""
    try:
        yield
    except DeviceError as err:
        add_shots_hint(err)
        raise
    except QuantumFunctionError as err:
        add_diff_method_hint(err, device, diff_method)
        raise


def _supports(device, method: str) -> bool:
    try:
        config = qml.devices.ExecutionConfig(gradient_method=method)
        return bool(device.supports_derivatives(config))
    except Exception:  # a device that cannot answer does not get the method suggested
        return False


def _note(err: BaseException, note: str) -> None:
    if note not in getattr(err, "__notes__", ()):
        err.add_note(note)
