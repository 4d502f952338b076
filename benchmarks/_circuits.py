"""The benchmark circuit built for a peer: shared by the benchmark scripts' workers."""

from __future__ import annotations


def catalyst_sel_step(n: int, layers: int, method: str):
    """Catalyst 0.15 ``qjit(grad(qnode))`` of StronglyEntanglingLayers(n, L) on lightning.qubit,
    ``expval(Z(0))``, x64 (run it in Catalyst's own venv)."""
    import catalyst
    import jax
    import pennylane as qml

    jax.config.update("jax_enable_x64", True)

    @qml.qnode(qml.device("lightning.qubit", wires=n), diff_method=method)
    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    @catalyst.qjit
    def step(w):
        return catalyst.grad(circuit)(w)

    return step
