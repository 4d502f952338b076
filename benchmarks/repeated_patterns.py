"""Circuits outside the compact layers: repeated gate patterns as one loop against unrolled.

The circuit is a layered ansatz of gates that no compact region takes: per layer a ring of
CRX gates, a ring of IsingZZ couplings at distance 2 and one RY, ``expval(Z(0))``, x64. Each
measurement is a fresh Python process (nothing compiled, no persistent cache): qjaxiface with
repeated patterns as a ``lax.scan`` (the default), then with
``qjaxiface.executors.xla.set_compact(False)`` (one kernel per gate, the program before), then
Catalyst 0.15 ``qjit(grad)`` on lightning.qubit when ``--catalyst-python`` is given (jax 0.7.1,
its own venv), alternating case by case:

    python benchmarks/repeated_patterns.py --catalyst-python /tmp/cat/bin/python \\
        --docs docs/benchmarks.md

``--docs`` replaces the "Repeated patterns" section of a Markdown page. ``--circuit random``
measures a circuit without repetition instead (the gate-list interpreter's case, adjoint only:
``_interp.py``) and replaces the "Circuits without repetition" section; ``--circuit two-wire``
the same with two-wire gates (SWAP, IsingXX, IsingXY, SingleExcitation), the "Two-wire gates"
section; ``--circuit dense`` with two-wire matrices the dense kernel runs (IsingYY,
SingleExcitationPlus/Minus), against the program that split its stretches at each of them
(*split*: what the executor did before the dense kernel), the "Dense two-wire matrices" section;
``--circuit doubles`` with DoubleExcitations (the two-level kernel) and SingleExcitations, the
"DoubleExcitation" section; ``--circuit parity`` with three-wire MultiRZ gates (the parity
kernel), the "MultiRZ" section; ``--circuit pauli`` with three-wire PauliRot gates of random
words (the Pauli kernel), the "PauliRot" section. ``--before PATH`` measures a checkout of an
earlier qjaxiface (a ``git worktree``; its package is imported through ``PYTHONPATH``) in place
of *unrolled*/*split*, its default program against this one's, and replaces the "One kernel for
every target wire" section (``--circuit random``: the interpreter's one-wire kernel):

    git worktree add /tmp/before <rev>
    python benchmarks/repeated_patterns.py --circuit random --before /tmp/before --ns 8 10 12 14
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _sections import load_or_measure, machine, publish, revision, run_worker
from compile_time import _steady

# The shift rules keep repeated patterns unrolled (``executors/xla/__init__._program``).
METHODS = ("backprop", "adjoint")
CATALYST_METHODS = ("adjoint",)
SECTION = "## Repeated patterns: one loop against one kernel per gate"
RANDOM_SECTION = "## Circuits without repetition: the gate-list interpreter"
MODES = ("looped", "loops", "unrolled", "split", "before", "catalyst")
RANDOM_GATES = ("CRX", "CRY", "CRZ", "IsingZZ", "RX")
# ``--circuit two-wire``: gates the interpreter runs with its pair kernel, among others.
TWO_WIRE_GATES = ("CRX", "SingleExcitation", "IsingXX", "SWAP", "RY", "IsingXY")
TWO_WIRE_SECTION = "## Two-wire gates in the gate-list interpreter"
TWO_WIRE_JSON = "bench-results/two_wire_circuits.json"
# ``--circuit dense``: two-wire matrices of the dense kernel, among others.
DENSE_GATES = ("CRX", "IsingYY", "RY", "SingleExcitationPlus", "SingleExcitationMinus", "PSWAP")
DENSE_SECTION = "## Dense two-wire matrices in the gate-list interpreter"
DENSE_JSON = "bench-results/dense_circuits.json"
# ``--circuit doubles``: DoubleExcitations (four random wires each) and SingleExcitations, as in
# quantum chemistry ansatze.
DOUBLES_GATES = ("DoubleExcitation", "SingleExcitation", "RY")
DOUBLES_SECTION = "## DoubleExcitation in the gate-list interpreter"
DOUBLES_JSON = "bench-results/doubles_circuits.json"
# ``--circuit parity``: MultiRZ on three random wires, as in Trotterized many-body terms.
PARITY_GATES = ("MultiRZ", "RX", "CRY")
PARITY_SECTION = "## Three-wire MultiRZ in the gate-list interpreter"
PARITY_JSON = "bench-results/parity_circuits.json"
# ``--circuit pauli``: PauliRot on three random wires, a random word of X, Y and Z each, as in
# Trotterized Hamiltonians (``ApproxTimeEvolution``).
PAULI_GATES = ("PauliRot", "RX", "CRY")
PAULI_SECTION = "## Three-wire PauliRot in the gate-list interpreter"
PAULI_JSON = "bench-results/pauli_circuits.json"
KINDS = {
    "random": RANDOM_GATES,
    "two-wire": TWO_WIRE_GATES,
    "dense": DENSE_GATES,
    "doubles": DOUBLES_GATES,
    "parity": PARITY_GATES,
    "pauli": PAULI_GATES,
}
# The circuits measured against *split* (the stretches split at the rows of the dense,
# two-level and parity kernels), not against *unrolled*.
SPLIT_CIRCUITS = ("dense", "doubles", "parity", "pauli")
RANDOM_METHODS = ("adjoint",)  # the interpreter runs under the adjoint rule only
JSON = "bench-results/repeated_patterns.json"
RANDOM_JSON = "bench-results/random_circuits.json"
# ``--before``: this checkout's default program against an earlier one's.
BEFORE_SECTION = "## One kernel for every target wire in the gate-list interpreter"
BEFORE_JSON = "bench-results/one_wire_kernel.json"


def ansatz(qml, n: int, layers: int, w) -> None:
    """The benchmark circuit's gates (``w``: ``(layers, 2 n + 1)`` angles)."""
    for wire in range(n):
        qml.Hadamard(wire)
    for layer in range(layers):
        for wire in range(n):
            qml.CRX(w[layer, wire], [wire, (wire + 1) % n])
        for wire in range(n):
            qml.IsingZZ(w[layer, n + wire], [wire, (wire + 2) % n])
        qml.RY(w[layer, 2 * n], 0)


