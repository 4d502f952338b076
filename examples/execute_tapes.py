"""``qjaxiface.execute`` on raw ``QuantumScript`` tapes: a drop-in for ``qml.execute``.

Without QNodes: build tapes by hand, execute them as a batch with ``qjaxiface.execute`` (same
arguments as ``qml.execute``) and differentiate the results with JAX -- eagerly and under
``jax.jit``. The batch mixes measurement types (an expectation value, a variance, probabilities)
and the example checks every number against PennyLane's own ``qml.execute`` and against the
analytic values.

Run it with ``python examples/execute_tapes.py``; ``main(small=True)`` is the quick version that
the smoke test in ``tests/examples`` runs.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

import qjaxiface


def make_tapes(x, y) -> list[qml.tape.QuantumScript]:
    """Three tapes sharing the parameters ``x`` and ``y``."""
    ops = [qml.RX(x, wires=0), qml.RY(y, wires=1), qml.CNOT(wires=[0, 1])]
    return [
        qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))]),
        qml.tape.QuantumScript(ops, [qml.var(qml.Z(1))]),
        qml.tape.QuantumScript(ops, [qml.probs(wires=[0, 1])]),
    ]


def cost(params, execute, device, diff_method):
    """A scalar of all three results: ``<Z0 Z1> + Var(Z1) + p(11)``."""
    expval, var, probs = execute(make_tapes(params[0], params[1]), device, diff_method=diff_method)
    return expval + var + probs[3]


def analytic(params) -> tuple[float, np.ndarray]:
    """The exact cost and gradient.

    With ``RX(x)`` on wire 0, ``RY(y)`` on wire 1 and a CNOT, ``<Z0 Z1> = cos(y)``,
    ``Var(Z1) = 1 - cos(x)^2 cos(y)^2`` and ``p(11) = sin(x/2)^2 cos(y/2)^2``.
    """
    x, y = (float(p) for p in params)
    value = (
        np.cos(y) + 1 - np.cos(x) ** 2 * np.cos(y) ** 2 + np.sin(x / 2) ** 2 * np.cos(y / 2) ** 2
    )
    grad = np.array(
        [
            2 * np.cos(x) * np.sin(x) * np.cos(y) ** 2
            + np.sin(x / 2) * np.cos(x / 2) * np.cos(y / 2) ** 2,
            -np.sin(y)
            + 2 * np.cos(x) ** 2 * np.cos(y) * np.sin(y)
            - np.sin(x / 2) ** 2 * np.cos(y / 2) * np.sin(y / 2),
        ]
    )
    return value, grad


def main(small: bool = False) -> dict:
    """Execute and differentiate the tape batch with qjaxiface and with PennyLane.

    Args:
        small: only ``parameter-shift`` on default.qubit, for smoke tests.

    Returns:
        dict: for each ``(device, diff_method)`` the ``value`` and ``grad`` under ``jit`` and
        the largest deviations ``error_vs_pennylane`` and ``error_vs_analytic``.
    """
    params = jnp.array([0.4, 1.1])
    exact_value, exact_grad = analytic(params)
    runs = [("default.qubit", "parameter-shift")]
    if not small:
        # (adjoint differentiation does not support variances; see lightning_adjoint_jit.py)
        runs += [("default.qubit", "backprop"), ("lightning.qubit", "parameter-shift")]

    results = {}
    with warnings.catch_warnings():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        for name, diff_method in runs:
            device = qml.device(name, wires=2)

            def ours(p, device=device, diff_method=diff_method):
                return cost(p, qjaxiface.execute, device, diff_method)

            def theirs(p, device=device, diff_method=diff_method):
                return cost(p, qml.execute, device, diff_method)

            eager_value, eager_grad = jax.value_and_grad(ours)(params)
            value, grad = jax.jit(jax.value_and_grad(ours))(params)
            ref_value, ref_grad = jax.value_and_grad(theirs)(params)
            error_vs_pennylane = max(
                float(jnp.max(jnp.abs(a - b)))
                for a, b in [(value, ref_value), (grad, ref_grad), (eager_grad, ref_grad)]
            )
            error_vs_analytic = max(
                abs(float(value) - exact_value), float(np.max(np.abs(grad - exact_grad)))
            )
            results[(name, diff_method)] = {
                "value": float(value),
                "eager_value": float(eager_value),
                "grad": np.asarray(grad),
                "error_vs_pennylane": error_vs_pennylane,
                "error_vs_analytic": error_vs_analytic,
            }
            print(
                f"{name} / {diff_method}: cost {float(value):.6f}, grad {np.round(grad, 6)}; "
                f"|qjaxiface - qml.execute| {error_vs_pennylane:.1e}, "
                f"|qjaxiface - analytic| {error_vs_analytic:.1e}"
            )
    return results


if __name__ == "__main__":
    main()
