"""select_xla: which executor runs a batch, and why the XLA executor is refused."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import qjaxiface


def _routes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "qjaxiface"]


def _run(dev, tape_fn, x, executor="auto", diff_method="parameter-shift", jit=True):
    def cost(x):
        return qjaxiface.execute([tape_fn(x)], dev, diff_method=diff_method, executor=executor)[0]

    return (jax.jit(cost) if jit else cost)(x)


def _rx(x):
    return qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])


def test_auto_picks_xla_for_default_qubit_under_jit_only(caplog):
    dev = qml.device("default.qubit")
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        jit_res = _run(dev, _rx, 0.3)
        eager_res = _run(dev, _rx, jnp.array(0.3), jit=False)
    msgs = _routes(caplog)
    assert any("interface=jax-jit" in m and "executor=xla" in m for m in msgs)
    assert not any("interface=jax " in m and "executor=xla" in m for m in msgs)
    np.testing.assert_allclose(jit_res, np.cos(0.3), atol=1e-12)
    np.testing.assert_allclose(eager_res, np.cos(0.3), atol=1e-12)


class ShiftedDevice(qml.devices.DefaultQubit):
    """A default.qubit subclass that computes something else: "auto" must not bypass it."""

    def execute(self, circuits, execution_config=None):
        return tuple(np.asarray(r) + 1.0 for r in super().execute(circuits, execution_config))


def test_auto_leaves_subclasses_that_override_execution_on_the_device(caplog):
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        res = _run(ShiftedDevice(), _rx, 0.3)
    np.testing.assert_allclose(res, np.cos(0.3) + 1.0, atol=1e-12)
    assert not any("executor=xla" in m for m in _routes(caplog))


class PlainSubclass(qml.devices.DefaultQubit):
    """Only adds a name: it still runs exactly as default.qubit does."""


def test_auto_takes_plain_subclasses(caplog):
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        _run(PlainSubclass(), _rx, 0.3)
    assert any("executor=xla" in m for m in _routes(caplog))


def test_device_executor_is_never_xla(caplog):
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        _run(qml.device("default.qubit"), _rx, 0.3, executor="device")
    msgs = _routes(caplog)
    assert msgs and not any("executor=xla" in m for m in msgs)


def test_refusal_is_logged_with_its_reason_and_falls_back(caplog):
    def tape(x):
        return qml.tape.QuantumScript([qml.RX(x, 0)], [qml.vn_entropy(wires=[0])])

    dev = qml.device("default.qubit")
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        res = _run(dev, tape, 0.3, executor="xla", diff_method="backprop")
    msgs = _routes(caplog)
    assert any("XLA executor not used" in m and "not supported" in m for m in msgs)
    ref = qml.execute([tape(0.3)], dev)[0]
    np.testing.assert_allclose(res, ref, atol=1e-10)


def test_shots_without_prng_key_fall_back_with_reason(caplog):
    def tape(x):
        return qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))], shots=50)

    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        _run(qml.device("default.qubit", seed=1), tape, 0.3)
    assert any("PRNG key" in m for m in _routes(caplog))


@pytest.mark.parametrize("measure", [qml.probs, qml.state])
def test_measurements_without_wires_cover_all_device_wires(measure):
    """qml.probs() on a device with 3 wires is over all 3, not over the tape's 1 wire."""
    dev = qml.device("default.qubit", wires=3)

    def tape(x):
        return qml.tape.QuantumScript([qml.RX(x, 1)], [measure()])

    res = _run(dev, tape, 0.4, executor="xla")
    ref = qml.execute([tape(0.4)], dev)[0]
    assert res.shape == ref.shape == (8,)
    np.testing.assert_allclose(res, ref, atol=1e-12)


