"""Whole models through the NumPy runtime: the shapes every node really
produces equal the static analysis's, weights follow PyTorch's names, layouts
and initialisation, loading rejects what does not fit, in-place writes never
change a result, and inputs are checked."""

from pathlib import Path

import numpy as np
import pytest

import archdsl
import archdsl.runtime
from archdsl.ops.base import state_key
from archdsl.runtime import CompileError
from archdsl.runtime.init import trained_like
from archdsl.runtime.kernels.activation import relu

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
ZOO = sorted(MODELS.glob("*.cnn"))


def small_inputs(model):
    """The smallest square size (from 32 up) at which the model analyses
    cleanly, for every input; the declared size when none does."""
    declared = {name: tuple(model.nodes[name].spec.shape) for name in model.inputs}
    for size in (32, 48, 64, 96, 128, 160, 224):
        trial = {name: (shape[0], *(size,) * (len(shape) - 1)) for name, shape in declared.items()}
        if archdsl.analyze(model, inputs=trial).ok:
            return trial
    return declared


def zoo_models():
    for path in ZOO:
        program = archdsl.load(path)
        assert program.ok, f"{path.name} does not elaborate"
        for model in program.models:
            yield pytest.param(model, id=f"{path.stem}:{model.name}")


def test_the_zoo_is_there():
    assert {"lenet5.cnn", "resnet18.cnn", "resnet50.cnn"} <= {path.name for path in ZOO}


@pytest.mark.parametrize("model", zoo_models())
def test_every_node_has_its_static_shape(model):
    """Run at a small size (or the declared one): each node's value has exactly the
    shape the static analysis inferred, batch prepended."""
    inputs = small_inputs(model)
    analysis = archdsl.analyze(model, inputs=inputs)
    assert analysis.ok, [d.message for d in analysis.diagnostics]
    plan = archdsl.runtime.make_plan(model, inputs, optimize=False)
    # Zero weights (running variances one) load much faster than VGG's 138M seeded ones.
    weights = {key: np.ones(shape) if key.endswith("running_var") else np.zeros(shape)
               for key, shape, _, _ in plan.parameters}
    net = archdsl.runtime.CompiledModel(plan, weights=weights)
    arrays = {name: np.random.default_rng(0).standard_normal((2, *shape), dtype=np.float32)
              for name, shape in inputs.items()}
    values = net.trace(**arrays)
    assert set(values) == set(model.nodes)
    for name, value in values.items():
        assert value.shape == (2, *analysis.shapes[name]), name
        assert value.dtype == np.float32, name
        assert np.all(np.isfinite(value)), name
    # The weights: PyTorch's keys and shapes, as the analysis counts them.
    state = net.state_dict()
    expected, trainable = {}, set()
    for node in model.nodes.values():
        cost = analysis.costs[node.name]
        for tensor, shape in {**cost.parameter_shapes, **cost.buffer_shapes}.items():
            expected[state_key(node.name, tensor)] = tuple(shape)
        trainable |= {state_key(node.name, tensor) for tensor in cost.parameter_shapes}
    assert {key: value.shape for key, value in state.items()} == expected
    assert sum(state[key].size for key in trainable) == analysis.totals.params


def random_state(net, seed=5):
    """Weights that keep signals alive through deep nets, and non-trivial running statistics."""
    return trained_like(net.state_dict(), seed)


@pytest.mark.parametrize("stem", ["resnet18", "resnet50", "densenet121", "shufflenet_v2_x1_0", "squeezenet1_1", "unet",
                                  "mobilenet_v2", "efficientnet_b0"])
