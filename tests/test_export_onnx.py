"""``archdsl export --to onnx``.

The oracle is the NumPy runtime (``archdsl.compile``), itself checked
against PyTorch's semantics elsewhere: for every zoo model and for a model
using every op (``ALL_OPS``), onnxruntime's output equals the runtime's to
1e-5 relative (to the output's largest magnitude) on random weights at a
trained network's scale (``random_state``), batch 2.  The ONNX checker
(``full_check``) must pass, and ONNX's own shape inference must find for
every node the shape the static analysis states.
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_export import ALL_OPS, _rename
from test_runtime_models import random_state, small_inputs

import archdsl
import archdsl.runtime
from archdsl.cli import main
from archdsl.emit import onnx as onnx_export
from archdsl.emit.onnx import UNNAMED_SUFFIX, OnnxExportError, build, mapping_table, serialize, write
from archdsl.ops import OPS, OpSpec

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
ZOO = sorted(MODELS.glob("*.cnn"))
TOLERANCE = 1e-5


def trained_scale(plan, seed=5):
    """``test_runtime_models.random_state``'s recipe (He-normal weights, random
    running statistics) drawn in float32 straight from the plan: VGG's 138M
    weights need no default initialisation first."""
    generator = np.random.default_rng(seed)
    state = {}
    for key, shape, _, _ in plan.parameters:
        if key.endswith("num_batches_tracked"):
            state[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            state[key] = generator.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) > 1:
            state[key] = generator.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2 / np.prod(shape[1:])))
        else:
            state[key] = generator.standard_normal(shape, dtype=np.float32) * np.float32(0.1) + key.endswith(".weight")
    return state


def prepared(model, inputs=None, seed=5):
    """(analysis shapes, NumPy net with random trained-scale weights)."""
    analysis = archdsl.analyze(model, inputs=inputs)
    assert analysis.ok, [d.message for d in analysis.diagnostics]
    plan = archdsl.runtime.make_plan(model, {name: analysis.shapes[name] for name in model.inputs})
    return analysis.shapes, archdsl.runtime.CompiledModel(plan, weights=trained_scale(plan, seed))


def session(data: bytes):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def relative_error(model, net, data, batch=2, seed=1):
    shapes = {name: net.INPUTS[name] for name in model.inputs}
    generator = np.random.default_rng(seed)
    x = {name: generator.standard_normal((batch, *shape)).astype(np.float32) for name, shape in shapes.items()}
    expected = net(**x)
    expected = expected if isinstance(expected, dict) else {next(iter(model.outputs)): expected}
    runner = session(data)
    got = dict(zip([o.name for o in runner.get_outputs()], runner.run(None, x)))
    assert set(got) == set(model.outputs)
    errors = {}
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        errors[name] = float(np.max(np.abs(got[name] - value)) / max(np.max(np.abs(value)), 1e-30))
    return max(errors.values())


def inferred_shapes(proto):
    """Every value's shape as ONNX's shape inference finds it, from a copy
    without the exporter's value_info."""
    bare = onnx.ModelProto()
    bare.graph.CopyFrom(proto.graph)
    bare.opset_import.extend(proto.opset_import)
    bare.ir_version = proto.ir_version
    del bare.graph.value_info[:]
    for tensor in bare.graph.initializer:  # inference reads their dims, not their (large) data
        tensor.ClearField("raw_data")
    inferred = onnx.shape_inference.infer_shapes(bare, strict_mode=True)
    found = {}
    for info in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        dims = info.type.tensor_type.shape.dim
        found[info.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
    return found


def check_all_three_ways(model, shapes, net, batch=2):
    """The checker, shape inference and onnxruntime vs NumPy; returns the error."""
    proto = build(model, shapes, net.state_dict(), batch=batch)
    data = serialize(proto)
    onnx.checker.check_model(data, full_check=True)
    found = inferred_shapes(proto)
    for name in model.nodes:
        assert found[name] == (batch, *shapes[name]), name
    return proto, relative_error(model, net, data, batch)


# ------------------------------------------------------------ the registry


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.kind())
def test_every_op_has_an_onnx_lowering(op):
    assert op.onnx_ops, f"{op.kind()} declares no onnx_ops"
    assert op.to_onnx is not OpSpec.to_onnx, f"{op.kind()} has no ONNX lowering (to_onnx)"


def test_the_op_mapping_table_in_the_docs_is_in_sync():
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    assert mapping_table() in text, "regenerate the table: python -c 'from archdsl.emit.onnx import mapping_table; ...'"


def test_importing_archdsl_does_not_import_onnx():
    import subprocess
    import sys

    code = "import sys, archdsl, archdsl.cli, archdsl.ops; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------- every op


