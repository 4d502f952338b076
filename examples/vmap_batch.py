"""``jax.vmap`` over a batch of inputs: values, per-example gradients and Jacobians.

One QNode, one set of weights, a batch of data points. ``jax.vmap`` maps the circuit over the
batch, and ``jax.vmap(jax.grad(...))`` gives one gradient per example -- with respect to the
weights and to the input -- eagerly and under ``jax.jit``. The example runs the same maps for
``diff_method="backprop"`` and ``diff_method="parameter-shift"`` (whose batched gradients go
through qjaxiface's callback or XLA path) and checks them against a Python loop.

Run it with ``python examples/vmap_batch.py``; ``main(small=True)`` is the quick version that the
smoke test in ``tests/examples`` runs.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

import qjaxiface

N_QUBITS = 2


def make_circuit(diff_method: str):
    """A 2-qubit circuit ``f(weights, x) -> <Z0 Z1>`` that re-uploads a 2-D input ``x``."""
    dev = qml.device("default.qubit", wires=N_QUBITS)

    @qml.qnode(dev, diff_method=diff_method)
    def circuit(weights, x):
        for layer in range(weights.shape[0]):
            qml.RX(x[0], wires=0)
            qml.RX(x[1], wires=1)
            qml.RY(weights[layer, 0], wires=0)
            qml.RY(weights[layer, 1], wires=1)
            qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1))

    return circuit


def batched_maps(circuit):
    """The batched functions of ``circuit``: values and per-example gradients."""
    values = jax.vmap(circuit, in_axes=(None, 0))
    # d f / d weights for every example (shape (batch, *weights.shape)).
    weight_grads = jax.vmap(jax.grad(circuit, argnums=0), in_axes=(None, 0))
    # d f / d x for every example (shape (batch, 2)).
    input_grads = jax.vmap(jax.grad(circuit, argnums=1), in_axes=(None, 0))
    return values, weight_grads, input_grads


def main(small: bool = False) -> dict:
    """Compare batched values and gradients with a loop, eagerly and under ``jax.jit``.

    Args:
        small: a smaller batch and only ``diff_method="parameter-shift"``, for smoke tests.

    Returns:
        dict: for each ``diff_method``, the batched ``values``, ``weight_grads``,
        ``input_grads`` (jitted) and the largest deviation ``max_error`` from the loop; for the
        full run also ``max_method_difference`` between parameter-shift and backprop.
    """
    rng = np.random.default_rng(0)
    batch = 4 if small else 16
    X = jnp.asarray(rng.uniform(-np.pi, np.pi, size=(batch, 2)), dtype=jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, N_QUBITS)), dtype=jnp.float32)

    results = {}
    with warnings.catch_warnings(), qjaxiface.installed():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        methods = ("parameter-shift",) if small else ("parameter-shift", "backprop")
        for diff_method in methods:
            circuit = make_circuit(diff_method)
            maps = batched_maps(circuit)
            eager = [f(weights, X) for f in maps]
            jitted = [jax.jit(f)(weights, X) for f in maps]
            # The reference: one example at a time (each function compiled once).
            singles = [
                jax.jit(circuit),
                jax.jit(jax.grad(circuit, argnums=0)),
                jax.jit(jax.grad(circuit, argnums=1)),
            ]
            loop = [jnp.stack([f(weights, x) for x in X]) for f in singles]
            max_error = max(
                float(jnp.max(jnp.abs(a - b))) for got in (eager, jitted) for a, b in zip(got, loop)
            )
            results[diff_method] = {
                "values": np.asarray(jitted[0]),
                "weight_grads": np.asarray(jitted[1]),
                "input_grads": np.asarray(jitted[2]),
                "max_error": max_error,
            }
            print(
                f"{diff_method:>15}: values {jitted[0].shape}, d/dweights {jitted[1].shape}, "
                f"d/dx {jitted[2].shape}; max |vmap - loop| = {max_error:.1e}"
            )
    if "backprop" in results:
        # Two independent derivative rules must agree.
        agree = max(
            float(np.max(np.abs(results["backprop"][k] - results["parameter-shift"][k])))
            for k in ("values", "weight_grads", "input_grads")
        )
        print(f"max |parameter-shift - backprop| = {agree:.1e}")
        results["max_method_difference"] = agree
    return results


if __name__ == "__main__":
    main()
