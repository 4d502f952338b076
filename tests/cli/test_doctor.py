"""``qjaxiface doctor``: the report, the self-test and the exit status."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import qjaxiface
from qjaxiface import _cli_doctor
from qjaxiface.cli import main


def test_doctor_reports_environment_and_passes(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for expected in ("python", "jax", "jaxlib", "pennylane", "pennylane_lightning", "qjaxiface"):
        assert f"\n  {expected} " in out
    assert "backend               cpu" in out or "backend" in out
    assert "x64" in out
    assert "largest state" in out and "mesh= shards it" in out
    assert "default.qubit" in out
    assert "lightning.qubit" in out
    assert "qjaxiface hook installed: no" in out
    assert "PASS" in out
    assert "FAIL" not in out


def test_doctor_reports_installed_hook(capsys):
    qjaxiface.install()
    assert main(["doctor", "--no-self-test"]) == 0
    out = capsys.readouterr().out
    assert "qjaxiface hook installed: yes" in out
    assert "Self-test" not in out


def test_self_test_value_and_route():
    result = _cli_doctor.self_test(x=0.3)
    assert result.passed, result.problems
    assert abs(result.value - result.expected) < 1e-5
    assert any("boundary entry" in message for message in result.routes)
    assert not qjaxiface.is_installed()  # the context manager restored the state


def test_doctor_fails_with_nonzero_exit_when_self_test_fails(capsys, monkeypatch):
    @contextlib.contextmanager
    def broken(executor="auto"):
        raise RuntimeError("boundary is broken")
        yield  # pragma: no cover

    monkeypatch.setattr(qjaxiface, "installed", broken)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "boundary is broken" in out


def test_doctor_fails_when_gradient_is_wrong(monkeypatch):
    monkeypatch.setattr(_cli_doctor.math, "sin", lambda x: 42.0)
    result = _cli_doctor.self_test()
    assert not result.passed
    assert "differs from -sin(x)" in result.problems[0]


def test_pennylane_devices_grouped_by_distribution():
    devices = _cli_doctor.pennylane_devices()
    owners = " ".join(devices)
    assert "pennylane" in owners
    assert any("default.qubit" in names for names in devices.values())


def test_python_dash_m_help():
    proc = subprocess.run(
        [sys.executable, "-m", "qjaxiface", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("doctor", "demo", "bench"):
        assert command in proc.stdout


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: qjaxiface" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("qjaxiface ")


def test_doctor_reports_compatibility(capsys):
    assert main(["doctor", "--no-self-test"]) == 0
    out = capsys.readouterr().out
    assert "Compatibility" in out
    assert "jax                   tested (supported: jax>=0.7.1,<0.13" in out
    assert "pennylane             tested" in out
    assert "program capture       off" in out
    report = _cli_doctor.compatibility_report()
    if qjaxiface._compat.missing_jax_core_names():
        assert any("routes around" in w for w in report["workarounds"])
        assert "routes around" in out
    else:
        assert not any("routes around" in w for w in report["workarounds"])


def test_self_test_covers_eager_and_jit_on_both_paths():
    checks = {(c.executor, c.jit) for c in _cli_doctor.SELF_TEST_CHECKS}
    assert {("device", False), ("device", True), ("xla", False), ("auto", True)} <= checks
    for check in _cli_doctor.SELF_TEST_CHECKS:
        result = _cli_doctor.self_test(
            diff_method=check.diff_method, executor=check.executor, jit=check.jit,
            route=check.route, check=check.label,
        )  # fmt: skip
        assert result.passed, (check, result.problems, result.routes)


def test_doctor_fails_when_only_eager_gradients_break(capsys, monkeypatch):
    # What jax 0.12 did to PennyLane 0.45: jitted gradients fine, eager ones broken.
    from qjaxiface.boundary import _choice

    def broken(*args, **kwargs):
        raise ImportError("cannot import name 'concrete_or_error' from 'jax.core'")

    monkeypatch.setattr(_choice, "jax_jvp_execute", broken)  # the eager binding only
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "callback path, eager" in out
    assert "concrete_or_error" in out
    assert "Self-test: FAIL" in out


def test_self_test_fails_when_another_path_ran():
    result = _cli_doctor.self_test(executor="device", jit=True, route="executor=xla")
    assert not result.passed
    assert "another path ran" in result.problems[0]


def test_capacity_follows_device_memory():
    from qjaxiface.executors.xla._distributed import capacity

    class Gpu:  # what a GPU's memory_stats reports
        platform = "gpu"

        def memory_stats(self):
            return {"bytes_limit": 3 * 16 * 2**20}  # three complex128 slices of 2**20

    report = capacity([Gpu()] * 4)
    assert report["devices"] == 4 and report["device_bytes"] == 3 * 16 * 2**20
    assert report["largest_n"]["forward"] == 20 + 2  # 2 global qubits on 4 devices
    assert report["largest_n"]["adjoint"] == 18 + 2  # 7 slices: 2**18 amplitudes
    assert capacity([Gpu()] * 6)["devices"] == 4  # a power of two of them
