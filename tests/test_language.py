"""The language as a user sees it: programs that are correct, what they
elaborate to (node names, arguments, edges, inputs and outputs), and the
command line's contract (exit codes, JSON output, colour)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import networkx as nx
import pytest
from conftest import MODELS, ROOT, run_cli

import archdsl

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def load_ok(text: str, **kwargs) -> archdsl.Program:
    """Loads source that must be clean: no errors and no warnings, from
    elaboration or from shape inference."""
    program = archdsl.loads(textwrap.dedent(text), **kwargs)
    found = program.check()
    assert found == [], "\n".join(f"{d.span}: {d.code}: {d.message}" for d in found)
    assert program.ok
    return program


def model_of(text: str, **kwargs) -> archdsl.Model:
    return load_ok(text, **kwargs).model()


def args(model: archdsl.Model, name: str) -> dict:
    return model.node(name).spec.arguments()


# --------------------------------------------------------------------------
# Node names.


def test_labels_name_nodes_and_unlabelled_ops_count_per_kind():
    m = model_of("""
        model M {
            input x: [3, 32, 32]
            x -> stem: conv2d(8, 3) -> relu -> conv2d(8, 3) -> relu
              -> pool: maxpool2d(2) -> conv2d(16, 3) -> relu
        }
    """)
    assert list(m.nodes) == [
        "x", "stem", "relu_1", "conv2d_1", "relu_2", "pool", "conv2d_2", "relu_3",
    ]
    # A label does not consume a number: the first unlabelled conv2d is conv2d_1.
    assert m.node("conv2d_1").inputs == ("relu_1",)
    assert m.node("stem").op == "conv2d"
    assert m.node("pool").op == "maxpool2d"


def test_labelled_repeat_numbers_its_items_like_nn_sequential():
    m = model_of("""
        model M {
            input x: [3, 32, 32]
            x -> features: repeat 2 { conv2d(8, 3, padding=1) -> relu }
              -> repeat 2 { conv2d(8, 1) }
              -> head: (flatten -> linear(10))
        }
    """)
    assert list(m.nodes) == [
        "x",
        "features.0", "features.1", "features.2", "features.3",
        # An unlabelled repeat adds no level: its ops are named in the model's scope.
        "conv2d_1", "conv2d_2",
        "head.0", "head.1",
    ]
    assert [m.node(f"features.{i}").op for i in range(4)] == ["conv2d", "relu", "conv2d", "relu"]
    assert m.node("features.2").inputs == ("features.1",)
    assert m.node("head.0").op == "flatten" and m.node("head.1").op == "linear"
    assert m.outputs == {"output": "head.1"}


def test_block_scopes_follow_torchvision_resnet18_names():
    program = archdsl.load(MODELS / "resnet18.cnn")
    assert program.check() == []
    m = program.model()
    names = list(m.nodes)
    assert names[:12] == [
        "image", "conv1", "bn1", "relu_1", "maxpool",
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu_1", "layer1.0.conv2", "layer1.0.bn2",
        "layer1.0.add_1", "layer1.0.relu_2",
    ]
    assert names[-3:] == ["avgpool", "flatten_1", "fc"]
    assert len(names) == 70
    # The projection shortcut is a labelled group inside the block: downsample.0/.1.
    assert m.node("layer2.0.downsample.0").op == "conv2d"
    assert args(m, "layer2.0.downsample.0")["stride"] == 2
    assert args(m, "layer2.0.downsample.0")["kernel_size"] == 1
    assert m.node("layer2.0.downsample.1").op == "batchnorm2d"
    assert m.node("layer2.0.add_1").inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    # Only the first block of stages 2-4 projects.
    assert "layer1.0.downsample.0" not in m.nodes
    assert "layer2.1.downsample.0" not in m.nodes
    assert sorted(n for n in names if n.endswith("downsample.0")) == [
        "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0",
    ]
    # Block instances: path, block name, the arguments given, the owning block of nodes.
    instance = m.blocks["layer2.0"]
    assert instance.block == "BasicBlock"
    assert instance.arguments == {"planes": "128", "stride": "2", "project": "true"}
    assert instance.parent is None
    assert m.blocks["layer1.0"].arguments == {"planes": "64"}
    assert m.node("layer2.0.downsample.0").block == "layer2.0"
    assert m.node("conv1").block is None
    assert m.inputs == ("image",)
    assert m.outputs == {"logits": "fc"}


def test_unlabelled_block_calls_are_named_after_the_block_in_snake_case():
    m = model_of("""
        block ConvBN(c) {
            return in -> conv: conv2d(c, 3, padding=1) -> bn: batchnorm2d -> relu
        }
        block Outer(c) {
            return in -> ConvBN(c) -> inner: ConvBN(c)
        }
        model M {
            input x: [3, 8, 8]
            x -> ConvBN(4) -> ConvBN(4) -> named: ConvBN(4) -> Outer(8)
        }
    """)
    assert list(m.nodes) == [
        "x",
        "conv_bn_1.conv", "conv_bn_1.bn", "conv_bn_1.relu_1",
        "conv_bn_2.conv", "conv_bn_2.bn", "conv_bn_2.relu_1",
        "named.conv", "named.bn", "named.relu_1",
        "outer_1.conv_bn_1.conv", "outer_1.conv_bn_1.bn", "outer_1.conv_bn_1.relu_1",
        "outer_1.inner.conv", "outer_1.inner.bn", "outer_1.inner.relu_1",
    ]
    assert set(m.blocks) == {"conv_bn_1", "conv_bn_2", "named", "outer_1", "outer_1.conv_bn_1", "outer_1.inner"}
    assert m.blocks["outer_1.inner"].parent == "outer_1"
    assert m.blocks["outer_1.inner"].block == "ConvBN"
    assert m.node("outer_1.inner.bn").block == "outer_1.inner"


def test_block_calls_in_a_labelled_repeat_are_numbered():
    m = model_of("""
        block Unit(c) { return in -> conv1: conv2d(c, 3, padding=1) -> relu }
        model M {
            input x: [3, 8, 8]
            x -> layer1: repeat 3 { Unit(8) }
        }
    """)
    assert list(m.nodes) == [
        "x",
        "layer1.0.conv1", "layer1.0.relu_1",
        "layer1.1.conv1", "layer1.1.relu_1",
        "layer1.2.conv1", "layer1.2.relu_1",
    ]
    assert list(m.blocks) == ["layer1.0", "layer1.1", "layer1.2"]


# --------------------------------------------------------------------------
# Compile-time evaluation.


def test_repeat_index_variable_counts_from_zero():
    m = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> stages: repeat 4 as i { conv2d(8 * (i + 1), 3, stride = if i % 2 == 1 then 2 else 1, padding=1) }
        }
    """)
    convs = [args(m, f"stages.{i}") for i in range(4)]
    assert [c["out_channels"] for c in convs] == [8, 16, 24, 32]
    assert [c["stride"] for c in convs] == [1, 2, 1, 2]


