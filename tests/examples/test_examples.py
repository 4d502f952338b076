"""Smoke tests: every script in examples/ runs at a small size and gets the right answer."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
from conftest import classic_custom_rules

import qjaxiface

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py"))


def load(name: str):
    """Import ``examples/<name>.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"qjaxiface_example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_has_main_and_entry_point(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    tree = ast.parse(source)
    assert ast.get_docstring(tree), f"{name}.py needs a module docstring"
    assert 'if __name__ == "__main__":' in source
    main = load(name).main
    assert list(inspect.signature(main).parameters) == ["small"]
    assert inspect.signature(main).parameters["small"].default is False


def test_vqe_h2_reaches_the_exact_ground_energy(capsys):
    result = load("vqe_h2").main(small=True)
    assert result["exact"] == pytest.approx(-1.13728, abs=1e-4)
    assert result["energies"][-1] < result["energies"][0]
    assert abs(result["error"]) < 1.6e-3  # chemical accuracy
    assert result["energy"] >= result["exact"] - 1e-6  # variational
    assert "exact energy" in capsys.readouterr().out
    assert not qjaxiface.is_installed()


def test_hybrid_equinox_loss_falls():
    result = load("hybrid_equinox").main(small=True)
    assert np.all(np.isfinite(result["losses"]))
    assert result["final_loss"] < 0.5 * result["initial_loss"]


def test_vmap_batch_matches_loop():
    result = load("vmap_batch").main(small=True)
    run = result["parameter-shift"]
    assert run["values"].shape == (4,)
    assert run["weight_grads"].shape == (4, 2, 2)
    assert run["input_grads"].shape == (4, 2)
    assert run["max_error"] < 1e-5
    assert np.all(np.abs(run["values"]) <= 1 + 1e-6)


def test_lightning_adjoint_under_jit():
    result = load("lightning_adjoint_jit").main(small=True)
    assert result["gradient_error"] < 1e-5
    assert result["final_energy"] < result["energies"][0]
    assert result["final_energy"] >= result["exact"] - 1e-6


def test_execute_tapes_matches_pennylane_and_analytic():
    with classic_custom_rules():  # the example's reference is PennyLane's own eager boundary
        result = load("execute_tapes").main(small=True)
    assert list(result) == [("default.qubit", "parameter-shift")]
    run = result[("default.qubit", "parameter-shift")]
    assert run["error_vs_pennylane"] < 1e-6
    assert run["error_vs_analytic"] < 1e-5
    assert run["eager_value"] == pytest.approx(run["value"], abs=1e-6)
