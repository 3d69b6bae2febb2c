"""Code rewritten for speed (docs/benchmarks.md) gives what the plain code
gave: each fast path is checked against a straightforward reference (the
code it replaced) on generated inputs.  No timings: the machine is noisy;
benchmarks/ measures."""

import gc
from fractions import Fraction

import pytest
from conftest import MODELS
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl._gc import gc_paused, paused_gc
from archdsl.checking import check_program
from archdsl.elaborate import _nesting_error
from archdsl.lint.base import LintContext
from archdsl.lint.geometry import windowed
from archdsl.passes.receptive_field import Field
from archdsl.source import SourceFile

# ---------------------------------------------------------------- the bracket scan


def nesting_reference(text: str, limit: int) -> int | None:
    """Offset of the first bracket deeper than ``limit``: the character loop
    that _nesting_error replaced with a scan from one special character to
    the next."""
    depth, in_string, in_comment = 0, None, False
    for offset, ch in enumerate(text):
        if in_comment:
            in_comment = ch != "\n"
        elif in_string:
            if ch == in_string or ch == "\n":
                in_string = None
        elif ch == "#":
            in_comment = True
        elif ch in "\"'":
            in_string = ch
        elif ch in "([{":
            depth += 1
            if depth > limit:
                return offset
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="()[]{}\"'#\n\\ ab", max_size=60), st.integers(0, 4))
def test_bracket_scan_matches_the_character_loop(text, limit):
    found = _nesting_error(SourceFile("n.cnn", text), limit)
    assert (None if found is None else found.span.start) == nesting_reference(text, limit)


# ---------------------------------------------------------------- line index


@settings(derandomize=True)
@given(st.text(alphabet="ab\n\r\t é", max_size=40))
def test_line_index_matches_the_character_loop(text):
    source = SourceFile("l.cnn", text)
    assert source._line_starts == [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]


# ---------------------------------------------------------------- receptive fields


def covers_reference(field: Field, extent, positions) -> bool:
    """Field.covers as it was, with the half-size as a Fraction."""
    if len(extent) != len(field.size):
        return False
    padded = positions + (1,) * (len(extent) - len(positions))
    for r, j, s, e, n in zip(field.size, field.jump, field.start, extent, padded):
        half = Fraction(r - 1, 2)
        if s + (n - 1) * j - half > 0 or s + half < e - 1:
            return False
    return True


numbers = st.one_of(st.integers(-30, 60), st.fractions(min_value=-30, max_value=60, max_denominator=4))
positive = st.one_of(st.integers(1, 60), st.fractions(min_value=Fraction(1, 4), max_value=60, max_denominator=4))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(
    st.tuples(*[positive] * d), st.tuples(*[positive] * d), st.tuples(*[numbers] * d),
    st.lists(st.integers(1, 40), min_size=max(1, d - 1), max_size=d).map(tuple),
    st.lists(st.integers(1, 8), max_size=d).map(tuple))))
def test_whole_input_test_is_exact_arithmetic(case):
    size, jump, start, extent, positions = case
    field = Field(size, jump, start)
    assert field.covers(extent, positions) == covers_reference(field, extent, positions)


# ---------------------------------------------------------------- the paused collector


def test_collector_is_paused_during_the_pipeline_and_resumed_after():
    seen = []

    @paused_gc
    def inner():
        seen.append(gc.isenabled())

    @paused_gc
    def outer():
        inner()
        seen.append(gc.isenabled())
        raise ValueError("boom")

    assert gc.isenabled()
    with pytest.raises(ValueError):
        outer()
    assert seen == [False, False]
    assert gc.isenabled()


def test_collector_left_off_by_the_application_stays_off():
    gc.disable()
    try:
        program = archdsl.load(MODELS / "resnet18.cnn")
        check_program(program)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _raise_inside_parsing(monkeypatch):
    from archdsl.elaborate import Loader

    def broken(self, text, name):
        raise RuntimeError("a bug inside the pipeline")

    monkeypatch.setattr(Loader, "parse_text", broken)


TINY = "model M {\n  input x: [3, 8, 8]\n  x -> conv2d(4, 3)\n}\n"


@pytest.mark.parametrize("enabled", [True, False])
def test_raising_library_calls_leave_the_collector_as_they_found_it(monkeypatch, enabled):
    model = archdsl.loads(TINY).model()
    calls = [
        lambda: archdsl.analyze(model, batch=0),  # raises ValueError inside the paused call
        lambda: archdsl.compile(model, dtype="float7"),
        lambda: archdsl.loads(TINY),  # parse_text raises below (patched)
        lambda: archdsl.load(MODELS / "resnet18.cnn"),
    ]
    (gc.enable if enabled else gc.disable)()
    try:
        for index, call in enumerate(calls):
            if index == 2:
                _raise_inside_parsing(monkeypatch)
            with pytest.raises((ValueError, TypeError, RuntimeError)):
                call()
            assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_paused_block_restores_the_collector_on_an_exception():
    assert gc.isenabled()
    with pytest.raises(KeyError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not turn it back on
        raise KeyError("x")
    assert gc.isenabled()


# ---------------------------------------------------------------- lint views


def test_lint_views_are_computed_once_and_list_the_known_nodes_in_order():
    program = archdsl.loads("model M {\n  input x: [3, 8, 8]\n  x -> conv2d(3, 3) -> relu -> conv2d(3, 300) -> relu\n}\n")
    analysis = archdsl.analyze(program.model())
    context = LintContext(analysis)
    assert [n.name for n in context.nodes()] == ["x", "conv2d_1", "relu_1"]  # conv2d_2 does not fit
    assert windowed(context) is windowed(context)
    assert [node.name for node, _, _ in windowed(context)] == ["conv2d_1"]
