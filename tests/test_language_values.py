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


# --------------------------------------------------------------------------
# Lists, tuples, indexing, iteration.


def test_a_repeat_iterates_over_a_config_list_taking_each_item_apart():
    m = load_ok("""
        model M {
            input x: [3, 32, 32]
            cfg = [(3, 16, 1), (5, 24, 2), (3, 40, 2)]     # (kernel, channels, stride)
            x -> features: repeat cfg as (k, c, s) { conv2d(c, k, stride=s, padding=k // 2) -> relu }
        }
    """).model()
    convs = [n for n in m.nodes.values() if n.op == "conv2d"]
    assert [n.name for n in convs] == ["features.0", "features.2", "features.4"]
    assert [(a["out_channels"], a["kernel_size"], a["stride"], a["padding"])
            for a in (n.spec.arguments() for n in convs)] == [(16, 3, 1, 1), (24, 5, 2, 2), (40, 3, 2, 1)]


def test_repeat_as_a_name_binds_each_item_and_without_as_runs_once_per_item():
    m = load_ok("""
        model M {
            input x: [3, 8, 8]
            x -> a: repeat [4, 6] as c { conv2d(c, 1) } -> b: repeat [7, 7, 7] { relu }
              -> c: repeat enumerate([5, 9]) as (i, w) { "conv{i}": conv2d(w, 1) }
              -> d: repeat range(2) as i { conv2d(i + 1, 1) }
        }
    """).model()
    assert [out_channels(m, n) for n in ("a.0", "a.1", "c.conv0", "c.conv1", "d.0", "d.1")] == [4, 6, 5, 9, 1, 2]
    assert [n for n in m.nodes if n.startswith("b.")] == ["b.0", "b.1", "b.2"]


def test_lists_and_tuples_are_one_kind_of_value_with_len_indexing_and_joining():
    m = load_ok("""
        model M {
            input x: [3, 8, 8]
            widths = [8, 16] + (32,)
            nested = [[1, 2], [3, 4, 5]]
            x -> a: conv2d(widths[-1] + len(widths), 1)          # 32 + 3
              -> b: conv2d(len(nested[1]) * 10 + nested[0][1], 1) # 30 + 2
              -> c: conv2d(if [1, 2] == (1, 2) then 1 else 2, 1)
              -> d: conv2d(len([]) + 1, kernel_size=[1, 1])
        }
    """).model()
    assert [out_channels(m, n) for n in "abcd"] == [35, 32, 1, 1]
    assert m.node("d").spec.arguments()["kernel_size"] == (1, 1)


def test_math_builtins():
    # Python's math module is the reference: ceil(2.1) = 3, floor(2.9) = 2,
    # sqrt(16) = 4.0, log(8, 2) = 3.0 (within float rounding), pow exact on integers.
    m = load_ok("""
        model M {
            input x: [3, 8, 8]
            x -> a: conv2d(pow(2, 10), 1) -> b: conv2d(ceil(2.1) * 10 + floor(2.9), 1)
              -> c: conv2d(int(sqrt(16)) + round(log(8, 2)) + round(log(1)), 1)
              -> d: conv2d(sum([1, 2, 3]) + sum([]), 1)
              -> e: conv2d(int(pow(4, 0.5)) + max([3, 9, 4]) + min(5, 2), 1)
        }
    """).model()
    assert [out_channels(m, n) for n in "abcde"] == [1024, 32, 7, 6, 13]


@pytest.mark.parametrize(("statement", "code", "column", "message"), [
    ("x -> repeat [(3, 16), (5, 24, 2)] as (k, c) { conv2d(c, k) }", "E215", 41,
     "item 1 of the list has 3 items, but is taken apart into 2 names"),
    ("x -> repeat [3, 4] as (k, c) { conv2d(c, k) }", "E215", 26,
     "item 0 of the list has an int, but is taken apart into 2 names"),
    ("x -> repeat 3 as (a, b) { relu }", "E215", 21, "'repeat 3' counts; only the items of a list can be taken apart"),
    ("x -> conv2d([1, 2][2], 1)", "E214", 22, "index 2 is out of range for 2 items"),
    ("x -> conv2d([1, 2][-3], 1)", "E214", 22, "index -3 is out of range for 2 items"),
    ("x -> conv2d([1, 2][true], 1)", "E210", 22, "an index must be an integer, not a bool (true)"),
    ("x -> conv2d(3[0], 1)", "E210", 15, "cannot index an int"),
    ("x -> conv2d(pow(2), 1)", "E302", 15, "pow() takes 2 arguments, got 1"),
    ("x -> conv2d(sqrt(4, 5), 1)", "E304", 23, "sqrt() takes 1 argument, got 2"),
    ("x -> conv2d(min(), 1)", "E302", 15, "min() takes at least 1 argument, got 0"),
    ("x -> conv2d(round(1, 2, 3), 1)", "E304", 27, "round() takes 1 to 2 arguments, got 3"),
    ("x -> conv2d(sqrt(-1), 1)", "E210", 15, "sqrt(-1) failed: math domain error"),
    ("x -> conv2d(len(3), 1)", "E210", 15, "len(3) failed: object of type 'int' has no len()"),
    ("x -> conv2d(sum([1, \"a\"]), 1)", "E210", 15, 'sum((1, "a")) failed: sum() adds the numbers of a list'),
    ("x -> conv2d(pow(10, 100), 1)", "E901", 15, "integer result of pow() is larger than the limit of 2^62"),
])
def test_list_and_builtin_errors_are_located(statement, code, column, message):
    text = f"model M {{\n  input x: [3, 8, 8]\n  {statement}\n}}\n"
    diagnostics = archdsl.loads(text).diagnostics
    message = message.replace("2^62", str(2**62))
    assert [(d.code, d.span.line, d.span.column, d.message) for d in diagnostics] == [(code, 3, column, message)]


