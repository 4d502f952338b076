"""First calls of ``jit(grad(qnode))``: qjaxiface's XLA executor against Catalyst 0.15 ``qjit``.

Every measurement runs in a fresh Python process (nothing compiled, no persistent cache), and
the two tools alternate case by case (qjaxiface, Catalyst, qjaxiface, Catalyst, ...), so a
change in machine load hits both. Catalyst 0.15 pins jax 0.7.1, so it runs from its own venv:

    python -m venv /tmp/cat && /tmp/cat/bin/pip install -e . jax==0.7.1 jaxlib==0.7.1 \\
        pennylane-catalyst==0.15.0
    python benchmarks/compile_time.py --catalyst-python /tmp/cat/bin/python --docs docs/benchmarks.md

Circuit: StronglyEntanglingLayers(n, L), ``expval(Z(0))``, x64. qjaxiface: default.qubit through
``qjaxiface.install()``, ``jax.jit(jax.grad(qnode))``, first call split with ``jax.stages``
(trace, lower, compile, run). Catalyst: lightning.qubit, ``qjit(catalyst.grad(qnode))``.
Also: the same qjaxiface first call in a second process with ``enable_compilation_cache`` on
(warm) against the first (cold), and the qjaxiface steps under jax 0.7.1 (``--catalyst-python``
runs qjaxiface too). ``--docs`` replaces the "Compile time" section of a Markdown page.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _circuits import catalyst_sel_step
from _sections import load_or_measure, publish

METHODS = ("backprop", "adjoint", "parameter-shift")
CATALYST_METHODS = ("adjoint", "parameter-shift")
SECTION = "## Compile time: first calls against Catalyst"


# --------------------------------------------------------------------------- workers


def _settle(collect: bool) -> None:
    """Pay, before the clock starts, the full garbage collection that the imports left owed.

    Importing JAX and PennyLane creates a few hundred thousand objects; Python's collector then
    owes one full collection over them (about 0.1 s here), which lands in whatever allocates
    next -- usually the first call. It is the imports' cost, not the call's, and it would land
    in any tool's first call, so every worker (qjaxiface cold or warm, Catalyst) pays it first.
    """
    if collect:
        gc.collect()


def _work_qjaxiface(
    n: int, layers: int, method: str, cache: str | None, collect: bool = True
) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pennylane as qml

    import qjaxiface

    jax.config.update("jax_enable_x64", True)
    if cache:
        qjaxiface.enable_compilation_cache(cache)
    qjaxiface.install()

    @qml.qnode(qml.device("default.qubit", wires=n), diff_method=method)
    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    w = jnp.asarray(np.random.default_rng(0).random((layers, n, 3)))
    step = jax.jit(jax.grad(circuit))
    _settle(collect)
    t0 = time.perf_counter()
    traced = step.trace(w)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    jax.block_until_ready(compiled(w))
    t4 = time.perf_counter()
    return {
        "jax": jax.__version__,
        "trace": t1 - t0,
        "lower": t2 - t1,
        "compile": t3 - t2,
        "first": t4 - t0,
        "steady": _steady(lambda: jax.block_until_ready(compiled(w))),
    }


def _work_catalyst(n: int, layers: int, method: str) -> dict:
    import catalyst
    import jax
    import jax.numpy as jnp
    import numpy as np

    step = catalyst_sel_step(n, layers, method)
    w = jnp.asarray(np.random.default_rng(0).random((layers, n, 3)))
    _settle(True)
    t0 = time.perf_counter()
    jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    return {
        "catalyst": catalyst.__version__,
        "first": first,
        "steady": _steady(lambda: jax.block_until_ready(step(w))),
    }


def _steady(call, budget: float = 5.0) -> float:
    """Minimum seconds over up to 10 calls, within about ``budget`` seconds."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 10 and (not times or time.perf_counter() - start < budget):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


# --------------------------------------------------------------------------- orchestration


def _spawn(
    python: str,
    tool: str,
    n: int,
    layers: int,
    method: str,
    cache: str | None = None,
    collect: bool = True,
):
    cmd = [python, __file__, "--worker", tool, "--n", str(n), "--layers", str(layers)]
    cmd += ["--method", method] + (["--cache", cache] if cache else [])
    cmd += [] if collect else ["--no-collect"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict], key: str) -> tuple[float, float] | None:
    values = [r[key] for r in runs if key in r]
    return (min(values), statistics.median(values)) if values else None