def test_optimisations_never_change_results(stem):
    """Batchnorm folding, activation fusion and in-place writes: the same values (to
    rounding), and the caller's arrays untouched."""
    path = MODELS / f"{stem}.cnn"
    if not path.is_file():
        pytest.skip(f"no {path.name} in models/")
    model = archdsl.load(path).model()
    inputs = small_inputs(model)
    fast = archdsl.compile(model, inputs=inputs, dtype="float64")
    plain = archdsl.compile(model, inputs=inputs, dtype="float64", optimize=False)
    state = random_state(fast)
    fast.load_state_dict(state)
    plain.load_state_dict(state)
    assert any(step.inplace or step.fused_into for step in fast.plan.steps)
    assert not any(step.inplace or step.folded_into or step.fused_into for step in plain.plan.steps)
    x = {name: np.random.default_rng(1).standard_normal((2, *shape)) for name, shape in inputs.items()}
    before = {name: value.copy() for name, value in x.items()}
    got, want = fast(**x), plain(**x)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    for name in x:
        assert np.array_equal(x[name], before[name])


def test_batchnorm_is_folded_only_where_it_alone_reads_a_convolution():
    model = archdsl.loads("""
model Fold {
    input x: [3, 8, 8]
    a = x -> c1: conv2d(4, 3, padding=1) -> b1: batchnorm2d -> relu
    s = a -> c2: conv2d(4, 3, padding=1)
    b = s -> b2: batchnorm2d
    c = s -> relu
    d = a -> c3: conv2d(4, 1) -> b3: batchnorm2d(track_running_stats=false)
    output y = add(b, c) -> add(d) -> b4: batchnorm2d
}""").model()
    plan = archdsl.compile(model).plan
    folded = {step.node: step.folded_into for step in plan.steps if step.folded_into}
    assert folded == {"b1": "c1"}  # c2 has two readers; b3 has no running statistics; b4 follows an add
    assert plan.layers["c1"].fold == (("b1.weight", "b1.bias", "b1.running_mean", "b1.running_var"), 1e-05)


FUSE = """
model Fuse {
    input x: [4, 6, 6]
    a = x -> c1: conv2d(4, 3, padding=1) -> b1: batchnorm2d -> r1: relu
    s = add(a -> c2: conv2d(4, 3, padding=1) -> b2: batchnorm2d, a) -> r2: relu
    t = s -> c3: conv2d(4, 1)
    u = s -> c4: conv2d(4, 1, bias=false)
    v = add(t, u) -> r3: relu6
    w = v -> c5: conv2d(4, 1)
    late = v -> r4: relu
    q = add(w, late) -> r5: relu
    e = q -> c6: conv2d(4, 1)
    output y = add(e, x) -> r6: relu
    output z = q -> c7: conv2d(4, 1) -> r7: relu
    output k = z -> c8: conv2d(4, 1)
    output m = add(k, e)
}
"""


def test_adds_and_activations_are_fused_where_they_alone_read_a_result():
    """An add is done by the convolution computing one of its inputs (residual=) when
    only the add reads that convolution and the other input exists by then (the later
    of two candidates); relu/relu6 by the convolution or add whose result only it
    reads, batchnorm folded or add fused in between."""
    model = archdsl.loads(FUSE).model()
    steps = {step.node: step for step in archdsl.compile(model).plan.steps}
    fused = {node: step.fused_into for node, step in steps.items() if step.fused_into}
    assert fused == {"r1": "c1", "add_1": "c2", "r2": "c2", "add_2": "c4", "r3": "c4", "r5": "add_3", "r6": "add_4",
                     "r7": "c7"}
    # r4 is computed after c5: add_3 stays (in place); c6 has two readers; c8 is an output
    assert {node: step.residual for node, step in steps.items() if step.residual} == {"c2": "r1", "c4": "c3"}
    assert {node: step.arguments.get("activation") for node, step in steps.items()
            if step.arguments.get("activation")} == {"c1": "relu", "c2": "relu", "c4": "relu6", "add_3": "relu",
                                                      "add_4": "relu", "c7": "relu"}
    assert steps["add_3"].inplace and not steps["add_4"].inplace and steps["r4"].kernel is relu
    assert steps["add_1"].value_of == "b2" and steps["r1"].value_of == "b1"
    fast = archdsl.compile(model, dtype="float64", seed=3)
    plain = archdsl.compile(model, dtype="float64", optimize=False)
    plain.load_state_dict(random_state(fast))
    fast.load_state_dict(random_state(fast))
    x = np.random.default_rng(4).standard_normal((3, 4, 6, 6))
    got, want = fast(x), plain(x)
    for name in want:
        assert np.allclose(got[name], want[name], rtol=1e-12, atol=1e-12), name
    traced = fast.trace(x)
    assert np.allclose(traced["r2"], np.maximum(traced["b2"] + traced["r1"], 0), atol=1e-12)


