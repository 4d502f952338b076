"""``qjaxiface --help`` and argument errors do not import JAX or PennyLane (they take seconds)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

HEAVY = ("jax", "jaxlib", "pennylane", "numpy")


def _run_cli(argv: list[str]) -> subprocess.CompletedProcess:
    # A fresh interpreter: this test process has imported JAX already.
    code = textwrap.dedent(
        f"""
        import sys
        import qjaxiface.cli
        try:
            status = qjaxiface.cli.main({argv!r})
        except SystemExit as exc:
            status = exc.code
        heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
        sys.exit(status)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_cli_loads_neither_jax_nor_pennylane():
    code = f"import sys, qjaxiface.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "status", "stream", "expected"),
    [
        (["--help"], 0, "stdout", "doctor"),
        (["bench", "--help"], 0, "stdout", "--quick"),
        (["demo", "--steps", "0"], 2, "stderr", "expected a positive integer"),
        (["frobnicate"], 2, "stderr", "invalid choice"),
    ],
)
def test_help_and_argument_errors_stay_light(argv, status, stream, expected):
    proc = _run_cli(argv)
    assert proc.returncode == status, proc.stderr
    assert expected in getattr(proc, stream)
    assert "HEAVY=\n" in proc.stdout or proc.stdout.rstrip().endswith("HEAVY=")
