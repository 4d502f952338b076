"""Steady ``jit(grad)`` steps over qubit counts: qjaxiface's XLA executor against its peers.

Every measurement runs in a fresh Python process; the tools alternate case by case, so a change
in machine load hits all of them. The circuit is StronglyEntanglingLayers(n, L) with
``expval(Z(0))``, x64:

* **qjaxiface**: default.qubit through ``qjaxiface.install()``, ``jax.jit(jax.grad(qnode))``,
  adjoint (also in single precision), backprop while it fits in memory, parameter-shift while
  a step stays under ``--max-step`` seconds;
* **lightning**: lightning.qubit adjoint through PennyLane's own JAX boundary (qjaxiface not
  installed);
* **Catalyst**: Catalyst 0.15 ``qjit(grad(qnode))`` on lightning.qubit adjoint, from its own
  venv (it pins jax 0.7.1): ``--catalyst-python``;
* **TensorCircuit-NG**: the same gates (Rot = RZ RY RZ, the CNOT ranges of the template) with
  the jax backend and a cotengra hyper-optimized contraction of ``<psi|Z0|psi>``, from a venv
  with ``tensorcircuit-ng`` and ``cotengra``: ``--tc-python``.

::

    python benchmarks/qubit_sweep.py --catalyst-python /tmp/cat/bin/python \\
        --tc-python /tmp/tc/bin/python --docs docs/benchmarks.md

A tool is skipped at a size where its step, extrapolated from the previous size (x2 per qubit),
would exceed ``--max-step`` seconds, or its peak memory would exceed ``--max-gb`` (x2 per qubit
for backprop, a few states more for adjoint methods, TensorCircuit-NG's measured growth). ``--tools tcng --merge`` re-measures
some tools and merges their cells into the saved results. ``--docs``
replaces the "Qubit sweep" section of a Markdown page and writes docs/img/qubit_sweep.png.

On an accelerator (JAX's default backend is not the CPU), run ``--tools qjaxiface``: the cells
record the device's peak memory, ``--max-gb`` bounds that instead of the host's, and the table
goes to its own section ("Qubit sweep on <card>") and plot. The results file is rewritten after
every cell, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import time
from pathlib import Path

from _circuits import catalyst_sel_step
from _sections import load_or_measure, publish, save

SECTION = "## Qubit sweep: steady steps against lightning.qubit, Catalyst and TensorCircuit-NG"
DEVICE_SECTION = "## Qubit sweep on {card}: steady steps"
# (tool, method, precision): the columns of the table, in order.
COLUMNS = (
    ("qjaxiface", "adjoint", "double"),
    ("qjaxiface", "adjoint", "single"),
    ("qjaxiface", "backprop", "double"),
    ("qjaxiface", "parameter-shift", "double"),
    ("lightning", "adjoint", "double"),
    ("catalyst", "adjoint", "double"),
    ("tcng", "backprop", "double"),
)


# --------------------------------------------------------------------------- workers


def _weights(n: int, layers: int):
    import jax.numpy as jnp
    import numpy as np

    return jnp.asarray(np.random.default_rng(0).uniform(0, 2 * np.pi, (layers, n, 3)))


def _time(step, w) -> dict:
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(step(w))
    first = time.perf_counter() - t0
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 and (len(times) < 2 or time.perf_counter() - start < 10.0):
        t = time.perf_counter()
        jax.block_until_ready(step(w))
        times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    out = {"first": first, "steady": min(times), "steady_all": times, "rss_gb": rss}
    device = jax.devices()[0]
    if device.platform != "cpu":
        out["device_gb"] = (device.memory_stats() or {}).get("peak_bytes_in_use", 0) / 1e9
    return out


STATES_ADJOINT = 8  # complex128 states an adjoint step may hold (measured: 4-5 for ours)


def _work_pennylane(tool: str, n: int, layers: int, method: str, precision: str) -> dict:
    import jax
    import pennylane as qml

    jax.config.update("jax_enable_x64", True)
    if tool == "qjaxiface":
        import qjaxiface
        from qjaxiface.executors.xla import set_precision

        qjaxiface.install(executor="xla")
        set_precision(precision)
        device = qml.device("default.qubit", wires=n)
    else:
        device = qml.device("lightning.qubit", wires=n)

    @qml.qnode(device, interface="jax", diff_method=method)
    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    return _time(jax.jit(jax.grad(circuit)), _weights(n, layers))


def _work_catalyst(n: int, layers: int) -> dict:
    return _time(catalyst_sel_step(n, layers, "adjoint"), _weights(n, layers))


def _work_tcng(n: int, layers: int) -> dict:
    import cotengra as ctg
    import jax
    import tensorcircuit as tc

    jax.config.update("jax_enable_x64", True)
    tc.set_backend("jax")
    tc.set_dtype("complex128")
    methods = ["greedy"]
    try:
        import kahypar  # noqa: F401

        methods.append("kahypar")
    except ImportError:
        pass
    optimizer = ctg.ReusableHyperOptimizer(
        methods=methods,
        parallel=False,
        minimize="combo",
        max_time=30,
        max_repeats=64,
        progbar=False,
    )
    tc.set_contractor("custom", optimizer=optimizer, preprocessing=True)

    def energy(w):
        c = tc.Circuit(n)
        for layer in range(layers):
            for i in range(n):  # Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)
                c.rz(i, theta=w[layer, i, 0])
                c.ry(i, theta=w[layer, i, 1])
                c.rz(i, theta=w[layer, i, 2])
            r = layer % (n - 1) + 1  # StronglyEntanglingLayers' default ranges
            for i in range(n):
                c.cnot(i, (i + r) % n)
        return tc.backend.real(c.expectation_ps(z=[0]))

    return _time(jax.jit(jax.grad(energy)), _weights(n, layers))


# --------------------------------------------------------------------------- orchestration


def _spawn(python: str, col: tuple, n: int, layers: int, timeout: float) -> dict:
    tool, method, precision = col
    cmd = [python, __file__, "--worker", tool, "--method", method, "--precision", precision]
    cmd += ["--n", str(n), "--layers", str(layers)]
    # Its own session, so that a timeout ends the worker's helpers too (cotengra's pool
    # outlived a timed-out TensorCircuit-NG worker).
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(stdout.strip().splitlines()[-1])


def _python_for(args, tool: str) -> str | None:
    if tool == "catalyst":
        return args.catalyst_python
    if tool == "tcng":
        return args.tc_python
    return args.python


def _too_big(col, n: int, last: dict | None, args, before: dict | None = None) -> str | None:
    """Why ``col`` is skipped at ``n`` (None: run it), from its results at smaller sizes.

    Time doubles per qubit. Memory: backprop keeps states per gate, so its peak doubles per
    qubit too; an adjoint method holds a few states on top of the runtime, so the peak grows
    by ``STATES_ADJOINT`` states (doubling a small-n peak, mostly the runtime's, would skip
    sizes that fit). A tensor network's memory follows its contraction width: TensorCircuit-NG's
    grows as measured between its last two sizes (``before``, then ``last``), at least 1.2x
    per qubit (1.41x from a single size).
    """
    if col[1] == "parameter-shift" and n > args.max_shift_n:
        return f"parameter-shift above n={args.max_shift_n}"
    if last is None:
        return None
    if "error" in last:
        return "failed at a smaller size"
    grow = 2.0 ** (n - last["n"])
    if last["steady"] * grow > args.max_step:
        return f"step would take about {last['steady'] * grow:.0f} s"
    peak = last.get("device_gb", last["rss_gb"])
    if col[0] == "tcng":
        per_qubit = 2.0**0.5  # until two sizes are measured
        if before is not None and "rss_gb" in before:
            per_qubit = (last["rss_gb"] / before["rss_gb"]) ** (1 / (last["n"] - before["n"]))
            per_qubit = min(2.0, max(1.2, per_qubit))
        need = last["rss_gb"] * per_qubit ** (n - last["n"])
    elif col[1] == "backprop":
        need = peak * grow
    else:
        state_gb = 16 * 2.0**n / 1e9
        need = peak + STATES_ADJOINT * state_gb * (1 - 1 / grow)
    if need > args.max_gb:
        return f"would need about {need:.0f} GB"
    return None


def measure(args, previous: dict | None = None) -> dict:
    """Every cell of the sweep; with ``previous`` (``--merge``), the cells measured so far are
    saved merged into it, so that a run cut short loses none of the old ones."""
    rows = []
    machine = _machine(args)
    for layers in args.layers:
        last: dict[tuple, dict] = {}
        before: dict[tuple, dict] = {}
        for n in args.ns:
            row = {"n": n, "layers": layers, "results": {}}
            for col in COLUMNS:
                python = _python_for(args, col[0])
                name = "/".join(col)
                wanted = not args.tools or col[0] in args.tools or name in args.tools
                if python is None or not wanted:
                    continue
                reason = _too_big(col, n, last.get(col), args, before.get(col))
                if reason:
                    row["results"][name] = {"skipped": reason}
                else:
                    result = _spawn(python, col, n, layers, args.timeout)
                    result["n"] = n
                    if col in last:
                        before[col] = last[col]
                    row["results"][name] = last[col] = result
                print(f"n={n} L={layers} {name}: {row['results'][name]}", flush=True)
                partial = {"machine": machine, "rows": [*rows, row]}
                save(args.json, merged(previous, partial) if previous else partial)
            rows.append(row)
    return {"machine": machine, "rows": rows}


def merged(old: dict, new: dict) -> dict:
    """``old`` with the cells ``new`` measured replaced (``--merge``: re-run some tools)."""
    rows = {(r["n"], r["layers"]): r for r in old["rows"]}
    for row in new["rows"]:
        key = (row["n"], row["layers"])
        if key in rows:
            rows[key]["results"].update(row["results"])
        else:
            rows[key] = row
    order = sorted(rows, key=lambda k: (k[1], k[0]))
    return {"machine": old["machine"], "rows": [rows[k] for k in order]}


def _machine(args) -> dict:
    # A subprocess, so that this process leaves the accelerator's memory to the workers.
    probe = (
        "import jax, json; d = jax.devices()[0]; print(json.dumps([jax.__version__, "
        "[str(x) for x in jax.devices()], d.platform, d.device_kind]))"
    )
    out = subprocess.run([args.python, "-c", probe], capture_output=True, text=True, check=True)
    version, devices, kind_of_platform, kind = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "cpu": f"{os.cpu_count()}-core CPU ({platform.machine()})",
        "python": platform.python_version(),
        "jax": version,
        "devices": devices,
        "platform": kind_of_platform,
        "device_kind": kind,
    }


def _on_device(data: dict) -> bool:
    return data["machine"].get("platform", "cpu") != "cpu"


def heading(data: dict) -> str:
    """The section a table goes under: the CPU's, or one per accelerator."""
    if not _on_device(data):
        return SECTION
    return DEVICE_SECTION.format(card=data["machine"]["device_kind"])


