"""QNodes and executions from several Python threads at once; the install hook under contention."""

from __future__ import annotations

import importlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from reliability_helpers import DeviceFault, FaultyQubit, execute_one, ry_cnot_tape

import qjaxiface
from qjaxiface import pennylane_hook

THREADS = 8
CALLS = 6

CONFIGS = {
    "default.qubit-callback": (
        "default.qubit",
        dict(diff_method="parameter-shift", executor="device"),
    ),
    "default.qubit-auto": ("default.qubit", dict(diff_method="parameter-shift", executor="auto")),
    "default.qubit-backprop": ("default.qubit", dict(diff_method="backprop")),
    "default.qubit-adjoint-vjp": (
        "default.qubit",
        dict(diff_method="adjoint", device_vjp=True, executor="device"),
    ),
    "lightning-adjoint": ("lightning.qubit", dict(diff_method="adjoint")),
    "lightning-parameter-shift": ("lightning.qubit", dict(diff_method="parameter-shift")),
}


def _run_threads(fn, n=THREADS):
    """Run fn(thread_index) in n threads started together; return the results in order."""
    barrier = threading.Barrier(n)

    def start(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(start, range(n)))


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_threads_eager_and_jitted(config):
    name, kwargs = CONFIGS[config]
    # default.qubit keeps no state between executions and is shared; lightning keeps a state
    # vector per device instance, so each thread has its own (as PennyLane requires).
    shared = qml.device(name, wires=2)

    def cost_on(dev):
        return lambda x: execute_one(ry_cnot_tape(x), dev, **kwargs)

    shared_jitted = (
        jax.jit(jax.value_and_grad(cost_on(shared))) if name == "default.qubit" else None
    )

    def work(i):
        dev = shared if name == "default.qubit" else qml.device(name, wires=2)
        eager = jax.value_and_grad(cost_on(dev))
        jitted = shared_jitted or jax.jit(jax.value_and_grad(cost_on(dev)))
        out = []
        for k in range(CALLS):
            x = jnp.array(0.1 * i + 0.01 * k)
            fn = eager if k % 2 else jitted
            value, grad = fn(x)
            out.append((float(x), float(value), float(grad)))
        return out

    for rows in _run_threads(work):
        xs, values, grads = np.array(rows).T
        np.testing.assert_allclose(values, np.cos(xs), atol=1e-6)
        np.testing.assert_allclose(grads, -np.sin(xs), atol=1e-6)


def test_threads_vmapped_batches():
    dev = qml.device("default.qubit", wires=2)
    fn = jax.jit(
        jax.vmap(
            jax.grad(
                lambda x: execute_one(
                    ry_cnot_tape(x), dev, executor="device", diff_method="parameter-shift"
                )
            )
        )
    )

    def work(i):
        xs = jnp.linspace(0.0, 1.0, 5) + i
        return np.asarray(xs), np.asarray(fn(xs))

    for xs, grads in _run_threads(work):
        np.testing.assert_allclose(grads, -np.sin(xs), atol=1e-6)


def test_a_failing_thread_does_not_disturb_the_others():
    """Device faults are recorded per call: each failing thread gets its own, others succeed."""
    good = qml.device("default.qubit", wires=2)
    bad = FaultyQubit(wires=2)
    bad.fail = {"execute"}

    def cost_on(dev):
        return jax.jit(
            lambda x: execute_one(
                ry_cnot_tape(x), dev, diff_method="parameter-shift", executor="device"
            )
        )

    good_fn, bad_fn = cost_on(good), cost_on(bad)

    def work(i):
        outcomes = []
        for k in range(CALLS):
            x = jnp.array(0.05 * (i + k))
            if i % 2:
                with (
                    pytest.raises(DeviceFault, match="execute failed on purpose"),
                    qjaxiface.reraise_device_errors(),
                ):
                    bad_fn(x)
                outcomes.append(None)
            else:
                outcomes.append((float(x), float(good_fn(x))))
        return outcomes

    for i, outcomes in enumerate(_run_threads(work)):
        if i % 2 == 0:
            xs, values = np.array(outcomes).T
            np.testing.assert_allclose(values, np.cos(xs), atol=1e-6)