def test_repeat_zero_times_is_the_identity():
    m = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> repeat 0 { relu } -> conv2d(4, 1)
        }
    """)
    assert list(m.nodes) == ["x", "conv2d_1"]
    assert m.node("conv2d_1").inputs == ("x",)


def test_if_statements_with_else_if_choose_one_branch():
    text = """
        block Act(kind = "relu") {
            y = in -> conv2d(4, 1)
            if kind == "relu" {
                z = y -> relu
            } else if kind == "swish" {
                z = y -> swish
            } else {
                z = y -> gelu(approximate="tanh")
            }
            return z
        }
        model M {
            input x: [3, 8, 8]
            a = x -> Act
            b = x -> Act("swish")
            c = x -> Act(kind="other")
            output out = concat(a, b, c)
        }
    """
    m = model_of(text)
    assert m.node("act_1.relu_1").inputs == ("act_1.conv2d_1",)
    # swish is an alias: the node is a silu, named after the op.
    assert m.node("act_2.silu_1").op == "silu"
    assert args(m, "act_3.gelu_1") == {"approximate": "tanh"}
    assert m.node("concat_1").inputs == ("act_1.relu_1", "act_2.silu_1", "act_3.gelu_1")
    assert [n for n in m.nodes if n.startswith("act_")] == [
        "act_1.conv2d_1", "act_1.relu_1",
        "act_2.conv2d_1", "act_2.silu_1",
        "act_3.conv2d_1", "act_3.gelu_1",
    ]


def test_conditional_steps_and_expressions():
    m = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> if 1 > 2 { tanh } else { sigmoid }
              -> if false { relu }
              -> conv2d(if 3 >= 3 and not false then 16 else 32, 1)
              -> if true or 1 / 0 == 1 { head: (flatten -> linear(10)) }
        }
    """)
    assert list(m.nodes) == ["x", "sigmoid_1", "conv2d_1", "head.0", "head.1"]
    assert args(m, "conv2d_1")["out_channels"] == 16
    assert m.node("conv2d_1").inputs == ("sigmoid_1",)


