"""Chemistry ansätze: UCCSD and kUpCCGSD, ours against an earlier checkout and Catalyst.

Both templates decompose into FermionicSingleExcitation / FermionicDoubleExcitation, whose
decompositions are phase gadgets (CNOT ladders around an ``RZ`` of ``±θ/2`` or ``±θ/8``): UCCSD
on 8 wires with 3 repeats is 4190 gates. Each measurement is a fresh process (nothing compiled,
no persistent cache): qjaxiface, a checkout given with ``--before`` (a ``git worktree`` imported
through ``PYTHONPATH``) and Catalyst 0.15 ``qjit(grad)`` on lightning.qubit
(``--catalyst-python``, jax 0.7.1 in its own venv), alternating case by case. Two electrons,
``expval(Z(0))``, x64, ``jit(grad)``:

    git worktree add /tmp/before <rev>
    python benchmarks/chemistry.py --before /tmp/before --catalyst-python /tmp/cat/bin/python \\
        --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _sections import load_or_measure, machine, publish, revision, run_worker
from compile_time import _steady

SECTION = "## Chemistry ansätze: phase gadgets and scaled template weights"
TEMPLATES = ("uccsd", "kupccgsd")
MODES = ("ours", "before", "catalyst")


def _work(mode: str, template: str, n: int, repeats: int, method: str) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pennylane as qml

    jax.config.update("jax_enable_x64", True)
    if mode != "catalyst":
        import qjaxiface

        qjaxiface.install()
    wires = list(range(n))
    hf = np.array([1, 1] + [0] * (n - 2))
    if template == "uccsd":
        singles, doubles = qml.qchem.excitations(2, n)
        s_wires, d_wires = qml.qchem.excitations_to_wires(singles, doubles)
        shape: tuple = (repeats, len(singles) + len(doubles))

        def body(w):
            qml.UCCSD(w, wires, s_wires=s_wires, d_wires=d_wires, init_state=hf, n_repeats=repeats)
    else:
        shape = qml.kUpCCGSD.shape(k=repeats, n_wires=n, delta_sz=0)

        def body(w):
            qml.kUpCCGSD(w, wires=wires, k=repeats, delta_sz=0, init_state=hf)

    device = "lightning.qubit" if mode == "catalyst" else "default.qubit"

    @qml.qnode(qml.device(device, wires=n), diff_method=method)
    def circuit(w):
        body(w)
        return qml.expval(qml.Z(0))

    w = jnp.asarray(np.random.default_rng(0).uniform(-np.pi, np.pi, shape))
    if mode == "catalyst":
        import catalyst

        step = catalyst.qjit(lambda w: catalyst.grad(circuit)(w))
    else:
        step = jax.jit(jax.grad(circuit))
    t0 = time.perf_counter()
    g = jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    steady = _steady(lambda: jax.block_until_ready(step(w)))
    return {"first": first, "steady": steady, "g0": float(np.ravel(np.asarray(g))[0])}


def _spawn(python, mode, template, n, repeats, method, timeout, before) -> dict:
    cmd = [python, __file__, "--worker", mode, "--template", template, "--n", str(n)]
    cmd += ["--repeats", str(repeats), "--method", method]
    return run_worker(cmd, timeout, {"PYTHONPATH": before} if mode == "before" else None)


def measure(args) -> dict:
    rows = []
    for template in args.templates:
        for n in args.ns:
            for method in args.methods:
                runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
                for _ in range(args.runs):
                    for mode in MODES:
                        if mode == "before" and not args.before:
                            continue
                        if mode == "catalyst" and not args.catalyst_python:
                            continue
                        python = args.catalyst_python if mode == "catalyst" else sys.executable
                        runs[mode].append(
                            _spawn(
                                python,
                                mode,
                                template,
                                n,
                                args.repeats,
                                method,
                                args.timeout,
                                args.before,
                            )
                        )
                row = {"template": template, "n": n, "method": method, **runs}
                rows.append(row)
                print(json.dumps(row), flush=True)
    data = {"rows": rows, "machine": machine(), "repeats": args.repeats, "runs": args.runs}
    if args.before:
        data["before"] = revision(args.before)
    return data


def _values(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if key in r]


def _cell(runs: list[dict], key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    values = _values(runs, key)
    if not values:
        return "failed" if runs else "-"
    best, median = min(values) * scale, statistics.median(values) * scale
    return f"{fmt.format(best)} ({fmt.format(median)})"


def _ratio(a: list[dict], b: list[dict], key: str) -> str:
    x, y = _values(a, key), _values(b, key)
    return f"{min(x) / min(y):.2f}x" if x and y else "-"


def to_markdown(data: dict) -> str:
    m = data["machine"]
    before = data.get("before", "-")
    lines = [
        SECTION,
        "",
        f"Generated by `python benchmarks/chemistry.py`. Machine: {m['cpu']}, Python "
        f"{m['python']}, JAX {m['jax']}, PennyLane {m['pennylane']}. UCCSD (all single and "
        f"double excitations of two electrons, {data['repeats']} repeats) and kUpCCGSD "
        f"(k={data['repeats']}), `expval(Z(0))`, x64, first call (trace + compile + run) and "
        f"steady step of `jax.jit(jax.grad(qnode))`; minimum (median) over {data['runs']} "
        f"fresh processes per cell, the programs alternating. *before*: qjaxiface at "
        f"{before}, before phase gadgets became one `MultiRZ` and scaled template weights "
        "stayed whole; Catalyst 0.15 `qjit(grad)` on lightning.qubit (jax 0.7.1, its own "
        "venv). Ratios compare minima (lower is better for qjaxiface).",
        "",
        "| template | n | method | first call (s) | before | ours / before | Catalyst "
        "| ours / Catalyst | step ms | before | Catalyst |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        ours, bef, cat = row["ours"], row["before"], row["catalyst"]
        lines.append(
            f"| {row['template']} | {row['n']} | {row['method']} | {_cell(ours, 'first')} | "
            f"{_cell(bef, 'first')} | {_ratio(ours, bef, 'first')} | {_cell(cat, 'first')} | "
            f"{_ratio(ours, cat, 'first')} | {_cell(ours, 'steady', 1e3, '{:.1f}')} | "
            f"{_cell(bef, 'steady', 1e3, '{:.1f}')} | {_cell(cat, 'steady', 1e3, '{:.1f}')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=MODES)
    parser.add_argument("--template", choices=TEMPLATES, default="uccsd")
    parser.add_argument("--templates", nargs="+", choices=TEMPLATES, default=list(TEMPLATES))
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--ns", type=int, nargs="+", default=[8, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="adjoint")
    parser.add_argument("--methods", nargs="+", default=["adjoint", "parameter-shift"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--before")
    parser.add_argument("--catalyst-python")
    parser.add_argument("--json", default="bench-results/chemistry.json")
    parser.add_argument("--render", action="store_true", help="re-render saved results")
    parser.add_argument("--docs")
    args = parser.parse_args(argv)
    if args.worker:
        out = _work(args.worker, args.template, args.n, args.repeats, args.method)
        print(json.dumps(out))
        return
    data = load_or_measure(args.render, args.json, lambda: measure(args))
    publish(to_markdown(data), args.docs, SECTION)


if __name__ == "__main__":
    main()
