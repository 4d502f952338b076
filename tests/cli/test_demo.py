"""``qjaxiface demo`` at a tiny size: plots are written and the loss falls."""

from __future__ import annotations

import re

import numpy as np
import pytest

import qjaxiface
from qjaxiface._cli_demo import accuracy, make_moons, run_demo
from qjaxiface.cli import main


def test_demo_command_writes_plots_and_loss_decreases(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    argv = ["demo", "--steps", "10", "--samples", "30", "--layers", "1", "--seed", "1"]
    code = main([*argv, "--out", str(out_dir), "--no-progress"])
    assert code == 0
    for name in ("loss.png", "decision_boundary.png"):
        png = out_dir / name
        assert png.is_file()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    match = re.search(r"initial loss ([0-9.]+) .* final loss ([0-9.]+) \(accuracy ([0-9.]+)\)", out)
    assert match, out
    assert float(match.group(2)) < float(match.group(1))
    assert 0.0 <= float(match.group(3)) <= 1.0
    assert "boundary entry" in out  # the training was routed through qjaxiface
    assert not qjaxiface.is_installed()  # and the hook was removed afterwards


def test_demo_result_fields(tmp_path, monkeypatch):
    """run_demo's result, with the (slow) plotting replaced."""
    from qjaxiface import _cli_demo

    monkeypatch.setattr(_cli_demo, "_plot_loss", lambda *a: None)
    monkeypatch.setattr(_cli_demo, "_plot_boundary", lambda *a, **k: None)
    result = run_demo(steps=4, out_dir=tmp_path, n_samples=12, n_layers=1, progress=False)
    assert len(result.losses) == len(result.accuracies) == 4
    assert result.loss_decreased
    assert np.all(np.isfinite(result.losses))
    assert 0.0 <= result.final_accuracy <= 1.0
    assert result.compile_seconds <= result.seconds


def test_make_moons_is_reproducible_and_balanced():
    X1, y1 = make_moons(51, seed=3)
    X2, y2 = make_moons(51, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == (51, 2) and X1.dtype == np.float32
    assert int(y1.sum()) == 26
    np.testing.assert_allclose(X1.mean(axis=0), 0.0, atol=1e-5)


def test_accuracy():
    assert accuracy(np.array([1.0, -1.0]), np.array([1.0, 1.0])) == 0.5


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_demo_rejects_nonpositive_steps(bad):
    with pytest.raises(SystemExit):
        main(["demo", "--steps", bad])
