"""Cases for test_distributed.py, run in a subprocess with 8 forced host devices.

Prints one JSON object: case name -> largest absolute difference from the reference (or a
measured quantity). Every reference is PennyLane's own default.qubit through ``qml.execute``
(qjaxiface not installed), or the unsharded XLA executor where the case says so.
"""

from __future__ import annotations

import json
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
from jax.sharding import Mesh

jax.config.update("jax_enable_x64", True)

import qjaxiface  # noqa: E402
from qjaxiface import _compat  # noqa: E402

N = 7  # 3 global qubits on 8 devices leave the MIN_LOCAL = 4 local ones
DEV = qml.device("default.qubit", wires=N)
results: dict[str, float] = {}


def mesh_of(d: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:d]), ("devices",))


def diff(a, b) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb), (a, b)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(la, lb))


def random_ops(params, seed: int) -> list:
    """Every kind of gate on random wires: with 3 of 7 qubits global, each lands on every
    global/local combination (targets, controls, diagonals) across seeds."""
    rng = np.random.default_rng(seed)
    makers = [
        lambda p, w: qml.RX(p, w[0]),
        lambda p, w: qml.RY(p, w[0]),
        lambda p, w: qml.RZ(p, w[0]),
        lambda p, w: qml.PhaseShift(p, w[0]),
        lambda p, w: qml.Hadamard(w[0]),
        lambda p, w: qml.PauliX(w[0]),
        lambda p, w: qml.CNOT(w[:2]),
        lambda p, w: qml.CZ(w[:2]),
        lambda p, w: qml.CRX(p, w[:2]),
        lambda p, w: qml.CRZ(p, w[:2]),
        lambda p, w: qml.ControlledPhaseShift(p, w[:2]),
        lambda p, w: qml.IsingXX(p, w[:2]),
        lambda p, w: qml.IsingZZ(p, w[:2]),
        lambda p, w: qml.SWAP(w[:2]),
        lambda p, w: qml.Toffoli(w),
        lambda p, w: qml.MultiRZ(p, w),
        lambda p, w: qml.CSWAP(w),
        lambda p, w: qml.PauliRot(p, "YXZ", w),
    ]
    ops = [qml.Hadamard(i) for i in range(N)]
    for k, p in enumerate(params):
        wires = [int(x) for x in rng.choice(N, 3, replace=False)]
        ops.append(makers[(k + seed) % len(makers)](p, wires))
    return ops


MEASUREMENTS = {
    "expval": lambda: qml.expval(qml.Z(0) @ qml.X(4)),
    "expval_global": lambda: qml.expval(qml.Y(1)),
    "hamiltonian_wide": lambda: qml.expval(
        qml.Hamiltonian(
            [0.4, -0.7, 0.2], [qml.Z(0) @ qml.Z(1) @ qml.Z(5), qml.X(6) @ qml.X(2), qml.Y(3)]
        )
    ),
    "var": lambda: qml.var(qml.X(2) @ qml.Z(6)),
    "probs": lambda: qml.probs(wires=[0, 4, 2]),
    "probs_obs": lambda: qml.probs(op=qml.X(1)),
    "density_matrix": lambda: qml.density_matrix(wires=[1, 5]),
    "state": lambda: qml.state(),
}
EXPVALS = ("expval", "expval_global", "hamiltonian_wide")


def run(params, names, diff_method, mesh, seed, executor="auto", probs_wires=None):
    """The results of one tape measuring ``names`` (a tuple, or one name)."""
    if isinstance(names, str):
        names = (names,)
    made = {"probs": lambda: qml.probs(wires=probs_wires)} if probs_wires else {}
    ms = [made.get(m, MEASUREMENTS[m])() for m in names]
    tape = qml.tape.QuantumScript(random_ops(params, seed), ms)
    if mesh is None and executor == "auto":
        return qml.execute([tape], DEV, diff_method=diff_method)[0]
    return qjaxiface.execute([tape], DEV, diff_method=diff_method, mesh=mesh, executor=executor)[0]


_SECTION = ["Values", time.perf_counter()]


def lap(name: str | None) -> None:
    """Start section ``name`` (None: the end), printing the seconds the last one took on
    stderr (the test prints them when a case fails)."""
    now = time.perf_counter()
    print(f"{_SECTION[0]}: {now - _SECTION[1]:.1f} s", file=sys.stderr)
    _SECTION[:] = [name, now]


