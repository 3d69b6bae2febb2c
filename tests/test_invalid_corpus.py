"""Every file in tests/invalid/ is a mistake a user makes.  Its header says
exactly which diagnostics (elaboration and shape inference) it must produce, one per line:

    # expect: E201 4:10

(code, line, column of the primary span).  The file must produce exactly
those diagnostics (errors and warnings), and the CLI must report them with
exit status 1 and no traceback.
"""

import re
from pathlib import Path

import pytest
from conftest import run_cli

import archdsl

CORPUS = sorted((Path(__file__).parent / "invalid").glob("*.cnn"))
EXPECT = re.compile(r"#\s*expect:\s*([EWI]\d{3})\s+(\d+):(\d+)")


def expected(path: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (m[1], int(m[2]), int(m[3])) for m in EXPECT.finditer(path.read_text(encoding="utf-8"))
    )


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_reports_exact_codes_and_positions(path):
    want = expected(path)
    assert want, f"{path.name} has no '# expect:' line"
    diagnostics = archdsl.load(path).check()  # elaboration and shape errors
    got = sorted((d.code, d.span.line, d.span.column) for d in diagnostics)
    assert got == want, "\n".join(f"{d.span}: {d.code}: {d.message}" for d in diagnostics)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_cli_reports_without_traceback(path):
    result = run_cli("check", str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path))
    assert "Traceback" not in result.stdout + result.stderr
    has_error = any(code.startswith("E") for code, _, _ in expected(path))
    assert result.returncode == (1 if has_error else 0)
    for code, line, column in expected(path):
        assert f":{line}:{column}: " in result.stdout and f"[{code}]" in result.stdout