@pytest.mark.parametrize("opset", [19, 20, 21])
def test_every_op_matches_the_numpy_runtime(opset):
    """ALL_OPS has every op kind with the arguments that change the lowering
    (ceil_mode, count_include_pad, "same", modes, groups...); opset 19 spells
    Gelu out, opsets before 21 GroupNormalization (per-channel affine from 21)."""
    model = archdsl.loads(ALL_OPS).model()
    shapes, net = prepared(model)
    proto = build(model, shapes, net.state_dict(), batch=2, opset=opset)
    data = serialize(proto)
    onnx.checker.check_model(data, full_check=True)
    assert relative_error(model, net, data) < TOLERANCE
    assert ("Gelu" in {n.op_type for n in proto.graph.node}) == (opset >= 20)
    assert ("GroupNormalization" in {n.op_type for n in proto.graph.node}) == (opset >= 21)


POOLING = """
model Pools {
    input image: [3, 7, 10]
    input seq: [4, 13]
    a = image -> maxpool2d(2, stride=2, padding=1, ceil_mode=true) -> relu
    b = image -> avgpool2d(2, stride=2, padding=1, ceil_mode=true) -> relu
    c = image -> avgpool2d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false) -> relu
    d = image -> maxpool2d(3, stride=3, padding=1, ceil_mode=true, dilation=1) -> relu
    e = image -> avgpool2d(2, stride=3, ceil_mode=true) -> relu
    f = image -> local_response_norm(4, 0.01, 0.75, 2.0) -> adaptive_avgpool2d((3, 4))
    g = seq -> local_response_norm(5) -> maxpool1d(2, stride=2, padding=1, ceil_mode=true) -> adaptive_avgpool1d(5)
    h = image -> upsample(size=(5, 13), mode="bilinear") -> upsample(scale_factor=(1.5, 0.7), mode="nearest")
    output out_a = a
    output out_b = b
    output out_c = c
    output out_d = d
    output out_e = e
    output out_f = f
    output out_g = g
    output out_h = h
}
"""


def test_the_known_traps_match_the_numpy_runtime():
    """ceil_mode windows PyTorch drops (ONNX's shape rule keeps them),
    count_include_pad with ceil_mode, LRN of an even size (ONNX's window is
    shifted by one), uneven adaptive pooling, resize by size and by factors."""
    program = archdsl.loads(POOLING)
    assert program.ok, [d.message for d in program.diagnostics]
    model = program.model()
    shapes, net = prepared(model)
    _, error = check_all_three_ways(model, shapes, net)
    assert error < TOLERANCE


# ------------------------------------------------------------------ the zoo


def zoo_models():
    for path in ZOO:
        for model in archdsl.load(path).models:
            yield pytest.param(path.stem, model, id=f"{path.stem}:{model.name}")


@pytest.mark.parametrize("stem, model", zoo_models())
def test_the_zoo_exports_checks_and_matches_numpy(stem, model):
    """At a small input size where the model allows (test_runtime_models.small_inputs)."""
    inputs = small_inputs(model)
    shapes, net = prepared(model, inputs)
    proto, error = check_all_three_ways(model, shapes, net)
    assert error < TOLERANCE, f"{stem}: {error:.2e}"
    # Names: initializers are state_dict keys (an unnamed tensor's with a suffix: its key is its
    # node's value's name), ONNX nodes are named after archdsl nodes.
    state = net.state_dict()
    assert {t.name.removesuffix(UNNAMED_SUFFIX) for t in proto.graph.initializer} <= set(state)
    node_names = {n.name for n in proto.graph.node}
    assert {name for name in model.nodes if name not in model.inputs} <= node_names
    assert [i.name for i in proto.graph.input] == list(model.inputs)
    assert [o.name for o in proto.graph.output] == list(model.outputs)
    # Every ONNX operator used is one the op declares (docs/export.md's table).
    declared = {name: set(node.spec.onnx_ops) | {"Constant"} for name, node in model.nodes.items()}
    for node in proto.graph.node:
        owner = node.name.split("/")[0]
        if owner in declared:
            assert node.op_type in declared[owner], (node.name, node.op_type)
            assert node.doc_string.startswith(str(model.nodes[owner].span))


# ------------------------------------------------------- the file itself


def lenet():
    return archdsl.load(MODELS / "lenet5.cnn").model()


def test_export_is_deterministic():
    model = lenet()
    shapes, net = prepared(model)
    first = serialize(build(model, shapes, net.state_dict()))
    assert first == serialize(build(model, shapes, net.state_dict()))
    assert first != serialize(build(model, shapes, net.state_dict(), dynamic_batch=True))


