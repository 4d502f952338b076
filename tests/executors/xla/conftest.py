"""XLA executor tests run with x64 (results compared to default.qubit at 1e-8)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