def test_device_wires_the_tape_does_not_fit_fall_back(caplog):
    dev = qml.device("default.qubit", wires=["a", "b"])

    def tape(x):
        return qml.tape.QuantumScript([qml.RX(x, 0)], [qml.expval(qml.Z(0))])

    with (
        caplog.at_level(logging.DEBUG, logger="qjaxiface"),
        pytest.raises(qml.exceptions.WireError, match="wires not found on the device"),
        qjaxiface.reraise_device_errors(),
    ):
        _run(dev, tape, 0.3, executor="xla")
    assert any("XLA executor not used" in m and "wires" in m for m in _routes(caplog))


def test_postselection_falls_back_and_matches_pennylane():
    """Deferred postselection puts a Projector among the operations; default.qubit renormalizes
    the state after it. Found by PennyLane's test_postselection_differentiation."""
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, diff_method="backprop", interface="jax")
    def circuit(phi, theta):
        qml.RX(phi, wires=0)
        qml.CNOT([0, 1])
        qml.measure(wires=0, postselect=1)
        qml.RX(theta, wires=1)
        return qml.expval(qml.Z(1))

    phi, theta = jnp.array(1.23), jnp.array(4.56)
    # Postselecting wire 0 on |1> leaves wire 1 in |1>: <Z1> = -cos(theta), independent of phi.
    with qjaxiface.installed():
        value = jax.jit(circuit)(phi, theta)
        grads = jax.jit(jax.grad(circuit, argnums=(0, 1)))(phi, theta)
    np.testing.assert_allclose(value, -np.cos(4.56), atol=1e-10)
    np.testing.assert_allclose(grads, [0.0, np.sin(4.56)], atol=1e-10)


def test_active_tracker_keeps_auto_on_the_device(caplog):
    """qml.Tracker counts device executions: while one records, "auto" runs on the device."""
    dev = qml.device("default.qubit")
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"), qml.Tracker(dev) as tracker:
        res = _run(dev, _rx, 0.3)
    assert tracker.totals["executions"] == 1
    assert any("Tracker" in m for m in _routes(caplog))
    np.testing.assert_allclose(res, np.cos(0.3), atol=1e-12)
    with qml.Tracker(dev) as tracker:
        _run(dev, _rx, 0.3, executor="xla")
    assert tracker.totals == {}  # asked for explicitly: no device executions to count


def test_xla_taking_over_another_device_is_said_once_at_info(caplog, monkeypatch):
    from qjaxiface.executors.xla import _select

    monkeypatch.setattr(_select, "_announced", set())
    dev = qml.device("lightning.qubit", wires=1)

    @qml.qnode(dev, diff_method="parameter-shift")
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with caplog.at_level(logging.INFO, logger="qjaxiface"), qjaxiface.installed(executor="xla"):
        first = jax.jit(circuit)(0.3)
        jax.jit(jax.grad(circuit))(0.3)
    np.testing.assert_allclose(first, np.cos(0.3))
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1
    assert "run on qjaxiface's XLA state-vector simulator, not on lightning.qubit" in infos[0]
    assert "executor='auto'" in infos[0] and "'device'" in infos[0]


def test_default_qubit_under_xla_and_lightning_under_auto_say_nothing(caplog, monkeypatch):
    from qjaxiface.executors.xla import _select

    monkeypatch.setattr(_select, "_announced", set())
    with caplog.at_level(logging.INFO, logger="qjaxiface"):
        _run(qml.device("default.qubit", wires=1), _rx, 0.3, executor="xla")
        _run(qml.device("lightning.qubit", wires=1), _rx, 0.3, executor="auto")
    assert [r for r in caplog.records if r.levelno == logging.INFO] == []


def _sel(n_layers=1):
    def tape_fn(w):
        return qml.tape.QuantumScript(
            [qml.StronglyEntanglingLayers(w, wires=range(3))], [qml.expval(qml.Z(0))]
        )

    return tape_fn, jnp.asarray(np.random.default_rng(1).random((n_layers, 3, 3)))


def _eager_jit_interface(dev, tape_fn, w, executor="auto", grad=False):
    def cost(w):
        tape = tape_fn(w)
        return qjaxiface.execute(
            [tape], dev, diff_method="parameter-shift", interface="jax-jit", executor=executor
        )[0]

    return jax.grad(cost)(w) if grad else cost(w)


