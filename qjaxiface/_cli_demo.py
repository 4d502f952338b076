"""``qjaxiface demo``: a hybrid quantum classifier trained through qjaxiface.

A data re-uploading circuit on two qubits (``default.qubit``) encodes each 2-D point several
times, interleaved with trainable rotations and an entangling gate; a classical linear head turns
the two ``<Z>`` expectation values into a logit. The whole training step -- the ``jax.vmap`` over
the data batch, the binary cross-entropy, the gradient and the optax Adam update -- is one
``jax.jit``-compiled function, traced while ``qjaxiface.installed`` routes the QNode through
qjaxiface.

Examples:
    >>> import tempfile
    >>> from qjaxiface._cli_demo import run_demo
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     result = run_demo(steps=20, out_dir=tmp, progress=False)
    >>> result.loss_decreased  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DemoResult",
    "accuracy",
    "init_params",
    "make_classifier",
    "make_moons",
    "run_demo",
]

N_QUBITS = 2


def make_moons(
    n_samples: int = 200, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles ("two moons"), standardised to zero mean and unit variance.

    Args:
        n_samples: number of points; the first half (rounded down) gets label 0.
        noise: standard deviation of the Gaussian noise added to the points.
        seed: seed of the NumPy random generator.

    Returns:
        tuple[np.ndarray, np.ndarray]: points of shape ``(n_samples, 2)`` and labels in
        ``{0., 1.}`` of shape ``(n_samples,)``, both ``float32``, in shuffled order.

    Examples:
        >>> X, y = make_moons(10, seed=1)
        >>> X.shape, y.shape, sorted(set(y.tolist()))
        ((10, 2), (10,), [0.0, 1.0])
    """
    rng = np.random.default_rng(seed)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    t_upper = np.pi * rng.random(n_upper)
    t_lower = np.pi * rng.random(n_lower)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    X = np.concatenate([upper, lower]) + noise * rng.normal(size=(n_samples, 2))
    y = np.concatenate([np.zeros(n_upper), np.ones(n_lower)])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    order = rng.permutation(n_samples)
    return X[order].astype(np.float32), y[order].astype(np.float32)


def init_params(seed: int = 0, n_layers: int = 3) -> dict:
    """Initial parameters of ``make_classifier``.

    Args:
        seed: seed of the JAX PRNG key.
        n_layers: number of re-uploading layers.

    Returns:
        dict: ``"circuit"`` with shape ``(n_layers, 2, 4)`` -- per layer and qubit, a scale and
        an offset for the ``RY`` angle (from ``x[0]``) and for the ``RZ`` angle (from
        ``x[1]``) -- and a linear ``"head"`` (``"w"`` of shape ``(2,)``, scalar ``"b"``).

    Examples:
        >>> params = init_params(n_layers=2)
        >>> params["circuit"].shape, params["head"]["w"].shape
        ((2, 2, 4), (2,))
    """
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(seed)
    noise = 0.5 * jax.random.normal(key, (n_layers, N_QUBITS, 4))
    return {
        # Scales start near one and offsets near zero, so every layer sees the data.
        "circuit": noise + jnp.array([1.0, 0.0, 1.0, 0.0]),
        "head": {"w": jnp.array([1.0, -1.0]), "b": jnp.zeros(())},  # not weakly typed
    }


def make_classifier(n_layers: int = 3, device=None):
    """Build the hybrid model ``logits = head(<Z0>, <Z1>)`` of a data re-uploading circuit.

    Args:
        n_layers: number of re-uploading layers (must match the parameters).
        device: a PennyLane device with at least two wires; ``default.qubit`` if omitted.

    Returns:
        Callable: ``predict(params, X) -> logits`` for a batch ``X`` of shape ``(n, 2)``; the
        circuit is mapped over the batch with ``jax.vmap``.

    Examples:
        >>> import pennylane as qml
        >>> X, _ = make_moons(4)
        >>> predict = make_classifier(n_layers=1)
        >>> predict(init_params(n_layers=1), X).shape
        (4,)
    """
    import jax
    import jax.numpy as jnp
    import pennylane as qml

    dev = device if device is not None else qml.device("default.qubit", wires=N_QUBITS)

    @qml.qnode(dev)
    def circuit(weights, x):
        for layer in range(n_layers):
            for q in range(N_QUBITS):
                qml.RY(weights[layer, q, 0] * x[0] + weights[layer, q, 1], wires=q)
                qml.RZ(weights[layer, q, 2] * x[1] + weights[layer, q, 3], wires=q)
            qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(0)), qml.expval(qml.Z(1))

    def features(weights, x):
        return jnp.stack(circuit(weights, x))

    def predict(params, X):
        z = jax.vmap(features, in_axes=(None, 0))(params["circuit"], jnp.asarray(X))
        return z @ params["head"]["w"] + params["head"]["b"]

    return predict


def accuracy(logits, y) -> float:
    """Fraction of points whose predicted class (``logit > 0``) equals the label.

    Examples:
        >>> accuracy(np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, 0.0]))
        0.6666666666666666
    """
    return float(np.mean((np.asarray(logits) > 0) == (np.asarray(y) > 0.5)))


