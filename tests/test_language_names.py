"""Labels that spell any PyTorch module key: string labels and label
templates may hold characters a name cannot (torchvision's RegNet keys are
``trunk_output.block1.block1-0.proj.0.weight``); what would break a key's
structure is refused at the label, with the reason.

PyTorch's rule (``nn.Module.add_module``): a child's name is any string
but the empty one and one containing ``.``; the other refusals here
(whitespace, control characters, a brace left from a template) are this
language's, documented in docs/language.md ("Names")."""

from __future__ import annotations

import textwrap

import pytest

import archdsl


def load_ok(text: str) -> archdsl.Program:
    program = archdsl.loads(textwrap.dedent(text))
    found = program.check()
    assert found == [], "\n".join(f"{d.span}: {d.code}: {d.message}" for d in found)
    return program


def found(text: str) -> list[tuple[str, int, int, str, str | None]]:
    program = archdsl.loads(textwrap.dedent(text), name="t.cnn")
    return [(d.code, d.span.line, d.span.column, d.message, d.hint) for d in program.check()]


REGNET_LIKE = """
    block Stage(width, depth) {
        return in -> repeat range(depth) as i {
            "block{depth}-{i}": (proj: conv2d(width, 1) -> act: relu)
        }
    }
    model M {
        input x: [3, 8, 8]
        x -> trunk_output: (block1: Stage(4, 2) -> "block2": Stage(8, 1))
          -> "fc-head": conv2d(2, 1)
    }
"""


def test_string_labels_and_templates_spell_keys_with_hyphens():
    model = load_ok(REGNET_LIKE).model()
    assert [name for name in model.nodes if model.node(name).op == "conv2d"] == [
        "trunk_output.block1.block2-0.proj", "trunk_output.block1.block2-1.proj",
        "trunk_output.block2.block1-0.proj", "fc-head",
    ]


def test_hyphenated_keys_are_the_runtime_state_dict_keys():
    model = load_ok(REGNET_LIKE).model()
    keys = list(archdsl.compile(model, seed=0).state_dict())
    assert "trunk_output.block1.block2-1.proj.weight" in keys
    assert "fc-head.bias" in keys


@pytest.mark.parametrize(("label", "message", "hint"), [
    ('"a.b"', "label 'a.b' contains '.', which separates the levels of a node name",
     "name a level with a labelled group or block: 'a: (b: conv2d(...))' is 'a.b'"),
    ('"x{1}.{2}"', "label 'x1.2' contains '.', which separates the levels of a node name",
     "name a level with a labelled group or block: 'a: (b: conv2d(...))' is 'a.b'"),
    ('""', "label '' is empty", None),
    ('"{s}"', "label '' is empty", None),
    ('"conv 1"', "label 'conv 1' contains whitespace or a control character", None),
    ('"conv\\t1"', "label 'conv\\t1' contains whitespace or a control character", None),
    ('"conv{1"', "label 'conv{1' has an unmatched '{' or '}'",
     "a template fills in '{expression}' parts: '\"conv{i + 1}\"'"),
])
def test_labels_that_would_break_a_key_are_refused_at_the_label(label, message, hint):
    assert found(f"""
        model M {{
            input x: [3, 8, 8]
            s = ""
            x -> {label}: conv2d(4, 1)
        }}
    """) == [("E210", 5, 10, message, hint)]


def test_a_dot_in_a_label_cannot_pass_for_a_level():
    """Without the refusal, "a.b" would be the same node name as b inside a
    group labelled a, and two unrelated nodes would share one key."""
    codes = [code for code, *_ in found("""
        model M {
            input x: [3, 8, 8]
            x -> a: (b: conv2d(4, 1)) -> "a.b": conv2d(4, 1)
        }
    """)]
    assert codes == ["E210"]


def test_a_hyphen_label_clashing_with_another_is_still_a_duplicate_name():
    assert [code for code, *_ in found("""
        model M {
            input x: [3, 8, 8]
            x -> "b-0": conv2d(4, 1) -> "b-{0}": conv2d(4, 1)
        }
    """)] == ["E203"]
