"""Templates kept whole (``_lift.py``): what lifts, what does not, and results through the boundary."""

from __future__ import annotations

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from xla_test_helpers import DEV

import qjaxiface
from qjaxiface import _caches
from qjaxiface.executors.xla import _lift, _select
from qjaxiface.executors.xla._lift import lift, per_parameter

PIPELINE = DEV.preprocess_transforms(DEV.setup_execution_config())


class FixedAngleLayer(qml.operation.Operation):
    """A template whose decomposition selects its weights and adds a constant angle."""

    num_wires = 2
    grad_method = None

    @staticmethod
    def compute_decomposition(weights, wires):
        return [
            qml.RX(weights[0], wires[0]),
            qml.RY(np.pi / 3, wires[1]),
            qml.CNOT(wires),
            qml.RZ(weights[1], wires[1]),
        ]


class TripledLayer(qml.operation.Operation):
    """A template computing with its weights (times 3, not a power of two): must not lift."""

    num_wires = 1
    grad_method = None

    @staticmethod
    def compute_decomposition(weights, wires):
        return [qml.RX(3 * weights[0], wires[0])]


class ScaledLayer(qml.operation.Operation):
    """A template negating, halving and eighthing its weights, as Pauli exponentials do."""

    num_wires = 2
    grad_method = None

    @staticmethod
    def compute_decomposition(weights, wires):
        return [
            qml.RX(-weights[0], wires[0]),
            qml.CNOT(wires),
            qml.RZ(weights[1] / 2, wires[1]),
            qml.RY(-weights[1] / 8, wires[0]),
            qml.RX(weights[0], wires[1]),
        ]


def _tape(ops, measurements=None):
    return qml.tape.QuantumScript(ops, measurements or [qml.expval(qml.Z(0))])


def test_layers_lift_to_element_reads():
    w = np.random.default_rng(0).random((2, 3, 3))
    lifted = lift(_tape([qml.StronglyEntanglingLayers(w, wires=range(3))]), PIPELINE)
    assert lifted is not None
    names = [op.name for op in lifted.tape.operations]
    assert names.count("Rot") == 6 and names.count("CNOT") == 6
    # Rot k on layer l, wire i reads weights[l, i, :]: elements 3 * (3 l + i) + (0, 1, 2).
    assert lifted.sources[:3] == (("elem", 0, 0), ("elem", 0, 1), ("elem", 0, 2))
    assert lifted.sources[-1] == ("elem", 0, w.size - 1)


def test_constants_of_a_decomposition_and_plain_ops_keep_their_values():
    ops = [qml.RX(0.4, 1), FixedAngleLayer(np.array([0.1, 0.2]), wires=[0, 1])]
    lifted = lift(_tape(ops), PIPELINE)
    assert lifted is not None
    kinds = [s[0] for s in lifted.sources]
    assert kinds == ["leaf", "elem", "const", "elem"]
    assert np.isclose(float(lifted.sources[2][1]), np.pi / 3)


@pytest.mark.parametrize(
    "ops",
    [
        [TripledLayer(np.array([0.3]), wires=0)],  # computes with its weights
        [qml.IQPEmbedding(np.array([0.1, 0.2, 0.3]), wires=range(3))],  # products of features
        [qml.StronglyEntanglingLayers(np.ones((4, 1, 2, 3)), wires=range(2))],  # broadcast
        [qml.RX(0.1, 0), qml.CNOT([0, 1])],  # nothing to lift
        [qml.BasisEmbedding(np.array([1, 0]), wires=range(2))],  # integer features
    ],
    ids=["computed", "iqp-products", "broadcast", "no-template", "integer"],
)
def test_what_does_not_lift(ops):
    assert lift(_tape(ops), PIPELINE) is None


