"""The language's compile-time values, second edition: tensor shapes read
during elaboration (``in.channels``), tuples and lists, indexing, iteration
with destructuring, the math builtins; each with its failure modes as
located diagnostics.

Expected shapes are hand calculations with PyTorch's conv rule
(out = (in + 2*padding - kernel) // stride + 1) on the declared inputs."""

from __future__ import annotations

import textwrap

import pytest

import archdsl
from archdsl.ops.base import OpSpec


def load_ok(text: str) -> archdsl.Program:
    program = archdsl.loads(textwrap.dedent(text))
    found = program.check()
    assert found == [], "\n".join(f"{d.span}: {d.code}: {d.message}" for d in found)
    return program


def found(text: str) -> list[tuple[str, int, int, str]]:
    """(code, line, column, message) of every diagnostic of the text, shape errors included."""
    program = archdsl.loads(textwrap.dedent(text), name="t.cnn")
    return [(d.code, d.span.line, d.span.column, d.message) for d in program.check()]


def out_channels(model: archdsl.Model, name: str) -> int:
    return model.node(name).spec.arguments()["out_channels"]


# --------------------------------------------------------------------------
# Shapes during elaboration.


def test_a_block_reads_its_input_channels_instead_of_taking_them_as_a_parameter():
    m = load_ok("""
        block Expand(factor) {
            hidden = in.channels * factor          # [16, 32, 32] in: 64
            return in -> conv2d(hidden, 1) -> conv2d(in.channels, 3, padding=1) -> add(in)
        }
        model M {
            input x: [16, 32, 32]
            x -> a: Expand(4) -> conv2d(24, 1) -> b: Expand(2)
        }
    """).model()
    assert out_channels(m, "a.conv2d_1") == 64
    assert out_channels(m, "a.conv2d_2") == 16
    assert out_channels(m, "b.conv2d_1") == 48  # after conv2d(24, 1): 24 * 2
    assert out_channels(m, "b.conv2d_2") == 24


def test_shape_attributes_of_named_tensors_follow_each_op_s_shape_rule():
    m = load_ok("""
        model M {
            input x: [3, 64, 48]
            y = x -> conv2d(8, 3, stride=2)        # [8, 31, 23]
            s = y.shape
            y -> a: conv2d(s[0] + s[1] + s[2], 1)  # 8 + 31 + 23
              -> b: conv2d(y.height * 1000 + y.width, 1)
              -> c: conv2d(x.rank + y.channels, 1)
        }
    """).model()
    assert out_channels(m, "a") == 62
    assert out_channels(m, "b") == 31023
    assert out_channels(m, "c") == 11


def test_length_and_depth_are_the_spatial_sizes_of_rank_2_and_rank_4_tensors():
    m = load_ok("""
        model M {
            input s: [4, 100]
            input v: [2, 5, 6, 7]
            s -> a: conv1d(s.length, 1)
            v -> b: conv3d(v.depth * 100 + v.height * 10 + v.width, 1)
        }
    """).model()
    assert out_channels(m, "a") == 100
    assert out_channels(m, "b") == 567


def test_each_node_s_shape_is_computed_once_however_often_it_is_read(monkeypatch):
    calls: list[str] = []
    original = OpSpec.output_shape

    def counting(self, inputs):
        calls.append(self.op)
        return original(self, inputs)

    monkeypatch.setattr(OpSpec, "output_shape", counting)
    program = archdsl.loads(textwrap.dedent("""
        block Same() {
            return in -> conv2d(in.channels, 3, padding=1) -> conv2d(in.channels + 0 * in.height, 1)
        }
        model M {
            input x: [8, 16, 16]
            x -> repeat 50 { Same() }
        }
    """))
    assert program.ok
    # 100 conv2d nodes.  Instance k reads the shape of instance k-1's output
    # three times, which needs the shapes of both convs of every earlier
    # instance: each of those 2 * 49 nodes is computed once, the last
    # instance's two never (nothing reads them); the input's is declared.
    assert len(calls) == 2 * 49


def test_a_shape_made_unknown_by_a_shape_error_is_said_once_at_the_first_use():
    assert found("""
        model M {
            input x: [16, 32, 32]
            y = x -> conv2d(8, 99)
            z = y -> relu
            w = z -> conv2d(z.channels, 1) -> conv2d(z.channels, 1) -> conv2d(y.width, 1)
        }
    """) == [
        ("E401", 4, 24, "conv2d: kernel 99x99 is larger than the padded input 32x32"),
        ("E409", 6, 21, "the shape of 'relu_1' is unknown: 'conv2d_1' upstream has a shape error"),
    ]


def test_an_unknown_shape_inside_a_block_names_the_use_of_the_block():
    program = archdsl.loads(textwrap.dedent("""
        block B() {
            return in -> conv2d(in.channels, 1)
        }
        model M {
            input x: [16, 4, 4]
            x -> conv2d(8, 9) -> B()
        }
    """), name="t.cnn")
    (e409,) = [d for d in program.diagnostics if d.code == "E409"]
    assert (e409.span.line, e409.span.column) == (3, 25)
    assert [(label.span.line, label.message) for label in e409.labels] == [
        (7, "the shape error is here"), (7, "in this use of block B")]


@pytest.mark.parametrize(("expression", "column", "message"), [
    ("x.chanels", 17, "a tensor has no attribute 'chanels'"),
    ("x.length", 17, "'length' is not defined for a tensor of rank 3 ([3, 8, 8])"),
    ("x.depth", 17, "'depth' is not defined for a tensor of rank 3 ([3, 8, 8])"),
    ("(3).shape", 19, "an int (3) has no attribute 'shape'"),
    ("n.channels", 17, "an int (4) has no attribute 'channels'"),
])
def test_attribute_errors_are_located_at_the_attribute(expression, column, message):
    text = f"model M {{\n  input x: [3, 8, 8]\n  n = 4\n  x -> conv2d({expression}, 1)\n}}\n"
    diagnostics = archdsl.loads(text).diagnostics
    assert [(d.code, d.span.line, d.span.column, d.message) for d in diagnostics] == [
        ("E213", 4, column, message)]


def test_a_misspelt_attribute_gets_a_suggestion():
    (d,) = archdsl.loads("model M { input x: [3, 8, 8]\n x -> conv2d(x.chanels, 1) }").diagnostics
    assert d.hint == "did you mean 'channels'?"
