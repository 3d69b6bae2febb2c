"""The exact text of diagnostics that used to leave the reader guessing:
each test pins code, line, column, message, hint and labels."""

from __future__ import annotations

import archdsl
from archdsl.elaborate import Limits


def _only(text: str, limits: Limits | None = None):
    program = archdsl.loads(text, "m.cnn", limits=limits)
    diagnostics = [d for d in program.check() if d.severity.value == "error"]
    assert len(diagnostics) == 1, diagnostics
    d = diagnostics[0]
    return d, (d.code, d.span.line, d.span.column)


def test_linear_after_flatten_names_the_map_that_was_flattened():
    # 28x28, kernel 3, padding 1, stride 4: floor((28 + 2 - 3) / 4) + 1 = 7, so [256, 7, 7] = 12,544 features.
    d, where = _only(
        "model A {\n"
        "    input image: [3, 28, 28]\n"
        "    y = image -> conv2d(256, 3, stride=4, padding=1) -> flatten -> linear(in_features=256, out_features=10)\n"
        "    output y\n"
        "}\n")
    assert where == ("E402", 3, 75)
    assert d.message == "linear declares in_features=256, but its input has 12544 features"
    assert [label.message for label in d.labels] == ["'flatten_1' produces [12544] from the [256, 7, 7] map"]
    assert (d.labels[0].span.line, d.labels[0].span.column) == (3, 57)
    assert d.hint == "set in_features=12544 or fix the layer that feeds it"


def test_the_flatten_note_is_only_for_flatten():
    d, where = _only(
        "model A {\n"
        "    input v: [64]\n"
        "    y = v -> linear(in_features=32, out_features=10)\n"
        "    output y\n"
        "}\n")
    assert where == ("E402", 3, 21)
    assert [label.message for label in d.labels] == ["input 'v' produces [64]"]


def test_the_repeat_limit_speaks_of_the_running_total():
    # 1 input, then 4·40,000 relus, then a repeat of 5 relus 20,000 times.
    d, where = _only(
        "model C {\n"
        "    input image: [3, 8, 8]\n"
        "    a = image -> repeat 40000 { relu -> relu -> relu -> relu }\n"
        "    y = a -> repeat 20000 { relu -> relu -> relu -> relu -> relu }\n"
        "    output y\n"
        "}\n")
    assert where == ("E901", 4, 21)
    assert d.message == ("repeat 20000 would add about 100,000 nodes to the 160,001 already built, 260,001 in all, "
                         "more than the limit of 250,000")


def test_a_shape_in_parentheses_is_shown_in_brackets():
    d, where = _only("model D {\n    input image: (3, 32, 32)\n    output image\n}\n")
    assert where == ("E101", 2, 18)
    assert d.message == "expected '[', found '('"
    assert d.hint == "a shape is written in brackets: [3, 32, 32]"


def test_a_reserved_word_as_a_label_is_shown_as_a_string_label():
    d, where = _only("model E {\n    input image: [3, 8, 8]\n    y = image -> model: conv2d(8, 1)\n    output y\n}\n")
    assert where == ("E101", 3, 18)
    assert d.message == "expected an expression or 'repeat', found keyword 'model'"
    assert d.hint == "'model' is a reserved word; to use it as a label write it as a string: \"model\": ..."
    # ...and the string label it suggests works, naming the node 'model'.
    fixed = archdsl.loads("model E {\n    input image: [3, 8, 8]\n    y = image -> \"model\": conv2d(8, 1)\n"
                          "    output y\n}\n", "m.cnn")
    assert fixed.ok and "model" in fixed.model().nodes


def test_a_reserved_word_elsewhere_still_asks_for_another_name():
    d, where = _only("model E {\n    input image: [3, 8, 8]\n    y = image -> model\n    output y\n}\n")
    assert where[0] == "E101"
    assert d.hint == "'model' is a reserved word; choose another name"


# A U-Net decoder step written with the chain's value piped into the concat:
# 16 + 16 + 16 channels, not the 32 the author counted.
_PIPED_CONCAT = (
    "model U {{\n"
    "    input image: [3, 32, 32]\n"
    "    skip = image -> conv2d(16, 3, padding=1)\n"
    "    up = image -> conv2d(16, 3, padding=1{stride})\n"
    "    output y = {chain}\n"
    "}}\n")


def test_a_piped_value_that_makes_a_three_input_concat_is_named_when_a_shape_error_follows():
    d, where = _only(_PIPED_CONCAT.format(chain="up -> concat(skip, up) -> conv2d(32, 3, in_channels=32)", stride=""))
    assert where == ("E402", 5, 56)
    assert d.message == "conv2d declares in_channels=32, but its input has 48 channels"
    assert d.notes == ("'concat_1' has 3 inputs: the chain's value 'conv2d_2' and the 2 written in concat(...); "
                       "to combine only those, start a new chain with concat(...)",)


def test_the_three_input_note_is_on_the_merge_s_own_error():
    d, where = _only(_PIPED_CONCAT.format(chain="image -> concat(skip, up)", stride=", stride=2"))
    assert where == ("E405", 5, 25)
    assert d.notes == ("'concat_1' has 3 inputs: the chain's value 'image' and the 2 written in concat(...); "
                       "to combine only those, start a new chain with concat(...)",)


def test_no_three_input_note_for_a_two_input_piped_merge_or_an_unpiped_one():
    d, _ = _only(_PIPED_CONCAT.format(chain="image -> concat(skip) -> conv2d(8, 3, in_channels=16)", stride=""))
    assert d.code == "E402" and d.notes == ()
    d, _ = _only(_PIPED_CONCAT.format(chain="concat(skip, up, image) -> conv2d(8, 3, in_channels=16)", stride=""))
    assert d.code == "E402" and d.notes == ()
