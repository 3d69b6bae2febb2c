"""Errors inside block instances name the chain of uses that led to them,
innermost first (elaboration's errors and the shape pass's alike), and a
misspelt op is corrected to the op that takes the input's rank, now that
shapes are known during elaboration.

Shapes in the expected messages are hand calculations with PyTorch's
rules: conv_transpose2d(k=2, s=2) doubles H and W, maxpool2d(2) halves
them, concat along channels needs equal H and W."""

from __future__ import annotations

import textwrap

import pytest

import archdsl

UNET_LIKE = """
block Up(out, skip) {
    return in -> up: conv_transpose2d(out, 2, stride=2) -> concat(skip) -> conv2d(out, 3, padding=1)
}
block Decoder(skip1, skip2) {
    return in -> Up(16, skip=skip2) -> Up(8, skip=skip1)
}
model UNetLike {
    input x: [3, 32, 32]
    e1 = x -> conv2d(8, 3, padding=1) -> relu
    e2 = e1 -> maxpool2d(2) -> conv2d(16, 3, padding=1)
    bottom = e2 -> maxpool2d(2) -> maxpool2d(2) -> conv2d(32, 3, padding=1)
    bottom -> decoder: Decoder(e1, e2)
}
"""


def diagnostics(text: str) -> list[archdsl.Diagnostic]:
    return archdsl.loads(textwrap.dedent(text), name="t.cnn").check()


def where(label: archdsl.diagnostics.Label) -> tuple[int, int, str]:
    return (label.span.line, label.span.column, label.message)


def test_a_shape_error_inside_nested_blocks_names_each_use_innermost_first():
    # bottom is [32, 4, 4]; the first Up makes [16, 8, 8] and concatenates e2 ([16, 16, 16]): E405.
    (error,) = diagnostics(UNET_LIKE)
    assert (error.code, error.span.line, error.span.column) == ("E405", 3, 60)
    assert error.message == ("concat along dim 1 needs the other dimensions to agree, got [16, 8, 8], "
                             "[16, 16, 16]")
    assert [where(label) for label in error.labels] == [
        (3, 22, "'decoder.up_1.up' produces [16, 8, 8]"),
        (11, 32, "'conv2d_2' produces [16, 16, 16]"),
        (6, 18, "in this use of block Up"),
        (13, 24, "in this use of block Decoder"),
    ]


def test_a_merge_error_inside_a_block_names_its_use():
    # conv2d(8, 3) without padding: [3, 8, 8] -> [8, 6, 6], which add cannot combine with [3, 8, 8].
    (error,) = diagnostics("""
        block Residual() {
            return in -> conv2d(8, 3) -> add(in)
        }
        model M {
            input x: [3, 8, 8]
            x -> block1: Residual()
        }
    """)
    assert error.code == "E404"
    assert where(error.labels[-1]) == (7, 18, "in this use of block Residual")


def test_an_elaboration_error_in_nested_blocks_names_each_use_innermost_first():
    (error,) = diagnostics("""
        block Inner() {
            return in -> relu(negative_slope=0.1)
        }
        block Outer() {
            return in -> Inner()
        }
        model M {
            input x: [3, 8, 8]
            x -> Outer()
        }
    """)
    assert (error.code, error.span.line) == ("E301", 3)
    assert [where(label) for label in error.labels] == [
        (6, 18, "in this use of block Inner"), (10, 10, "in this use of block Outer")]


def test_an_error_outside_blocks_has_no_use_labels():
    (error,) = diagnostics("""
        model M {
            input x: [3, 8, 8]
            x -> conv2d(4, 99)
        }
    """)
    assert error.code == "E401"
    assert not any("use of block" in label.message for label in error.labels)


@pytest.mark.parametrize(("shape", "written", "hint"), [
    ("[16, 8, 8]", "batchnorm", "did you mean 'batchnorm2d' (the input is [16, 8, 8])?"),
    ("[16, 8]", "batchnorm", "did you mean 'batchnorm1d' (the input is [16, 8])?"),
    ("[16, 4, 8, 8]", "batchnorm", "did you mean 'batchnorm3d' (the input is [16, 4, 8, 8])?"),
    ("[16, 8]", "maxpool(2)", "did you mean 'maxpool1d' (the input is [16, 8])?"),
    ("[16, 4, 8, 8]", "conv(4, 3)", "did you mean 'conv3d' (the input is [16, 4, 8, 8])?"),
    ("[16, 8, 8]", "avgpool(2)", "did you mean 'avgpool2d' (the input is [16, 8, 8])?"),
    # No rank-specific op is close: the closest name, whatever it takes.
    ("[16, 8, 8]", "rellu", "did you mean 'relu'?"),
])
def test_did_you_mean_respects_the_rank_of_the_input(shape, written, hint):
    (error,) = diagnostics(f"""
        model M {{
            input x: {shape}
            x -> {written}
        }}
    """)
    assert (error.code, error.hint) == ("E201", hint)


def test_did_you_mean_without_a_known_shape_is_by_spelling_only():
    found = diagnostics("""
        model M {
            input x: [3, 8, 8]
            x -> conv2d(4, 99) -> batchnorm
        }
    """)
    assert [d.code for d in found] == ["E401", "E201"]
    assert "(the input is" not in found[1].hint
