"""``archdsl export`` (a standalone NumPy module) and ``archdsl run``.

The exported module must import with NumPy alone and without a warning,
compute exactly what ``archdsl.compile`` computes (it embeds the same kernel
source), read as hand-written code (one line per layer, each pointing back
to its .cnn line), be byte-for-byte reproducible, and never let a name or
string from the model break or inject into the generated code.
"""

import ast
import importlib.util
import inspect
import re
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.cli import main
from archdsl.emit.numpy_module import embedded_modules, embedded_source, export, module_source, top_level_names
from archdsl.ops import OPS, Family, arith
from archdsl.runtime import CompileError
from archdsl.runtime import init as init_source
from archdsl.runtime import module as module_base
from archdsl.runtime.kernels import activation, conv, linear, merge, norm, pool, reshape, resize, shared, winograd
from archdsl.source import Span

KERNEL_MODULES = (activation, conv, linear, merge, norm, pool, reshape, resize, winograd)

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def import_source(source: str, directory: Path):
    """Imports generated source as a fresh module, turning warnings into errors."""
    name = f"exported_{uuid.uuid4().hex}"
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec.loader.exec_module(module)
    return module


def model_class(module, model):
    classes = [obj for obj in vars(module).values()
               if isinstance(obj, type) and obj.__module__ == module.__name__ and obj.__name__ != "NumpyModel"]
    assert len(classes) == 1
    return classes[0]


def random_inputs(shapes, batch=2, seed=0, dtype=np.float32):
    generator = np.random.default_rng(seed)
    return {name: generator.standard_normal((batch, *shape)).astype(dtype) for name, shape in shapes.items()}


def same(a, b):
    if isinstance(a, dict):
        return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    return a.dtype == b.dtype and np.array_equal(a, b)


# ------------------------------------------------------------ equivalence