def _circuit(diff_method, template):
    @qml.qnode(qml.device("default.qubit", wires=3), diff_method=diff_method)
    def circuit(w, v, x):
        qml.AngleEmbedding(x, wires=range(3))
        if template == "sel":
            qml.StronglyEntanglingLayers(w, wires=range(3))
        else:
            qml.SimplifiedTwoDesign(v[0], w[:, :2, :2], wires=range(3))
        qml.BasicEntanglerLayers(v, wires=range(3), rotation=qml.RY)
        qml.RX(2 * x[0], 1)
        FixedAngleLayer(v[0, :2], wires=[2, 0])
        return qml.expval(qml.Z(0) @ qml.X(2)), qml.expval(
            qml.Hamiltonian([x[1], 0.5], [qml.Y(1), qml.Z(2)])
        )

    return circuit


@pytest.mark.parametrize("template", ["sel", "two-design"])
@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift", "finite-diff"])
def test_lifted_results_and_derivatives_match_pennylane(diff_method, template, monkeypatch):
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.random((3, 3, 3)))
    v = jnp.asarray(rng.random((2, 3)))
    x = jnp.asarray(rng.random(3))

    def vec(circuit):
        return lambda *a: jnp.stack(circuit(*a))

    ref_circuit = vec(_circuit("backprop", template))  # PennyLane's own boundary
    ref = (ref_circuit(w, v, x), jax.jacobian(ref_circuit, argnums=(0, 1, 2))(w, v, x))
    seen = []
    original = _select.cached_lift

    def spy(*args):
        out = original(*args)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(_select, "cached_lift", spy)
    with qjaxiface.installed():
        f = vec(_circuit(diff_method, template))
        got = jax.jit(lambda *a: (f(*a), jax.jacobian(f, argnums=(0, 1, 2))(*a)))(w, v, x)
        head = jax.jit(jax.hessian(lambda w: f(w, v, x)[0]))(w)
    assert seen and all(seen), "the templates should have stayed whole"
    atol = 1e-5 if diff_method == "finite-diff" else 1e-8
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, atol=atol)
    if diff_method == "finite-diff":
        return  # second differences of h=1e-7 steps are noise
    ref_head = jax.hessian(lambda w: ref_circuit(w, v, x)[0])(w)
    np.testing.assert_allclose(head, ref_head, atol=1e-8)


def test_per_parameter_view_gives_each_gate_parameter_its_own_element():
    w = jnp.asarray(np.random.default_rng(2).random((2, 3)))
    x = jnp.asarray(0.7)
    # v[0] feeds two templates, x two gates: every read is its own element of a vector.
    ops = [
        qml.RX(x, 2),
        qml.BasicEntanglerLayers(w, wires=range(3)),
        FixedAngleLayer(w[0, :2], wires=[2, 0]),
    ]
    tape = _tape(ops, [qml.expval(qml.Hamiltonian([x], [qml.Y(1)]))])
    lifted = lift(tape, PIPELINE)
    leaves = (x, w, w[0, :2], x)
    view = per_parameter(lifted, leaves)
    assert [(j, list(e), c) for j, e, c in view.reads] == [
        (0, [0], None),
        (1, list(range(6)), None),
        (2, [0, 1], None),
    ]
    assert view.direct == {3}  # the observable's coefficient is read as it is
    vectors = view.widen(leaves)
    np.testing.assert_allclose(vectors[1], np.ravel(w))
    np.testing.assert_allclose(vectors[2], w[0, :2])
    kinds = [s[0] for s in view.lifted.sources]
    assert kinds.count("elem") == 9 and kinds.count("const") == 1
    assert view.lifted.n_op_leaves == 3 + 3


def test_scaled_weights_lift_to_scaled_element_reads():
    w = np.array([0.3, 0.7])
    lifted = lift(_tape([ScaledLayer(w, wires=[0, 1])]), PIPELINE)
    assert lifted is not None
    assert lifted.sources == (
        ("elem", 0, 0, -1.0),
        ("elem", 0, 1, 0.5),
        ("elem", 0, 1, -0.125),
        ("elem", 0, 0),
    )
    view = per_parameter(lifted, (jnp.asarray(w),))
    ((j, index, scale),) = view.reads
    assert j == 0 and list(index) == [0, 1, 1, 0]
    np.testing.assert_array_equal(scale, [-1.0, 0.5, -0.125, 1.0])
    np.testing.assert_allclose(view.widen((jnp.asarray(w),))[0], [-0.3, 0.35, -0.0875, 0.3])


