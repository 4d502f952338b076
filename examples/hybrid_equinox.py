"""A hybrid classical-quantum regression model written with equinox, trained with optax.

The model is an ``equinox.Module``: a small classical MLP maps each 1-D input to two rotation
angles, a 2-qubit variational circuit (angle embedding plus trainable entangling layers) turns
them into two ``<Z>`` values, and a linear layer reads out the prediction. The circuit weights are
an ordinary array field of the module, so ``equinox.filter_value_and_grad`` differentiates the
classical and the quantum parameters together; the batch is mapped with ``jax.vmap`` and the
step is compiled with ``equinox.filter_jit``, all routed through qjaxiface.

Run it with ``python examples/hybrid_equinox.py``; ``main(small=True)`` is the quick version that
the smoke test in ``tests/examples`` runs.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

import qjaxiface

N_QUBITS = 2

dev = qml.device("default.qubit", wires=N_QUBITS)


@qml.qnode(dev)
def quantum_layer(angles, weights):
    """Embed two angles, apply trainable entangling layers, measure ``<Z>`` on each qubit."""
    qml.AngleEmbedding(angles, wires=range(N_QUBITS), rotation="Y")
    qml.StronglyEntanglingLayers(weights, wires=range(N_QUBITS))
    return [qml.expval(qml.Z(w)) for w in range(N_QUBITS)]


class HybridModel(eqx.Module):
    """MLP encoder -> quantum layer -> linear readout, for scalar inputs."""

    encoder: eqx.nn.MLP
    weights: jax.Array
    readout: eqx.nn.Linear

    def __init__(self, key: jax.Array, n_layers: int = 2):
        k_enc, k_q, k_out = jax.random.split(key, 3)
        self.encoder = eqx.nn.MLP(
            1, N_QUBITS, width_size=8, depth=1, activation=jnp.tanh, key=k_enc
        )
        shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=N_QUBITS)
        self.weights = 0.1 * jax.random.normal(k_q, shape)
        self.readout = eqx.nn.Linear(N_QUBITS, "scalar", key=k_out)

    def __call__(self, x: jax.Array) -> jax.Array:
        angles = self.encoder(jnp.atleast_1d(x))
        z = jnp.stack(quantum_layer(angles, self.weights))
        return self.readout(z)


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy samples of ``sin(2x) / 2`` on ``[-pi/2, pi/2]``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi / 2, np.pi / 2, size=n)
    y = 0.5 * np.sin(2 * x) + 0.02 * rng.normal(size=n)
    return x.astype(np.float32), y.astype(np.float32)


def main(small: bool = False) -> dict:
    """Fit the hybrid model to a 1-D regression problem.

    Args:
        small: fewer points and steps, for smoke tests.

    Returns:
        dict: ``losses`` (mean squared error before each step), ``initial_loss``, ``final_loss``.
    """
    x, y = make_data(24 if small else 64)
    model = HybridModel(jax.random.PRNGKey(0))
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    def loss_fn(model, x, y):
        pred = jax.vmap(model)(x)
        return jnp.mean((pred - y) ** 2)

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = optimizer.update(
            grads, opt_state, eqx.filter(model, eqx.is_inexact_array)
        )
        return eqx.apply_updates(model, updates), opt_state, loss

    steps = 15 if small else 150
    losses = []
    with warnings.catch_warnings(), qjaxiface.installed():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        for i in range(steps):
            model, opt_state, loss = step(model, opt_state, x, y)
            losses.append(float(loss))
            if not small and i % 25 == 0:
                print(f"step {i:3d}  mse = {losses[-1]:.5f}")
        final = float(eqx.filter_jit(loss_fn)(model, x, y))

    print(f"mse {losses[0]:.5f} -> {final:.5f} after {steps} steps")
    return {"losses": losses, "initial_loss": losses[0], "final_loss": final}


if __name__ == "__main__":
    main()
