"""The VS Code extension's TextMate grammar (editors/vscode/syntaxes/).

Its scope tests (editors/vscode/tests/*.test.cnn, run by the
vscode-tmgrammar-test package pinned in editors/vscode/package-lock.json)
and the extension's client test run through npm; the word lists in the
grammar are checked against their sources here: the reserved words of
grammars/cnn.lark, the op registry and the expression builtins, so that a
new op or keyword cannot be left out of the highlighting."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import lark
import pytest
from conftest import ROOT

from archdsl import syntax
from archdsl.elaborate import BUILTINS
from archdsl.ops import CALLABLE
from archdsl.source import SourceFile

EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR_PATH = EXTENSION / "syntaxes" / "cnn.tmLanguage.json"
FIXTURES = sorted((EXTENSION / "tests").glob("*.test.cnn"))
_ASSERTION = re.compile(r"#\s*(\^|<-)")


@pytest.fixture(scope="module")
def grammar() -> dict:
    return json.loads(GRAMMAR_PATH.read_text(encoding="utf-8"))


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:  # not a skip: scripts/test.sh installs Debian's nodejs and npm
        pytest.fail("npm is not installed (scripts/test.sh installs Debian's nodejs and npm)")
    return npm


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """editors/vscode/node_modules, installed from the lockfile when absent."""
    installed = EXTENSION / "node_modules" / ".bin" / "vscode-tmgrammar-test"
    if not installed.exists():
        result = subprocess.run([_npm(), "ci", "--no-audit", "--no-fund"], cwd=EXTENSION, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return EXTENSION / "node_modules"


def _grammar_test(node_modules: Path, grammar_path: Path, directory: Path = EXTENSION) -> subprocess.CompletedProcess:
    """The scope tests of the fixtures in ``directory``/tests.  (The runner
    also reads the grammars a package.json in ``directory`` contributes.)"""
    runner = node_modules / ".bin" / "vscode-tmgrammar-test"
    fixtures = [f"tests/{f.name}" for f in FIXTURES]
    return subprocess.run([str(runner), "-g", str(grammar_path), *fixtures], cwd=directory, capture_output=True,
                          text=True, timeout=300)


def _words(match: str) -> set[str]:
    """The words of a ``\\b(a|b|c)\\b`` pattern."""
    found = re.fullmatch(r"\\b\(([A-Za-z0-9_|]+)\)\\b(\(\?=.*\))?", match)
    assert found, f"not a word list: {match}"
    return set(found.group(1).split("|"))


def test_the_scope_tests_pass(node_modules):
    assert FIXTURES, "no editors/vscode/tests/*.test.cnn"
    result = _grammar_test(node_modules, GRAMMAR_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"✓ {f.relative_to(EXTENSION).as_posix()}" in result.stdout for f in FIXTURES), result.stdout


def test_the_scope_tests_catch_a_broken_grammar(node_modules, grammar, tmp_path):
    """The harness can fail: without the chain operator's rule, `->` is read
    as `-` and `>` and the fixtures' `->` assertions fail."""
    broken = json.loads(json.dumps(grammar))
    rules = broken["repository"]["operator"]["patterns"]
    broken["repository"]["operator"]["patterns"] = [r for r in rules if r["name"] != "keyword.operator.chain.cnn"]
    assert len(broken["repository"]["operator"]["patterns"]) == len(rules) - 1
    path = tmp_path / "cnn.tmLanguage.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    shutil.copytree(EXTENSION / "tests", tmp_path / "tests")
    result = _grammar_test(node_modules, path, tmp_path)
    assert result.returncode != 0
    assert "missing required scopes: keyword.operator.chain.cnn" in result.stdout


def test_the_extension_client_test_passes(node_modules):
    result = subprocess.run(["node", "--test", "tests/extension.test.js"], cwd=EXTENSION, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 2" in result.stdout and "# fail 0" in result.stdout, result.stdout


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_the_fixtures_are_cnn_programs(fixture):
    """The scope assertions are about real syntax: without its assertion
    lines (and the header), a fixture parses."""
    lines = fixture.read_text(encoding="utf-8").split("\n")[1:]
    program = "\n".join(line for line in lines if not _ASSERTION.match(line))
    module = syntax.parse(SourceFile(fixture.name, program))
    assert module.models or module.blocks


def test_op_names_are_the_registry(grammar):
    assert _words(grammar["repository"]["op"]["match"]) == set(CALLABLE), (
        "the op list of syntaxes/cnn.tmLanguage.json differs from archdsl.ops.CALLABLE; its match should be "
        + json.dumps(r"\b(" + "|".join(sorted(CALLABLE)) + r")\b"))


def test_builtin_names_are_the_expression_builtins(grammar):
    assert _words(grammar["repository"]["builtin"]["match"]) == set(BUILTINS)


def test_keywords_are_the_reserved_words_of_the_grammar(grammar):
    """Every word the Lark grammar spells out as a literal is highlighted as
    a keyword, and nothing else is (`in`, the block's input, is a name the
    elaborator binds, highlighted apart as variable.language)."""
    parser = lark.Lark((ROOT / "grammars" / "cnn.lark").read_text(encoding="utf-8"), parser="lalr")
    reserved = {t.pattern.value for t in parser.terminals
                if isinstance(t.pattern, lark.lexer.PatternStr) and t.pattern.value.isidentifier()}
    assert {"import", "block", "repeat", "expect", "true"} <= reserved  # the extraction works
    highlighted: set[str] = set()
    for rule in grammar["repository"]["keyword"]["patterns"]:
        if not rule["name"].startswith("variable.language."):
            highlighted |= _words(rule["match"])
    assert highlighted == reserved


def test_the_comment_rule_is_the_languages(grammar):
    """A comment runs from `#` to the end of the line in both grammars (the
    TextMate rule reads one line at a time, so `.*$` is Lark's `[^\\n]*`)."""
    parser = lark.Lark((ROOT / "grammars" / "cnn.lark").read_text(encoding="utf-8"), parser="lalr")
    (comment,) = [t for t in parser.terminals if t.name == "COMMENT"]
    textmate = grammar["repository"]["comment"]["match"]
    for line in ["# a comment", "#", "# -> relu  'x' \"y", "x -> relu  # trailing"]:
        lark_found = re.search(comment.pattern.value, line)
        textmate_found = re.search(textmate, line)
        assert lark_found and textmate_found and lark_found.span() == textmate_found.span(), line
