"""Per-pass bandwidth of the XLA executor's state-vector kernels against a numpy copy.

A state-vector gate is memory-bound: its floor is one read and one write of the state. This
script times each kernel of ``qjaxiface.executors.xla`` as ``passes`` applications inside one
``lax.fori_loop`` (so no output buffer is allocated per pass, as inside a compiled circuit) and
reports the bytes it moves (read + write of the state) per second, next to ``numpy.copyto`` of
the same bytes into a preallocated array, measured in the same process::

    python benchmarks/kernel_bandwidth.py --ns 20 22 --docs docs/benchmarks.md

``--docs`` replaces the "Kernel bandwidth" section of a Markdown page. Cells: minimum (median)
over ``--repeats``. Slab passes apply several wires' matrices in one pass: their per-wire time is
the pass time over the wires it covers.

On an accelerator (JAX's default backend is not the CPU) the reference is the device's own copy
bandwidth: ``s * c`` in the same loop, with ``c`` a traced 1 so that XLA cannot drop the pass.
The section is then "Kernel bandwidth on <card>", next to the CPU one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
from _sections import load_or_measure, publish, save

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pennylane as qml  # noqa: E402

from qjaxiface.executors.xla._compact import (  # noqa: E402
    GROUP,
    Region,
    _group_step,
    adjoint_region,
    permute,
    plan_regions,
)
from qjaxiface.executors.xla._gates import compile_gate  # noqa: E402
from qjaxiface.executors.xla._kernels import apply_gate  # noqa: E402

SECTION = "## Kernel bandwidth: state-vector passes against a numpy copy"
DEVICE_SECTION = "## Kernel bandwidth on {card}: state-vector passes against a JAX copy"


def heading(machine: dict) -> str:
    """The section a table of ``machine`` goes under: the CPU's, or one per accelerator."""
    if machine.get("platform", "cpu") == "cpu":
        return SECTION
    return DEVICE_SECTION.format(card=machine["device_kind"])


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # compile
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _looped(body: Callable, passes: int) -> Callable:
    # The trip count is a runtime value, so that no compiler unrolls the loop and fuses passes.
    looped = jax.jit(lambda s, x, k: jax.lax.fori_loop(0, k, lambda i, s: body(s, x), s))
    return lambda s, x: looped(s, x, jnp.asarray(passes))


def _unitaries(rng, count: int, dim: int = 2) -> np.ndarray:
    z = rng.normal(size=(count, dim, dim)) + 1j * rng.normal(size=(count, dim, dim))
    return np.linalg.qr(z)[0]