def measure(args) -> dict:
    """Every case, interleaved tool by tool; returns the rows as plain data."""
    cases = [(n, layers) for n in args.ns for layers in args.layers]
    cases += [(n, layers) for n, layers in args.extra]
    rows = []
    for n, layers in cases:
        for method in METHODS:
            if _skip_shift(args, method, n, layers):
                continue
            ours: list[dict] = []
            cat: list[dict] = []
            old: list[dict] = []
            for _ in range(args.repeats):
                ours.append(_spawn(sys.executable, "qjaxiface", n, layers, method))
                if args.catalyst_python and method in CATALYST_METHODS:
                    cat.append(_spawn(args.catalyst_python, "catalyst", n, layers, method))
                if args.catalyst_python and args.old_jax:
                    old.append(_spawn(args.catalyst_python, "qjaxiface", n, layers, method))
            row = {"n": n, "layers": layers, "method": method, "ours": ours, "catalyst": cat}
            row["jax071"] = old
            rows.append(row)
            print(_progress(row), flush=True)
    return {"rows": rows, "warm": measure_cache(args), "machine": _machine(args)}


def measure_cache(args) -> list[dict]:
    """Cold and warm first calls, ``--repeats`` triples of processes per case (each with a
    fresh cache folder: cold, warm, warm without ``_settle``); the fastest of each kept."""
    warm = []
    for n, layers in args.cache_cases:
        for method in METHODS:
            if _skip_shift(args, method, n, layers):
                continue
            colds, seconds, owed = [], [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as folder:
                    case = (sys.executable, "qjaxiface", n, layers, method, folder)
                    colds.append(_spawn(*case))
                    seconds.append(_spawn(*case))
                    owed.append(_spawn(*case, collect=False))
            row = {"n": n, "layers": layers, "method": method}
            for key, runs in (("cold", colds), ("warm", seconds), ("owed", owed)):
                row[key] = min(runs, key=lambda r: r.get("first", float("inf")))
            warm.append(row)
            print(
                f"cache n={n} L={layers} {method}: "
                + " -> ".join(str(row[k].get("first")) for k in ("cold", "warm", "owed"))
            )
    return warm


def _skip_shift(args, method: str, n: int, layers: int) -> bool:
    """Parameter-shift cases whose steps (rows x gates x amplitudes, in units where n=12, one
    layer is 12) or whose Catalyst compile (growing with depth) would take minutes."""
    if method != "parameter-shift":
        return False
    return n * layers * 2 ** (n - 12) > args.max_shift_size or layers > args.max_shift_layers


def _progress(row) -> str:
    ours = _summary(row["ours"], "first")
    cat = _summary(row["catalyst"], "first")
    text = f"n={row['n']} L={row['layers']} {row['method']}: qjaxiface {ours}"
    return text + (f", catalyst {cat}" if cat else "")


def _machine(args) -> dict:
    import jax
    import pennylane as qml

    return {
        "cpu": f"{os.cpu_count()}-core CPU ({platform.machine()})",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "pennylane": qml.__version__,
        "catalyst_python": bool(args.catalyst_python),
    }


# --------------------------------------------------------------------------- report


def _s(pair) -> str:
    return "-" if pair is None else f"{pair[0]:.2f} ({pair[1]:.2f})"


def _ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a[0] / b[0]:.2f}x"