#: Every op kind, in 1, 2 and 3 spatial dimensions, with the arguments that change
#: the computation (groups, "same", ceil_mode, count_include_pad, modes...).
BASE_OPS = """
model AllOps {
    input image: [4, 8, 8]
    input seq: [4, 16]
    input vol: [2, 4, 4, 4]
    input vec: [12]
    a = image -> conv2d(8, 3, padding=1, groups=2) -> batchnorm2d -> relu
              -> conv2d(8, 4, padding="same", groups=8, bias=false) -> relu6
              -> conv_transpose2d(4, 3, stride=2, padding=1, output_padding=1) -> leaky_relu(0.1)
              -> maxpool2d(3, stride=2, padding=1, ceil_mode=true) -> avgpool2d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)
              -> local_response_norm(3) -> channel_shuffle(2) -> pad((1, 1, 0, 1), mode="reflect")
              -> upsample(2.0, mode="bilinear") -> adaptive_avgpool2d((3, 5)) -> hardswish -> mish
              -> conv2d(16, 1) -> pixel_shuffle(2) -> adaptive_avgpool2d((3, 5))
              -> upsample(size=(4, 6), mode="bicubic", align_corners=true) -> upsample(1.5)
              -> batchnorm2d(track_running_stats=false)
    gate = image -> global_avgpool
    b = concat(a, a -> sigmoid) -> narrow(2, 4) -> mul(gate) -> pad(1, mode="replicate") -> pad((1, 0), mode="circular", value=0.0)
    s = seq -> conv1d(6, 3, stride=2) -> batchnorm1d(affine=false) -> gelu -> conv_transpose1d(4, 2, stride=2, dilation=2)
            -> maxpool1d(2) -> avgpool1d(2) -> adaptive_avgpool1d(3) -> upsample(size=5, mode="linear")
            -> layernorm -> softmax(1) -> tanh -> gelu(approximate="tanh") -> flatten
    v = vol -> conv3d(4, 3, padding=1) -> batchnorm3d -> silu -> maxpool3d(2) -> conv_transpose3d(2, 2, stride=2, groups=2)
            -> avgpool3d(2) -> adaptive_avgpool3d(1) -> upsample(2.0, mode="trilinear") -> hardsigmoid -> flatten
    f = vec -> linear(6) -> batchnorm1d -> relu -> dropout(0.2) -> linear(3, bias=false) -> identity -> layernorm(3, elementwise_affine=false)
    e = image -> prelu(4) -> elu(0.5) -> softplus(2.0, 1.0) -> prelu(init=0.1) -> selu
              -> groupnorm(2, 4) -> groupnorm(4, affine=false, eps=1e-3) -> layernorm2d(4, eps=1e-6)
              -> instancenorm2d -> instancenorm2d(4, affine=true) -> instancenorm2d(track_running_stats=true)
              -> layernorm2d(elementwise_affine=false) -> layernorm((8, 8))
    e1 = seq -> instancenorm1d(affine=true, track_running_stats=true) -> groupnorm(2) -> layernorm2d(bias=false)
    e3 = vol -> instancenorm3d -> groupnorm(1, affine=false) -> layernorm2d -> adaptive_maxpool3d((3, 1, 2))
    m = image -> pixel_unshuffle(2) -> adaptive_maxpool2d((3, 2)) -> dropout2d(0.1) -> stochastic_depth(0.2, "row")
              -> stochastic_depth(0.5, "batch") -> sub(image -> global_maxpool -> conv2d(16, 1))
              -> permute((0, 2, 3, 1)) -> linear(6, in_features=16) -> linear(16, bias=false, in_features=6)
              -> permute((0, -1, 1, 2)) -> adaptive_maxpool2d(1)
              -> sub(image -> adaptive_maxpool2d(1) -> conv2d(16, 1)) -> flatten
    layer_scale = image -> scale((4, 1, 1), init=0.5)
    gamma = layer_scale -> stage: (scale((1, 8, 8), init=2.0) -> scale((4, 8, 1)) -> conv2d(4, 1))
    m1 = seq -> adaptive_maxpool1d(5) -> adaptive_maxpool1d(4) -> global_maxpool -> permute((0, 2, 1))
    output maps = b
    output extras = e
    output extras1 = e1
    output extras3 = e3
    output more = m
    output more1 = m1
    output scaled = gamma
    output tail = concat(s, v, f -> linear(16)) -> add(f -> linear(52)) -> softmax(-1)
}
"""


def _with_every_activation(text: str) -> str:
    """``text`` with one more output chaining every activation without
    required arguments that it does not name, so that a new activation is
    exported and compared by every target without an edit here."""
    named = {node.spec.op for node in archdsl.loads(text).model().nodes.values()}
    missing = [op.kind() for op in OPS if op.family is Family.ACTIVATION and op.kind() not in named
               and not any(field.is_required() for name, field in op.model_fields.items() if name != "op")]
    if not missing:
        return text
    return text[: text.rindex("}")] + f"    output defaults = image -> {' -> '.join(missing)}\n}}\n"


#: A model using every op, with the arguments that change a lowering.
ALL_OPS = _with_every_activation(BASE_OPS)


def test_all_ops_model_uses_every_op():
    model = archdsl.loads(ALL_OPS).model()
    assert {node.spec.op for node in model.nodes.values()} == {op.kind() for op in OPS}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_exported_module_computes_what_compile_computes_for_every_op(dtype, tmp_path):
    model = archdsl.loads(ALL_OPS).model()
    cls = model_class(import_source(export(model), tmp_path), model)
    exported, compiled = cls(seed=5, dtype=dtype), archdsl.compile(model, seed=5, dtype=dtype)
    assert all(np.array_equal(v, compiled.state_dict()[k]) for k, v in exported.state_dict().items())
    x = random_inputs(compiled.INPUTS, batch=3, dtype=dtype)
    assert same(exported(**x), compiled(**x))
    assert same(exported.forward(*x.values()), compiled(*x.values()))


