"""One process of the 2-process ``jax.distributed`` case of test_distributed.py.

Usage: ``python distributed_multihost.py PROCESS_ID PORT``. Each process has 2 forced CPU
devices; the mesh spans all 4, so every exchange and reduction crosses processes (gloo). Prints
one JSON line: the value and gradient of a circuit per diff method. Importing the module only
defines the circuit (the test computes its reference from it).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pennylane as qml

N = 8
WEIGHTS = np.random.default_rng(0).normal(size=(2, N, 3))


def circuit(w):
    qml.StronglyEntanglingLayers(w, wires=range(N))
    qml.CRX(w[0, 0, 0], wires=[0, N - 1])
    return qml.expval(qml.Z(0) @ qml.X(N - 1) + 0.5 * qml.Y(2))


def main(process_id: int, port: str) -> None:
    import jax
    from jax.sharding import Mesh

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"localhost:{port}", num_processes=2, process_id=process_id
    )
    jax.config.update("jax_enable_x64", True)
    import qjaxiface

    assert jax.process_count() == 2 and len(jax.devices()) == 4
    mesh = Mesh(np.array(jax.devices()), ("hosts",))
    qjaxiface.install(executor="xla", mesh=mesh)
    compiled = {}
    for method in ("backprop", "adjoint"):
        qnode = qml.QNode(circuit, qml.device("default.qubit", wires=N), diff_method=method)
        compiled[method] = jax.jit(jax.value_and_grad(qnode)).lower(WEIGHTS).compile()
    # Gloo sets up a communicator at its first collective and waits 30 s for the other process;
    # on a loaded machine the two compiles can differ by more. The coordination service's
    # barrier (what JAX's own multi-process tests use) waits as long as asked.
    from jax._src import distributed

    distributed.global_state.client.wait_at_barrier("qjaxiface-compiled", 600_000)
    out = {}
    for method, run in compiled.items():
        value, grad = run(WEIGHTS)
        # Replicated over all 4 devices; each process reads its own copy.
        out[method] = [
            float(value.addressable_data(0)),
            np.asarray(grad.addressable_data(0)).ravel().tolist(),
        ]
    print(json.dumps(out))
    jax.distributed.shutdown()


if __name__ == "__main__":
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    main(int(sys.argv[1]), sys.argv[2])