def plot_name(data: dict) -> str:
    return "qubit_sweep_gpu.png" if _on_device(data) else "qubit_sweep.png"


# --------------------------------------------------------------------------- report


def _cell(result: dict | None) -> str:
    if not result:
        return "-"
    if "steady" not in result:
        return "skipped" if "skipped" in result else "failed"
    return f"{result['steady']:.3g}"


def to_markdown(data: dict) -> str:
    m = data["machine"]
    device = _on_device(data)
    # On an accelerator only qjaxiface runs: the CPU peers' columns would stay empty.
    columns = [c for c in COLUMNS if c[0] == "qjaxiface"] if device else list(COLUMNS)
    peers = () if device else ("lightning", "catalyst", "tcng")
    memory = "device" if device else "rss"
    head = ["n", "L"] + ["/".join(c) for c in columns] + ["ours adj. first call (s)"]
    head += ["ours adj. peak device memory (GB)" if device else "ours adj. peak RSS (GB)"]
    head += [
        {"lightning": "lightning / ours", "catalyst": "Catalyst / ours"}.get(p, "TC-NG / ours")
        for p in peers
    ]
    text = (
        f"Generated by `python benchmarks/qubit_sweep.py`. Machine: {m['cpu']}, Python "
        f"{m['python']}, JAX {m['jax']}, devices {m['devices']}. Steady seconds per "
        "`jit(grad)` step (minimum over up to 5 steps) of StronglyEntanglingLayers(n, L), "
        "`expval(Z(0))`, x64, one fresh process per cell"
    )
    if device:
        text += (
            f", on the {m['device_kind']}; *single* runs the state in complex64. Peak device "
            "memory is the allocator's `peak_bytes_in_use`. `skipped`: extrapolated past the "
            "step or memory budget; `failed`: the worker failed or ran past `--timeout`."
        )
    else:
        text += (
            ", tools alternating. *X / ours*: the peer's step over qjaxiface's adjoint step "
            "(higher is better for qjaxiface). `skipped`: extrapolated past the step or memory "
            "budget; `failed`: the worker failed or ran past `--timeout` (TensorCircuit-NG at "
            "L=20: its first call, contraction search and compile, did not finish in 30 minutes)."
        )
    lines = [heading(data), "", text, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in data["rows"]:
        res = row["results"]
        ours = res.get("qjaxiface/adjoint/double", {})
        cells = [str(row["n"]), str(row["layers"])]
        cells += [_cell(res.get("/".join(c))) for c in columns]
        cells += [f"{ours['first']:.1f}" if "first" in ours else "-"]
        peak = ours.get(f"{memory}_gb")
        cells += [f"{peak:.2f}" if peak is not None else "-"]
        for peer in peers:
            other = res.get(
                {"tcng": "tcng/backprop/double"}.get(peer, f"{peer}/adjoint/double"), {}
            )
            ok = "steady" in other and "steady" in ours
            cells.append(f"{other['steady'] / ours['steady']:.2f}x" if ok else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"![steady step vs qubits](img/{plot_name(data)})"]
    return "\n".join(lines) + "\n"


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sorted({r["layers"] for r in data["rows"]})
    fig, axes = plt.subplots(1, len(layers), figsize=(6 * len(layers), 4.5), squeeze=False)
    for ax, L in zip(axes[0], layers):
        rows = [r for r in data["rows"] if r["layers"] == L]
        for col in COLUMNS:
            name = "/".join(col)
            pts = [
                (r["n"], r["results"][name]["steady"])
                for r in rows
                if "steady" in r["results"].get(name, {})
            ]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("qubits")
        ax.set_ylabel("steady jit(grad) step (s)")
        ax.set_title(f"StronglyEntanglingLayers, L={L}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("qjaxiface", "lightning", "catalyst", "tcng"))
    parser.add_argument("--method", default="adjoint")
    parser.add_argument("--precision", default="double")
    parser.add_argument("--n", type=int)
    parser.add_argument("--layers", type=int, nargs="*", default=[3, 20])
    parser.add_argument("--ns", type=int, nargs="*", default=[12, 16, 20, 22, 24, 26])
    parser.add_argument("--python", default=sys.executable, help="python with qjaxiface")
    parser.add_argument("--catalyst-python", help="python of a venv with Catalyst 0.15")
    parser.add_argument("--tc-python", help="python of a venv with tensorcircuit-ng, cotengra")
    parser.add_argument("--max-step", type=float, default=60.0)
    parser.add_argument("--max-gb", type=float, default=16.0)
    parser.add_argument("--max-shift-n", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", default="bench-results/qubit_sweep.json")
    parser.add_argument("--docs")
    parser.add_argument("--render", action="store_true", help="only re-render --json")
    parser.add_argument(
        "--tools",
        nargs="*",
        help="measure only these tools or columns, e.g. tcng, qjaxiface/adjoint/double",
    )
    parser.add_argument(
        "--merge", action="store_true", help="put the new cells into the results in --json"
    )
    args = parser.parse_args(argv)
    if args.worker:
        layers = args.layers[0]
        if args.worker == "catalyst":
            result = _work_catalyst(args.n, layers)
        elif args.worker == "tcng":
            result = _work_tcng(args.n, layers)
        else:
            result = _work_pennylane(args.worker, args.n, layers, args.method, args.precision)
        print(json.dumps(result))
        return
    if args.merge:
        previous = json.loads(Path(args.json).read_text())
        data = load_or_measure(False, args.json, lambda: merged(previous, measure(args, previous)))
    else:
        data = load_or_measure(args.render, args.json, lambda: measure(args))
    page = publish(to_markdown(data), args.docs, heading(data))
    if page is not None:
        plot(data, page.parent / "img" / plot_name(data))


if __name__ == "__main__":
    main()
