"""One state vector sharded over 1, 2, 4 and 8 JAX devices: exchanges, traffic and step time.

A simulation of scaling on forced host devices (``--xla_force_host_platform_device_count=8``,
set here): the 8 "devices" share this machine's cores and memory, so the table bounds the
overhead of sharding (exchanges, per-device kernels), not its speed-up. On real devices
(GPUs, hosts) each shard has its own memory bandwidth. Circuit: StronglyEntanglingLayers,
``expval(Z0 Z(n-1))``, ``jax.jit(jax.grad(qnode))`` through ``qjaxiface.install(executor="xla",
mesh=...)``; 1 shard is the unsharded executor::

    python benchmarks/distributed.py --ns 20 22 --layers 3 --docs docs/benchmarks.md

Cells: minimum (median) over ``--repeats`` steady steps; the first call (trace + compile + run)
apart. Exchanges are counted from the program's schedule; traffic is what all devices send per
layer (an exchange of k qubits sends ``1 - 2**-k`` of each slice).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax
from _sections import load_or_measure, publish

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pennylane as qml  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import qjaxiface  # noqa: E402
from qjaxiface.executors.xla._distributed import Exchange, global_qubits, schedule  # noqa: E402
from qjaxiface.executors.xla._simulate import TapeProgram  # noqa: E402

SECTION = "## Sharded state vector"


def _schedule_cost(n: int, layers: int, shards: int) -> tuple[int, float]:
    """(exchanges, bytes all devices send) for ``layers`` of StronglyEntanglingLayers."""
    ops = qml.StronglyEntanglingLayers(np.zeros((layers, n, 3)), wires=range(n)).decomposition()
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(n - 1))])
    gates = [gt for gt, _, _ in TapeProgram(tape, compact=False).gates]
    g = global_qubits_for(n, shards)
    steps, _ = schedule(gates, n, g)
    exchanges = [s for s in steps if isinstance(s, Exchange)]
    slice_bytes = 2 ** (n - g) * 16
    sent = sum((1 - 2.0 ** -len(s.pairs)) * slice_bytes * shards for s in exchanges)
    return len(exchanges), sent


def _time_step(n: int, layers: int, shards: int, method: str, repeats: int) -> dict:
    mesh = None if shards == 1 else Mesh(np.array(jax.devices()[:shards]), ("amps",))
    qjaxiface.install(executor="xla", mesh=mesh)
    try:
        dev = qml.device("default.qubit", wires=n)

        @qml.qnode(dev, diff_method=method, interface="jax")
        def circuit(w):
            qml.StronglyEntanglingLayers(w, wires=range(n))
            return qml.expval(qml.Z(0) @ qml.Z(n - 1))

        w = np.random.default_rng(0).normal(size=(layers, n, 3))
        step = jax.jit(jax.grad(circuit))
        start = time.perf_counter()
        jax.block_until_ready(step(w))
        first = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(step(w))
            times.append(time.perf_counter() - start)
    finally:
        qjaxiface.uninstall()
        qjaxiface.clear_caches()
    return {"first": first, "min": min(times), "median": statistics.median(times)}


def measure(args) -> dict:
    rows = []
    for n in args.ns:
        for method in args.methods:
            for shards in args.shards:
                row = {"n": n, "method": method, "shards": shards}
                row["g"] = 0 if shards == 1 else global_qubits_for(n, shards)
                if shards > 1:
                    ex_l, sent_l = _schedule_cost(n, args.layers, shards)
                    ex_1, _ = _schedule_cost(n, 1, shards)
                    row["exchanges"] = ex_l
                    row["exchanges_per_layer"] = ex_l / args.layers
                    row["marginal_per_layer"] = (ex_l - ex_1) / max(args.layers - 1, 1)
                    row["sent_per_layer"] = sent_l / args.layers
                row.update(_time_step(n, args.layers, shards, method, args.repeats))
                print(row, flush=True)
                rows.append(row)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "jax": jax.__version__,
        "pennylane": qml.__version__,
        "layers": args.layers,
        "rows": rows,
    }


def global_qubits_for(n: int, shards: int) -> int:
    from qjaxiface.executors.xla._distributed import AmplitudeMesh

    return global_qubits(AmplitudeMesh(tuple(range(shards)), shards.bit_length() - 1), n)


def to_markdown(data: dict) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {data['machine']}; jax {data['jax']}, PennyLane {data['pennylane']}. "
        "**8 forced host devices on this 2-core CPU: a simulation of scaling** (the shards "
        "share the cores and the memory bandwidth, so the ratio bounds the overhead of "
        f"sharding, not its speed-up). StronglyEntanglingLayers L={data['layers']}, "
        "`expval(Z0 Z(n-1))`, `jit(grad)` step; ratio = step / unsharded step (same n, method). "
        "Exchanges from the program's schedule (forward pass; the adjoint sweep replays them); "
        "traffic = bytes all devices send per layer. Regenerate with "
        "`python benchmarks/distributed.py --docs docs/benchmarks.md`.",
        "",
        "| n | method | shards | global qubits | exchanges / layer | traffic / layer | "
        "first call | step min (median) | step vs unsharded |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["n"], r["method"]): r["min"] for r in data["rows"] if r["shards"] == 1}
    for r in data["rows"]:
        ex = "-" if r["shards"] == 1 else f"{r['exchanges_per_layer']:.2f}"
        sent = "-" if r["shards"] == 1 else f"{r['sent_per_layer'] / 2**20:.0f} MiB"
        ratio = r["min"] / base[(r["n"], r["method"])] if (r["n"], r["method"]) in base else None
        lines.append(
            f"| {r['n']} | {r['method']} | {r['shards']} | {r['g']} | {ex} | {sent} | "
            f"{r['first']:.1f} s | {r['min']:.2f} s ({r['median']:.2f}) | "
            f"{'-' if ratio is None else f'{ratio:.2f}x'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", type=int, nargs="*", default=[20, 22])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--shards", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--methods", nargs="*", default=["adjoint"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="bench-results/distributed.json")
    parser.add_argument("--docs")
    parser.add_argument(
        "--render", action="store_true", help="only re-render --json into the docs (no runs)"
    )
    args = parser.parse_args(argv)
    if len(jax.devices()) < max(args.shards):
        parser.error(
            f"{max(args.shards)} shards need as many devices, JAX sees {len(jax.devices())}: "
            "unset XLA_FLAGS or set --xla_force_host_platform_device_count"
        )
    data = load_or_measure(args.render, args.json, lambda: measure(args))
    publish(to_markdown(data), args.docs, SECTION)


if __name__ == "__main__":
    main()
