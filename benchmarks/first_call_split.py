"""The XLA executor's first call split into trace, lower, compile and run, for one JAX install.

Run it with each JAX you want to compare (one venv each; the results are Markdown table rows):

    python benchmarks/first_call_split.py                 # this venv's JAX
    XLA_FLAGS=--xla_backend_optimization_level=1 python benchmarks/first_call_split.py

``jax.jit(jax.grad(qnode))`` of StronglyEntanglingLayers (default n=12, L=3), ``expval(Z(0))``,
default.qubit through ``qjaxiface.install()``, x64; the stages come from ``jax.stages``
(``.trace()``, ``.lower()``, ``.compile()``), the steady step is the minimum of 20 runs of the
compiled program. docs/compatibility.md quotes the table for jax 0.7.1 against 0.10.2.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

import qjaxiface


def split(n: int, layers: int, diff_method: str) -> dict:
    """Seconds spent in each stage of the first call, and the steady step in ms."""

    @qml.qnode(qml.device("default.qubit", wires=n), diff_method=diff_method)
    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    w = jnp.asarray(np.random.default_rng(0).random((layers, n, 3)))
    step = jax.jit(jax.grad(circuit))
    t0 = time.perf_counter()
    traced = step.trace(w)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    jax.block_until_ready(compiled(w))
    t4 = time.perf_counter()
    steady = []
    for _ in range(20):
        t = time.perf_counter()
        jax.block_until_ready(compiled(w))
        steady.append(time.perf_counter() - t)
    return {
        "trace": t1 - t0,
        "lower": t2 - t1,
        "compile": t3 - t2,
        "run": t4 - t3,
        "steady_ms": min(steady) * 1e3,
        "hlo_lines": len(lowered.as_text().splitlines()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--methods", default="backprop,adjoint,parameter-shift")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    flags = os.environ.get("XLA_FLAGS", "") or "default"
    qjaxiface.install()
    for method in args.methods.split(","):
        r = split(args.n, args.layers, method)
        print(
            f"| {jax.__version__} | {flags} | {method} | {r['trace']:.2f} | {r['lower']:.2f} | "
            f"{r['compile']:.2f} | {r['trace'] + r['lower'] + r['compile'] + r['run']:.2f} | "
            f"{r['steady_ms']:.2f} | {r['hlo_lines']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
