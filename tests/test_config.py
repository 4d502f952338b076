"""QJAXIFACE_XLA_SHARDING: read once, validated, and obeyed by the XLA executor's row sharding."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import xla_env

from qjaxiface import _config
from qjaxiface.executors.xla import _rows


@pytest.fixture
def fresh_config():
    _config.xla_sharding_allowed.cache_clear()
    yield
    _config.xla_sharding_allowed.cache_clear()


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("auto", True), ("1", True), (" ON ", True), ("", True), ("0", False), ("off", False)],
)
def test_valid_values(monkeypatch, fresh_config, value, allowed):
    monkeypatch.setenv(_config.SHARDING_VARIABLE, value)
    assert _config.xla_sharding_allowed() is allowed


def test_unset_means_auto(monkeypatch, fresh_config):
    monkeypatch.delenv(_config.SHARDING_VARIABLE, raising=False)
    assert _config.xla_sharding_allowed() is True


@pytest.mark.parametrize("value", ["yes", "2", "false"])
def test_a_bad_value_names_the_valid_ones(monkeypatch, fresh_config, value):
    monkeypatch.setenv(_config.SHARDING_VARIABLE, value)
    with pytest.raises(
        ValueError, match=f"QJAXIFACE_XLA_SHARDING='{value}' is not a valid"
    ) as info:
        _config.xla_sharding_allowed()
    for valid in ("'auto'", "'1'/'on'", "'0'/'off'"):
        assert valid in str(info.value)


def test_read_once(monkeypatch, fresh_config):
    monkeypatch.setenv(_config.SHARDING_VARIABLE, "off")
    assert _config.xla_sharding_allowed() is False
    monkeypatch.setenv(_config.SHARDING_VARIABLE, "on")
    assert _config.xla_sharding_allowed() is False  # the process's setting, as documented


def test_a_bad_value_fails_the_sharding_decision(monkeypatch, fresh_config):
    monkeypatch.setenv(_config.SHARDING_VARIABLE, "maybe")
    _rows.set_sharding(None)
    with pytest.raises(ValueError, match="not a valid setting"):
        _rows.sharding_devices()
    _rows.set_sharding(False)  # an explicit choice does not consult the environment
    try:
        assert _rows.sharding_devices() == []
    finally:
        _rows.set_sharding(None)


SCRIPT = textwrap.dedent(
    """
    import jax
    from qjaxiface.executors.xla._rows import sharding_devices
    print(len(jax.devices()), len(sharding_devices()))
    """
)


@pytest.mark.parametrize(("value", "sharded_over"), [("auto", 4), ("off", 0)])
def test_the_variable_switches_sharding_over_four_host_devices(value, sharded_over):
    env = xla_env("--xla_force_host_platform_device_count=4", QJAXIFACE_XLA_SHARDING=value)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["4", str(sharded_over)]
