"""editors/vscode/package.json: what it contributes points at files that
exist and agree with each other (language id, grammar path and scope name,
language configuration), its settings are the ones the client and
docs/editors.md name, and the committed lockfile matches its dependencies."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

EXTENSION = ROOT / "editors" / "vscode"


@pytest.fixture(scope="module")
def package() -> dict:
    return json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))


def test_the_language_and_its_grammar_agree(package):
    contributes = package["contributes"]
    (language,) = contributes["languages"]
    assert language["id"] == "cnn" and language["extensions"] == [".cnn"]
    (grammar_entry,) = contributes["grammars"]
    assert grammar_entry["language"] == language["id"]
    grammar_path = EXTENSION / grammar_entry["path"]
    assert grammar_path.is_file()
    grammar = json.loads(grammar_path.read_text(encoding="utf-8"))
    assert grammar_entry["scopeName"] == grammar["scopeName"] == "source.cnn"
    assert {"scopeName", "patterns", "repository"} <= grammar.keys()
    # every `#name` the grammar includes is defined in its repository
    text = grammar_path.read_text(encoding="utf-8")
    included = {part.split('"')[0] for part in text.split('"include": "#')[1:]}
    assert included and included <= grammar["repository"].keys()


def test_the_language_configuration(package):
    (language,) = package["contributes"]["languages"]
    configuration = json.loads((EXTENSION / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"] == {"lineComment": "#"}  # grammars/cnn.lark: COMMENT: /#[^\n]*/
    assert configuration["brackets"] == [["{", "}"], ["[", "]"], ["(", ")"]]
    opened = {pair["open"] for pair in configuration["autoClosingPairs"]}
    assert opened == {"{", "[", "(", '"', "'"} == {pair[0] for pair in configuration["surroundingPairs"]}


def test_the_settings_and_the_client(package):
    properties = package["contributes"]["configuration"]["properties"]
    assert properties["archdsl.command"]["default"] == "archdsl"
    assert properties["archdsl.trace.server"]["enum"] == ["off", "messages", "verbose"]
    main = EXTENSION / package["main"]
    assert main.is_file()
    client = main.read_text(encoding="utf-8")
    # the client is created with the id "archdsl", which makes `archdsl.trace.server` its trace setting
    assert "getConfiguration('archdsl').get('command')" in client and "new LanguageClient(\n    'archdsl'," in client
    assert "args: ['lsp']" in client
    commands = {c["command"] for c in package["contributes"]["commands"]}
    assert commands == {"archdsl.restartServer"} and "'archdsl.restartServer'" in client


def test_the_lockfile_matches_package_json(package):
    lock = json.loads((EXTENSION / "package-lock.json").read_text(encoding="utf-8"))
    root = lock["packages"][""]
    assert (lock["name"], lock["version"]) == (package["name"], package["version"])
    assert root["dependencies"] == package["dependencies"]
    assert root["devDependencies"] == package["devDependencies"]
    for name, version in {**package["dependencies"], **package["devDependencies"]}.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version  # pinned exactly


def test_built_files_are_not_committed():
    ignored = (EXTENSION / ".gitignore").read_text(encoding="utf-8").split()
    assert "node_modules/" in ignored and "*.vsix" in ignored
