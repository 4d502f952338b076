"""VQE for the hydrogen molecule, trained with optax under ``jax.jit`` through qjaxiface.

The qubit Hamiltonian of H2 (STO-3G, 4 qubits) comes from PennyLane's own differentiable
Hartree-Fock solver (``method="dhf"``: no PySCF or OpenFermion needed). The ansatz prepares the
Hartree-Fock state and applies all single and double excitations (3 parameters); its gradient is
taken with ``diff_method="parameter-shift"`` inside one jitted optimisation step, which
qjaxiface compiles (PennyLane's own boundary would leave the shifted executions to host
callbacks). The final energy is compared with the exact ground-state energy from ``qml.eigvals``.

Run it with ``python examples/vqe_h2.py``; ``main(small=True)`` is the quick version that the
smoke test in ``tests/examples`` runs.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

import qjaxiface

# Half the equilibrium bond length of H2 (0.74 angstrom), in bohr.
HALF_BOND_BOHR = 0.6991


def h2_hamiltonian(half_bond: float = HALF_BOND_BOHR) -> tuple[qml.operation.Operator, int]:
    """The qubit Hamiltonian of H2 in the STO-3G basis from PennyLane's built-in integrals.

    Args:
        half_bond: half the H-H distance in bohr; the atoms sit at ``z = -half_bond, +half_bond``.

    Returns:
        tuple: the Hamiltonian and the number of qubits (4).
    """
    coordinates = np.array([0.0, 0.0, -half_bond, 0.0, 0.0, half_bond])
    molecule = qml.qchem.Molecule(["H", "H"], coordinates, unit="bohr")
    return qml.qchem.molecular_hamiltonian(molecule, method="dhf")


def main(small: bool = False) -> dict:
    """Minimise the energy of H2 and compare it with the exact ground-state energy.

    Args:
        small: a short run (fewer steps) for smoke tests.

    Returns:
        dict: ``energy`` (final VQE energy), ``exact`` (lowest eigenvalue), ``error``
        (their difference), ``energies`` (energy before each step) and ``params``.
    """
    hamiltonian, n_qubits = h2_hamiltonian()
    exact = float(np.min(qml.eigvals(hamiltonian)))
    electrons = 2
    hf_state = qml.qchem.hf_state(electrons, n_qubits)
    singles, doubles = qml.qchem.excitations(electrons, n_qubits)

    dev = qml.device("default.qubit", wires=n_qubits)

    @qml.qnode(dev, diff_method="parameter-shift")
    def energy(params):
        qml.AllSinglesDoubles(params, range(n_qubits), hf_state, singles, doubles)
        return qml.expval(hamiltonian)

    optimizer = optax.adam(0.1)
    params = jnp.zeros(len(singles) + len(doubles))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(energy)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    steps = 25 if small else 80
    energies = []
    with warnings.catch_warnings(), qjaxiface.installed():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        for i in range(steps):
            params, opt_state, value = step(params, opt_state)
            energies.append(float(value))
            if not small and i % 10 == 0:
                print(f"step {i:3d}  E = {energies[-1]:.6f} Ha")
        final = float(jax.jit(energy)(params))

    error = final - exact
    print(f"VQE energy   {final:.6f} Ha after {steps} steps")
    print(f"exact energy {exact:.6f} Ha (lowest eigenvalue of the qubit Hamiltonian)")
    print(f"error        {error:.2e} Ha (chemical accuracy: 1.6e-03 Ha)")
    return {
        "energy": final,
        "exact": exact,
        "error": error,
        "energies": energies,
        "params": np.asarray(params),
    }


if __name__ == "__main__":
    main()