def test_dynamic_batch_runs_at_any_batch():
    model = lenet()
    shapes, net = prepared(model)
    proto = build(model, shapes, net.state_dict(), dynamic_batch=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert relative_error(model, net, serialize(proto), batch=3) < TOLERANCE
    assert proto.opset_import[0].version == 20 and proto.ir_version == 9


def test_hostile_names_are_only_strings():
    """Node, output and model names and file names that would break code
    stay data: the model checks and runs."""
    base = archdsl.loads("""
model M {
    input image: [3, 6, 6]
    image -> conv: conv2d(4, 3) -> bn: batchnorm2d -> relu -> flatten -> fc: linear(2)
}""").model()
    model = _rename(base, {"conv": 'c"; rm -rf /\n', "bn": "bn/Relu", "fc": "relu_1/Flatten"})
    shapes, net = prepared(model)
    proto = build(model, shapes, net.state_dict(), batch=2)
    data = serialize(proto)
    onnx.checker.check_model(data, full_check=True)
    assert relative_error(model, net, data) < TOLERANCE
    assert proto.graph.name == model.name
    assert {n.name for n in proto.graph.node} >= {'c"; rm -rf /\n', "bn/Relu", "relu_1/Flatten"}


def test_an_op_that_cannot_lower_is_a_located_diagnostic(tmp_path, capsys):
    source = tmp_path / "m.cnn"
    source.write_text('model M {\n    input x: [2, 5]\n    x -> pad(1, mode="circular") -> relu\n}\n')
    model = archdsl.load(source).model()
    shapes, net = prepared(model)
    with pytest.raises(OnnxExportError) as raised:
        build(model, shapes, net.state_dict(), opset=18)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.code == "E701" and "pad" in diagnostic.message and diagnostic.span.line == 3
    out = tmp_path / "m.onnx"
    assert main(["export", str(source), "-o", str(out), "--to", "onnx", "--opset", "18"]) == 1
    assert "E701" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(source), "-o", str(out), "--to", "onnx", "--opset", "19"]) == 0


def test_external_data_for_large_models(tmp_path):
    model = lenet()
    shapes, net = prepared(model)
    proto = build(model, shapes, net.state_dict(), batch=2)
    path = tmp_path / "lenet.onnx"
    written = write(proto, path, external_threshold=1000)
    assert written == [tmp_path / "lenet.onnx.data", path]
    assert path.stat().st_size < 100_000 < (tmp_path / "lenet.onnx.data").stat().st_size
    onnx.checker.check_model(str(path), full_check=True)
    options = ort.SessionOptions()
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    y = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(y, net(x), rtol=0, atol=TOLERANCE * np.abs(net(x)).max())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------- CLI


def test_cli_export_onnx_with_npz_weights(tmp_path, capsys):
    model = lenet()
    net = archdsl.compile(model, seed=0)
    net.load_state_dict(random_state(net))
    np.savez(tmp_path / "w.npz", **net.state_dict())
    out = tmp_path / "lenet.onnx"
    args = ["export", str(MODELS / "lenet5.cnn"), "-o", str(out), "--to", "onnx", "--weights", str(tmp_path / "w.npz")]
    assert main(args) == 0
    proto = onnx.load(str(out))
    assert {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}.keys() <= net.state_dict().keys()
    assert relative_error(model, net, out.read_bytes(), batch=1) < TOLERANCE
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first


def test_cli_export_onnx_with_a_torch_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")  # the checkpoint format needs torch; the .npz path does not
    model = lenet()
    net = archdsl.compile(model, seed=0)
    net.load_state_dict(random_state(net))
    torch.save({k: torch.from_numpy(v) for k, v in net.state_dict().items()}, tmp_path / "w.pt")
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out), "--to", "onnx", "--weights",
                 str(tmp_path / "w.pt")]) == 0
    assert relative_error(model, net, out.read_bytes(), batch=1) < TOLERANCE


@pytest.mark.parametrize("extra, code, message", [
    (["--to", "onnx", "--opset", "12"], 2, "supports opsets"),
    (["--opset", "20"], 2, "apply to --to onnx"),
    (["--to", "onnx", "--weights", "nope.npz"], 2, "no such file"),
    (["--to", "torch", "--weights", "w.npz"], 2, "applies to --to onnx"),
])
def test_cli_export_usage_errors(tmp_path, capsys, extra, code, message):
    suffix = ".onnx" if "onnx" in extra else ".py"
    out = tmp_path / f"m{suffix}"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out), *extra]) == code
    assert message in capsys.readouterr().err and not out.exists()


def test_cli_bad_weights_exit_1_and_write_nothing(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", wrong=np.zeros(3))
    out = tmp_path / "m.onnx"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out), "--to", "onnx", "--weights",
                 str(tmp_path / "w.npz")]) == 1
    assert "unexpected key 'wrong'" in capsys.readouterr().err and not out.exists()


def test_without_the_extra_the_cli_names_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    out = tmp_path / "m.onnx"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out), "--to", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'archdsl[onnx]'" in err and "Traceback" not in err and not out.exists()
    assert onnx_export.INSTALL_HINT in err


def test_a_learnable_tensor_keyed_by_its_node_name_exports():
    """scale's state_dict key is its node's name, which is its ONNX value's name too: the
    initializer takes the key with UNNAMED_SUFFIX, and the graph computes what NumPy does."""
    source = ("model LS {\n    input x: [3, 4, 4]\n"
              "    output y = x -> layer_scale: scale((3, 1, 1), init=0.5) -> conv2d(2, 1) -> g: scale((1, 4, 4))\n}\n")
    model = archdsl.loads(source).model()
    shapes, net = prepared(model)
    proto = build(model, shapes, net.state_dict(), batch=2)
    onnx.checker.check_model(serialize(proto), full_check=True)
    assert {t.name for t in proto.graph.initializer} == {"layer_scale/parameter", "conv2d_1.weight", "conv2d_1.bias",
                                                         "g/parameter"}
    assert relative_error(model, net, serialize(proto)) < TOLERANCE