def random_circuit(qml, n: int, layers: int, w, kinds=RANDOM_GATES) -> None:
    """As many gates as ``ansatz``, each of a kind (of ``kinds``) and on wires drawn at random
    (seed 0), a CNOT after every fifth: no pattern repeats."""
    import numpy as np

    rng = np.random.default_rng(0)
    for wire in range(n):
        qml.Hadamard(wire)
    for layer in range(layers):
        for k in range(2 * n + 1):
            name = kinds[int(rng.integers(len(kinds)))]
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            if name == "SWAP":
                qml.SWAP([a, b])
            elif name in ("DoubleExcitation", "MultiRZ"):
                size = 4 if name == "DoubleExcitation" else 3
                wires = [int(x) for x in rng.choice(n, size, replace=False)]
                getattr(qml, name)(w[layer, k], wires)
            elif name == "PauliRot":
                word = "".join("XYZ"[int(x)] for x in rng.integers(3, size=3))
                wires = [int(x) for x in rng.choice(n, 3, replace=False)]
                qml.PauliRot(w[layer, k], word, wires)
            else:
                wires = a if name in ("RX", "RY") else [a, b]
                getattr(qml, name)(w[layer, k], wires)
            if k % 5 == 4:
                qml.CNOT([b, a])


def _work(mode: str, n: int, layers: int, method: str, circuit_name: str = "layered") -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pennylane as qml

    jax.config.update("jax_enable_x64", True)
    w = jnp.asarray(np.random.default_rng(0).uniform(-np.pi, np.pi, (layers, 2 * n + 1)))
    device = "lightning.qubit" if mode == "catalyst" else "default.qubit"

    @qml.qnode(qml.device(device, wires=n), diff_method=method)
    def circuit(w):
        if circuit_name == "layered":
            ansatz(qml, n, layers, w)
        else:
            random_circuit(qml, n, layers, w, KINDS[circuit_name])
        return qml.expval(qml.Z(0))

    if mode == "catalyst":
        import catalyst

        step = catalyst.qjit(lambda w: catalyst.grad(circuit)(w))
    else:
        import qjaxiface
        from qjaxiface.executors.xla import set_compact

        qjaxiface.install()
        set_compact(mode != "unrolled")
        if mode == "loops":  # repeated patterns as loops even where the interpreter takes them
            from qjaxiface.executors.xla import _interp

            _interp.LOOP_WIRES = 0
        if mode == "split":  # no dense, two-level or parity rows: a stretch ends at each
            from qjaxiface.executors.xla import _interp

            row_of = _interp.row_of
            _interp.row_of = lambda gate, n: (
                None if (found := row_of(gate, n)) and found[0][0] >= _interp.DENSE else found
            )
        step = jax.jit(jax.grad(circuit))
    t0 = time.perf_counter()
    jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    return {"first": first, "steady": _steady(lambda: jax.block_until_ready(step(w)))}