def test_block_parameter_defaults_may_use_earlier_parameters():
    m = model_of("""
        block Bottle(c, mid = c // 4, k = 3) {
            return in -> conv2d(mid, 1) -> conv2d(mid, k, padding = k // 2) -> conv2d(c, 1)
        }
        model M {
            input x: [64, 8, 8]
            x -> a: Bottle(64) -> b: Bottle(64, 8) -> c: Bottle(64, k=5)
        }
    """)
    assert [args(m, f"a.conv2d_{i}")["out_channels"] for i in (1, 2, 3)] == [16, 16, 64]
    assert [args(m, f"b.conv2d_{i}")["out_channels"] for i in (1, 2, 3)] == [8, 8, 64]
    assert args(m, "a.conv2d_2")["kernel_size"] == 3 and args(m, "a.conv2d_2")["padding"] == 1
    assert args(m, "c.conv2d_2")["kernel_size"] == 5 and args(m, "c.conv2d_2")["padding"] == 2
    # Instances record only the arguments given at the call.
    assert m.blocks["a"].arguments == {"c": "64"}
    assert m.blocks["c"].arguments == {"c": "64", "k": "5"}


def test_integer_arithmetic_floor_division_and_modulo():
    m = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> conv2d(17 // 5, 1) -> conv2d(17 % 5, 1) -> conv2d(2 + 3 * 4, 1) -> conv2d((2 + 3) * 4, 1)
              -> conv2d(100 - 10 - 1, 1)
              -> leaky_relu(-7 // 2) -> leaky_relu(-7 % 3) -> leaky_relu(-(2 + 3) * 4)
        }
    """)
    assert [args(m, f"conv2d_{i}")["out_channels"] for i in range(1, 6)] == [3, 2, 14, 20, 89]
    # Python's semantics: // floors, % takes the sign of the divisor.
    assert [args(m, f"leaky_relu_{i}")["negative_slope"] for i in (1, 2, 3)] == [-4, 2, -20]


def test_builtin_functions():
    m = model_of("""
        block B(c) { return in -> conv2d(max(c // 4, 8), min(c, 3)) -> conv2d(max(1, 5, 2), 1) }
        model M {
            input x: [3, 8, 8]
            x -> B(16) -> conv2d(abs(-6), 1) -> conv2d(int(7.9), 1) -> conv2d(round(2.5), 1)
        }
    """)
    assert args(m, "b_1.conv2d_1")["out_channels"] == 8
    assert args(m, "b_1.conv2d_1")["kernel_size"] == 3
    assert args(m, "b_1.conv2d_2")["out_channels"] == 5
    assert [args(m, f"conv2d_{i}")["out_channels"] for i in (1, 2, 3)] == [6, 7, 2]


def test_literals_underscores_floats_strings_tuples():
    m = model_of("""
        model M {
            input x: [3, 32, 32]
            x -> conv2d(64, kernel=(1, 7), padding=(0, 3), bias=false)
              -> batchnorm2d(eps=1e-3, momentum=0.25)
              -> upsample(scale_factor=2.0, mode='bilinear', align_corners=true)
              -> upsample(size=(16, 16), mode="nearest")
              -> flatten -> dropout(0.5) -> linear(1_000, bias=true)
        }
    """)
    conv = args(m, "conv2d_1")
    assert conv["kernel_size"] == (1, 7)
    assert conv["padding"] == (0, 3)
    assert conv["bias"] is False
    assert args(m, "batchnorm2d_1")["eps"] == pytest.approx(1e-3)
    assert args(m, "batchnorm2d_1")["momentum"] == 0.25
    assert args(m, "upsample_1") == {"size": None, "scale_factor": 2.0, "mode": "bilinear", "align_corners": True}
    assert args(m, "upsample_2")["size"] == (16, 16)
    assert args(m, "dropout_1") == {"p": 0.5}
    assert args(m, "linear_1")["out_features"] == 1000


def test_kernel_is_an_alias_of_kernel_size():
    m = model_of("""
        model M {
            input x: [3, 32, 32]
            x -> conv2d(8, kernel=5) -> maxpool2d(kernel=3, stride=2) -> conv2d(out_channels=8, kernel_size=3)
        }
    """)
    assert args(m, "conv2d_1")["kernel_size"] == 5
    assert args(m, "maxpool2d_1")["kernel_size"] == 3
    assert args(m, "maxpool2d_1")["stride"] == 2
    assert args(m, "conv2d_2")["kernel_size"] == 3
    assert "kernel" not in args(m, "conv2d_1")


def test_swish_is_an_alias_of_silu():
    m = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> swish -> act: swish -> silu
        }
    """)
    assert list(m.nodes) == ["x", "silu_1", "act", "silu_2"]
    assert {m.node(n).op for n in ("silu_1", "act", "silu_2")} == {"silu"}


# --------------------------------------------------------------------------
# Merges, inputs and outputs.


def test_merges_take_several_inputs_and_the_piped_value_comes_first():
    m = model_of("""
        model M {
            input x: [8, 8, 8]
            a = x -> conv2d(8, 1)
            b = x -> conv2d(8, 3, padding=1)
            c = x -> conv2d(8, 5, padding=2)
            s = a -> add(b, c)
            p = mul(a, b, c)
            j = concat(c, a, b, dim=1)
            k = x -> concat(a)
            output out = add(s, p) -> add(j -> conv2d(8, 1), k -> conv2d(8, 1))
        }
    """)
    assert m.node("add_1").inputs == ("conv2d_1", "conv2d_2", "conv2d_3")
    assert m.node("mul_1").inputs == ("conv2d_1", "conv2d_2", "conv2d_3")
    assert m.node("concat_1").inputs == ("conv2d_3", "conv2d_1", "conv2d_2")
    assert args(m, "concat_1") == {"dim": 1}
    assert m.node("concat_2").inputs == ("x", "conv2d_1")
    assert m.node("add_2").inputs == ("add_1", "mul_1")
    assert m.node("add_3").inputs == ("add_2", "conv2d_4", "conv2d_5")
    assert m.outputs == {"out": "add_3"}
    # add(x, x) feeds one edge twice; the graph records both ports.
    m2 = model_of("""
        model M {
            input x: [8, 8, 8]
            output y = add(x, x)
        }
    """)
    assert m2.node("add_1").inputs == ("x", "x")
    assert m2.graph.edges["x", "add_1"]["ports"] == [0, 1]


def test_multiple_inputs_and_outputs():
    m = model_of("""
        model TwoTower {
            input image: [3, 32, 32]
            input depth: [1, 32, 32]
            i = image -> conv2d(16, 3, padding=1)
            d = depth -> conv2d(16, 3, padding=1)
            fused = concat(i, d) -> conv2d(32, 1)
            output logits = fused -> global_avgpool -> flatten -> linear(10)
            output features = fused
            output depth_features = d
        }
    """)
    assert m.name == "TwoTower"
    assert m.inputs == ("image", "depth")
    assert m.outputs == {"logits": "linear_1", "features": "conv2d_3", "depth_features": "conv2d_2"}
    assert m.node("image").spec.shape == (3, 32, 32)
    assert m.node("depth").spec.shape == (1, 32, 32)
    assert m.node("depth").op == "input"
    assert m.node("concat_1").inputs == ("conv2d_1", "conv2d_2")


def test_implicit_output_is_the_last_chain_or_assignment():
    chain = model_of("""
        model M {
            input x: [3, 8, 8]
            x -> conv2d(4, 3) -> relu
        }
    """)
    assert chain.outputs == {"output": "relu_1"}
    assigned = model_of("""
        model M {
            input x: [3, 8, 8]
            y = x -> conv2d(4, 3)
            features = y -> relu
        }
    """)
    # The last assignment is the output and is not reported as unused.
    assert assigned.outputs == {"features": "relu_1"}
    explicit = model_of("""
        model M {
            input x: [3, 8, 8]
            y = x -> conv2d(4, 3)
            output y
            x -> relu
        }
    """)
    # An explicit output turns the implicit one off; the last chain is then just a node.
    assert explicit.outputs == {"y": "conv2d_1"}
    assert "relu_1" in explicit.nodes


def test_program_api_models_and_lookup():
    program = load_ok("""
        model First {
            input x: [3, 8, 8]
            x -> relu
        }
        model Second {
            input y: [4]
            y -> linear(2)
        }
    """)
    assert [m.name for m in program.models] == ["First", "Second"]
    assert program.model().name == "First"
    assert program.model("Second").inputs == ("y",)
    # Each model has its own name scope.
    assert list(program.model("Second").nodes) == ["y", "linear_1"]
    with pytest.raises(LookupError):
        program.model("Third")


def test_a_file_of_blocks_only_is_clean_and_has_no_models():
    program = archdsl.load(MODELS / "blocks" / "resnet.cnn")
    assert program.ok and program.diagnostics == [] and program.models == []
    with pytest.raises(LookupError):
        program.model()


def test_errors_and_warnings_are_diagnostics_not_exceptions():
    program = archdsl.loads("model M {\n    input x: [3, 8, 8]\n    y = x -> relu\n    x -> conv2(4, 3)\n}\n")
    assert not program.ok
    assert [(d.code, d.severity, d.span.line, d.span.column) for d in program.diagnostics] == [
        ("W101", archdsl.Severity.WARNING, 3, 5),
        ("E201", archdsl.Severity.ERROR, 4, 10),
    ]
    assert program.diagnostics[1].hint == "did you mean 'conv2d' (the input is [3, 8, 8])?"
    warned = archdsl.loads("model M {\n    input x: [3, 8, 8]\n    y = x -> relu\n    x -> tanh\n}\n")
    assert warned.ok  # warnings do not make a program fail
    assert [d.code for d in warned.diagnostics] == ["W101"]


# --------------------------------------------------------------------------
# Imports.


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_imports_resolve_relative_to_the_importing_file(tmp_path, monkeypatch):
    write(tmp_path / "nets" / "lib" / "units.cnn", """
        import "act/acts.cnn"
        block Unit(c) { return in -> conv2d(c, 3, padding=1) -> Act }
    """)
    write(tmp_path / "nets" / "lib" / "act" / "acts.cnn", """
        block Act() { return in -> relu6 }
    """)
    write(tmp_path / "nets" / "net.cnn", """
        import "lib/units.cnn"
        model Net {
            input x: [3, 8, 8]
            x -> u: Unit(4)
        }
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # resolution must not depend on the working directory
    program = archdsl.load(tmp_path / "nets" / "net.cnn")
    assert program.check() == []
    assert list(program.model().nodes) == ["x", "u.conv2d_1", "u.act_1.relu6_1"]
    assert program.model().blocks["u.act_1"].block == "Act"
    # loads() resolves against `directory`.
    text = (tmp_path / "nets" / "net.cnn").read_text(encoding="utf-8")
    from_string = archdsl.loads(text, directory=tmp_path / "nets")
    assert from_string.check() == []
    assert list(from_string.model().nodes) == ["x", "u.conv2d_1", "u.act_1.relu6_1"]


def test_diamond_imports_load_the_shared_file_once(tmp_path):
    write(tmp_path / "common" / "base.cnn", """
        block ConvBN(c) { return in -> conv: conv2d(c, 3, padding=1) -> bn: batchnorm2d }
    """)
    write(tmp_path / "left.cnn", """
        import "common/base.cnn"
        block Left(c) { return in -> ConvBN(c) }
    """)
    write(tmp_path / "sub" / "right.cnn", """
        import "../common/base.cnn"
        block Right(c) { return in -> ConvBN(c) -> ConvBN(c) }
    """)
    write(tmp_path / "main.cnn", """
        import "left.cnn"
        import "sub/right.cnn"
        import "common/base.cnn"
        model M {
            input x: [3, 8, 8]
            output y = add(x -> Left(3), x -> Right(3), x -> ConvBN(3))
        }
    """)
    program = archdsl.load(tmp_path / "main.cnn")
    assert program.check() == []  # in particular no "block 'ConvBN' is defined more than once"
    base_sources = [name for name in program.sources if name.replace("\\", "/").endswith("common/base.cnn")]
    assert len(base_sources) == 1
    assert len(program.sources) == 4
    m = program.model()
    assert m.node("add_1").inputs == ("left_1.conv_bn_1.bn", "right_1.conv_bn_2.bn", "conv_bn_1.bn")


# --------------------------------------------------------------------------
# Graph.


@pytest.mark.parametrize("name", ["lenet5.cnn", "resnet18.cnn", "resnet50.cnn"])
def test_node_order_is_a_topological_order_of_the_graph(name):
    m = archdsl.load(MODELS / name).model()
    graph = m.graph
    assert nx.is_directed_acyclic_graph(graph)
    order = list(m.nodes)
    assert set(graph.nodes) == set(order)
    position = {n: i for i, n in enumerate(order)}
    # The lexicographic topological sort keyed by position reproduces the
    # node order exactly if and only if that order is topological.
    assert list(nx.lexicographical_topological_sort(graph, key=position.__getitem__)) == order
    assert [n.name for n in m.order()] == order
    assert sum(len(n.inputs) for n in m.nodes.values()) == sum(len(p) for *_, p in graph.edges(data="ports"))
    assert [n for n in order if graph.in_degree(n) == 0] == list(m.inputs)


def test_graph_edges_and_consumers():
    m = model_of("""
        model M {
            input x: [8, 8, 8]
            a = x -> conv2d(8, 1)
            output y = add(a, x) -> relu
        }
    """)
    assert sorted(m.graph.edges) == [("add_1", "relu_1"), ("conv2d_1", "add_1"), ("x", "add_1"), ("x", "conv2d_1")]
    assert m.graph.edges["x", "add_1"]["ports"] == [1]
    assert m.consumers() == {"x": ["conv2d_1", "add_1"], "conv2d_1": ["add_1"], "add_1": ["relu_1"], "relu_1": []}


# --------------------------------------------------------------------------
# Command line.


@pytest.fixture(scope="module")
def resnet18_json() -> dict:
    """`archdsl parse --json models/resnet18.cnn`, run once for the tests below."""
    result = run_cli("parse", "--json", "models/resnet18.cnn")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_parse_json_validates_against_the_schema(resnet18_json, monkeypatch):
    import jsonschema

    schema_run = run_cli("schema")
    assert schema_run.returncode == 0
    schema = json.loads(schema_run.stdout)
    assert schema["title"] == "archdsl parse --json"  # the document parse prints, models inside
    assert list(resnet18_json) == ["models"]
    assert [m["name"] for m in resnet18_json["models"]] == ["ResNet18"]
    jsonschema.validate(resnet18_json, schema)
    data = resnet18_json["models"][0]
    jsonschema.validate(data, {**schema["$defs"]["Model"], "$defs": schema["$defs"]})
    assert data["inputs"] == ["image"]
    assert data["outputs"] == {"logits": "fc"}
    assert data["nodes"]["image"]["spec"] == {"op": "input", "shape": [3, 224, 224]}
    assert data["nodes"]["layer2.0.downsample.0"]["spec"]["op"] == "conv2d"
    assert data["nodes"]["layer2.0.downsample.0"]["spec"]["stride"] == 2
    assert data["nodes"]["layer2.0.downsample.0"]["inputs"] == ["layer1.1.relu_2"]
    assert data["nodes"]["layer2.0.downsample.0"]["block"] == "layer2.0"
    assert data["blocks"]["layer4.1"]["block"] == "BasicBlock"
    monkeypatch.chdir(ROOT)  # spans name files as the CLI was given them
    reference = archdsl.load("models/resnet18.cnn").model()
    assert list(data["nodes"]) == list(reference.nodes)
    # The JSON text round-trips through the Pydantic model.
    assert archdsl.Model.model_validate_json(json.dumps(data)) == reference


def test_parse_json_model_dicts_validate_with_pydantic(resnet18_json):
    """What `parse --json` prints is a Model: Model.model_validate accepts each
    model dict, including JSON arrays where the model holds tuples (an input's
    shape, a kernel given per dimension)."""
    for data in resnet18_json["models"]:
        model = archdsl.Model.model_validate(data)
        assert model.name == data["name"] == "ResNet18"
        assert list(model.nodes) == list(data["nodes"])
        assert model.node("image").spec.shape == (3, 224, 224)
        assert model.node("layer2.0.downsample.0").spec.stride == 2


def test_parse_reports_errors_on_stderr_and_prints_nothing():
    result = run_cli("parse", "--json", "tests/invalid/unknown_op.cnn")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "tests/invalid/unknown_op.cnn:5:10: error[E201]: unknown op or block 'conv2'" in result.stderr


def _run_all(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """run_cli for independent commands, concurrently (each one is a process)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda command: run_cli(*command), commands))


def test_exit_codes():
    clean, errors, warnings, strict, missing, parse_missing, bad_flag = _run_all(
        ("check", "models/lenet5.cnn", "models/resnet18.cnn"),
        ("check", "models/lenet5.cnn", "tests/invalid/multiple_errors_in_model.cnn"),
        ("check", "tests/invalid/unused_value.cnn"),
        ("check", "--strict", "tests/invalid/unused_value.cnn"),
        ("check", "no/such/file.cnn"),
        ("parse", "no_such_file.cnn"),
        ("check", "--no-such-flag", "models/lenet5.cnn"),
    )
    # Lint findings (warnings, infos) may accompany these files; only errors fail a run.
    assert clean.returncode == 0, clean.stdout
    assert "checked 2 files: 0 errors, " in clean.stdout
    assert "error[" not in clean.stdout

    assert errors.returncode == 1
    assert "checked 2 files: 4 errors, " in errors.stdout
    assert errors.stdout.count("error[") == 4

    # Warnings alone pass, unless --strict.
    assert warnings.returncode == 0
    assert "checked 1 file: 0 errors, " in warnings.stdout
    assert "tests/invalid/unused_value.cnn:5:5: warning[W101]: value 'aux' is computed but never used" in warnings.stdout
    assert strict.returncode == 1

    assert missing.returncode == 2
    assert missing.stdout == ""
    assert "no/such/file.cnn" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert parse_missing.returncode == 2
    assert "no_such_file.cnn" in parse_missing.stderr
    assert "Traceback" not in parse_missing.stderr

    assert bad_flag.returncode == 2
    assert "--no-such-flag" in bad_flag.stderr


def test_no_color_means_no_escapes_and_color_always_forces_them():
    # run_cli sets NO_COLOR=1 and its output is not a terminal.
    plain, forced = _run_all(("check", "tests/invalid/unknown_op.cnn"),
                             ("check", "--color", "always", "tests/invalid/unknown_op.cnn"))
    assert not ANSI.search(plain.stdout + plain.stderr)
    assert "error[E201]" in plain.stdout
    assert ANSI.search(forced.stdout)
    assert ANSI.sub("", forced.stdout) == plain.stdout


def _run_on_terminal(*cli_args: str, no_color: str | None) -> str:
    """Runs the CLI with stdout on a pseudo-terminal, so that 'auto' colour applies."""
    import pty

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    master, slave = pty.openpty()
    try:
        subprocess.run([sys.executable, "-m", "archdsl", *cli_args], cwd=ROOT, env=env,
                       stdout=slave, stderr=slave, timeout=60, check=False)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_no_color_environment_variable_on_a_terminal():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        coloured, disabled, empty = pool.map(
            lambda no_color: _run_on_terminal("check", "tests/invalid/unknown_op.cnn", no_color=no_color),
            [None, "1", ""],
        )
    assert ANSI.search(coloured), coloured
    assert "error[E201]" in ANSI.sub("", coloured)
    assert not ANSI.search(disabled), disabled
    assert "error[E201]" in disabled
    # NO_COLOR set to the empty string does not disable colour (no-color.org).
    assert ANSI.search(empty)


def test_check_format_json_structure():
    result = run_cli("check", "--format", "json", "models/lenet5.cnn", "tests/invalid/multiple_errors_across_blocks.cnn",
                     "tests/invalid/unused_value.cnn")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert set(payload) == {"files", "errors", "warnings", "infos", "statistics"}
    assert payload["errors"] == 3
    assert payload["warnings"] >= 1  # W101, plus whatever lint finds
    files = payload["files"]
    assert [f["path"].replace("\\", "/") for f in files] == [
        "models/lenet5.cnn", "tests/invalid/multiple_errors_across_blocks.cnn", "tests/invalid/unused_value.cnn",
    ]
    assert files[0]["models"] == ["LeNet5"]
    assert [d for d in files[0]["diagnostics"] if d["severity"] == "error"] == []
    assert files[1]["models"] == ["M"]
    diagnostics = [d for d in files[1]["diagnostics"] if d["severity"] == "error"]
    assert [(d["code"], d["span"]["line"], d["span"]["column"]) for d in diagnostics] == [
        ("E202", 6, 25), ("E303", 10, 35), ("E306", 16, 16),
    ]
    first = diagnostics[0]
    assert set(first) == {"code", "name", "severity", "message", "span", "labels", "hint", "notes"}
    assert first["name"] == "unknown-name"
    assert first["severity"] == "error"
    assert first["message"] == "unknown name 'channels'"
    assert first["span"] == {
        "file": "tests/invalid/multiple_errors_across_blocks.cnn",
        "line": 6, "column": 25, "end_line": 6, "end_column": 33,
    }
    assert first["labels"] == [{
        "span": {"file": "tests/invalid/multiple_errors_across_blocks.cnn",
                 "line": 14, "column": 14, "end_line": 14, "end_column": 22},
        "message": "in this use of block Stem",
    }]
    assert first["notes"] == []
    [warning] = [d for d in files[2]["diagnostics"] if d["code"] == "W101"]
    assert (warning["code"], warning["name"], warning["severity"]) == ("W101", "unused-value", "warning")
    assert warning["hint"] == "use it, declare it an output, or remove it"