@dataclass
class DemoResult:
    """What ``run_demo`` produced.

    Attributes:
        losses: training loss before each step.
        accuracies: training accuracy before each step.
        final_loss: loss of the trained parameters.
        final_accuracy: accuracy of the trained parameters.
        seconds: wall time of the training (compilation included).
        compile_seconds: time of the first step (tracing and XLA compilation).
        loss_png: path of the loss curve.
        boundary_png: path of the decision boundary plot.
        routes: the qjaxiface boundary entries logged while tracing.
    """

    losses: list[float]
    accuracies: list[float]
    final_loss: float
    final_accuracy: float
    seconds: float
    compile_seconds: float
    loss_png: Path
    boundary_png: Path
    routes: list[str] = field(default_factory=list)

    @property
    def loss_decreased(self) -> bool:
        """Whether the final loss is below the initial loss."""
        return bool(self.losses) and self.final_loss < self.losses[0]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _plot_loss(losses, accuracies, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = np.arange(len(losses))
    ax.plot(steps, losses, color="tab:blue", label="loss (BCE)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("qjaxiface demo: data re-uploading classifier")
    acc_ax = ax.twinx()
    acc_ax.plot(steps, accuracies, color="tab:orange", alpha=0.7, label="accuracy")
    acc_ax.set_ylabel("training accuracy")
    acc_ax.set_ylim(0, 1.05)
    handles = ax.get_legend_handles_labels()[0] + acc_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right")
    fig.savefig(path, dpi=120)


def _plot_boundary(predict_grid, X, y, path: Path, resolution: int = 40) -> None:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pad = 0.5
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, resolution)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    prob = 1.0 / (1.0 + np.exp(-np.asarray(predict_grid(grid)).reshape(gx.shape)))

    fig = Figure(figsize=(5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    filled = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.5)
    cmap = matplotlib.colormaps["RdBu_r"]
    for label, name in ((0, "class 0"), (1, "class 1")):
        mine = np.asarray(y) == label
        ax.scatter(
            X[mine, 0], X[mine, 1], color=cmap(float(label)), edgecolors="k", s=18, label=name
        )
    ax.legend(loc="upper right", title="data", fontsize=8)
    fig.colorbar(filled, ax=ax, label="P(class 1)")
    ax.set_title("decision boundary")
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    fig.savefig(path, dpi=120)


def run_demo(
    steps: int = 120,
    out_dir: str | Path = "qjaxiface-demo",
    seed: int = 0,
    n_samples: int = 200,
    n_layers: int = 3,
    learning_rate: float = 0.05,
    progress: bool = True,
    verbose: bool = True,
) -> DemoResult:
    """Train the demo classifier through qjaxiface and save the plots.

    Args:
        steps: number of full-batch Adam steps.
        out_dir: folder for ``loss.png`` and ``decision_boundary.png`` (created if missing).
        seed: seed of the dataset and of the initial parameters.
        n_samples: number of training points.
        n_layers: number of re-uploading layers.
        learning_rate: Adam learning rate.
        progress: show a tqdm progress bar with the loss and the accuracy.
        verbose: print a summary.

    Returns:
        DemoResult: losses, accuracies, timings and the paths of the plots.
    """
    import jax
    import optax
    from tqdm.auto import tqdm

    import qjaxiface

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_moons(n_samples, noise=0.1, seed=seed)
    params = init_params(seed, n_layers)
    predict = make_classifier(n_layers)
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)

    def loss_fn(p):
        logits = predict(p, X)
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(), logits

    @jax.jit
    def step(p, state):
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss, logits

    predict_grid = jax.jit(predict)

    collect = _Collect()
    logger = logging.getLogger("qjaxiface")
    old_level = logger.level
    losses: list[float] = []
    accuracies: list[float] = []
    start = time.perf_counter()
    compile_seconds = 0.0
    with warnings.catch_warnings(), qjaxiface.installed():
        # default.qubit asks for complex128 even when x64 is off; JAX warns and uses complex64.
        warnings.filterwarnings("ignore", message=".*requested in astype is not available.*")
        logger.addHandler(collect)
        logger.setLevel(logging.DEBUG)
        bar = tqdm(range(steps), desc="training", disable=not progress, unit="step")
        try:
            for i in bar:
                params, opt_state, loss, logits = step(params, opt_state)
                losses.append(float(loss))
                accuracies.append(accuracy(logits, y))
                if i == 0:
                    compile_seconds = time.perf_counter() - start
                    logger.removeHandler(collect)
                    logger.setLevel(old_level)
                bar.set_postfix(
                    loss=f"{losses[-1]:.4f}", acc=f"{accuracies[-1]:.3f}", refresh=False
                )
        finally:
            bar.close()
            logger.removeHandler(collect)
            logger.setLevel(old_level)
        final_logits = predict_grid(params, X)
        final_loss = float(optax.sigmoid_binary_cross_entropy(final_logits, y).mean())
        final_accuracy = accuracy(final_logits, y)
        seconds = time.perf_counter() - start
        loss_png = out / "loss.png"
        boundary_png = out / "decision_boundary.png"
        _plot_loss([*losses, final_loss], [*accuracies, final_accuracy], loss_png)
        _plot_boundary(lambda grid: predict_grid(params, grid), X, y, boundary_png)

    result = DemoResult(
        losses=losses,
        accuracies=accuracies,
        final_loss=final_loss,
        final_accuracy=final_accuracy,
        seconds=seconds,
        compile_seconds=compile_seconds,
        loss_png=loss_png,
        boundary_png=boundary_png,
        routes=list(dict.fromkeys(collect.messages)),
    )
    if verbose:
        for route in result.routes:
            print(f"qjaxiface log: {route}")
        print(
            f"initial loss {losses[0]:.4f} (accuracy {accuracies[0]:.3f}) -> "
            f"final loss {final_loss:.4f} (accuracy {final_accuracy:.3f}) "
            f"after {steps} steps in {seconds:.1f} s (first step, with compilation: "
            f"{compile_seconds:.1f} s)"
        )
        print(f"saved {loss_png} and {boundary_png}")
    return result
