"""Helpers for the XLA executor tests: default.qubit references and tree comparisons."""

from __future__ import annotations

import jax
import numpy as np
import pennylane as qml

jax.config.update("jax_enable_x64", True)

DEV = qml.device("default.qubit")


def preprocess(tape: qml.tape.QuantumScript) -> qml.tape.QuantumScript:
    """The tape as default.qubit's preprocessing leaves it (what the executor receives)."""
    (out,), _ = DEV.preprocess_transforms()((tape,))
    return out


def reference(tape: qml.tape.QuantumScript):
    """default.qubit's analytic result."""
    return qml.execute([tape], DEV, diff_method=None)[0]


def assert_tree_close(got, ref, atol=1e-8):
    """Same nesting, shapes and values (to atol)."""
    if isinstance(ref, tuple | list):
        assert isinstance(got, tuple), type(got)
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert_tree_close(g, r, atol)
        return
    assert np.shape(got) == np.shape(ref), (np.shape(got), np.shape(ref))
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=atol, rtol=0)