CASES = [("lenet5", None), ("resnet18", {"image": (3, 32, 32)}), ("shufflenet_v2_x1_0", {"image": (3, 32, 32)}),
         ("mobilenet_v2", {"image": (3, 32, 32)}), ("convnext_tiny", {"image": (3, 32, 32)})]


@pytest.mark.parametrize("stem, inputs", CASES, ids=[stem for stem, _ in CASES])
def test_the_exported_module_computes_what_compile_computes(stem, inputs, tmp_path):
    path = MODELS / f"{stem}.cnn"
    if not path.is_file():
        pytest.skip(f"no {path.name} in models/")
    model = archdsl.load(path).model()
    module = import_source(export(model, inputs=inputs), tmp_path)
    cls = model_class(module, model)
    exported, compiled = cls(seed=5), archdsl.compile(model, inputs=inputs, seed=5)
    assert list(exported.state_dict()) == list(compiled.state_dict())
    assert all(np.array_equal(v, compiled.state_dict()[k]) for k, v in exported.state_dict().items())
    x = random_inputs(compiled.INPUTS)
    assert same(exported(**x), compiled(**x))


def test_the_exported_module_does_the_fused_adds_and_activations(tmp_path):
    """Fused adds pass the other input as residual=, and each fused step is a comment."""
    from test_runtime_models import FUSE

    model = archdsl.loads(FUSE).model()
    source = export(model)
    assert "residual=" in source
    assert "# <string>:5 add_1: add done by c2 (residual=)" in source
    assert "# <string>:5 r2: relu applied by c2" in source
    cls = model_class(import_source(source, tmp_path), model)
    for dtype in ("float32", "float64"):
        exported, compiled = cls(seed=2, dtype=dtype), archdsl.compile(model, seed=2, dtype=dtype)
        x = random_inputs(compiled.INPUTS, batch=3, dtype=dtype)
        assert same(exported(**x), compiled(**x))


def test_exported_weights_roundtrip_through_npz(tmp_path):
    model = archdsl.load(MODELS / "resnet18.cnn").model()
    inputs = {"image": (3, 32, 32)}
    cls = model_class(import_source(export(model, inputs=inputs), tmp_path), model)
    compiled = archdsl.compile(model, inputs=inputs, seed=9)
    compiled.save(tmp_path / "w.npz")
    exported = cls(seed=1).load(tmp_path / "w.npz")
    x = random_inputs(compiled.INPUTS)
    assert same(exported(**x), compiled(**x))
    exported.save(tmp_path / "again.npz")
    assert same(cls(weights=str(tmp_path / "again.npz"))(**x), compiled(**x))
    state = exported.state_dict()
    state.pop("fc.bias")
    with pytest.raises(ValueError, match="missing key 'fc.bias'"):
        exported.load_state_dict(state)


def test_the_module_imports_with_numpy_alone_under_warnings_as_errors(tmp_path):
    model = archdsl.load(MODELS / "resnet18.cnn").model()
    (tmp_path / "resnet_np.py").write_text(export(model, inputs={"image": (3, 32, 32)}), encoding="utf-8")
    script = (
        "import sys, numpy as np, resnet_np\n"
        "net = resnet_np.ResNet18(seed=0)\n"
        "y = net(np.zeros((2, 3, 32, 32), np.float32))\n"
        "assert y.shape == (2, 1000), y.shape\n"
        "assert not any(name.startswith('archdsl') for name in sys.modules), 'archdsl imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-W", "error", "-E", "-s", "-c", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_module_imports_only_numpy_and_embeds_the_runtime_source_verbatim():
    model = archdsl.load(MODELS / "resnet50.cnn").model()
    source = export(model)
    tree = ast.parse(source)
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in imports] == ["import numpy as np"]
    plan = archdsl.compile(model).plan
    modules = embedded_modules([step.kernel for step in plan.steps if step.value_of is None])
    # exactly the modules needed (every add is fused into a convolution: no merge), each after the modules it imports
    names = [m.__name__ for m in modules]
    assert set(names) == {"archdsl.ops.arith", "archdsl.runtime.init", "archdsl.runtime.module"} | {
        f"archdsl.runtime.kernels.{family}"
        for family in ("activation", "shared", "conv", "winograd", "linear", "pool", "reshape", "norm")}
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                imported = importlib.util.resolve_name("." * node.level + node.module, module.__package__)
                assert names.index(imported) < names.index(module.__name__), (imported, module.__name__)
    for module in modules:  # each module's definitions, verbatim
        for name in top_level_names(module):
            assert inspect.getsource(getattr(module, name)) in source, name
    assert "def interpolate(" not in source and "def concat(" not in source  # only what the model uses
    assert "def conv_output_size(" in source  # the shape rules' arithmetic, embedded, not a copy