def _uccsd(diff_method):
    singles, doubles = qml.qchem.excitations(2, 4)
    s_wires, d_wires = qml.qchem.excitations_to_wires(singles, doubles)

    @qml.qnode(qml.device("default.qubit", wires=4), diff_method=diff_method)
    def circuit(w, v):
        qml.UCCSD(w, range(4), s_wires, d_wires, init_state=np.array([1, 1, 0, 0]), n_repeats=2)
        ScaledLayer(v, wires=[3, 0])
        return qml.expval(qml.Z(0) @ qml.X(1) + 0.5 * qml.Y(2))

    return circuit


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_uccsd_lifts_and_matches_pennylane(diff_method, monkeypatch):
    # UCCSD's excitations decompose into RZ(±θ/2) and RZ(±θ/8): scaled elements.
    rng = np.random.default_rng(6)
    w, v = jnp.asarray(rng.uniform(-2, 2, (2, 3))), jnp.asarray(rng.uniform(-2, 2, 2))
    ref_fn = _uccsd("backprop")  # PennyLane's own boundary
    ref = (ref_fn(w, v), jax.grad(ref_fn, argnums=(0, 1))(w, v))
    seen = []
    original = _select.cached_lift

    def spy(*args):
        out = original(*args)
        seen.append(out is not None and any(len(s) == 4 for s in out.sources))
        return out

    monkeypatch.setattr(_select, "cached_lift", spy)
    with qjaxiface.installed():
        fn = _uccsd(diff_method)
        got = jax.jit(lambda w, v: (fn(w, v), jax.grad(fn, argnums=(0, 1))(w, v)))(w, v)
        hess = jax.jit(jax.hessian(fn, argnums=1))(w, v)
    assert seen and all(seen), "UCCSD should have stayed whole, with scaled reads"
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, atol=1e-8)
    np.testing.assert_allclose(hess, jax.hessian(ref_fn, argnums=1)(w, v), atol=1e-8)


@pytest.mark.parametrize("diff_method", ["parameter-shift", "spsa"])
def test_shift_rules_on_lifted_templates_under_vmap_and_shots(diff_method):
    w = jnp.asarray(np.random.default_rng(3).random((3, 2, 3)))
    kwargs = {"num_directions": 200, "sampler_rng": 5} if diff_method == "spsa" else {}

    def make(dm, shots=None, **kw):
        dev = qml.device("default.qubit", wires=2, seed=jax.random.key(4))

        @qml.qnode(dev, diff_method=dm, shots=shots, gradient_kwargs=kw)
        def circuit(w):
            qml.StronglyEntanglingLayers(w, wires=range(2))
            return qml.expval(qml.Z(0) @ qml.Z(1))

        return circuit

    ref = jax.vmap(jax.grad(make("backprop")))(jnp.stack([w, 2 * w]))
    with qjaxiface.installed():
        got = jax.jit(jax.vmap(jax.grad(make(diff_method, **kwargs))))(jnp.stack([w, 2 * w]))
        shots = jax.jit(jax.grad(make("parameter-shift", shots=20000)))(w)
    np.testing.assert_allclose(got, ref, atol=0.3 if diff_method == "spsa" else 1e-8)
    np.testing.assert_allclose(shots, ref[0], atol=0.05)


