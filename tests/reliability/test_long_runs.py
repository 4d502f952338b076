"""Long jitted training loops: no retracing after the first step, flat memory.

The CI-sized version of ``benchmarks/soak.py`` (which runs 10,000 steps and prints the figures):
the same loop, imported from the script, for a few hundred steps per path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
STEPS = 400
MAX_RSS_GROWTH_MB = 50


def _load_soak():
    spec = importlib.util.spec_from_file_location("qjaxiface_soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _xla_executor_available() -> bool:
    try:
        from qjaxiface.executors.xla import xla_execute  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("path", ["callback", "callback-dq", "xla"])
def test_jitted_optax_loop_traces_once_and_keeps_memory_flat(path):
    soak = _load_soak()
    row = soak.run_soak(path, steps=STEPS, warmup=50)
    assert row["traces"] == 1, row  # one trace, then the compiled step is reused
    assert row["peak_rss_growth_mb"] < MAX_RSS_GROWTH_MB, row
    assert row["rss_growth_mb"] < MAX_RSS_GROWTH_MB, row
    assert row["last_loss"] < row["first_loss"] - 0.5, row  # it actually trains (min is -1)
    if path == "xla" and _xla_executor_available():
        assert row["executors_used"] == ["xla"], row
    elif path != "xla":
        assert all(e.startswith("device:") for e in row["executors_used"]), row


def test_soak_script_prints_the_figures(capsys):
    soak = _load_soak()
    soak.main(["--steps", "30", "--warmup", "10", "--paths", "callback-dq", "--json"])
    out = capsys.readouterr().out
    for key in ("traces", "rss_growth_mb", "peak_rss_growth_mb", "ms_per_step"):
        assert f'"{key}"' in out