def main() -> None:
    # PennyLane's own boundary (the references) calls jax.core names the newest JAX removed;
    # hold qjaxiface's shim for the whole run, as tests/conftest.py does for the test session.
    _compat.acquire_jax_core_shim()
    assert len(jax.devices()) == 8
    params = jnp.asarray(np.random.default_rng(7).normal(size=24))

    # Values of every measurement on 2, 4 and 8 shards, under jit (one tape measures all).
    every = tuple(MEASUREMENTS)
    for d, seed in ((2, 0), (4, 1), (8, 0), (8, 1)):
        ref = run(params, every, None, None, seed)
        got = jax.jit(lambda p, s=seed, d=d: run(p, every, None, mesh_of(d), s))(params)
        for name, r, x in zip(every, ref, got):
            results[f"value/{name}/{d}/{seed}"] = diff(x, r)

    lap("Jacobians")
    # Jacobians for every diff method (the shift rules' rows run the sharded program).
    methods = {
        "backprop": (*EXPVALS, "var", "probs"),
        "adjoint": EXPVALS,
        "parameter-shift": (*EXPVALS, "var", "probs"),
    }
    refs = jax.jacobian(lambda p: run(p, methods["backprop"], "backprop", None, 0))(params)
    refs = dict(zip(methods["backprop"], refs))
    for method, names in methods.items():
        for d in (2, 8) if method == "adjoint" else (4,):
            got = jax.jit(
                jax.jacobian(lambda p, n=names, m=method, d=d: run(p, n, m, mesh_of(d), 0))
            )(params)
            for name, x in zip(names, got):
                results[f"jacobian/{method}/{name}/{d}"] = diff(x, refs[name])
    for method in ("finite-diff", "spsa"):
        kw = {"h": 1e-6} if method == "finite-diff" else {"num_directions": 20, "sampler_seed": 3}

        def fd(p, mesh, m=method, kw=kw):
            tape = qml.tape.QuantumScript(random_ops(p, 0), [MEASUREMENTS["expval"]()])
            return qjaxiface.execute(
                [tape], DEV, diff_method=m, gradient_kwargs=kw, mesh=mesh, executor="xla"
            )[0]

        results[f"jacobian/{method}/expval/4"] = diff(
            jax.jit(jax.grad(lambda p: fd(p, mesh_of(4))))(params),
            jax.jit(jax.grad(lambda p: fd(p, None)))(params),
        )

    lap("Second derivatives")
    # Second derivatives, vmap and broadcasting.
    small = params[:4]
    ref_h = jax.hessian(lambda p: run(p, "expval", "backprop", None, 2))(small)
    for method in ("adjoint", "parameter-shift"):  # backprop's: JAX's own rules
        got = jax.jit(jax.hessian(lambda p, m=method: run(p, "expval", m, mesh_of(4), 2)))(small)
        results[f"hessian/{method}/4"] = diff(got, ref_h)
    batch = jnp.stack([params, params * 0.5, -params])
    for method, name in (("adjoint", "expval"), ("backprop", "probs")):
        ref_v = jnp.stack([run(p, name, None, None, 1) for p in batch])
        got_v = jax.jit(jax.vmap(lambda p, m=method, n=name: run(p, n, m, mesh_of(8), 1)))(batch)
        results[f"vmap/{method}/{name}/8"] = diff(got_v, ref_v)

    def broadcast(x, mesh):
        tape = qml.tape.QuantumScript(
            [qml.RX(x, 0), qml.CNOT([0, 5]), qml.RY(x, 6), qml.CRZ(x, [1, 2])],
            [qml.expval(qml.Z(5)), qml.probs(wires=[6, 0])],
        )
        if mesh is None:
            return qml.execute([tape], DEV)[0]
        return qjaxiface.execute([tape], DEV, mesh=mesh)[0]

    xs = jnp.array([0.1, 0.7, 2.0])
    results["broadcast/8"] = diff(
        jax.jit(lambda x: broadcast(x, mesh_of(8)))(xs), broadcast(xs, None)
    )

    lap("QNodes through install")
    # QNodes through install(mesh=...): a template, eager and jitted gradients.
    w = jnp.asarray(np.random.default_rng(3).normal(size=(2, N, 3)))

    def circuit(w):
        qml.StronglyEntanglingLayers(w, wires=range(N))
        return qml.expval(qml.Z(0) @ qml.Z(N - 1))

    ref_g = jax.grad(qml.QNode(circuit, DEV, interface="jax"))(w)
    with qjaxiface.installed():
        qjaxiface.install(executor="xla", mesh=mesh_of(8))
        for method in ("backprop", "adjoint", "parameter-shift"):
            qnode = qml.QNode(circuit, DEV, diff_method=method, interface="jax")
            results[f"qnode/{method}/jit"] = diff(jax.jit(jax.grad(qnode))(w), ref_g)
            results[f"qnode/{method}/eager"] = diff(jax.grad(qnode)(w), ref_g)

    lap("Each device holds")
    # Each device holds 2**(n-g) amplitudes: the largest complex array anywhere in the
    # compiled program (every device's copy of it) is one slice, and the forward pass keeps
    # about three of them.
    n = 14
    dev12 = qml.device("default.qubit", wires=n)

    def sel(w, mesh, method):
        tape = qml.tape.QuantumScript(
            qml.StronglyEntanglingLayers(w, wires=range(n)).decomposition(),
            [qml.expval(qml.Z(0) @ qml.Z(n - 1))],
        )
        return qjaxiface.execute([tape], dev12, diff_method=method, mesh=mesh, executor="xla")[0]

    w12 = jnp.asarray(np.random.default_rng(4).normal(size=(3, n, 3)))
    for method, fn in (
        ("forward", jax.jit(lambda w: sel(w, mesh_of(8), None))),
        ("adjoint", jax.jit(jax.grad(lambda w: sel(w, mesh_of(8), "adjoint")))),
    ):
        compiled = fn.trace(w12).lower().compile()
        text = compiled.as_text()
        sizes = [
            int(np.prod([int(x) for x in dims.split(",") if x] or [1]))
            for dims in re.findall(r"c128\[([\d,]*)\]", text)
        ]
        results[f"memory/{method}/largest_complex"] = max(sizes)
        results[f"memory/{method}/temp_slices"] = compiled.memory_analysis().temp_size_in_bytes / (
            2 ** (n - 3) * 16
        )
    results["memory/slice"] = 2 ** (n - 3)
    results["memory/param_bytes"] = w12.size * 8

    # The sweep's memory beyond the slices grows with the parameters, not with their square
    # (each gate's tangent was padded to all the gates' values: 90 KB more for 3 more layers).
    dev8 = qml.device("default.qubit", wires=8)
    for layers in (2, 5):
        w8 = jnp.asarray(np.random.default_rng(5).normal(size=(layers, 8, 3)))

        def sel8(w):
            tape = qml.tape.QuantumScript(
                qml.StronglyEntanglingLayers(w, wires=range(8)).decomposition(),
                [qml.expval(qml.Z(0) @ qml.Z(7))],
            )
            return qjaxiface.execute(
                [tape], dev8, diff_method="adjoint", mesh=mesh_of(8), executor="xla"
            )[0]

        compiled = jax.jit(jax.grad(sel8)).trace(w8).lower().compile()
        results[f"memory/depth/{layers}/temp_bytes"] = compiled.memory_analysis().temp_size_in_bytes
        results[f"memory/depth/{layers}/param_bytes"] = w8.size * 8

    lap("Same program in every process")
    # Under jax.distributed every process lowers the program itself, and the collectives must
    # match: no pvary (JAX builds its axis tuple from a set, in string-hash order, which differs
    # between processes), and every collective's axes in mesh order.
    found = {"pvary": 0, "collectives": 0, "unordered": 0}
    for method in ("backprop", "adjoint", "parameter-shift"):
        text = str(
            jax.make_jaxpr(jax.grad(lambda p, m=method: run(p, "expval", m, mesh_of(8), 0)))(params)
        )
        found["pvary"] += len(re.findall(r"\b(?:pvary|pbroadcast|pcast)\[", text))
        for names in re.findall(r"\b(?:axes|axis_name)=\(([^)]*)\)", text):
            order = [int(j) for j in re.findall(r"qjx(\d+)", names)]
            found["collectives"] += bool(order)
            found["unordered"] += order != sorted(order)
    for key, value in found.items():
        results[f"program/{key}"] = value

    lap("Finite shots")
    # The unsharded XLA executor with the same device key is the reference: the sharded
    # program draws the same indices from the reduced probabilities.
    keyed = qml.device("default.qubit", wires=N, seed=jax.random.key(3))
    sampled = [
        lambda: qml.expval(qml.Z(0) @ qml.X(4)),
        lambda: qml.expval(qml.Hamiltonian([0.4, -0.7], [qml.Z(0) @ qml.Z(5), qml.Y(3)])),
        lambda: qml.var(qml.X(2) @ qml.Z(6)),
        lambda: qml.probs(wires=[0, 4, 2]),
        lambda: qml.probs(op=qml.X(1)),
        lambda: qml.sample(wires=[1, 5]),
        lambda: qml.sample(qml.Y(0)),
        lambda: qml.counts(wires=[0, 3]),
        lambda: qml.sample(),  # all 7 wires: wider than a slice on 8 devices
    ]

    def shot_run(p, shots, mesh, ms=sampled, seed=0):
        tape = qml.tape.QuantumScript(random_ops(p, seed), [m() for m in ms], shots=shots)
        kw = {} if mesh is None else {"mesh": mesh}
        return qjaxiface.execute([tape], keyed, executor="xla", **kw)[0]

    for shots, d in ((1000, 2), ((50, 70), 8)):
        ref = shot_run(params, shots, None)
        got = jax.jit(lambda p, s=shots, d=d: shot_run(p, s, mesh_of(d)))(params)
        results[f"shots/value/{d}/{shots}"] = diff(got, ref)
    # Samples of 5 of the 7 wires, wider than a slice on 8 devices: drawn over the whole
    # state (not the unsharded executor's marginal), so compare the frequencies with the
    # exact probabilities, in standard errors.
    wires, shots = [6, 0, 1, 2, 3], 20000
    bits = jax.jit(lambda p: shot_run(p, shots, mesh_of(8), [lambda: qml.sample(wires=wires)]))(
        params
    )
    index = np.asarray(bits) @ (2 ** np.arange(len(wires) - 1, -1, -1))
    freq = np.bincount(index, minlength=2 ** len(wires)) / shots
    exact = np.asarray(run(params, "probs", None, None, 0, probs_wires=wires))
    results["shots/wide/z"] = float(
        np.max(np.abs(freq - exact) / np.sqrt(exact * (1 - exact) / shots + 1e-12))
    )
    results["shots/jacobian/parameter-shift/4"] = diff(
        jax.jit(jax.jacobian(lambda p: shot_run(p, 300, mesh_of(4), sampled[1:3])))(params),
        jax.jacobian(lambda p: shot_run(p, 300, None, sampled[1:3]))(params),
    )

    lap("Automatic")
    # No mesh=, but a state that does not fit one device: sharded over all 8 automatically.
    from qjaxiface.executors.xla import _distributed

    real = _distributed._device_bytes
    _distributed._device_bytes = lambda device: 3 * 16 * 2**5  # five qubits fit a device
    try:
        qjaxiface.clear_caches()
        auto = jax.jit(lambda p: run(p, "expval", "adjoint", None, 0, executor="xla"))
        text = auto.lower(params).compile().as_text()
        results["auto/value"] = diff(auto(params), run(params, "expval", None, None, 0))
        results["auto/collectives"] = text.count("all-reduce") + text.count("all-to-all")
    finally:
        _distributed._device_bytes = real
        qjaxiface.clear_caches()

    lap("Misuse")
    # Misuse: each gets a ValueError that says what to do.
    tape = qml.tape.QuantumScript([qml.RX(0.3, 0)], [qml.expval(qml.Z(0))], shots=10)
    messages = {}
    for case, call in {
        "three_devices": lambda: qjaxiface.execute([tape], DEV, mesh=mesh_of(3)),
        "device_executor": lambda: qjaxiface.execute(
            [tape], DEV, executor="device", mesh=mesh_of(2)
        ),
        "not_a_mesh": lambda: qjaxiface.install(mesh="all"),
        "shots_no_key": lambda: qjaxiface.execute([tape], DEV, mesh=mesh_of(2)),
        "shots_too_wide": lambda: qjaxiface.execute(
            [qml.tape.QuantumScript([qml.RX(0.3, 0)], [qml.counts(wires=range(N))], shots=10)],
            qml.device("default.qubit", wires=N, seed=jax.random.key(0)),
            mesh=mesh_of(8),
        ),
    }.items():
        try:
            call()
            messages[case] = "no error"
        except ValueError as err:
            messages[case] = str(err)
    lap(None)
    print(json.dumps({"results": results, "messages": messages}))


if __name__ == "__main__":
    sys.exit(main())
