"""Tapes as the non-differentiable argument of a binding's custom rule."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class TapeBox:
    """Carries tapes through ``custom_jvp``/``custom_vjp`` as a non-pytree, non-diff argument.

    Tapes are not reliably pytrees (some operators cannot hold tracers or cotangents), and
    ``custom_vjp`` forbids pytree non-differentiable arguments; wrapping them hides them from JAX.
    Identity hashing keeps JAX from comparing tapes when it caches the rule.
    """

    tapes: tuple

    @classmethod
    def of(cls, tapes) -> TapeBox:
        """Box ``tapes`` with NumPy placeholders (same shape and dtype) for trainable values.

        Used by the ``custom_vjp`` bindings (the ``custom_jvp`` ones box the tapes as they are,
        which saves a tape copy per call). The bindings re-bind the trainable parameters from the differentiable argument on
        every use, so the boxed tapes only carry structure. Keeping the caller's tracers out of
        a non-differentiable argument keeps them from leaking: jax 0.12 keeps the ``custom_vjp``
        backward function, and so its non-differentiable arguments, alive in the jaxpr it was
        staging when forward mode over a ``custom_vjp`` raised (``jax.checking_leaks`` caught
        it).
        """
        boxed = []
        for tape in tapes:
            positions = list(tape.trainable_params)
            params = tape.get_parameters(trainable_only=True)
            if any(isinstance(p, jax.core.Tracer) for p in params):
                holders = [np.zeros(np.shape(p), jnp.result_type(p)) for p in params]
                tape = tape.bind_new_parameters(holders, positions)
                tape.trainable_params = positions
            boxed.append(tape)
        return cls(tuple(boxed))
