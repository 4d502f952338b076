"""The opt-in persistent compilation cache: a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import qjaxiface
from qjaxiface._cli_doctor import _print_report, environment_report

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np, pennylane as qml
jax.config.update("jax_enable_x64", True)
import qjaxiface
events = {"hits": 0, "misses": 0}
def listen(name, **kw):
    if name == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    elif name == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1
jax.monitoring.register_event_listener(listen)
qjaxiface.enable_compilation_cache(sys.argv[1])
qjaxiface.install()

@qml.qnode(qml.device("default.qubit", wires=3), diff_method=sys.argv[2])
def circuit(w):
    qml.StronglyEntanglingLayers(w, wires=range(3))
    return qml.expval(qml.Z(0))

w = jnp.asarray(np.linspace(0.1, 1.7, 18).reshape(2, 3, 3))
grad = jax.jit(jax.grad(circuit))(w)
print(json.dumps({**events, "grad": np.asarray(grad).tolist()}))
"""


def _run(folder: Path, method: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), method],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["adjoint", "parameter-shift"])
def test_second_process_compiles_nothing(tmp_path, method):
    cold = _run(tmp_path, method)
    assert cold["misses"] >= 1 and any(tmp_path.iterdir())
    warm = _run(tmp_path, method)
    assert warm["misses"] == 0, "the same circuit must give the same cache keys in a new process"
    assert warm["hits"] >= 1
    assert warm["grad"] == cold["grad"]


def test_enable_status_and_disable(tmp_path):
    try:
        folder = qjaxiface.enable_compilation_cache(tmp_path / "cache")
        status = qjaxiface.compilation_cache_status()
        assert status["enabled"] and status["path"] == str(folder) and folder.is_dir()
        lines: list[str] = []
        _print_report(environment_report(), lines.append)
        assert any("compilation cache" in line and str(folder) in line for line in lines)
    finally:
        qjaxiface.disable_compilation_cache()
    assert qjaxiface.compilation_cache_status() == {
        "enabled": False,
        "path": None,
        "entries": 0,
        "bytes": 0,
    }
    lines = []
    _print_report(environment_report(), lines.append)
    assert any("enable_compilation_cache()" in line for line in lines)


def test_bad_arguments_say_what_to_pass(tmp_path):
    file = tmp_path / "a-file"
    file.write_text("")
    with pytest.raises(ValueError, match="is a file; pass a folder"):
        qjaxiface.enable_compilation_cache(file)
    with pytest.raises(ValueError, match="negative"):
        qjaxiface.enable_compilation_cache(tmp_path, min_compile_time_secs=-1)