def test_the_item_that_does_not_fit_is_shown_next_to_the_list():
    (d,) = archdsl.loads("model M { input x: [3, 8, 8]\n x -> repeat [(1, 2), (3,)] as (a, b) { relu } }").diagnostics
    assert [(label.span.column, label.message) for label in d.labels] == [(14, "item 1 is (3,)")]


def test_lists_are_bounded_in_length_and_nesting():
    limits = archdsl.Limits(max_list_length=4, max_list_nesting=3)
    long = archdsl.loads("model M { input x: [3]\n a = [1, 2, 3] + [4, 5]\n x }", limits=limits).diagnostics
    assert [(d.code, d.span.line, d.message) for d in long] == [
        ("E901", 2, "a list of 5 items is longer than the limit of 4")]
    ranged = archdsl.loads("model M { input x: [3]\n a = range(10)\n x }", limits=limits).diagnostics
    assert [d.message for d in ranged] == ["a list of 10 items is longer than the limit of 4"]
    # Nesting grows one level per name, which the bracket limit of the
    # source text does not bound.
    deep = archdsl.loads("model M { input x: [3]\n a = [1]\n b = [a]\n c = [b]\n d = [c]\n x }",
                         limits=limits).diagnostics
    assert [(d.code, d.span.line, d.message) for d in deep] == [
        ("E901", 5, "lists nest deeper than the limit of 3")]
    text = archdsl.loads('model M { input x: [3]\n a = "abc" + "de"\n x }', limits=limits).diagnostics
    assert [d.message for d in text] == ["a string of 5 characters is longer than the limit of 4"]


def test_doubling_a_list_by_names_stops_at_the_default_limit():
    lines = ["a0 = [0, 0]"] + [f"a{i} = a{i - 1} + a{i - 1}" for i in range(1, 40)]
    text = "model M { input x: [3]\n" + "\n".join(lines) + "\n x }"
    errors = [d for d in archdsl.loads(text).diagnostics if d.code == "E901"]
    assert len(errors) == 1 and errors[0].message.startswith("a list of 131,072 items is longer than the limit")


# --------------------------------------------------------------------------
# Ops and blocks as values.


def test_ops_and_blocks_are_values_with_partial_arguments_applied_with_an_arrow():
    program = load_ok("""
        block Unit(out, act = relu) {
            return in -> conv2d(out, 1) -> act
        }
        block Pair(first, second) { return in -> first -> second }
        block Act(f = relu6) { return in -> f }
        model M {
            input x: [3, 8, 8]
            act = leaky_relu(0.1)
            lrelu = leaky_relu                      # an op as a value, given its argument later
            cfg = [(4, relu), (5, leaky_relu(0.2)), (6, hardswish)]
            x -> act -> Unit(8) -> Unit(8, act) -> Unit(8, act=sigmoid)
              -> s: repeat cfg as (c, f) { conv2d(c, 1) -> f }
              -> Pair(relu, Act) -> Pair(lrelu(0.3), batchnorm2d)
        }
    """)
    m = program.model()
    ops = {name: (node.op, node.spec.arguments().get("negative_slope")) for name, node in m.nodes.items()}
    assert ops["leaky_relu_1"] == ("leaky_relu", 0.1)
    assert ops["unit_1.relu_1"][0] == "relu"  # the default
    assert ops["unit_2.leaky_relu_1"] == ("leaky_relu", 0.1)
    assert ops["unit_3.sigmoid_1"][0] == "sigmoid"
    assert [ops[f"s.{i}"] for i in (1, 3, 5)] == [("relu", None), ("leaky_relu", 0.2), ("hardswish", None)]
    # A block as a value: Act applied inside Pair, with its default f.
    assert ops["pair_1.act_1.relu6_1"][0] == "relu6"
    assert ops["pair_2.leaky_relu_1"] == ("leaky_relu", 0.3)
    assert m.blocks["unit_2"].arguments == {"out": "8", "act": "leaky_relu(0.1)"}


def test_an_op_value_s_arguments_are_validated_where_it_is_applied():
    text = "model M {\n  input x: [3, 8, 8]\n  act = leaky_relu(\"a\")\n  x -> act\n}\n"
    assert [(d.code, d.span.line) for d in archdsl.loads(text).diagnostics] == [("E303", 3)]


def test_an_op_value_takes_compile_time_arguments_only():
    text = "block B(f) { return in -> f }\nmodel M {\n  input x: [3, 8, 8]\n  x -> B(relu(x))\n}\n"
    assert [(d.code, d.span.line, d.message) for d in archdsl.loads(text).diagnostics] == [
        ("E207", 4, "relu takes its input from the chain, not as an argument")]


def test_an_argument_an_op_value_already_has_cannot_be_given_again():
    text = "model M {\n  input x: [3, 8, 8]\n  act = leaky_relu(0.1)\n  x -> act(negative_slope=0.2)\n}\n"
    assert [(d.code, d.span.line, d.message) for d in archdsl.loads(text).diagnostics] == [
        ("E305", 4, "argument 'negative_slope' of leaky_relu is given twice")]
