"""Amplitude sharding (``_distributed.py``): one state vector over several devices.

The cases that need devices run once, in a subprocess with 8 forced host devices
(``distributed_cases.py``); each test below checks one group of them against PennyLane's
default.qubit. The schedule is pure Python and is tested here directly.
"""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pennylane as qml
import pytest
from conftest import xla_env

from qjaxiface.executors.xla._distributed import (
    AmplitudeMesh,
    Exchange,
    GateStep,
    Layout,
    MeshError,
    Relabel,
    _needs_local,
    _wires,
    global_qubits,
    local_order,
    restore,
    schedule,
)
from qjaxiface.executors.xla._simulate import TapeProgram

CASES = pathlib.Path(__file__).with_name("distributed_cases.py")
TOL = 1e-10


@pytest.fixture(scope="module")
def cases() -> dict:
    env = xla_env("--xla_force_host_platform_device_count=8")
    out = subprocess.run(
        [sys.executable, str(CASES)], env=env, capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _group(cases: dict, prefix: str) -> dict:
    found = {k: v for k, v in cases["results"].items() if k.startswith(prefix)}
    assert found, prefix
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "prefix",
    ["value/", "jacobian/backprop/", "jacobian/adjoint/", "jacobian/parameter-shift/"],
)
def test_sharded_results_equal_default_qubit(cases, prefix):
    """Every measurement on 2/4/8 shards, and the Jacobians of every diff method."""
    bad = {k: v for k, v in _group(cases, prefix).items() if v > TOL}
    assert not bad


@pytest.mark.slow
def test_every_measurement_and_shard_count_is_covered(cases):
    values = _group(cases, "value/")
    kinds = {k.split("/")[1] for k in values}
    assert kinds >= {"expval", "hamiltonian_wide", "var", "probs", "probs_obs", "state"}
    assert "density_matrix" in kinds
    assert {k.split("/")[2] for k in values} == {"2", "4", "8"}


@pytest.mark.slow
def test_finite_differences_and_spsa_match_the_unsharded_rule(cases):
    # Both difference the same rounding-level values with h = 1e-6.
    assert cases["results"]["jacobian/finite-diff/expval/4"] < 1e-9
    assert cases["results"]["jacobian/spsa/expval/4"] < 1e-9


@pytest.mark.slow
def test_finite_shots_draw_what_the_unsharded_executor_draws(cases):
    """Same device key, same samples: expval, a Hamiltonian, var, probs (wires, observable),
    samples (wires, observable, every wire), counts, shot vectors, parameter-shift rows."""
    found = _group(cases, "shots/value/")
    assert len(found) == 2
    assert max(found.values()) < 1e-12
    assert cases["results"]["shots/jacobian/parameter-shift/4"] < 1e-12


@pytest.mark.slow
def test_samples_wider_than_a_slice_follow_the_state(cases):
    # 2**5 outcomes from 20000 shots: every frequency within 5 standard errors.
    assert cases["results"]["shots/wide/z"] < 5


@pytest.mark.slow
def test_hessians_vmap_and_broadcasting(cases):
    for prefix in ("hessian/", "vmap/", "broadcast/"):
        bad = {k: v for k, v in _group(cases, prefix).items() if v > TOL}
        assert not bad


@pytest.mark.slow
def test_qnodes_through_install_mesh(cases):
    """install(executor="xla", mesh=...) runs an unchanged QNode, eager and jitted."""
    found = _group(cases, "qnode/")
    assert len(found) == 6
    assert max(found.values()) < TOL


@pytest.mark.slow
def test_each_device_holds_one_slice(cases):
    """n=14 on 8 devices: no complex array in the program is larger than 2**11 amplitudes,
    and the forward pass keeps at most three slices plus the parameters."""
    res = cases["results"]
    slice_size = res["memory/slice"]
    assert slice_size == 2 ** (14 - 3)
    assert res["memory/forward/largest_complex"] == slice_size
    assert res["memory/adjoint/largest_complex"] == slice_size
    slice_bytes = slice_size * 16
    forward_bytes = res["memory/forward/temp_slices"] * slice_bytes
    assert forward_bytes <= 3 * slice_bytes + 4 * res["memory/param_bytes"]
    # The adjoint sweep: ket and bra, their next versions, and XLA's copies of a kernel for
    # the transition matrix (docs/distributed.md): 6.2 (jax 0.7.1, 0.10) or 5.2 (0.12); 8.2 on
    # jax 0.10 before the sweep was kept in lock-step.
    assert res["memory/adjoint/temp_slices"] <= 7