def _spawn(python, mode, n, layers, method, timeout, circuit="layered", before=None) -> dict:
    cmd = [python, __file__, "--worker", mode, "--n", str(n), "--layers", str(layers)]
    cmd += ["--method", method, "--circuit", circuit]
    return run_worker(cmd, timeout, {"PYTHONPATH": before} if mode == "before" else None)


def measure(args) -> dict:
    rows = []
    for n in args.ns:
        for layers in args.layers_list:
            for method in METHODS if args.circuit == "layered" else RANDOM_METHODS:
                runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
                for _ in range(args.repeats):
                    for mode in MODES:
                        if mode == "catalyst" and (
                            not args.catalyst_python or method not in CATALYST_METHODS
                        ):
                            continue
                        if mode == "loops" and (args.circuit != "layered" or method != "adjoint"):
                            continue
                        baseline = (
                            "before"
                            if args.before
                            else ("split" if args.circuit in SPLIT_CIRCUITS else "unrolled")
                        )
                        if mode in ("split", "unrolled", "before") and mode != baseline:
                            continue  # against one baseline
                        python = args.catalyst_python if mode == "catalyst" else sys.executable
                        runs[mode].append(
                            _spawn(
                                python,
                                mode,
                                n,
                                layers,
                                method,
                                args.timeout,
                                args.circuit,
                                args.before,
                            )
                        )
                row = {"n": n, "layers": layers, "method": method, **runs}
                rows.append(row)
                print(json.dumps(row), flush=True)
    from qjaxiface.executors.xla import _interp

    data = {"rows": rows, "machine": machine(), "timeout": args.timeout, "circuit": args.circuit}
    if args.before:
        data["before"] = revision(args.before)
    return {**data, "loop_wires": _interp.LOOP_WIRES}