VIEWS = """
model Views {
    input image: [4, 6, 6]
    features = image -> conv: conv2d(8, 3, padding=1)
    left = features -> narrow(0, 4) -> relu
    right = features -> narrow(4, 4) -> tanh
    flat = features -> flatten -> relu
    skip = features -> identity -> dropout
    both = concat(left, right) -> add(skip) -> relu
    output both
    output flat
    output skip
}
"""


def test_inplace_is_refused_where_memory_is_shared():
    """narrow/flatten/identity are views of conv's output: no kernel may write into
    them while conv's output (or an output of the model) is still needed."""
    model = archdsl.loads(VIEWS).model()
    fast = archdsl.compile(model, seed=0)
    plain = archdsl.compile(model, seed=0, optimize=False)
    x = np.random.default_rng(2).standard_normal((2, 4, 6, 6), dtype=np.float32)
    got, want = fast(x), plain(x)
    assert list(got) == ["both", "flat", "skip"]
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    steps = {step.node: step for step in fast.plan.steps}
    assert not steps["relu_1"].inplace and not steps["tanh_1"].inplace and not steps["relu_2"].inplace


def test_values_are_dropped_after_their_last_use():
    model = archdsl.load(MODELS / "resnet18.cnn").model()
    plan = archdsl.compile(model, inputs={"image": (3, 32, 32)}).plan
    live = set(model.inputs)
    peak = 0
    for step in plan.steps:
        live.add(step.node)
        peak = max(peak, len(live))
        live -= set(step.release)
    assert live == {"fc"} and peak <= 4


# ------------------------------------------------------------------ weights

TINY = """
model Tiny {
    input image: [3, 8, 8]
    image -> conv: conv2d(4, 3, padding=1) -> bn: batchnorm2d -> relu
          -> up: conv_transpose2d(2, 2, stride=2, groups=2)
          -> global_avgpool -> flatten -> fc: linear(5)
}
"""


@pytest.fixture(scope="module")
def tiny():
    return archdsl.loads(TINY).model()


def test_initialisation_follows_pytorch_defaults(tiny):
    state = archdsl.compile(tiny, seed=0, dtype="float64").state_dict()
    for key, fan_in in (("conv", 3 * 9), ("up", 1 * 4), ("fc", 2)):
        bound = 1 / np.sqrt(fan_in)   # kaiming_uniform(a=sqrt(5)) and the bias rule
        for tensor in ("weight", "bias"):
            values = state[f"{key}.{tensor}"]
            assert np.all(np.abs(values) <= bound), key
    big = archdsl.compile(archdsl.loads("model B { input x: [64] \n x -> fc: linear(512) }").model(), seed=0)
    weights = big.state_dict()["fc.weight"]
    assert abs(np.abs(weights).max() - 1 / 8) < 1e-3 and abs(weights.std() - 1 / 8 / np.sqrt(3)) < 2e-3
    assert np.array_equal(state["bn.weight"], np.ones(4)) and np.array_equal(state["bn.bias"], np.zeros(4))
    assert np.array_equal(state["bn.running_mean"], np.zeros(4))
    assert np.array_equal(state["bn.running_var"], np.ones(4))
    assert state["bn.num_batches_tracked"].shape == () and state["bn.num_batches_tracked"].dtype == np.int64


