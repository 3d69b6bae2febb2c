"""Hostile and broken input: generated programs and mutations of them.

Invariant: every input ends in a result or in diagnostics that have a
known code and a location; no Python exception escapes; nothing hangs.
(Each input takes milliseconds; the bound below is a generous hang detector,
not a benchmark, because this machine is shared and noisy.  The slowest
input of a run is printed with ``-s``.)  The examples per property default to a quick run; a long
run is

    ARCHDSL_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -q

Inputs that once crashed the tool live in tests/fuzz_regressions/ and are
replayed by ``test_regressions_do_not_crash``.
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MODELS, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.checking import check_program
from archdsl.diagnostics.codes import BY_CODE
from archdsl.emit.dot import to_dot

EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="ARCHDSL_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
ZOO_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(MODELS.glob("*.cnn"))]


def survives(text: str, name: str = "fuzz.cnn", directory: Path = MODELS) -> list:
    """Runs the whole pipeline on ``text`` and checks the invariant."""
    start = time.perf_counter()
    program = archdsl.loads(text, name=name, directory=directory)
    report = check_program(program)
    for d in report.diagnostics:
        assert d.code in BY_CODE, d
        assert d.span is not None and d.span.line >= 1 and d.span.column >= 1, d
        assert d.message
    for analysis in report.analyses:
        to_dot(analysis)  # drawing a broken model must not crash either
    elapsed = time.perf_counter() - start
    SLOWEST[0] = max(SLOWEST[0], elapsed)
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    return report.diagnostics


SLOWEST = [0.0]


@pytest.fixture(scope="module", autouse=True)
def report_slowest():
    yield
    print(f"\nslowest fuzz input: {SLOWEST[0] * 1000:.0f} ms")


# ---------------------------------------------------------------- generated programs

NAMES = st.sampled_from(["a", "b", "x1", "feat", "skip", "y"])
SMALL = st.integers(min_value=1, max_value=9)


@st.composite
def steps(draw, depth=0):
    kind = draw(st.sampled_from(["conv", "pool", "norm", "act", "drop", "repeat", "group", "if", "merge"]
                                if depth < 2 else ["conv", "pool", "norm", "act"]))
    if kind == "conv":
        args = [str(draw(st.integers(1, 32))), str(draw(st.integers(1, 7)))]
        if draw(st.booleans()):
            args.append(f"stride={draw(SMALL)}")
        if draw(st.booleans()):
            args.append(f"padding={draw(st.sampled_from(['0', '1', '2', chr(34) + 'same' + chr(34)]))}")
        if draw(st.booleans()):
            args.append(f"groups={draw(st.integers(1, 4))}")
        return f"{draw(st.sampled_from(['conv2d', 'conv_transpose2d']))}({', '.join(args)})"
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
        return f"{op}({draw(SMALL)}, stride={draw(SMALL)}, ceil_mode={draw(st.sampled_from(['true', 'false']))})"
    if kind == "norm":
        return draw(st.sampled_from(["batchnorm2d", "layernorm", "local_response_norm(5)"]))
    if kind == "act":
        return draw(st.sampled_from(["relu", "gelu", "silu", "hardswish", "sigmoid", "softmax", "leaky_relu(0.1)"]))
    if kind == "drop":
        return f"dropout({draw(st.floats(0, 1)):.2f})"
    if kind == "repeat":
        return f"repeat {draw(st.integers(0, 3))} as i {{ {draw(steps(depth + 1))} }}"
    if kind == "group":
        return f"{draw(NAMES)}: ({draw(steps(depth + 1))} -> {draw(steps(depth + 1))})"
    if kind == "if":
        return f"if {draw(SMALL)} > 4 {{ {draw(steps(depth + 1))} }} else {{ identity }}"
    return f"{draw(st.sampled_from(['add', 'concat', 'mul']))}(h)"


@st.composite
def programs(draw):
    c, h, w = draw(st.integers(1, 8)), draw(st.integers(4, 48)), draw(st.integers(4, 48))
    body = draw(st.lists(steps(), min_size=1, max_size=8))
    block_body = draw(st.lists(steps(), min_size=1, max_size=4))
    use_block = draw(st.booleans())
    lines = [
        f"block B(width = {draw(SMALL)}) {{",
        f"    h = in -> {' -> '.join(block_body)}",
        "    return add(h, in)" if draw(st.booleans()) else "    return h -> relu",
        "}",
        "model Fuzz {",
        f"    input image: [{c}, {h}, {w}]",
        f"    h = image -> {' -> '.join(body[: len(body) // 2 + 1])}",
        f"    out = h -> {' -> '.join(body[len(body) // 2:] or ['identity'])}" + (" -> B(4)" if use_block else ""),
        "    output out",
        f"    expect params <= {draw(st.integers(0, 10**6))}",
        "}",
    ]
    return "\n".join(lines)


@FUZZ
@given(programs())
def test_generated_programs(text):
    survives(text)


# ---------------------------------------------------------------- mutations


@st.composite
def mutated(draw):
    base = draw(st.one_of(programs(), st.sampled_from(ZOO_TEXTS)))
    rng = random.Random(draw(st.integers(0, 2**32)))
    text = base
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "number", "truncate", "swap", "bytes"]))
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randrange(1, 40))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.text(max_size=8)) + text[i:]
        elif kind == "number":
            big = draw(st.sampled_from(["0", "-1", "99999999999999999999", "1e309", "1_000_000", "3.5", "(3, 3, 3)"]))
            text = text[:i] + big + text[i:]
        elif kind == "truncate":
            text = text[:i]
        elif kind == "swap":
            text = text[:i] + text[i:j][::-1] + text[j:]
        else:
            text = text[:i] + "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(1, 6))) + text[i:]
    return text


@FUZZ
@given(mutated())
def test_mutated_programs(text):
    survives(text)


@settings(max_examples=max(20, EXAMPLES // 4), deadline=None, derandomize="ARCHDSL_FUZZ_EXAMPLES" not in os.environ)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_from_a_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "input.cnn"
    path.write_bytes(data)
    program = archdsl.load(path)
    for d in program.diagnostics:
        assert d.code in BY_CODE and d.span is not None


def test_invalid_utf8_is_a_diagnostic_not_a_crash(tmp_path):
    path = tmp_path / "latin1.cnn"
    path.write_bytes(b"model M {\n  # caf\xe9\n  input x: [3, 8, 8]\n}\n")
    result = subprocess.run([sys.executable, "-m", "archdsl", "check", str(path)], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 1
    assert "latin1.cnn:2:8: error[E103]" in result.stdout and "Traceback" not in result.stderr


# ---------------------------------------------------------------- resource limits

BOMBS = {
    "nested repeats": "model M { input x: [3, 8, 8]\n x -> repeat 1000 { repeat 1000 { repeat 1000 { relu } } } }",
    "ten levels": "model M { input x: [3, 8, 8]\n x -> " + "repeat 1000 { " * 10 + "relu" + " }" * 10 + " }",
    "huge repeat": "model M { input x: [3, 8, 8]\n x -> repeat 100_000_000 { relu } }",
    "deep brackets": "model M { input x: [3, 8, 8]\n x -> conv2d(" + "(" * 5000 + "1" + ")" * 5000 + ", 3) }",
    "long sum": "model M { input x: [3, 8, 8]\n x -> conv2d(" + "+".join(["1"] * 20000) + ", 3) }",
    "huge literal": "model M { input x: [3, 8, 8]\n x -> conv2d(" + "9" * 5000 + ", 3) }",
    "huge dimension": "model M { input x: [3, 4_000_000_000, 8]\n x -> relu }",
    "block fan-out": "\n".join(
        [f"block B{i}() {{ return in -> B{i + 1}() -> B{i + 1}() }}" for i in range(40)]
        + ["block B40() { return in -> relu }", "model M { input x: [3, 8, 8]\n x -> B0() }"]),
    "exponent": "model M { input x: [3, 8, 8]\n x -> conv2d(2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 "
                "* 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 "
                "* 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2, 3) }",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_expansion_bombs_stop_with_a_limit_error(name):
    start = time.perf_counter()
    program = archdsl.loads(BOMBS[name], name="bomb.cnn")
    elapsed = time.perf_counter() - start
    codes = [d.code for d in program.diagnostics]
    assert "E901" in codes, [(d.code, d.message) for d in program.diagnostics]
    # Not a speed figure (benchmarks/ has those): a bomb that escaped the
    # limits would run for hours.  The bound leaves room for a loaded CI
    # machine; "block fan-out" builds the 250,000 nodes the limit allows.
    assert elapsed < 30, f"{name}: {elapsed:.1f} s"


def test_limits_are_configurable():
    text = "model M { input x: [3, 8, 8]\n x -> repeat 50 { relu } }"
    assert archdsl.loads(text).ok
    tight = archdsl.loads(text, limits=archdsl.Limits(max_nodes=20))
    assert [d.code for d in tight.diagnostics] == ["E901"]


def test_file_size_limit(tmp_path):
    path = tmp_path / "big.cnn"
    path.write_text("# padding\n" * 200 + "model M { input x: [3, 8, 8]\n x -> relu }")
    assert archdsl.load(path).ok
    program = archdsl.load(path, limits=archdsl.Limits(max_file_bytes=1000))
    assert [d.code for d in program.diagnostics] == ["E901"]


def test_regressions_do_not_crash():
    for path in sorted(REGRESSIONS.glob("*.cnn")):
        survives(path.read_bytes().decode("utf-8", "replace"), name=path.name, directory=REGRESSIONS)


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("command", [
    ["summary", "models/googlenet.cnn", "--format", "json"],
    ["parse", "models/resnet18.cnn"],
    ["check", "--format", "sarif", "models/"],
    ["render", "models/densenet121.cnn", "-o", "{tmp}/d.dot", "--depth", "3"],
])
def test_outputs_are_byte_identical_across_runs_and_hash_seeds(tmp_path, command):
    outputs = []
    for seed in ("0", "12345"):
        args = [a.replace("{tmp}", str(tmp_path)) for a in command]
        result = subprocess.run([sys.executable, "-m", "archdsl", *args], capture_output=True, cwd=ROOT,
                                env={**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"})
        assert result.returncode in (0, 1), result.stderr
        written = (tmp_path / "d.dot").read_bytes() if "render" in command else b""
        outputs.append(result.stdout + written)
    assert outputs[0] == outputs[1]
    assert outputs[0]