def _best(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return min(values) if values else None


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def _first(runs: list[dict], timeout: float) -> str:
    best, median = _best(runs, "first"), _median(runs, "first")
    if best is None:
        return f">{timeout:.0f}" if any("timeout" in r for r in runs) else "-"
    return f"{best:.2f} ({median:.2f})"


def _ratio(a: list[dict], b: list[dict], timeout: float) -> str:
    x, y = _best(a, "first"), _best(b, "first")
    if x is None:
        return "-"
    if y is None:
        return f"<{x / timeout:.2f}" if any("timeout" in r for r in b) else "-"
    return f"{x / y:.2f}"


def _step(runs: list[dict]) -> str:
    best = _best(runs, "steady")
    return "-" if best is None else f"{best * 1e3:.2f}"


def to_markdown(data: dict) -> str:
    m, timeout = data["machine"], data["timeout"]
    circuit = data.get("circuit", "layered")
    random = circuit != "layered"
    setup = (
        f"Machine: {m['cpu']}, Python {m['python']}, JAX {m['jax']}, PennyLane {m['pennylane']}."
    )
    if random:
        kinds = KINDS[circuit]
        title = {
            "random": RANDOM_SECTION,
            "two-wire": TWO_WIRE_SECTION,
            "dense": DENSE_SECTION,
            "doubles": DOUBLES_SECTION,
            "parity": PARITY_SECTION,
            "pauli": PAULI_SECTION,
        }
        split = {
            "dense": "dense two-wire matrix (IsingYY, SingleExcitationPlus/Minus)",
            "doubles": "DoubleExcitation",
            "parity": "three-wire MultiRZ",
            "pauli": "three-wire PauliRot",
        }
        baseline = (
            f"*split*: the stretches split at each {split[circuit]}, which then runs as its own "
            "kernel: the program before the dense, two-level, parity and Pauli kernels, with "
            "their closed forms;"
            if circuit in SPLIT_CIRCUITS
            else "*unrolled*: `set_compact(False)`, one kernel per gate;"
        )
        if data.get("before"):
            baseline = (
                f"*before*: the default program of commit {data['before']}, one kernel per "
                "target wire for one-wire matrices on more than 8 wires (this one: on more "
                "than 12, so at n=14 both run the same program);"
            )
        head = [
            BEFORE_SECTION if data.get("before") else title[circuit],
            "",
            f"Generated by `python benchmarks/repeated_patterns.py --circuit {circuit}"
            + (" --before <checkout>" if data.get("before") else "")
            + "`. "
            + setup,
            "Circuit: a layer of Hadamards, then per layer `2n + 1` gates of a kind drawn from "
            f"{', '.join(kinds[:-1])} and {kinds[-1]} on wires drawn at random (seed 0) and a "
            "CNOT after every fifth: no pattern repeats. `expval(Z(0))`, x64, `jax.jit(jax.grad(qnode))`, "
            "adjoint. *interpreted*: the default program, each stretch of gates one "
            "`lax.scan` over a gate table (`_interp.py`);",
            baseline,
        ]
        names = ("interpreted", "split" if circuit in SPLIT_CIRCUITS else "unrolled")
        if data.get("before"):
            names = ("interpreted", "before")
    else:
        head = [
            SECTION,
            "",
            "Generated by `python benchmarks/repeated_patterns.py`. " + setup,
            "Circuit: per layer a ring of CRX, a ring of IsingZZ at distance 2 and one RY (gates "
            "no compact layer takes), `expval(Z(0))`, x64, `jax.jit(jax.grad(qnode))`. *default*: "
            "the default program, each repeated pattern one `lax.scan`, except under the adjoint "
            f"rule on up to {data.get('loop_wires', 10)} wires (`_interp.LOOP_WIRES`), where "
            "the gate-list interpreter runs "
            "the layers; *loops*: repeated patterns as loops there too; *unrolled*: "
            "`set_compact(False)`, one kernel per gate;",
        ]
        names = ("default", "unrolled")
    head[-1] += (
        " Catalyst 0.15 `qjit(grad)` on lightning.qubit (jax 0.7.1, its own venv). Every number "
        "is a fresh process, the programs alternating case by case; first call = trace + compile "
        f"+ run, minimum (median) seconds; `>{timeout:.0f}` did not finish in that time."
    )
    a, b = names
    lines = [*head[:2], " ".join(head[2:]), ""]
    if not random:
        return "\n".join(lines + _layered_table(data)) + "\n"
    lines += [
        f"| n | layers | method | {a} first call | {b} first call | {a} / {b} "
        f"| Catalyst first call | {a} / Catalyst | {a} step (ms) | {b} step (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        base = r.get(b, [])
        lines.append(
            f"| {r['n']} | {r['layers']} | {r['method']} | {_first(r['looped'], timeout)} | "
            f"{_first(base, timeout)} | {_ratio(r['looped'], base, timeout)} | "
            f"{_first(r['catalyst'], timeout)} | {_ratio(r['looped'], r['catalyst'], timeout)} | "
            f"{_step(r['looped'])} | {_step(base)} |"
        )
    return "\n".join(lines) + "\n"


def _layered_table(data: dict) -> list[str]:
    timeout = data["timeout"]
    lines = [
        "| n | layers | method | default first call | loops first call | unrolled first call "
        "| default / loops | default / unrolled | Catalyst first call | default / Catalyst "
        "| default step (ms) | loops step (ms) | unrolled step (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        default, loops, unrolled = r["looped"], r.get("loops", []), r["unrolled"]
        lines.append(
            f"| {r['n']} | {r['layers']} | {r['method']} | {_first(default, timeout)} | "
            f"{_first(loops, timeout)} | {_first(unrolled, timeout)} | "
            f"{_ratio(default, loops, timeout)} | {_ratio(default, unrolled, timeout)} | "
            f"{_first(r['catalyst'], timeout)} | {_ratio(default, r['catalyst'], timeout)} | "
            f"{_step(default)} | {_step(loops)} | {_step(unrolled)} |"
        )
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=MODES)
    parser.add_argument("--n", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--method")
    parser.add_argument("--circuit", choices=("layered", *KINDS), default="layered")
    parser.add_argument("--catalyst-python", help="python of a venv with Catalyst 0.15")
    parser.add_argument("--ns", type=int, nargs="*", default=[8, 12])
    parser.add_argument("--layers-list", dest="layers_list", type=int, nargs="*", default=[5, 20])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", default=JSON)
    parser.add_argument("--render", action="store_true", help="only re-render --json")
    parser.add_argument("--docs")
    parser.add_argument("--before", help="a checkout of an earlier qjaxiface: the baseline")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_work(args.worker, args.n, args.layers, args.method, args.circuit)))
        return
    sections = {"layered": (JSON, SECTION), "random": (RANDOM_JSON, RANDOM_SECTION)}
    sections["two-wire"] = (TWO_WIRE_JSON, TWO_WIRE_SECTION)
    sections["dense"] = (DENSE_JSON, DENSE_SECTION)
    sections["doubles"] = (DOUBLES_JSON, DOUBLES_SECTION)
    sections["parity"] = (PARITY_JSON, PARITY_SECTION)
    sections["pauli"] = (PAULI_JSON, PAULI_SECTION)
    if args.json == JSON:
        args.json = BEFORE_JSON if args.before else sections[args.circuit][0]
    data = load_or_measure(args.render, args.json, lambda: measure(args))
    section = sections[data.get("circuit", "layered")][1]
    publish(to_markdown(data), args.docs, BEFORE_SECTION if data.get("before") else section)


if __name__ == "__main__":
    main()