def test_the_same_seed_gives_the_same_weights(tiny):
    a = archdsl.compile(tiny, seed=7).state_dict()
    b = archdsl.compile(tiny, seed=7).state_dict()
    c = archdsl.compile(tiny, seed=8).state_dict()
    d = archdsl.compile(tiny, seed=7, dtype="float64").state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv.weight"], c["conv.weight"])
    assert np.array_equal(a["conv.weight"], d["conv.weight"].astype(np.float32))
    assert d["conv.weight"].dtype == np.float64


def test_a_tensor_initialisation_depends_only_on_its_name(tiny):
    """Adding a layer does not change the others' initial weights."""
    bigger = archdsl.loads(TINY.replace("-> fc: linear(5)", "-> fc: linear(5) -> head: linear(3)")).model()
    a, b = archdsl.compile(tiny, seed=1).state_dict(), archdsl.compile(bigger, seed=1).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_save_load_roundtrip(tiny, tmp_path):
    net = archdsl.compile(tiny, seed=1)
    path = tmp_path / "w.npz"
    net.save(path)
    other = archdsl.compile(tiny, seed=2).load(path)
    assert all(np.array_equal(v, other.state_dict()[k]) for k, v in net.state_dict().items())
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    assert np.array_equal(net(x), other(x))
    assert np.array_equal(archdsl.compile(tiny, weights=path)(x), net(x))
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(net.state_dict())


def test_loading_a_state_dict_converts_to_the_model_dtype(tiny):
    net = archdsl.compile(tiny, seed=1)
    state = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in net.state_dict().items()}
    state["conv.weight"] = state["conv.weight"] * 2
    net.load_state_dict(state)
    assert net.state_dict()["conv.weight"].dtype == np.float32
    assert np.allclose(net.state_dict()["conv.weight"], state["conv.weight"])
    x = np.ones((1, 3, 8, 8), np.float32)
    assert np.array_equal(net(x), archdsl.compile(tiny, weights=state)(x))  # packed weights are refreshed


def test_loading_rejects_missing_unexpected_and_misshapen_keys(tiny):
    net = archdsl.compile(tiny, seed=1)
    state = net.state_dict()
    del state["fc.bias"]
    state["fc.biass"] = np.zeros(5)
    state["conv.weight"] = np.zeros((4, 3, 5, 5))
    with pytest.raises(ValueError) as caught:
        net.load_state_dict(state)
    message = str(caught.value)
    assert "missing key 'fc.bias'" in message
    assert "unexpected key 'fc.biass'" in message
    assert "'conv.weight'" in message and "[4, 3, 5, 5]" in message and "[4, 3, 3, 3]" in message
    good = archdsl.compile(tiny, seed=1).state_dict()
    assert all(np.array_equal(v, net.state_dict()[k]) for k, v in good.items())  # unchanged on failure


def test_loading_needs_numbers_and_an_npz_without_pickles(tiny, tmp_path):
    net = archdsl.compile(tiny, seed=1)
    state = net.state_dict()
    state["fc.bias"] = np.array(["a"] * 5)
    with pytest.raises(ValueError, match="'fc.bias' holds"):
        net.load_state_dict(state)
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{**net.state_dict(), "fc.bias": np.array([object()] * 5, dtype=object)})
    with pytest.raises(ValueError, match="fc.bias"):
        net.load(objects)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        net.load(single)


# ------------------------------------------------------------------- inputs


def test_any_batch_size_and_rows_are_independent(tiny):
    net = archdsl.compile(tiny, seed=4, dtype="float64")
    x = np.random.default_rng(3).standard_normal((5, 3, 8, 8))
    batch = net(x)
    assert batch.dtype == np.float64 and batch.shape == (5, 5)
    for i in range(5):
        assert np.allclose(net(x[i:i + 1])[0], batch[i], atol=1e-12)