def _ring_region(n: int) -> Region:
    ops = [qml.RY(0.1, w) for w in range(n)] + [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    ops = ops * 2
    gates = [compile_gate(op, {w: w for w in range(n)}) for op in ops]
    (region,) = [x for x in plan_regions(gates, n) if isinstance(x, Region)]
    return region


def kernels(n: int, dtype, rng) -> dict[str, tuple[Callable, object, object, int]]:
    """name -> (body(state, x), state, x, wires per pass)."""
    # Drawn where it lives: at n=28 a host-side draw and transfer takes longer than the passes.
    state = jax.random.normal(jax.random.key(int(rng.integers(2**31))), (2**n,), dtype)
    state = state / jnp.linalg.norm(state)
    wire_map = {w: w for w in range(n)}
    out: dict[str, tuple[Callable, object, object, int]] = {}
    u = jnp.asarray(_unitaries(rng, GROUP), dtype)
    for w in (0, n // 2, n - 1):
        gate = compile_gate(qml.QubitUnitary(np.eye(2), wires=w), wire_map)
        out[f"1-qubit gate, contraction, wire {w}"] = (
            lambda s, m, g=gate: apply_gate(s, g, (), value=m),
            state,
            u[0],
            1,
        )
        out[f"1-qubit gate, elementwise, wire {w}"] = (
            lambda s, m, g=gate: apply_gate(s, g, (), value=m, elementwise=True),
            state,
            u[0],
            1,
        )
    out["slab pass, 1 wire"] = (lambda s, m: _group_step(s, m[:1]), state, u, 1)
    out[f"slab pass, {GROUP} wires (fused)"] = (lambda s, m: _group_step(s, m), state, u, GROUP)
    rz = compile_gate(qml.RZ(0.3, wires=n // 2), wire_map)
    out["diagonal gate (RZ)"] = (
        lambda s, d: apply_gate(s, rz, (), value=d),
        state,
        jnp.asarray([np.exp(-0.15j), np.exp(0.15j)], dtype),
        1,
    )
    cnot = compile_gate(qml.CNOT([0, n - 1]), wire_map)
    out["CNOT gate"] = (lambda s, _: apply_gate(s, cnot, ()), state, None, 1)
    region = _ring_region(n)
    hi, lo = (jnp.asarray(t[0]) for t in region.src)
    out["CNOT ring (one gather)"] = (lambda s, t: permute(s, *t), state, (hi, lo), 1)
    mats = jnp.asarray(_unitaries(rng, 2 * n).reshape(2, n, 2, 2), dtype)

    def sweep(s, m, region=region):
        ket, bras, _ = adjoint_region(s, s[None], region, m)
        return ket + 0 * bras[0]

    out["adjoint sweep, per wire (ket + bra + transition)"] = (sweep, state, mats, 2 * n)
    return out


def measure(args) -> dict:
    rows = []
    head = {"machine": _machine(), "passes": args.passes, "repeats": args.repeats}
    rng = np.random.default_rng(0)
    for n in args.ns:
        for dtype in (jnp.complex128, jnp.complex64):
            nbytes = 2 * 2**n * jnp.dtype(dtype).itemsize
            name, copy = _copy(n, dtype, args)
            rows.append({**_row(n, dtype, name, copy, 1, nbytes), "reference": True})
            copy_bw = rows[-1]["gbps"]
            if jax.default_backend() != "cpu":
                # The same pass as its own call, into a new buffer: whether the loop costs.
                ts = _one_call_copy(n, dtype, args)
                rows.append(_row(n, dtype, "JAX copy, s * c, one call per pass", ts, 1, nbytes))
                print(_line(rows[-1], copy_bw), flush=True)
            for name, (body, state, x, wires) in kernels(n, dtype, rng).items():
                f = _looped(body, args.passes)
                ts = _timed(lambda f=f, s=state, x=x: jax.block_until_ready(f(s, x)), args.repeats)
                per_pass = [t / args.passes for t in ts]
                if name.startswith("adjoint"):
                    per_pass = [t / wires for t in per_pass]  # one sweep: 2 layers of n wires
                    wires = 1
                rows.append(_row(n, dtype, name, per_pass, wires, nbytes))
                print(_line(rows[-1], copy_bw), flush=True)
            # Saved as it goes: a run cut short by a device lease keeps what it measured.
            save(args.json, {**head, "rows": rows})
    return {**head, "rows": rows}


def _copy(n: int, dtype, args) -> tuple[str, list[float]]:
    """The reference pass and its times: a numpy copy on the CPU, a JAX pass on a device."""
    if jax.default_backend() == "cpu":
        src = np.ones(2**n, dtype=dtype)
        dst = np.empty_like(src)
        return "numpy copy (reference)", _timed(lambda: np.copyto(dst, src), args.repeats * 3)
    f = _looped(lambda s, c: s * c, args.passes)
    state, one = jnp.ones(2**n, dtype), jnp.asarray(1, dtype)
    ts = _timed(lambda: jax.block_until_ready(f(state, one)), args.repeats * 3)
    return "JAX copy, s * c (reference)", [t / args.passes for t in ts]


def _one_call_copy(n: int, dtype, args) -> list[float]:
    f = jax.jit(lambda s, c: s * c)
    state, one = jnp.ones(2**n, dtype), jnp.asarray(1, dtype)
    return _timed(lambda: jax.block_until_ready(f(state, one)), args.repeats * 3)


def _row(n: int, dtype, kernel: str, seconds: list[float], wires: int, nbytes: int) -> dict:
    """One table row: ``seconds`` per pass, ``nbytes`` moved per pass."""
    return {
        "n": n,
        "dtype": jnp.dtype(dtype).name,
        "kernel": kernel,
        "wires": wires,
        "seconds": seconds,
        "gbps": nbytes / min(seconds) / 1e9,
    }


def _machine() -> dict:
    device = jax.devices()[0]
    return {
        "cpu": f"{os.cpu_count()}-core CPU ({platform.machine()})",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "platform": device.platform,
        "device_kind": device.device_kind,
    }


def _line(row: dict, copy_bw: float) -> str:
    ms = [t * 1e3 for t in row["seconds"]]
    per_wire = min(ms) / row["wires"]
    copy_ms = 2 * 2 ** row["n"] * _itemsize(row["dtype"]) / copy_bw / 1e6
    return (
        f"| {row['n']} | {row['dtype']} | {row['kernel']} | {min(ms):.2f} "
        f"({statistics.median(ms):.2f}) | {per_wire:.2f} | {row['gbps']:.1f} | "
        f"{row['gbps'] / copy_bw:.0%} | {per_wire / copy_ms:.2f} |"
    )


def _itemsize(dtype: str) -> int:
    return 16 if dtype == "complex128" else 8


def to_markdown(data: dict) -> str:
    m = data["machine"]
    if m.get("platform", "cpu") == "cpu":
        reference = "`numpy.copyto` of the same bytes into a preallocated array"
    else:
        reference = "`s * c` (`c` a traced 1) in the same loop on the same device"
    lines = [
        heading(m),
        "",
        f"Generated by `python benchmarks/kernel_bandwidth.py`. Machine: {m['cpu']}, Python "
        f"{m['python']}, JAX {m['jax']}, devices {m['devices']}. Each kernel runs "
        f"{data['passes']} times in one `lax.fori_loop` (no buffer allocated per pass, as inside "
        "a compiled circuit); ms per pass is the minimum (median) over "
        f"{data['repeats']} repeats. GB/s counts one read and one write of the state per pass; "
        f"*of copy* is that over {reference}, "
        "measured in the same process. A slab pass applies the matrices of several wires at "
        "once, so its time per wire is what a circuit pays; *wire / copy* is that time over the "
        "copy's (lower is better). The adjoint sweep row is per wire of a slab: un-apply from "
        "the ket and one bra and take the transition matrices.",
        "",
        "| n | dtype | kernel | ms per pass | ms per wire | GB/s | of copy | wire / copy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    copy_bw = 0.0
    for row in data["rows"]:
        if row.get("reference") or row["kernel"].startswith("numpy copy"):
            copy_bw = row["gbps"]
        lines.append(_line(row, copy_bw))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", type=int, nargs="*", default=[20, 22])
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="bench-results/kernel_bandwidth.json")
    parser.add_argument("--docs")
    parser.add_argument(
        "--render", action="store_true", help="only re-render --json into the docs (no runs)"
    )
    args = parser.parse_args(argv)
    data = load_or_measure(args.render, args.json, lambda: measure(args))
    publish(to_markdown(data), args.docs, heading(data["machine"]))


if __name__ == "__main__":
    main()
