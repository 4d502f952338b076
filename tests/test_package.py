"""The top-level package: its public names load on first use, and load the same objects; its
version has a CHANGELOG section."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import qjaxiface
from qjaxiface import _caches, execution, faults, pennylane_hook


def test_every_public_name_resolves_to_its_module_object():
    assert set(qjaxiface.__all__) == {"__version__", *qjaxiface._EXPORTS}
    assert qjaxiface.execute is execution.execute
    assert qjaxiface.install is pennylane_hook.install
    assert qjaxiface.reraise_device_errors is faults.reraise_device_errors
    assert qjaxiface.clear_caches is _caches.clear_caches


def test_the_exceptions_users_catch_are_top_level():
    from qjaxiface.boundary._higher_order import HigherOrderError
    from qjaxiface.executors.xla import XLAUnsupported

    assert qjaxiface.HigherOrderError is HigherOrderError
    assert qjaxiface.HostCallbackError is faults.HostCallbackError
    assert qjaxiface.XLAUnsupported is XLAUnsupported
    assert issubclass(qjaxiface.HigherOrderError, ValueError)  # what PennyLane users caught
    for name in qjaxiface.__all__:
        assert getattr(qjaxiface, name) is not None
        assert name in dir(qjaxiface)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'executee'"):
        qjaxiface.executee  # noqa: B018


def test_a_too_old_jax_fails_on_first_use():
    code = (
        "import jax; jax.__version__ = '0.6.2'\n"
        "import qjaxiface\n"
        "try:\n"
        "    qjaxiface.install\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "ImportError: qjaxiface needs jax>=" in out.stdout


def test_submodules_are_reachable_as_attributes_right_after_import():
    code = (
        "import qjaxiface\n"
        "print(qjaxiface.faults.HostCallbackError.__name__, qjaxiface.counts.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["HostCallbackError", "qjaxiface.counts"]


def test_the_changelog_has_a_section_for_the_packaged_version():
    """Keep a Changelog: [Unreleased] on top, then the newest release, the one pyproject names."""
    repo = Path(__file__).resolve().parents[1]
    version = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    headings = re.findall(
        r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", (repo / "CHANGELOG.md").read_text(), re.M
    )
    assert headings[0] == ("Unreleased", "")
    assert headings[1][0] == version and headings[1][1], headings[:2]