def test_every_embeddable_module_imports_only_numpy_and_its_siblings():
    """The kernels, arith, init and the module base may import NumPy and each
    other (package-relative, dropped when embedded), nothing else; and their
    top-level names are distinct, since they share one namespace when embedded."""
    every = embedded_modules([getattr(m, name) for m in KERNEL_MODULES for name in top_level_names(m)
                              if callable(getattr(m, name))])
    assert set(every) == {*KERNEL_MODULES, shared, arith, init_source, module_base}
    for module in every:
        tree = ast.parse(inspect.getsource(module))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                assert node.level > 0, (module.__name__, ast.unparse(node))
            elif isinstance(node, ast.Import):
                assert ast.unparse(node) == "import numpy as np", module.__name__
    embedded_source(every)  # raises on a name defined twice
    assert "def relu(" in module_source(activation) and "import" not in module_source(shared)


def test_a_name_defined_twice_is_refused():
    with pytest.raises(ValueError, match="defined by both"):
        embedded_source([activation, activation])


def test_forward_is_one_line_per_layer_pointing_at_its_source():
    model = archdsl.load(MODELS / "resnet18.cnn").model()
    source = export(model)
    body = source[source.index("    def forward(self, image):"):]
    lines = body.splitlines()
    start = lines.index("        t = self.layer_arguments()") + 1
    layer_lines = lines[start:start + len(model.nodes) - 1]
    assert lines[start + len(model.nodes) - 1] == "        self.release_arguments(t)"
    assert lines[start + len(model.nodes)].startswith("        return ")
    steps = archdsl.compile(model).plan.steps
    for line, step in zip(layer_lines, steps):
        node = model.nodes[step.node]
        if step.folded_into:  # batchnorm folded into the convolution before it: a comment says so
            match = re.fullmatch(r"        # (\S+):(\d+) (\S+): batch_norm folded into the weights of (\S+)", line)
            assert match and match.group(4) == step.folded_into, line
            where = match.group(1, 2, 3)
        elif step.fused_into:  # an add or activation done by the convolution (or add) that computes it
            match = re.fullmatch(r"        # (\S+):(\d+) (\S+): (\w+) (?:applied|done) by (\S+)(?: \(residual=\))?", line)
            assert match and match.group(4) == step.kernel.__name__ and match.group(5) == step.fused_into, line
            where = match.group(1, 2, 3)
        else:
            match = re.fullmatch(r"        (\w+) = (\w+)\((.*)\)  # (\S+):(\d+) (\S+)", line)
            assert match and match.group(2) == step.kernel.__name__, line
            where = match.group(4, 5, 6)
        assert (where[0], int(where[1]), where[2]) == (node.span.file, node.span.line, node.name)
    assert layer_lines[0].startswith("        x = conv(image, **t['conv1'], stride=2, padding=3, activation='relu')  # ")
    assert layer_lines[1].startswith("        # ") and "bn1" in layer_lines[1]
    assert layer_lines[2].startswith("        # ") and "relu_1: relu applied by conv1" in layer_lines[2]