@pytest.mark.slow
def test_adjoint_sweep_memory_grows_with_the_parameters_not_their_square(cases):
    """n=8 on 8 devices, 2 and 5 layers: the extra memory stays within 20 bytes per extra
    parameter byte (a gate's value, its inverses and its weights); padding each gate's tangent
    to all the gates' values took 155."""
    res = cases["results"]
    grown = res["memory/depth/5/temp_bytes"] - res["memory/depth/2/temp_bytes"]
    params = res["memory/depth/5/param_bytes"] - res["memory/depth/2/param_bytes"]
    assert 0 < grown <= 20 * params


@pytest.mark.slow
def test_every_process_lowers_the_same_collectives(cases):
    """No collective whose axis order depends on Python's string hashing (a multi-host hang)."""
    res = cases["results"]
    assert res["program/collectives"] > 0
    assert res["program/pvary"] == 0
    assert res["program/unordered"] == 0


@pytest.mark.slow
def test_a_state_too_large_for_one_device_is_sharded_without_mesh(cases):
    res = cases["results"]
    assert res["auto/value"] < TOL
    assert res["auto/collectives"] > 0


@pytest.mark.slow
def test_misuse_says_what_to_do(cases):
    msg = cases["messages"]
    assert "power-of-two" in msg["three_devices"] and "over 2 of them" in msg["three_devices"]
    assert "executor='xla'" in msg["device_executor"]
    assert "jax.sharding.Mesh" in msg["not_a_mesh"]
    too_wide = msg["shots_too_wide"]
    assert "7 wires" in too_wide and "qml.sample()" in too_wide and "fewer devices" in too_wide
    # What the executor cannot run is raised, not run unsharded on the device.
    assert "PRNG key" in msg["shots_no_key"] and "Drop mesh=" in msg["shots_no_key"]


# --------------------------------------------------------------------------- the schedule


def _gates(ops, n):
    tape = qml.tape.QuantumScript(ops, [qml.probs(wires=range(n))])
    return [g for g, _, _ in TapeProgram(tape, compact=False).gates]


