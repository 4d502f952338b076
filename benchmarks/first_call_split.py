"""The XLA executor's first call split into trace, lower, compile and run, for one JAX install.

Run it with each JAX you want to compare (one venv each; the results are Markdown table rows):

    python benchmarks/first_call_split.py                 # this venv's JAX
    XLA_FLAGS=--xla_backend_optimization_level=1 python benchmarks/first_call_split.py

``jax.jit(jax.grad(qnode))`` of StronglyEntanglingLayers (default n=12, L=3), ``expval(Z(0))``,
default.qubit through ``qjaxiface.install()``, x64; the stages come from ``jax.stages``
(``.trace()``, ``.lower()``, ``.compile()``, measured by ``compile_time.py``'s worker), the steady
step is the minimum over up to 10 runs of the compiled program. docs/compatibility.md quotes the
table for jax 0.7.1 against 0.10.2 (with HLO line counts from an earlier version of this script).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile_time import _work_qjaxiface  # the stages are measured there


def split(n: int, layers: int, diff_method: str) -> dict:
    """Seconds spent in each stage of the first call, and the steady step in ms."""
    r = _work_qjaxiface(n, layers, diff_method, None)
    return {
        **r,
        "run": r["first"] - r["trace"] - r["lower"] - r["compile"],
        "steady_ms": r["steady"] * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--methods", default="backprop,adjoint,parameter-shift")
    args = parser.parse_args()
    flags = os.environ.get("XLA_FLAGS", "") or "default"
    import jax

    for method in args.methods.split(","):
        r = split(args.n, args.layers, method)
        print(
            f"| {jax.__version__} | {flags} | {method} | {r['trace']:.2f} | {r['lower']:.2f} | "
            f"{r['compile']:.2f} | {r['trace'] + r['lower'] + r['compile'] + r['run']:.2f} | "
            f"{r['steady_ms']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
