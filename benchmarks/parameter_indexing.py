"""How a circuit reads its angles from a weight array: what ``w[l, k]`` costs the first call.

Under ``jax.grad``, every ``w[l, k]`` of a static index is a slice whose transpose is a ``pad``
of the cotangent back to ``w``'s shape, and the pads are summed: one full-size array per angle,
which XLA compiles one by one. ``jnp.unstack`` reads every angle in one operation whose
transpose is one concatenation. The circuit is ``repeated_patterns.ansatz`` (a ring of CRX, a
ring of IsingZZ and one RY per layer, ``expval(Z(0))``, x64), its angles read either way, plus
the same reading with no circuit at all (``sum(sin(stack(angles)))``), where it is all
that compiles. A third style keeps the angles in a flat vector and reads ``w[i]`` (one-axis
slices, which the executor gathers from one array). With qjaxiface installed, a QNode's own
``w[l, k]`` reads are gathered for it (``qjaxiface/_angle_reads.py``); the *sliced* style is
``w[l, k]`` with that turned off, as every circuit read before it.
Each number is a fresh process, the styles alternating case by case:

    python benchmarks/parameter_indexing.py --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _sections import load_or_measure, machine, publish, run_worker
from compile_time import _steady

SECTION = "## Reading angles from a weight array: indexing against `jnp.unstack`"
JSON = "bench-results/parameter_indexing.json"
STYLES = ("index", "sliced", "unstack", "vector")
METHODS = ("backprop", "adjoint", "jax only")


def _work(style: str, n: int, layers: int, method: str) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pennylane as qml

    import qjaxiface

    jax.config.update("jax_enable_x64", True)
    qjaxiface.install()
    if style == "sliced":
        from qjaxiface import _angle_reads

        _angle_reads.MIN_READS = 10**9  # the reads gathered by no QNode: every angle a slice
    w = jnp.asarray(np.random.default_rng(0).uniform(-np.pi, np.pi, (layers, 2 * n + 1)))
    if style == "vector":
        w = jnp.ravel(w)

    def angles(w):
        """``a[l][k]`` for ``w[l, k]``, read in the style measured."""
        if style in ("index", "sliced"):
            return [[w[layer, k] for k in range(w.shape[1])] for layer in range(layers)]
        if style == "vector":  # w flat: (layers * (2n + 1),)
            width = 2 * n + 1
            return [[w[layer * width + k] for k in range(width)] for layer in range(layers)]
        return [jnp.unstack(row) for row in jnp.unstack(w)]

    def ansatz(a) -> None:
        for wire in range(n):
            qml.Hadamard(wire)
        for layer in range(layers):
            for wire in range(n):
                qml.CRX(a[layer][wire], [wire, (wire + 1) % n])
            for wire in range(n):
                qml.IsingZZ(a[layer][n + wire], [wire, (wire + 2) % n])
            qml.RY(a[layer][2 * n], 0)

    if method == "jax only":

        def f(w):
            return jnp.sum(jnp.sin(jnp.stack([x for row in angles(w) for x in row])))
    else:

        @qml.qnode(qml.device("default.qubit", wires=n), diff_method=method)
        def f(w):
            ansatz(angles(w))
            return qml.expval(qml.Z(0))

    step = jax.jit(jax.grad(f))
    t0 = time.perf_counter()
    jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    return {"first": first, "steady": _steady(lambda: jax.block_until_ready(step(w)))}


def _spawn(style: str, n: int, layers: int, method: str, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", style, "--n", str(n), "--layers", str(layers)]
    cmd += ["--method", method]
    return run_worker(cmd, timeout)


def measure(args) -> dict:
    rows = []
    for layers in args.layers_list:
        for method in METHODS:
            runs: dict[str, list[dict]] = {style: [] for style in STYLES}
            for _ in range(args.repeats):
                for style in STYLES:
                    if style == "sliced" and method == "jax only":
                        continue  # no QNode: the same reads as "index"
                    runs[style].append(_spawn(style, args.n, layers, method, args.timeout))
            row = {"n": args.n, "layers": layers, "method": method, **runs}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows, "machine": machine(), "timeout": args.timeout}


def _cell(runs: list[dict], key: str, scale: float = 1.0, digits: int = 2) -> str:
    values = [r[key] * scale for r in runs if key in r]
    if not values:
        return "-"
    return f"{min(values):.{digits}f} ({statistics.median(values):.{digits}f})"


def _ratio(a: list[dict], b: list[dict]) -> str:
    x = [r["first"] for r in a if "first" in r]
    y = [r["first"] for r in b if "first" in r]
    return f"{min(x) / min(y):.2f}" if x and y else "-"


def to_markdown(data: dict) -> str:
    m = data["machine"]
    lines = [
        SECTION,
        "",
        "Generated by `python benchmarks/parameter_indexing.py`. Machine: "
        f"{m['cpu']}, Python {m['python']}, JAX {m['jax']}, PennyLane {m['pennylane']}. "
        "`jax.jit(jax.grad(f))` of the repeated-patterns circuit (per layer a ring of CRX, a "
        "ring of IsingZZ, one RY: `2n + 1` angles, `expval(Z(0))`, x64, default.qubit through "
        "qjaxiface) whose angles are read from `w` of shape `(layers, 2n + 1)` as `w[l, k]` "
        "(*index*; with qjaxiface installed, a QNode's reads of its own arguments are gathered "
        "in one read per argument) or the same with that gather turned off (*sliced*: a slice "
        "per angle, as before), as `jnp.unstack` of `w` and of its rows (*unstack*), or kept "
        "as a flat vector read as `w[i]` (*vector*); *jax only*: "
        "`sum(sin(stack(angles)))` of the same angles read the same way, no circuit (no QNode: "
        "nothing gathers). Every "
        "number is a fresh process, the styles alternating; first call = trace + compile "
        "+ run, minimum (median) seconds. Ratios are first calls over *sliced*'s (*index*'s "
        "for jax only).",
        "",
        "| n | layers | angles | f | index first call (s) | sliced first call (s) "
        "| unstack first call (s) | vector first call (s) | index / sliced | unstack / sliced "
        "| vector / sliced | index step (ms) | sliced step (ms) | unstack step (ms) "
        "| vector step (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        angles = r["layers"] * (2 * r["n"] + 1)
        sliced = r.get("sliced") or r["index"]
        styles = ("index", "sliced", "unstack", "vector")
        firsts = " | ".join(_cell(r.get(s, []), "first") for s in styles)
        ratios = " | ".join(
            _ratio(r.get(s, []), sliced) if r.get(s) and r.get(s) is not sliced else "-"
            for s in ("index", "unstack", "vector")
        )
        steps = " | ".join(_cell(r.get(s, []), "steady", 1e3, 3) for s in styles)
        lines.append(
            f"| {r['n']} | {r['layers']} | {angles} | {r['method']} | {firsts} | {ratios} | {steps} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=STYLES)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--layers-list", dest="layers_list", type=int, nargs="*", default=[5, 20])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", default=JSON)
    parser.add_argument("--render", action="store_true", help="only re-render --json")
    parser.add_argument("--docs")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_work(args.worker, args.n, args.layers, args.method)))
        return
    data = load_or_measure(args.render, args.json, lambda: measure(args))
    publish(to_markdown(data), args.docs, SECTION)


if __name__ == "__main__":
    main()