@pytest.mark.parametrize("grad", [False, True])
def test_eager_call_declared_jax_jit_runs_on_the_device_not_compiled(caplog, grad):
    # interface="jax-jit" called eagerly: compiling a program for one call costs seconds where
    # the device takes milliseconds (issue: 2.8-4.8 s against 0.07-0.09 s).
    from qjaxiface.executors import xla

    xla.clear_cache()
    tape_fn, w = _sel()
    dev = qml.device("default.qubit")
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        got = _eager_jit_interface(dev, tape_fn, w, grad=grad)
    msgs = _routes(caplog)
    assert any("XLA executor not used (an eager call" in m for m in msgs)
    assert not any("executor=xla" in m for m in msgs)
    assert len(xla._cache) == 0  # nothing was built
    expected = (jax.grad if grad else (lambda f: f))(
        lambda w: qml.execute([tape_fn(w)], dev, diff_method="backprop")[0]
    )(w)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_eager_call_reuses_a_program_an_earlier_call_built(caplog):
    from qjaxiface.executors import xla

    xla.clear_cache()
    tape_fn, w = _sel()
    dev = qml.device("default.qubit")
    first = _eager_jit_interface(dev, tape_fn, w, executor="xla")  # asked for: compiles
    assert len(xla._cache) == 1
    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        again = _eager_jit_interface(dev, tape_fn, w)
        grad = _eager_jit_interface(dev, tape_fn, w, grad=True)
    msgs = _routes(caplog)
    # The value and eager grad both reuse the compiled program.
    assert sum("executor=xla" in m for m in msgs) == 2
    assert not any("XLA executor not used" in m for m in msgs)
    np.testing.assert_allclose(again, first, atol=1e-12)
    expected = jax.grad(lambda w: qml.execute([tape_fn(w)], dev, diff_method="backprop")[0])(w)
    np.testing.assert_allclose(grad, expected, atol=1e-10)


@pytest.mark.parametrize("transform", ["grad", "jacfwd", "vmap"])
def test_eager_transforms_run_the_compiled_program_not_op_by_op(transform, monkeypatch):
    # Eager grad/jacfwd/vmap hand the program JAX tracers outside any staging trace: the
    # jitted copy runs (traced once, then cached), not the plain function op by op.
    from qjaxiface.executors import xla
    from qjaxiface.executors.xla._simulate import TapeProgram

    xla.clear_cache()
    tape_fn, w = _sel()
    dev = qml.device("default.qubit")

    def cost(w):
        return qjaxiface.execute([tape_fn(w)], dev, diff_method="adjoint", executor="xla")[0]

    def reference(w):
        return qml.execute([tape_fn(w)], dev, diff_method="backprop")[0]

    apply = {"grad": jax.grad, "jacfwd": jax.jacfwd, "vmap": jax.vmap}[transform]
    arg = jnp.stack([w, 2 * w]) if transform == "vmap" else w
    calls = []
    original = TapeProgram.gate_values

    def counting(self, leaves):
        calls.append(1)
        return original(self, leaves)

    monkeypatch.setattr(TapeProgram, "gate_values", counting)
    got = apply(cost)(arg)
    np.testing.assert_allclose(got, apply(reference)(arg), atol=1e-10)
    assert len(xla._cache) == 1
    traced = len(calls)
    assert traced > 0
    np.testing.assert_allclose(apply(cost)(arg), got, atol=1e-12)
    assert len(calls) == traced  # the second call ran the compiled copy: no new trace


def test_concrete_values_inside_jit_still_compile_with_the_program(caplog):
    tape_fn, w = _sel()
    dev = qml.device("default.qubit")

    @jax.jit
    def f(scale):
        # w is a constant here: the execution is concrete, but part of a compiled program.
        return scale * _eager_jit_interface(dev, tape_fn, w)

    with caplog.at_level(logging.DEBUG, logger="qjaxiface"):
        f(2.0)
    assert any("executor=xla" in m for m in _routes(caplog))
