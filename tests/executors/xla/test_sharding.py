"""Shift rows sharded over 4 forced host devices give the single-device gradient."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import xla_env

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, pennylane as qml
    jax.config.update("jax_enable_x64", True)
    from qjaxiface.executors.xla import xla_execute, set_sharding
    assert len(jax.devices()) == 4

    def f(w):
        ops = [qml.Rot(*w[0, i], wires=i) for i in range(3)] + [qml.CNOT([0, 1]), qml.CRX(w[0, 0, 0], [1, 2])]
        tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0)), qml.probs(wires=[1])])
        e, p = xla_execute([tape], diff_method="parameter-shift")[0]
        return e + p[0]

    w = jnp.asarray(np.random.default_rng(0).random((1, 3, 3)))
    sharded = jax.jit(jax.grad(f))(w)
    text = jax.jit(jax.grad(f)).lower(w).compile().as_text()
    set_sharding(False)
    single = jax.jit(jax.grad(lambda w: f(w) * 1.0))(w)
    np.testing.assert_allclose(sharded, single, atol=1e-12)
    print("OK", "sharding" in text or "all-gather" in text or "all-reduce" in text)
    """
)


def test_rows_sharded_over_forced_host_devices():
    env = xla_env("--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[:2] == ["OK", "True"], out.stdout
