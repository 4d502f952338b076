"""Soak test: a long jitted optax loop through qjaxiface, checking retracing and memory.

Runs ``--steps`` Adam steps of a 2-qubit, 4-parameter circuit (parameter-shift) on each path:

* ``callback``: lightning.qubit, reached through ``jax.pure_callback`` (host device);
* ``callback-dq``: default.qubit with ``executor="device"`` (host callback as well);
* ``xla``: default.qubit with ``executor="auto"``: the XLA executor under jit, where available.

For each path it prints the number of traces of the step function (a Python side-effect counter
inside it: 1 means no retracing after the first step), the resident memory after warm-up and at
the end, the growth of the peak RSS after warm-up, the time per step after warm-up, the
executors the boundary reported, and the first and last loss.

    python benchmarks/soak.py                  # 10,000 steps on every path
    python benchmarks/soak.py --steps 1000 --paths xla
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time

import jax
import jax.numpy as jnp
import optax
import pennylane as qml

import qjaxiface

PATHS = {
    "callback": ("lightning.qubit", "device"),
    "callback-dq": ("default.qubit", "device"),
    "xla": ("default.qubit", "auto"),
}


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class _ExecutorLog(logging.Handler):
    """Collects the executors named in qjaxiface's boundary-entry records."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.executors: set[str] = set()

    def emit(self, record):
        if record.msg.startswith("boundary entry"):
            self.executors.add(str(record.args[2]))


def run_soak(path: str, steps: int, warmup: int | None = None, learning_rate: float = 0.05):
    """Run the loop on one path; returns a dict of figures."""
    device_name, executor = PATHS[path]
    dev = qml.device(device_name, wires=2)
    traces = {"count": 0}

    def cost(params):
        tape = qml.tape.QuantumScript(
            [
                qml.RY(params[0], 0),
                qml.RY(params[1], 1),
                qml.CNOT([0, 1]),
                qml.RX(params[2], 0),
                qml.RX(params[3], 1),
            ],
            [qml.expval(qml.Z(0) @ qml.Z(1))],
        )
        (res,) = qjaxiface.execute([tape], dev, diff_method="parameter-shift", executor=executor)
        return res

    optimizer = optax.adam(learning_rate)

    @jax.jit
    def step(params, opt_state):
        traces["count"] += 1  # runs only while JAX traces the function
        loss, grads = jax.value_and_grad(cost)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    warmup = warmup if warmup is not None else max(10, min(500, steps // 10))
    params = jnp.array([0.1, 0.2, 0.3, 0.4])
    opt_state = optimizer.init(params)

    log = logging.getLogger("qjaxiface")
    handler, level = _ExecutorLog(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        params, opt_state, loss = step(params, opt_state)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    first_loss = float(loss)
    for _ in range(warmup - 1):
        params, opt_state, loss = step(params, opt_state)
        loss.block_until_ready()

    rss_warm, peak_warm = current_rss_mb(), peak_rss_mb()
    start = time.perf_counter()
    for _ in range(steps - warmup):
        params, opt_state, loss = step(params, opt_state)
        loss.block_until_ready()
    elapsed = time.perf_counter() - start
    rss_end, peak_end = current_rss_mb(), peak_rss_mb()
    return {
        "path": path,
        "device": device_name,
        "executor_option": executor,
        "executors_used": sorted(handler.executors),
        "steps": steps,
        "warmup_steps": warmup,
        "traces": traces["count"],
        "rss_after_warmup_mb": round(rss_warm, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - rss_warm, 2),
        "peak_rss_growth_mb": round(peak_end - peak_warm, 2),
        "ms_per_step": round(1e3 * elapsed / max(1, steps - warmup), 4),
        "first_loss": round(first_loss, 6),
        "last_loss": round(float(loss), 6),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=list(PATHS))
    parser.add_argument("--json", action="store_true", help="print one JSON object per path")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    rows = [run_soak(p, args.steps, args.warmup) for p in args.paths]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return rows
    header = (
        f"{'path':<12} {'steps':>6} {'traces':>6} {'RSS warm':>9} {'RSS end':>8} "
        f"{'growth':>7} {'peak+':>7} {'ms/step':>8}  executors"
    )
    print(header)
    for r in rows:
        print(
            f"{r['path']:<12} {r['steps']:>6} {r['traces']:>6} {r['rss_after_warmup_mb']:>8}M "
            f"{r['rss_end_mb']:>7}M {r['rss_growth_mb']:>6}M {r['peak_rss_growth_mb']:>6}M "
            f"{r['ms_per_step']:>8}  {','.join(r['executors_used'])}"
            f"  (loss {r['first_loss']} -> {r['last_loss']})"
        )
    return rows


if __name__ == "__main__":
    main()
