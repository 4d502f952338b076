"""Benchmarks: the XLA executor against PennyLane's built-in JAX paths on default.qubit.

Run as ``python benchmarks/bench_xla.py [--quick] [--out DIR]`` or ``qjaxiface bench``
(which calls :func:`run`). Everything runs in one process, CPU, x64.

* **Gradient step**: ``jax.jit(jax.grad(f))`` of StronglyEntanglingLayers (L=3) with
  ``qml.expval(qml.Z(0))`` for n = 4, 8, 12, 16 (quick: 4, 6) and diff methods backprop,
  adjoint, parameter-shift; PennyLane's own QNode vs. the same QNode with
  ``qjaxiface.installed(executor="xla")``. Reports the first call (trace + compile + run) and the
  steady time (minimum over repeats, ``jax.block_until_ready``).
* **Depth sweep**: first-call time of the XLA executor at n = 8 for L = 1..20 layers (quick:
  n = 4, L = 1, 2).

Writes ``results.json``, ``results.md``, ``qubits.png`` (first call and steady time vs. qubits,
XLA executor vs. PennyLane) and ``depth_sweep.png`` into the output folder; ``--docs PATH`` also
writes the page ``docs/benchmarks.md`` (the tables and plots, with the machine they ran on).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

jax.config.update("jax_enable_x64", True)

METHODS = ("backprop", "adjoint", "parameter-shift")
# Catalyst 0.15 qjit steady times (ms) of the same jit(grad) step, measured once on the same
# 2-core CPU machine (Catalyst pins jax 0.7.1, so it needs its own venv); a fixed reference, not
# rerun here.
CATALYST_MS = {
    ("adjoint", 4): 0.65,
    ("adjoint", 8): 0.73,
    ("adjoint", 12): 2.7,
    ("parameter-shift", 4): 4.7,
    ("parameter-shift", 8): 11.1,
    ("parameter-shift", 12): 44.6,
}
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
    """jit(grad) of the QNode routed to the XLA executor.

    Routing happens while tracing, so only the first call (trace + compile) runs inside
    ``qjaxiface.installed``; later calls hit jit's cache of that compiled program, and the
    steady time does not include installing and uninstalling the hook.
    """
    import qjaxiface

    g = jax.jit(jax.grad(_qnode(n, method)))
    traced = []

    def step(w):
        if traced:
            return g(w)
        traced.append(True)
        with qjaxiface.installed(executor="xla"):
            return g(w)

    return step


def bench_gradient(ns, repeats: int, log, done: Callable[[], None] = lambda: None) -> list[dict]:
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
                    try:
                        row["pl_first"], row["pl_steady"] = _time(step, w, reps)
                    except (AttributeError, ImportError) as err:
                        # PennyLane 0.45's own boundary calls jax.core names that jax 0.12
                        # removed (docs/compatibility.md): no reference on such a JAX.
                        log(f"PennyLane's boundary failed on jax {jax.__version__}: {err}")
                        row["pl_first"] = row["pl_steady"] = None
                log(_fmt_row(row))
                rows.append(row)
                done()
    finally:
        logger.removeHandler(route)
        logger.setLevel(old_level)
    return rows


def bench_depth(n: int, layer_list, log, done: Callable[[], None] = lambda: None) -> list[dict]:
    rows = []
    for layers in layer_list:
        w = _weights(layers, n)
        row = {"n": n, "layers": layers}
        for method in METHODS:
            row[method], _ = _time(_xla_step(n, layers, method), w, 0)
        log(f"depth n={n} L={layers}: " + ", ".join(f"{m} {row[m]:.2f}s" for m in METHODS))
        rows.append(row)
        done()
    return rows


def _ms(x):
    return "-" if x is None else f"{x * 1e3:.2f}"


def _s(x):
    return "-" if x is None else f"{x:.2f}"


def _ratio(a, b):
    if a is None or b is None:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


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
    steady = {(r["method"], r["n"]): r["xla_steady"] for r in grad_rows}
    lines = [
        f"Machine: {info['cores']}-core CPU ({info['cpu']}), Python {info['python']}, "
        f"JAX {info['jax']}, PennyLane {info['pennylane']}, x64, JAX devices {info['devices']}.",
        "",
        "### `jax.jit(jax.grad(qnode))`, StronglyEntanglingLayers L=3, `expval(Z(0))`",
        "",
        "Steady = minimum over repeats after the first call; first call = trace + compile + run. "
        "*vs PennyLane* is PennyLane's steady time over qjaxiface's (higher is better); "
        "*vs backprop* is the method's steady time over backprop's on the XLA executor; "
        "*vs Catalyst* is qjaxiface's steady time over a fixed Catalyst 0.15 `qjit` reference "
        "measured once on the same machine (`CATALYST_MS` in benchmarks/bench_xla.py; lower is "
        "better).",
        "",
        "| n | diff method | qjaxiface first call (s) | qjaxiface steady (ms) "
        "| PennyLane first call (s) | PennyLane steady (ms) | vs PennyLane | vs backprop "
        "| vs Catalyst |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in grad_rows:
        bp = steady.get(("backprop", r["n"]))
        cat = CATALYST_MS.get((r["method"], r["n"]))
        lines.append(
            f"| {r['n']} | {r['method']} | {r['xla_first']:.2f} | {r['xla_steady'] * 1e3:.3f} | "
            f"{_s(r['pl_first'])} | {_ms(r['pl_steady'])} | "
            f"{_ratio(r['pl_steady'], r['xla_steady'])} | "
            f"{_ratio(r['xla_steady'], bp) if r['method'] != 'backprop' else '-'} | "
            f"{_ratio(r['xla_steady'] * 1e3, cat) if cat else '-'} |"
        )
    if depth_rows:
        n = depth_rows[0]["n"]
        lines += [
            "",
            f"### First call (trace + compile + run) of the XLA executor vs. depth, n={n}",
            "",
            "| layers | parameters | " + " | ".join(f"{m} (s)" for m in METHODS) + " |",
            "|---" * (len(METHODS) + 2) + "|",
        ]
        for r in depth_rows:
            lines.append(
                f"| {r['layers']} | {3 * n * r['layers']} | "
                + " | ".join(f"{r[m]:.2f}" for m in METHODS)
                + " |"
            )
    return "\n".join(lines) + "\n"


def plot_qubits(grad_rows, path: Path) -> bool:
    """First-call and steady time vs. qubits, qjaxiface (solid) vs. PennyLane (dashed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, unit, scale in (
        (axes[0], "first", "s", 1.0),
        (axes[1], "steady", "ms", 1e3),
    ):
        for i, m in enumerate(METHODS):
            rows = [r for r in grad_rows if r["method"] == m]
            color = f"C{i}"
            ax.plot(
                [r["n"] for r in rows],
                [r[f"xla_{key}"] * scale for r in rows],
                marker="o",
                color=color,
                label=f"qjaxiface {m}",
            )
            pl = [(r["n"], r[f"pl_{key}"]) for r in rows if r[f"pl_{key}"] is not None]
            if pl:
                ax.plot(
                    [n for n, _ in pl],
                    [v * scale for _, v in pl],
                    marker="x",
                    linestyle="--",
                    color=color,
                    label=f"PennyLane {m}",
                )
        ax.set_yscale("log")
        ax.set_xlabel("qubits (StronglyEntanglingLayers, L=3)")
        ax.set_ylabel(f"{key} time of jit(grad) ({unit})")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("first call (trace + compile + run)")
    axes[1].set_title("steady state")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def docs_page(markdown: str, machine_info: dict, image_dir: str) -> str:
    """The docs/benchmarks.md page around the generated tables."""
    return (
        "# Benchmarks\n\n"
        "Generated by `python benchmarks/bench_xla.py --docs docs/benchmarks.md` (the same code "
        "as `qjaxiface bench`): PennyLane's built-in JAX boundary and qjaxiface's XLA executor on "
        "the same QNode, side by side in one process. PennyLane's parameter-shift and adjoint "
        "paths under `jit` are host callbacks; its backprop is traced. PennyLane's rows marked "
        "`-` were skipped because one step takes minutes. See the "
        "[performance guide](performance.md) for how to get these paths in your code. First "
        "calls against Catalyst and against depth, each in a fresh process, are in the "
        "compile-time section (`benchmarks/compile_time.py`).\n\n"
        f"{markdown}\n"
        f"![first call and steady time vs qubits]({image_dir}/qubits.png)\n"
    )


COMPILE_SECTION = "## Compile time: first calls against Catalyst"


def keep_compile_section(page: str, old: str) -> str:
    """``page`` followed by ``old``'s compile-time section (written by compile_time.py)."""
    if COMPILE_SECTION not in old:
        return page
    return page.rstrip() + "\n\n" + COMPILE_SECTION + old.split(COMPILE_SECTION, 1)[1]


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


#: --quick: what a new user can wait for (about a minute on 2 CPU cores, imports included).
QUICK = {"ns": (4, 6), "repeats": 3, "depth_n": 4, "layers": (1, 2)}
FULL = {"ns": (4, 8, 12, 16), "repeats": 5, "depth_n": 8, "layers": (1, 2, 4, 6, 8, 10, 12, 15, 20)}


class _Progress:
    """A tqdm bar over the benchmark cases when tqdm is installed, else one line per case."""

    def __init__(self, total: int):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self._bar = tqdm(total=total, desc="qjaxiface bench", unit="case") if tqdm else None
        self._total, self._count = total, 0

    def log(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def done(self) -> None:
        self._count += 1
        if self._bar is not None:
            self._bar.update()
        else:
            print(f"[{self._count}/{self._total}]", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run(quick: bool = False, out_dir: str | Path = "bench-results", docs: str | None = None):
    """Run the benchmarks, print the table, and write results and plots to ``out_dir``.

    Args:
        quick: n = 4, 6 and a two-point depth sweep (about a minute on 2 CPU cores) instead of
            n = 4 to 16 and a depth sweep to 20 layers (about 15 minutes).
        out_dir: folder for the results.
        docs: also write this Markdown page (e.g. ``docs/benchmarks.md``), with its plots copied
            into an ``img/`` folder beside it.

    Returns:
        int: 0 (the exit status of ``qjaxiface bench``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = QUICK if quick else FULL
    progress = _Progress(len(size["ns"]) * len(METHODS) + len(size["layers"]))
    try:
        grad_rows = bench_gradient(size["ns"], size["repeats"], progress.log, progress.done)
        depth_rows = bench_depth(size["depth_n"], size["layers"], progress.log, progress.done)
    finally:
        progress.close()
    info = machine()
    markdown = to_markdown(grad_rows, depth_rows, info)
    written = [out / "results.json", out / "results.md"]
    written[0].write_text(
        json.dumps({"machine": info, "gradient": grad_rows, "depth": depth_rows}, indent=1)
    )
    written[1].write_text(markdown)
    for plot, name in ((plot_qubits, "qubits.png"), (plot_depth, "depth_sweep.png")):
        if plot(grad_rows if name == "qubits.png" else depth_rows, out / name):
            written.append(out / name)
    if docs:
        page = Path(docs)
        img = page.parent / "img"
        img.mkdir(parents=True, exist_ok=True)
        if (out / "qubits.png").exists():
            shutil.copyfile(out / "qubits.png", img / "qubits.png")
        # The page's depth numbers come from compile_time.py (fresh processes, with Catalyst).
        old = page.read_text() if page.exists() else ""
        page.write_text(
            keep_compile_section(docs_page(to_markdown(grad_rows, [], info), info, "img"), old)
        )
        written.append(page)
    print()
    print(markdown)
    print("wrote:")
    for path in written:
        print(f"  {path.resolve()}")
    return 0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="bench-results")
    parser.add_argument(
        "--docs", default=None, help="also write this page, e.g. docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    raise SystemExit(run(args.quick, args.out, args.docs))


if __name__ == "__main__":
    main()