def test_inputs_are_checked(tiny):
    net = archdsl.compile(tiny, seed=0)
    with pytest.raises(ValueError, match=r"must have shape \[N, 3, 8, 8\].*add the batch dimension"):
        net(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"got \[2, 3, 9, 9\]"):
        net(np.zeros((2, 3, 9, 9)))
    with pytest.raises(ValueError, match="numbers"):
        net(np.array([["a"]]))
    with pytest.raises(TypeError, match="no input 'picture'"):
        net(picture=np.zeros((1, 3, 8, 8)))
    with pytest.raises(TypeError, match="missing"):
        net()
    assert net(image=np.zeros((1, 3, 8, 8), np.uint8)).dtype == np.float32


def test_other_input_sizes_compile_separately(tiny):
    net = archdsl.compile(tiny, inputs={"image": (3, 16, 12)})
    assert net(np.zeros((1, 3, 16, 12), np.float32)).shape == (1, 5)


def test_models_with_errors_do_not_compile():
    model = archdsl.loads("model Bad { input x: [3, 8, 8] \n x -> conv2d(4, 3) -> flatten -> fc: linear(5) }").model()
    assert archdsl.compile(model)(np.zeros((1, 3, 8, 8))).shape == (1, 5)
    with pytest.raises(CompileError, match="cannot run") as caught:
        archdsl.compile(model, inputs={"x": (3, 2, 2)})  # the 3x3 kernel no longer fits
    assert caught.value.diagnostics


def test_several_outputs_come_back_by_name():
    model = archdsl.loads("""
model Two {
    input a: [2, 4]
    input b: [2, 4]
    output s = add(a, b)
    output p = mul(a, b) -> relu
}""").model()
    net = archdsl.compile(model, dtype="float64")
    a, b = np.full((1, 2, 4), 2.0), np.full((1, 2, 4), -3.0)
    result = net(a, b=b)
    assert list(result) == ["s", "p"]
    assert np.array_equal(result["s"], a + b) and np.array_equal(result["p"], np.zeros((1, 2, 4)))


SCRATCH = """
model Scratchy {
    input image: [8, 12, 12]
    image -> a: conv2d(8, 3, padding=1, groups=8) -> b: conv2d(16, 3, stride=2, padding=1, groups=4)
          -> c: conv2d(16, 3, padding=1) -> relu -> global_avgpool -> flatten -> fc: linear(4)
}
"""


def test_scratch_buffers_serve_the_next_pass_and_calls_stay_independent(tmp_path):
    """The convolutions' work buffers are kept from pass to pass (one free scratch dict
    after a call, the same one reused), never change a result (each pass equals a model
    that never reused anything), and concurrent calls each get their own; the exported
    module gives its dict back too."""
    import threading

    from test_export import import_source, model_class

    from archdsl.emit.numpy_module import export

    model = archdsl.loads(SCRATCH).model()
    net = archdsl.compile(model, seed=3)
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((n, 8, 12, 12)).astype(np.float32) for n in (2, 5, 1, 2)]
    expected = [archdsl.compile(model, seed=3)(x) for x in inputs]
    first = net(inputs[0])
    (scratch,) = net._free_scratch
    assert scratch  # the convolutions put their buffers in it
    kept = first.copy()
    for x, want in zip(inputs, expected):
        np.testing.assert_array_equal(net(x), want)
        assert net._free_scratch == [scratch] and net._free_scratch[0] is scratch
    np.testing.assert_array_equal(first, kept)  # an earlier result is never a work buffer
    results: dict[int, list] = {}

    def run(index):
        results[index] = [net(inputs[index % 4]) for _ in range(20)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, outputs in results.items():
        for y in outputs:
            np.testing.assert_array_equal(y, expected[index % 4])
    assert 1 <= len(net._free_scratch) <= 4
    exported = model_class(import_source(export(model), tmp_path), model)(seed=3)
    np.testing.assert_array_equal(exported(inputs[1]), expected[1])
    assert len(exported._free_scratch) == 1