def to_markdown(data: dict) -> str:
    m = data["machine"]
    lines = [
        SECTION,
        "",
        f"Generated by `python benchmarks/compile_time.py`. Machine: {m['cpu']}, Python "
        f"{m['python']}, JAX {m['jax']}, PennyLane {m['pennylane']}. Every number is one fresh "
        "process (nothing compiled before, no persistent cache); qjaxiface and Catalyst 0.15 "
        "(jax 0.7.1, its own venv, lightning.qubit) alternate case by case. Cells: minimum "
        "(median) seconds over the repeats. StronglyEntanglingLayers, `expval(Z(0))`, x64, "
        "first call of `jax.jit(jax.grad(qnode))` / `qjit(grad(qnode))` = trace + compile + "
        "run. Each process runs `gc.collect()` after its imports and setup, before the clock "
        "starts: the full collection that importing JAX and PennyLane leaves owed (about 0.1 s "
        "here) is the imports' cost, and would otherwise land in whichever first call "
        "allocates first. *vs Catalyst*: qjaxiface's first call over Catalyst's (lower is "
        "better).",
        "",
        "| n | layers | method | qjaxiface first call | trace | compile | qjaxiface on jax 0.7.1 "
        "| Catalyst first call | vs Catalyst | qjaxiface steady (ms) | Catalyst steady (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        ours, cat = _summary(r["ours"], "first"), _summary(r["catalyst"], "first")
        steady = _summary(r["ours"], "steady")
        cat_steady = _summary(r["catalyst"], "steady")
        lines.append(
            f"| {r['n']} | {r['layers']} | {r['method']} | {_s(ours)} | "
            f"{_s(_summary(r['ours'], 'trace'))} | {_s(_summary(r['ours'], 'compile'))} | "
            f"{_s(_summary(r['jax071'], 'first'))} | {_s(cat)} | {_ratio(ours, cat)} | "
            f"{'-' if steady is None else f'{steady[0] * 1e3:.2f}'} | "
            f"{'-' if cat_steady is None else f'{cat_steady[0] * 1e3:.2f}'} |"
        )
    if data["warm"]:
        lines += [
            "",
            "### A second process with `qjaxiface.enable_compilation_cache()`",
            "",
            "The same first call in two processes sharing a cache folder: the first compiles and "
            "stores, the second loads (fastest of the repeated pairs). *second: trace*: the "
            "part of the second process's first call spent tracing (PennyLane's QNode, the "
            "program build, JAX's trace), which no compilation cache can skip. *second, "
            "collection owed*: the second process without the `gc.collect()` before the clock, "
            "so that the full collection its imports left owed lands in the first call "
            "(`gc.freeze()` after the imports avoids it: docs/performance.md).",
            "",
            "| n | layers | method | first process (s) | second process (s) | second / first "
            "| second: trace (s) | second, collection owed (s) | / first |",
            "|---|---|---|---|---|---|---|---|---|",
        ]

        def cell(x):
            return "-" if x is None else f"{x:.2f}"

        def share(x, of):
            return "-" if not of or x is None else f"{x / of:.0%}"

        for r in data["warm"]:
            cold, warm = r["cold"].get("first"), r["warm"].get("first")
            owed = r.get("owed", {}).get("first")
            lines.append(
                f"| {r['n']} | {r['layers']} | {r['method']} | {cell(cold)} | {cell(warm)} | "
                f"{share(warm, cold)} | {cell(r['warm'].get('trace'))} | {cell(owed)} | "
                f"{share(owed, cold)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("qjaxiface", "catalyst"))
    parser.add_argument("--n", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--method")
    parser.add_argument("--cache")
    parser.add_argument("--no-collect", dest="collect", action="store_false")
    parser.add_argument("--catalyst-python", help="python of a venv with Catalyst 0.15")
    parser.add_argument("--old-jax", action="store_true", help="also qjaxiface in that venv")
    parser.add_argument("--ns", type=int, nargs="*", default=[12])
    parser.add_argument("--layers-list", dest="layers_list", type=int, nargs="*",
                        default=[3, 10, 30, 100])  # fmt: skip
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--max-shift-size",
        type=float,
        default=12 * 100,
        help="skip parameter-shift cases above this n * layers * 2**(n-12)",
    )
    parser.add_argument("--max-shift-layers", type=int, default=100)
    parser.add_argument("--json", default="bench-results/compile_time.json")
    parser.add_argument(
        "--cache-only",
        action="store_true",
        help="re-measure only the second-process table, into the results saved in --json",
    )
    parser.add_argument("--docs")
    args = parser.parse_args(argv)
    if args.worker:
        if args.worker == "qjaxiface":
            result = _work_qjaxiface(args.n, args.layers, args.method, args.cache, args.collect)
        else:
            result = _work_catalyst(args.n, args.layers, args.method)
        print(json.dumps(result))
        return
    args.layers = args.layers_list
    args.extra = [(8, 3), (8, 100), (16, 3), (16, 100), (20, 10)]
    args.cache_cases = [(12, 3), (12, 100)]
    if args.cache_only:
        saved = json.loads(Path(args.json).read_text())
        data = load_or_measure(False, args.json, lambda: {**saved, "warm": measure_cache(args)})
    else:
        data = load_or_measure(False, args.json, lambda: measure(args))
    publish(to_markdown(data), args.docs, SECTION)


if __name__ == "__main__":
    main()