def test_export_is_deterministic(tmp_path):
    model = archdsl.load(MODELS / "googlenet.cnn").model() if (MODELS / "googlenet.cnn").is_file() else \
        archdsl.load(MODELS / "resnet50.cnn").model()
    assert export(model) == export(model)
    outputs = []
    for index, seed in enumerate(("1", "2")):  # separate processes, different hash seeds
        out = tmp_path / f"m{index}.py"
        result = subprocess.run([sys.executable, "-m", "archdsl", "export", str(MODELS / "resnet50.cnn"), "-o",
                                 str(out), "-q"], env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


# ------------------------------------------------------------ injection

HOSTILE_SOURCE = '''
block lambda(tag = "a\\"\\"\\" + __import__('os').system('echo pwned') #") {
    return in -> class: conv2d(4, 3, padding=1) -> None: relu
}

model def {
    input self: [3, 6, 6]
    input t: [4, 6, 6]
    relu = self -> def: lambda(tag="'); import os; os.system('echo pwned') #\\n") -> np: batchnorm2d
    conv = relu -> print: lambda
    NumpyModel = add(conv, t) -> __import__: relu -> x: identity
    output return_ = NumpyModel -> global_avgpool -> flatten -> eval: linear(3)
}
'''


def test_names_and_strings_from_the_source_cannot_inject(tmp_path):
    program = archdsl.loads(HOSTILE_SOURCE, name='evil"""\\\n.cnn')
    assert program.ok, [d.message for d in program.diagnostics]
    model = program.model()
    source = export(model)
    _assert_no_injection(source)
    cls = model_class(import_source(source, tmp_path), model)
    compiled = archdsl.compile(model, seed=2)
    x = random_inputs(compiled.INPUTS)
    assert same(cls(seed=2)(**x), compiled(**x))
    assert same(cls(seed=2)(*x.values()), compiled(**x))


def _rename(model, names):
    """``model`` with its nodes renamed (the Model API accepts any string)."""
    mapping = {old: names.get(old, old) for old in model.nodes}
    nodes = {}
    for node in model.nodes.values():
        nodes[mapping[node.name]] = node.model_copy(update={
            "name": mapping[node.name], "inputs": tuple(mapping[i] for i in node.inputs),
            "span": Span('x"""\n__import__("os").system("echo pwned")\n"""', 3, 1, 3, 2)})
    return model.model_copy(update={
        "name": 'Evil"""; import os #', "nodes": nodes,
        "inputs": tuple(mapping[i] for i in model.inputs),
        "outputs": {'out"\n': mapping[n] for n in model.outputs.values()},  # noqa: B035 (one output, a hostile name)
        "span": Span("models/\\N{bad}\r\n.cnn", 1, 1, 1, 2)})


def test_any_node_name_is_safe_through_the_model_api(tmp_path):
    model = archdsl.loads("""
model M {
    input image: [3, 6, 6]
    image -> conv: conv2d(4, 3) -> bn: batchnorm2d -> relu -> flatten -> fc: linear(2)
}""").model()
    hostile = _rename(model, {
        "image": "image\"]; import os; os.system('echo pwned') #",
        "conv": "t['fc'] if __import__('os').system('echo pwned') else t['",
        "bn": "0\n        import os",
        "relu_1": "r\u00e9lu.\U0001d518",
        "flatten_1": "x",
        "fc": "fc\\",
    })
    source = export(hostile)
    _assert_no_injection(source)
    cls = model_class(import_source(source, tmp_path), hostile)
    compiled = archdsl.compile(hostile, seed=4)
    x = random_inputs(compiled.INPUTS)
    assert same(cls(seed=4)(*x.values()), compiled(*x.values()))
    assert sorted(cls(seed=4).state_dict()) == sorted(compiled.state_dict())
    assert "0\n        import os.running_var" in cls(seed=4).state_dict()


def _assert_no_injection(source: str) -> None:
    tree = ast.parse(source)
    for node in tree.body:  # a docstring, numpy, and definitions: nothing runs at import
        assert isinstance(node, (ast.Expr, ast.Import, ast.FunctionDef, ast.ClassDef)), ast.dump(node)[:80]
        if isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id not in ("__import__", "os", "eval", "exec", "system", "print"), node.id
        if isinstance(node, ast.Attribute):
            assert node.attr != "system"


# -------------------------------------------------------------------- CLI


def test_cli_export_writes_an_importable_module(tmp_path, capsys):
    out = tmp_path / "lenet_np.py"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    module = import_source(out.read_text(encoding="utf-8"), tmp_path)
    assert module.LeNet5(seed=0)(np.zeros((1, 1, 32, 32), np.float32)).shape == (1, 10)


def test_cli_export_input_size(tmp_path):
    out = tmp_path / "small.py"
    assert main(["export", str(MODELS / "resnet18.cnn"), "-o", str(out), "--input", "image=3x40x40", "-q"]) == 0
    module = import_source(out.read_text(encoding="utf-8"), tmp_path)
    assert module.ResNet18.INPUTS == {"image": (3, 40, 40)}


def test_cli_export_failures_leave_nothing_behind(tmp_path, capsys):
    broken = tmp_path / "broken.cnn"
    broken.write_text("model B {\n  input x: [3, 8, 8]\n  x -> conv2d(4, 3) -> linear(2)\n}\n", encoding="utf-8")
    out = tmp_path / "out.py"
    out.write_text("original", encoding="utf-8")
    assert main(["export", str(broken), "-o", str(out)]) == 1
    assert "E406" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "original"
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(out), "--input", "image=1x8x8"]) == 1
    assert out.read_text(encoding="utf-8") == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.cnn", "out.py"]
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "out.txt")]) == 2
    assert main(["export", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "no" / "out.py")]) == 2
    assert main(["export", str(tmp_path / "missing.cnn"), "-o", str(out)]) == 2


