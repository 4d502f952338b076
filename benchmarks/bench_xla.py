"""Benchmarks: the XLA executor against PennyLane's built-in JAX paths on default.qubit.

Run as ``python benchmarks/bench_xla.py [--quick] [--out DIR]`` or ``qjaxiface bench``
(which calls :func:`run`). Everything runs in one process, CPU, x64.

* **Gradient step**: ``jax.jit(jax.grad(f))`` of StronglyEntanglingLayers (L=3) with
  ``qml.expval(qml.Z(0))`` for n = 4, 8, 12, 16 (quick: 4, 8) and diff methods backprop,
  adjoint, parameter-shift; PennyLane's own QNode vs. the same QNode with
  ``qjaxiface.installed(executor="xla")``. Reports the first call (trace + compile + run) and the
  steady time (minimum over repeats, ``jax.block_until_ready``).
* **Depth sweep**: first-call time of the XLA executor at n = 8 for L = 1..20 layers.

Writes ``results.json``, ``results.md`` and ``depth_sweep.png`` into the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

jax.config.update("jax_enable_x64", True)

METHODS = ("backprop", "adjoint", "parameter-shift")
# PennyLane's parameter-shift under jit is a host callback of ~4 s per step at n=12 and far more
# beyond; its backprop compile grows to minutes. Cap the reference where it would take minutes.
PL_SKIP = {("parameter-shift", 16), ("backprop", 16)}
PL_FEW_STEPS = {("parameter-shift", 12), ("adjoint", 16)}


def _qnode(n: int, diff_method: str):
    @qml.qnode(qml.device("default.qubit"), interface="jax", diff_method=diff_method)
    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    return circuit


def _weights(layers: int, n: int):
    return jnp.asarray(np.random.default_rng(0).random((layers, n, 3)))


class _RouteLog(logging.Handler):
    """Collects qjaxiface's debug log to confirm which executor ran."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _time(step: Callable, w, repeats: int) -> tuple[float, float]:
    """(first call seconds, steady seconds = min over ``repeats``)."""
    t0 = time.perf_counter()
    jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    steady = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(w))
        steady.append(time.perf_counter() - t0)
    return first, (min(steady) if steady else float("nan"))


def _xla_step(n: int, layers: int, method: str):
    """jit(grad) of the QNode with the XLA executor installed (traced inside the block)."""
    import qjaxiface

    g = jax.jit(jax.grad(_qnode(n, method)))

    def step(w):
        with qjaxiface.installed(executor="xla"):
            return g(w)

    return step


def bench_gradient(ns, repeats: int, log) -> list[dict]:
    rows = []
    route = _RouteLog()
    logger = logging.getLogger("qjaxiface")
    logger.addHandler(route)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        for n in ns:
            w = _weights(3, n)
            for method in METHODS:
                row = {"n": n, "method": method}
                route.messages.clear()
                row["xla_first"], row["xla_steady"] = _time(_xla_step(n, 3, method), w, repeats)
                row["xla_route_ok"] = not any("not used" in m for m in route.messages)
                if (method, n) in PL_SKIP:
                    row["pl_first"] = row["pl_steady"] = None
                else:
                    reps = 1 if (method, n) in PL_FEW_STEPS else repeats
                    step = jax.jit(jax.grad(_qnode(n, method)))
                    row["pl_first"], row["pl_steady"] = _time(step, w, reps)
                log(_fmt_row(row))
                rows.append(row)
    finally:
        logger.removeHandler(route)
        logger.setLevel(old_level)
    return rows


def bench_depth(n: int, layer_list, log) -> list[dict]:
    rows = []
    for layers in layer_list:
        w = _weights(layers, n)
        row = {"n": n, "layers": layers}
        for method in METHODS:
            row[method], _ = _time(_xla_step(n, layers, method), w, 0)
        log(f"depth n={n} L={layers}: " + ", ".join(f"{m} {row[m]:.2f}s" for m in METHODS))
        rows.append(row)
    return rows


def _ms(x):
    return "-" if x is None else f"{x * 1e3:.2f}"


def _s(x):
    return "-" if x is None else f"{x:.2f}"


def _ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.1f}x"


def _fmt_row(r) -> str:
    return (
        f"n={r['n']:>2} {r['method']:<15} xla first {r['xla_first']:.2f}s steady "
        f"{r['xla_steady'] * 1e3:.2f}ms | pennylane first {_s(r['pl_first'])}s steady "
        f"{_ms(r['pl_steady'])}ms"
    )


def machine() -> dict:
    import qjaxiface

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "pennylane": qml.__version__,
        "qjaxiface": getattr(qjaxiface, "__version__", "?"),
        "devices": [str(d) for d in jax.devices()],
    }


def to_markdown(grad_rows, depth_rows, info) -> str:
    lines = [
        f"Machine: {info['cores']}-core CPU ({info['cpu']}), Python {info['python']}, "
        f"JAX {info['jax']}, PennyLane {info['pennylane']}, x64.",
        "",
        "### `jax.jit(jax.grad(qnode))`, StronglyEntanglingLayers L=3, `expval(Z(0))`",
        "",
        "| n | diff method | XLA first call (s) | XLA steady (ms) | PennyLane first call (s) "
        "| PennyLane steady (ms) | speed-up (steady) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in grad_rows:
        lines.append(
            f"| {r['n']} | {r['method']} | {r['xla_first']:.2f} | {r['xla_steady'] * 1e3:.2f} | "
            f"{_s(r['pl_first'])} | {_ms(r['pl_steady'])} | {_ratio(r['pl_steady'], r['xla_steady'])} |"
        )
    if depth_rows:
        n = depth_rows[0]["n"]
        lines += [
            "",
            f"### First call (trace + compile + run) of the XLA executor vs. depth, n={n}",
            "",
            "| layers | " + " | ".join(f"{m} (s)" for m in METHODS) + " |",
            "|---" * (len(METHODS) + 1) + "|",
        ]
        for r in depth_rows:
            lines.append(f"| {r['layers']} | " + " | ".join(f"{r[m]:.2f}" for m in METHODS) + " |")
    return "\n".join(lines) + "\n"


def plot_depth(depth_rows, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    layers = [r["layers"] for r in depth_rows]
    for m in METHODS:
        ax.plot(layers, [r[m] for r in depth_rows], marker="o", label=m)
    ax.set_xlabel("StronglyEntanglingLayers layers")
    ax.set_ylabel("first call of jit(grad) (s)")
    ax.set_title(f"XLA executor compile time vs depth (n={depth_rows[0]['n']})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def run(quick: bool = False, out_dir: str | Path = "bench-results") -> None:
    """Run the benchmarks and write results.json / results.md / depth_sweep.png to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ns = (4, 8) if quick else (4, 8, 12, 16)
    repeats = 3 if quick else 5
    layer_list = (1, 2, 3) if quick else (1, 2, 4, 6, 8, 10, 15, 20)
    grad_rows = bench_gradient(ns, repeats, print)
    depth_rows = bench_depth(8 if not quick else 4, layer_list, print)
    info = machine()
    (out / "results.json").write_text(
        json.dumps({"machine": info, "gradient": grad_rows, "depth": depth_rows}, indent=1)
    )
    (out / "results.md").write_text(to_markdown(grad_rows, depth_rows, info))
    plot_depth(depth_rows, out / "depth_sweep.png")
    print(f"wrote {out / 'results.md'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    run(args.quick, args.out)


if __name__ == "__main__":
    main()