def test_stand_ins_for_structure_questions_touch_only_traced_templates():
    from qjaxiface.executors.xla._lift import templates_with_stand_ins

    seen = {}

    def f(w, x):
        tape = _tape(
            [
                qml.StronglyEntanglingLayers(w, wires=range(2)),
                qml.pow(qml.prod(qml.RX(x, 0), qml.RY(x, 1)), 2),
            ]
        )
        out = templates_with_stand_ins(tape, DEV)
        seen["template"] = out.operations[0].data[0]
        seen["pow"] = out.operations[1].data[0]
        broadcast = _tape([qml.RX(jnp.stack([x, x]), 0), qml.StronglyEntanglingLayers(w, [0, 1])])
        seen["broadcast_unchanged"] = templates_with_stand_ins(broadcast, DEV) is broadcast
        return x

    jax.jit(f)(jnp.ones((1, 2, 3)), 0.5)
    assert isinstance(seen["template"], np.ndarray) and seen["template"].shape == (1, 2, 3)
    assert isinstance(seen["pow"], jax.core.Tracer)  # composite ops keep their parameters
    assert seen["broadcast_unchanged"]


class NoRuleRX(qml.operation.Operation):
    """RX without a shift rule: parameter-shift leaves it to plain differentiation."""

    num_params = 1
    num_wires = 1
    grad_method = "F"

    @staticmethod
    def compute_matrix(theta):
        return qml.RX.compute_matrix(theta)


class MixedRuleLayer(qml.operation.Operation):
    num_wires = 2
    grad_method = None

    @staticmethod
    def compute_decomposition(weights, wires):
        return [NoRuleRX(weights[0], wires[0]), qml.CNOT(wires), qml.RY(weights[1], wires[1])]


def test_parameter_shift_differentiates_elements_without_a_rule_by_autodiff():
    w = jnp.asarray([0.4, 1.1])

    def make(dm):
        @qml.qnode(qml.device("default.qubit", wires=2), diff_method=dm)
        def circuit(w):
            MixedRuleLayer(w, wires=[0, 1])
            return qml.expval(qml.Z(0) @ qml.Z(1))

        return circuit

    lifted = lift(_tape([MixedRuleLayer(np.array([0.1, 0.2]), wires=[0, 1])]), PIPELINE)
    assert lifted is not None and [s[0] for s in lifted.sources] == ["elem", "elem"]
    ref = jax.grad(make("backprop"))(w)
    with qjaxiface.installed():
        got = jax.jit(jax.grad(make("parameter-shift")))(w)
        # forward mode, so the masked tangent of the element without a rule is exercised alone
        col = jax.jit(jax.jvp, static_argnums=0)(make("parameter-shift"), (w,), (jnp.ones(2),))
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(col[1], ref.sum(), atol=1e-10)


# ------------------------------------------------------------------ one lift per structure


def _sel_qnode(diff_method="adjoint", ranges=None, angle=0.3, traced_gate=False):
    @qml.qnode(qml.device("default.qubit", wires=3), diff_method=diff_method)
    def circuit(w, x=0.2):
        qml.RY(angle, 1)  # a concrete gate: its value belongs to the structure
        if traced_gate:
            qml.RX(x, 0)  # a traced value outside the template
        qml.StronglyEntanglingLayers(w, wires=range(3), ranges=ranges)
        return qml.expval(qml.Z(0) @ qml.X(2))

    return circuit


def _reference(w, **kwargs):
    # PennyLane's own boundary (qjaxiface not installed): value and gradient.
    return jax.value_and_grad(_sel_qnode("backprop", **kwargs))(w)


@pytest.fixture
def lift_count(monkeypatch):
    _lift.clear_cache()
    calls = []
    original = _lift.lift

    def counting(tape, pipeline):
        calls.append(tape)
        return original(tape, pipeline)

    monkeypatch.setattr(_lift, "lift", counting)
    yield calls
    _lift.clear_cache()


def _no_tracers_kept():
    for entries in _lift._cache.values():
        for lifted in entries.values():
            leaves = jax.tree_util.tree_leaves(lifted.tape) if lifted is not None else []
            assert not any(isinstance(x, jax.core.Tracer) for x in leaves)