@pytest.fixture
def arrays(tmp_path):
    generator = np.random.default_rng(0)
    x = generator.standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return x


def test_cli_run_matches_the_library(tmp_path, arrays, capsys):
    model = archdsl.load(MODELS / "lenet5.cnn").model()
    out = tmp_path / "y.npy"
    assert main(["run", str(MODELS / "lenet5.cnn"), "--input", str(tmp_path / "x.npy"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    assert same(np.load(out), archdsl.compile(model, seed=0)(arrays))

    archdsl.compile(model, seed=5).save(tmp_path / "w.npz")
    assert main(["run", str(MODELS / "lenet5.cnn"), "--input", f"image={tmp_path / 'x.npy'}", "--weights",
                 str(tmp_path / "w.npz"), "-o", str(tmp_path / "y.npz"), "--dtype", "float64", "-q"]) == 0
    with np.load(tmp_path / "y.npz") as result:
        assert result.files == ["output"]
        assert result["output"].dtype == np.float64
        expected = archdsl.compile(model, weights=tmp_path / "w.npz", dtype="float64")(arrays)
        assert np.array_equal(result["output"], expected)
    assert main(["run", str(MODELS / "lenet5.cnn"), "--input", str(tmp_path / "x.npy"), "--seed", "3",
                 "-o", str(out), "-q"]) == 0
    assert same(np.load(out), archdsl.compile(model, seed=3)(arrays))


def test_cli_run_several_inputs_and_outputs(tmp_path):
    source = tmp_path / "two.cnn"
    source.write_text("model Two {\n  input a: [2, 3]\n  input b: [2, 3]\n  output s = add(a, b)\n"
                      "  output p = mul(a, b)\n}\n", encoding="utf-8")
    a, b = np.ones((1, 2, 3)), np.full((1, 2, 3), 2.0)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.savez(tmp_path / "both.npz", a=a, b=b)
    out = tmp_path / "out.npz"
    assert main(["run", str(source), "--input", f"b={tmp_path / 'b.npy'}", "--input", f"a={tmp_path / 'a.npy'}",
                 "-o", str(out), "-q"]) == 0
    with np.load(out) as result:
        assert result.files == ["s", "p"]
        assert np.array_equal(result["s"], a + b) and np.array_equal(result["p"], a * b)
    assert main(["run", str(source), "--input", str(tmp_path / "both.npz"), "-o", str(out), "-q"]) == 0
    assert main(["run", str(source), "--input", str(tmp_path / "both.npz"), "-o", str(tmp_path / "o.npy")]) == 2
    assert main(["run", str(source), "--input", f"a={tmp_path / 'a.npy'}", "-o", str(out)]) == 2
    assert main(["run", str(source), "--input", str(tmp_path / "a.npy"), "-o", str(out)]) == 2


@pytest.mark.parametrize("case, code, message", [
    ("no_batch", 1, "add the batch dimension"),
    ("wrong_channels", 1, "takes [N, 1, 32, 32]"),
    ("strings", 1, "must hold numbers"),
    ("objects", 1, "cannot read"),
    ("corrupt", 1, "not a NumPy .npy or .npz file"),
    ("too_small", 1, "cannot run at input size"),
    ("bad_weights", 1, "size mismatch for 'out.weight'"),
    ("weights_not_npz", 1, "an .npz archive"),
    ("missing_input_file", 2, "no such file"),
    ("missing_weights", 2, "no such file"),
    ("bad_output", 2, "write .npy"),
    ("unknown_option", 2, ""),
])
def test_cli_run_errors_are_clear_and_write_nothing(tmp_path, arrays, capsys, case, code, message):
    lenet = str(MODELS / "lenet5.cnn")
    x = str(tmp_path / "x.npy")
    out = tmp_path / "y.npy"
    out.write_bytes(b"previous")
    data = tmp_path / "data.npy"
    args = ["run", lenet, "--input", str(data), "-o", str(out)]
    if case == "no_batch":
        np.save(data, arrays[0])
    elif case == "wrong_channels":
        np.save(data, np.zeros((2, 3, 32, 32)))
    elif case == "strings":
        np.save(data, np.array([["a"]]))
    elif case == "objects":
        np.save(data, np.array([None, 1], dtype=object), allow_pickle=True)
    elif case == "corrupt":
        data.write_bytes(b"not numpy at all")
    elif case == "too_small":
        np.save(data, np.zeros((1, 1, 8, 8)))
    elif case == "bad_weights":
        state = archdsl.compile(archdsl.load(lenet).model()).state_dict()
        state["out.weight"] = np.zeros((3, 84))
        np.savez(tmp_path / "w.npz", **state)
        args = ["run", lenet, "--input", x, "--weights", str(tmp_path / "w.npz"), "-o", str(out)]
    elif case == "weights_not_npz":
        args = ["run", lenet, "--input", x, "--weights", x, "-o", str(out)]
    elif case == "missing_input_file":
        pass
    elif case == "missing_weights":
        args = ["run", lenet, "--input", x, "--weights", str(tmp_path / "nope.npz"), "-o", str(out)]
    elif case == "bad_output":
        args = ["run", lenet, "--input", x, "-o", str(tmp_path / "y.txt")]
    elif case == "unknown_option":
        args = ["run", lenet, "--inputs", x, "-o", str(out)]
    if code == 2 and case == "unknown_option":
        with pytest.raises(SystemExit) as caught:
            main(args)
        assert caught.value.code == 2
    else:
        assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert out.read_bytes() == b"previous"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_run_at_another_input_size(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 40, 40), np.float32))
    assert main(["run", str(MODELS / "resnet18.cnn"), "--input", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "y.npy"), "-q"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 1000)


def test_cli_run_in_a_subprocess_prints_no_traceback(tmp_path, cli):
    np.save(tmp_path / "x.npy", np.zeros((3, 32, 32)))
    result = cli("run", str(MODELS / "lenet5.cnn"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "add the batch dimension" in result.stderr
    assert not (tmp_path / "y.npy").exists()


def test_compile_error_is_a_value_error():
    assert issubclass(CompileError, ValueError)
