"""qjaxiface.clear_caches() clears every cache; the XLA program cache is safe under threads."""

from __future__ import annotations

import threading

import jax.numpy as jnp
import numpy as np
import pennylane as qml

import qjaxiface
from qjaxiface import _caches, faults
from qjaxiface.executors import xla


def _tape(x, n_gates=1):
    ops = [qml.RX(x, 0)] + [qml.RY(0.1 * k, 0) for k in range(1, n_gates)]
    return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])


def test_every_cache_is_registered():
    assert set(_caches.registered()) >= {"XLA executor programs", "recorded device faults"}


def test_clear_caches_forgets_programs_and_recorded_faults():
    x = jnp.array(0.3)
    np.testing.assert_allclose(xla.xla_execute([_tape(x)], diff_method="backprop")[0], np.cos(0.3))
    assert xla.has_program(_tape(x), "backprop")
    marker = faults.record(ValueError("recorded"))
    qjaxiface.clear_caches()
    assert not xla.has_program(_tape(x), "backprop")
    assert faults.original_exception(marker) is None
    # Nothing is lost but time: the program is built again.
    np.testing.assert_allclose(xla.xla_execute([_tape(x)], diff_method="backprop")[0], np.cos(0.3))


def test_program_cache_under_threads(monkeypatch):
    """Threads building, reusing and evicting programs of a tiny cache all get right values."""
    monkeypatch.setattr(xla, "_CACHE_SIZE", 2)
    xla.clear_cache()
    errors, barrier = [], threading.Barrier(4)

    def work(seed):
        try:
            barrier.wait()
            for step in range(12):
                n_gates = 1 + (seed + step) % 4  # 4 structures through a 2-entry cache
                x = 0.1 * (seed + 1)
                value = xla.xla_execute([_tape(jnp.array(x), n_gates)], diff_method="backprop")[0]
                angle = sum(0.1 * k for k in range(1, n_gates))
                np.testing.assert_allclose(value, np.cos(x) * np.cos(angle), atol=1e-6)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(xla._cache) <= 2