@pytest.mark.parametrize("executor", ["auto", "device"])
def test_qnodes_through_the_hook_from_threads(executor):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(x):
        qml.RY(x, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    with qjaxiface.installed(executor=executor):
        jitted = jax.jit(jax.grad(circuit))

        def work(i):
            xs = [0.1 * i + 0.02 * k for k in range(CALLS)]
            return xs, [float(circuit(x)) for x in xs], [float(jitted(x)) for x in xs]

        results = _run_threads(work)
    for xs, values, grads in results:
        np.testing.assert_allclose(values, np.cos(xs), atol=1e-6)
        np.testing.assert_allclose(grads, -np.sin(xs), atol=1e-6)


# --- the install hook -------------------------------------------------------------------------


def _sites():
    return {name: importlib.import_module(name).execute for name in pennylane_hook._PATCH_SITES}


def _assert_consistent(originals):
    """Every site holds PennyLane's original, or a router directly around it (never nested)."""
    sites = _sites()
    routed = {name: getattr(fn, "__qjaxiface_router__", False) for name, fn in sites.items()}
    assert len(set(routed.values())) == 1, routed
    for name, fn in sites.items():
        inner = fn.__wrapped__ if routed[name] else fn
        assert inner is originals[name], name


@pytest.mark.parametrize("start_installed", [False, True])
def test_install_uninstall_installed_from_many_threads(start_installed):
    originals = _sites()
    if start_installed:
        qjaxiface.install(executor="device")
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev, diff_method="parameter-shift", interface="jax")
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    def work(i):
        rng = random.Random(i)
        for _ in range(40):
            action = rng.choice(["block", "nested", "query", "run"])
            if action == "block":
                with qjaxiface.installed(executor=rng.choice(["auto", "device", "xla"])):
                    assert qjaxiface.is_installed()
            elif action == "nested":
                with qjaxiface.installed(), qjaxiface.installed(executor="device"):
                    assert qjaxiface.is_installed()
            elif action == "query":
                qjaxiface.is_installed()
                pennylane_hook.installed_executor()
            elif start_installed:
                # Other threads' blocks open and close around this call: the answer is right.
                np.testing.assert_allclose(circuit(jnp.array(0.3)), np.cos(0.3), atol=1e-7)
            else:
                # Without qjaxiface, concurrent calls of one QNode race in PennyLane itself (its
                # queue and QNode call state are process-global, see qjaxiface/_threads.py): a
                # call is made inside its own block, which other threads cannot close under it.
                with qjaxiface.installed(executor=rng.choice(["auto", "device"])):
                    np.testing.assert_allclose(circuit(jnp.array(0.3)), np.cos(0.3), atol=1e-7)
        return True

    assert all(_run_threads(work))
    # All blocks exited: exactly the state before them, and no router wrapped around a router.
    assert qjaxiface.is_installed() is start_installed
    if start_installed:
        assert pennylane_hook.installed_executor() == "device"
    _assert_consistent(originals)
    assert pennylane_hook._active == []
    qjaxiface.uninstall()
    assert _sites() == originals


def test_overlapping_installed_blocks_restore_the_outer_state():
    """Thread A enters, B enters, A exits, B exits: the hook is off again (it used to stay on)."""
    order = threading.Barrier(2)
    a_exited = threading.Event()

    def a():
        with qjaxiface.installed():
            order.wait()  # B is about to enter
            order.wait()  # B is inside
        a_exited.set()

    def b():
        order.wait()
        with qjaxiface.installed(executor="device"):
            order.wait()
            a_exited.wait(5)
            assert qjaxiface.is_installed()  # B's block still routes after A left
            assert pennylane_hook.installed_executor() == "device"

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not qjaxiface.is_installed()


def test_explicit_install_and_uninstall_race():
    originals = _sites()

    def work(i):
        for _ in range(50):
            if i % 2:
                qjaxiface.install(executor="device")
            else:
                qjaxiface.uninstall()
        return True

    assert all(_run_threads(work))
    _assert_consistent(originals)
    qjaxiface.uninstall()
    assert _sites() == originals
