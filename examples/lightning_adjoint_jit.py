"""``lightning.qubit`` with ``diff_method="adjoint"`` inside ``jax.jit``.

lightning.qubit is a C++ simulator: JAX cannot trace into it, so under ``jit`` qjaxiface calls it
through ``jax.pure_callback`` with result shapes derived exactly from the circuit, and the adjoint
Jacobian comes back through a second callback. The example jits a full optax training step for a
4-qubit variational circuit that minimises ``<H>`` for a small transverse-field Ising
Hamiltonian, and checks the first jitted gradient against default.qubit with parameter-shift.

Run it with ``python examples/lightning_adjoint_jit.py``; ``main(small=True)`` is the quick
version that the smoke test in ``tests/examples`` runs.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

import qjaxiface

N_QUBITS = 4


def ising_hamiltonian(n: int = N_QUBITS, field: float = 0.7) -> qml.operation.Operator:
    """``-sum Z_i Z_{i+1} - field * sum X_i`` on an open chain."""
    coupling = [qml.Z(i) @ qml.Z(i + 1) for i in range(n - 1)]
    transverse = [qml.X(i) for i in range(n)]
    return qml.dot([-1.0] * len(coupling) + [-field] * n, coupling + transverse)


def make_energy(device, diff_method: str, hamiltonian):
    """The energy ``<H>`` of a hardware-efficient ansatz on ``device``."""

    @qml.qnode(device, diff_method=diff_method)
    def energy(weights):
        for layer in range(weights.shape[0]):
            for w in range(N_QUBITS):
                qml.RY(weights[layer, w, 0], wires=w)
                qml.RZ(weights[layer, w, 1], wires=w)
            for w in range(N_QUBITS - 1):
                qml.CNOT(wires=[w, w + 1])
        return qml.expval(hamiltonian)

    return energy


def main(small: bool = False) -> dict:
    """Train with lightning.qubit + adjoint under ``jax.jit``; cross-check one gradient.

    Args:
        small: fewer steps, for smoke tests.

    Returns:
        dict: ``energies`` (before each step), ``final_energy``, ``exact`` (lowest eigenvalue)
        and ``gradient_error`` (largest deviation from default.qubit's parameter-shift
        gradient).
    """
    hamiltonian = ising_hamiltonian()
    exact = float(np.min(qml.eigvals(hamiltonian)))
    lightning = make_energy(qml.device("lightning.qubit", wires=N_QUBITS), "adjoint", hamiltonian)
    reference = make_energy(
        qml.device("default.qubit", wires=N_QUBITS), "parameter-shift", hamiltonian
    )

    n_layers = 2
    weights = 0.1 * jax.random.normal(jax.random.PRNGKey(1), (n_layers, N_QUBITS, 2))
    optimizer = optax.adam(0.1)
    opt_state = optimizer.init(weights)

    @jax.jit
    def step(weights, opt_state):
        value, grads = jax.value_and_grad(lightning)(weights)
        updates, opt_state = optimizer.update(grads, opt_state, weights)
        return optax.apply_updates(weights, updates), opt_state, value, grads

    steps = 10 if small else 60
    energies = []
    with warnings.catch_warnings(), qjaxiface.installed():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        expected_grad = jax.jit(jax.grad(reference))(weights)
        for i in range(steps):
            weights, opt_state, value, grads = step(weights, opt_state)
            if i == 0:
                gradient_error = float(jnp.max(jnp.abs(grads - expected_grad)))
            energies.append(float(value))
            if not small and i % 10 == 0:
                print(f"step {i:3d}  <H> = {energies[-1]:.5f}")
        final = float(jax.jit(lightning)(weights))

    print(
        f"first gradient: max |adjoint (lightning) - parameter-shift (default.qubit)| = {gradient_error:.1e}"
    )
    print(
        f"<H> {energies[0]:.5f} -> {final:.5f} after {steps} steps (exact ground energy {exact:.5f})"
    )
    return {
        "energies": energies,
        "final_energy": final,
        "exact": exact,
        "gradient_error": gradient_error,
    }


if __name__ == "__main__":
    main()