def _random_ops(n, count, seed):
    rng = np.random.default_rng(seed)
    makers = [
        lambda w: qml.RX(0.1, w[0]),
        lambda w: qml.RZ(0.2, w[0]),
        lambda w: qml.CNOT(w[:2]),
        lambda w: qml.CRY(0.3, w[:2]),
        lambda w: qml.IsingZZ(0.4, w[:2]),
        lambda w: qml.SWAP(w[:2]),
        lambda w: qml.Toffoli(w),
        lambda w: qml.Rot(0.1, 0.2, 0.3, w[0]),
    ]
    return [
        makers[rng.integers(len(makers))]([int(x) for x in rng.choice(n, 3, replace=False)])
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("g", [1, 2, 3])
def test_schedule_runs_each_gate_once_in_wire_order_with_local_targets(seed, g):
    n = 8
    gates = _gates(_random_ops(n, 60, seed), n)
    steps, _ = schedule(gates, n, g)
    # Replay the placement: every exchange swaps a global position with a local one.
    layout = Layout(n, g)
    seen: list[int] = []
    for step in steps:
        if isinstance(step, Exchange):
            at = layout.at()
            for j, loc in step.pairs:
                assert j < g <= g + loc < n
                a, b = at[j], at[g + loc]
                layout.pos[a], layout.pos[b] = layout.pos[b], layout.pos[a]
            continue
        gate = gates[step.index]
        if isinstance(step, Relabel):
            assert gate.kind == "swap" and not gate.controls
            a, b = gate.axes
            layout.pos[a], layout.pos[b] = layout.pos[b], layout.pos[a]
            seen.append(step.index)
            continue
        assert isinstance(step, GateStep)
        assert step.where == tuple(layout.pos[a] for a in _wires(gate))
        assert all(layout.is_local(a) for a in _needs_local(gate))
        assert not (gate.kind == "swap" and not gate.controls)  # those are relabellings
        seen.append(step.index)
    assert sorted(seen) == list(range(len(gates)))
    for a in range(n):  # on each wire, its gates keep their circuit order
        on_wire = [i for i in seen if a in _wires(gates[i])]
        assert on_wire == sorted(on_wire)


def test_strongly_entangling_layers_pay_about_one_exchange_a_layer():
    n, g = 16, 3
    counts = {}
    for layers in (1, 4, 10):
        ops = qml.StronglyEntanglingLayers(np.zeros((layers, n, 3)), wires=range(n))
        steps, _ = schedule(_gates(ops.decomposition(), n), n, g)
        counts[layers] = sum(isinstance(s, Exchange) for s in steps)
    assert counts[10] - counts[1] <= 2 * 9  # issue target: at most 2 per layer
    assert counts[10] <= 2 * 10


def test_restore_puts_the_global_qubits_back_in_order():
    n, g = 7, 3
    layout = Layout(n, g)
    rng = np.random.default_rng(0)
    layout.pos = [int(p) for p in rng.permutation(n)]
    restore(layout)
    assert layout.pos[:g] == list(range(g))
    order = local_order(layout)
    at = layout.at()[g:]
    assert [at[k] for k in order] == list(range(g, n))


def test_small_circuits_use_fewer_global_qubits():
    mesh = AmplitudeMesh(tuple(range(8)), 3)
    assert global_qubits(mesh, 20) == 3
    assert global_qubits(mesh, 6) == 2  # four qubits stay local
    assert global_qubits(mesh, 3) == 0


@pytest.mark.parametrize("bad", ["all", [], 3])
def test_mesh_must_be_a_mesh(bad):
    with pytest.raises(MeshError, match=r"jax\.sharding\.Mesh"):
        AmplitudeMesh.of(bad)


# --------------------------------------------------------------------------- multi-host


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_jax_processes_equal_one(tmp_path):
    """2 processes x 2 CPU devices under ``jax.distributed`` (gloo) against default.qubit."""
    import jax

    script = pathlib.Path(__file__).with_name("distributed_multihost.py")
    port = str(_free_port())
    env = xla_env()  # the script adds its 2 devices to the flags
    # Files, not pipes: the test waits for one process at a time, and a full pipe would stall
    # the other one mid-collective.
    logs = [(tmp_path / f"out{pid}", tmp_path / f"err{pid}") for pid in (0, 1)]
    procs = []
    for pid, (out_path, err_path) in enumerate(logs):
        with out_path.open("w") as out_file, err_path.open("w") as err_file:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(pid), port],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out_file,
                    stderr=err_file,
                )
            )
    outs = []
    try:
        for proc, (out_path, err_path) in zip(procs, logs):
            proc.wait(timeout=600)
            assert proc.returncode == 0, err_path.read_text()[-4000:]
            outs.append(json.loads(out_path.read_text().strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    sys.path.insert(0, str(script.parent))
    try:
        import distributed_multihost as case
    finally:
        sys.path.pop(0)
    qnode = qml.QNode(case.circuit, qml.device("default.qubit", wires=case.N), interface="jax")
    value, grad = jax.value_and_grad(qnode)(jax.numpy.asarray(case.WEIGHTS))
    for out in outs:
        assert set(out) == {"backprop", "adjoint"}
        for got_value, got_grad in out.values():
            assert abs(got_value - float(value)) < TOL
            assert np.max(np.abs(np.asarray(got_grad) - np.asarray(grad).ravel())) < TOL


# --------------------------------------------------------------------------- in this process


def test_a_one_device_mesh_runs_the_sharded_program_here(monkeypatch):
    """The whole route (install, the program cache, ``ShardedProgram``) on this process's one
    device: no global qubit, the same numbers as default.qubit."""
    import jax
    from jax.sharding import Mesh

    import qjaxiface
    import qjaxiface.executors.xla as xla
    import qjaxiface.pennylane_hook as hook

    built = []

    class Recording(xla.ShardedProgram):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(xla, "ShardedProgram", Recording)
    qjaxiface.clear_caches()
    mesh = Mesh(np.array(jax.devices()[:1]), ("amps",))
    dev = qml.device("default.qubit", wires=5)

    def circuit(x):
        qml.RX(x, 0)
        qml.CRY(2 * x, wires=[0, 4])
        qml.SWAP([1, 4])
        return qml.expval(qml.Z(1)), qml.probs(wires=[0, 1])

    x = jax.numpy.asarray(0.4)
    ref = jax.jacobian(qml.QNode(circuit, dev, interface="jax"))(x)
    before = hook._state
    with qjaxiface.installed(executor="xla", mesh=mesh):
        assert hook._state is not None and hook._state.mesh is mesh
        got = jax.jit(jax.jacobian(qml.QNode(circuit, dev, diff_method="backprop")))(x)
    assert hook._state is before
    assert len(built) == 1 and built[0].g == 0 and built[0].local_size == 2**3
    for a, b in zip(ref, got):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL)