def test_one_lift_per_structure_across_calls_and_transforms(lift_count):
    rng = np.random.default_rng(3)
    w1, w2 = (jnp.asarray(rng.random((2, 3, 3))) for _ in range(2))
    with qjaxiface.installed(executor="xla"):
        vg = jax.value_and_grad(_sel_qnode())
        got = [vg(w1), vg(w2)]  # eager grad
        assert len(lift_count) == 1
        got += [jax.jit(vg)(w1), jax.jit(lambda w: vg(w))(w2)]  # two traces under jit
        assert len(lift_count) == 2  # the interface is part of the key: one more
    for (value, grad), w in zip(got, (w1, w2, w1, w2)):
        ref_value, ref_grad = _reference(w)
        np.testing.assert_allclose(value, ref_value, atol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, atol=1e-10)
    _no_tracers_kept()


@pytest.mark.parametrize(
    "change",
    [{"ranges": (2, 1)}, {"angle": 0.5}, {"layers": 3}],
    ids=["hyperparameters", "concrete-value", "shape"],
)
def test_a_new_structure_lifts_again_with_its_own_result(change, lift_count):
    layers = change.pop("layers", 2)
    w = jnp.asarray(np.random.default_rng(4).random((layers, 3, 3)))
    w_base = jnp.asarray(np.random.default_rng(4).random((2, 3, 3)))
    with qjaxiface.installed(executor="xla"):
        base = jax.value_and_grad(_sel_qnode())(w_base)
        got = jax.value_and_grad(_sel_qnode(**change))(w)
    assert len(lift_count) == 2
    for g, r in zip(base + got, _reference(w_base) + _reference(w, **change)):
        np.testing.assert_allclose(g, r, atol=1e-10)


def test_a_traced_value_outside_templates_lifts_every_call(lift_count):
    w = jnp.asarray(np.random.default_rng(5).random((2, 3, 3)))
    xs = (0.1, 0.7)
    with qjaxiface.installed(executor="xla"):
        circuit = _sel_qnode(traced_gate=True)
        got = [jax.grad(circuit, argnums=(0, 1))(w, jnp.asarray(x)) for x in xs]
    assert len(lift_count) == 2
    for g, x in zip(got, xs):
        ref = jax.grad(_sel_qnode("backprop", traced_gate=True), argnums=(0, 1))(w, x)
        for a, b in zip(g, ref):
            np.testing.assert_allclose(a, b, atol=1e-10)
    _no_tracers_kept()


def test_remembered_lifts_are_cleared_with_every_cache(lift_count):
    assert "lifted templates" in _caches.registered()
    w = jnp.asarray(np.random.default_rng(6).random((1, 3, 3)))
    circuit = _sel_qnode()  # entries live as long as the device
    with qjaxiface.installed(executor="xla"):
        circuit(w)
        assert sum(len(e) for e in _lift._cache.values()) == 1
        qjaxiface.clear_caches()
        assert sum(len(e) for e in _lift._cache.values()) == 0
        circuit(w)
    assert len(lift_count) == 2
    del circuit
    gc.collect()
    assert not _lift._cache  # nor longer


@pytest.mark.parametrize(
    "ops, runs",
    [
        ([qml.StronglyEntanglingLayers(np.ones((2, 3, 3)), wires=range(3))], 1),
        ([qml.RX(0.4, 1), qml.AngleEmbedding(np.ones(3), wires=range(3))], 1),
        ([FixedAngleLayer(np.array([0.1, 0.2]), wires=[0, 1])], 2),  # a constant angle
        ([ScaledLayer(np.array([0.3, 0.7]), wires=[0, 1])], 1),  # scaled tags: one run
        ([TripledLayer(np.array([0.3]), wires=0)], 2),  # computed: the second run refuses
    ],
    ids=["selects-only", "with-plain-op", "constant", "scaled", "computed"],
)
def test_a_second_decomposition_only_for_values_that_are_not_tags(ops, runs):
    class Counting:
        """The device pipeline, counting its runs."""

        calls = 0

        def __iter__(self):
            return iter(PIPELINE)

        def __call__(self, tapes):
            Counting.calls += 1
            return PIPELINE(tapes)

    lifted = lift(_tape(ops), Counting())
    assert Counting.calls == runs
    assert (lifted is None) == isinstance(ops[0], TripledLayer)
