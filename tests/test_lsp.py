"""``archdsl lsp``: the answers (tested as functions) and the server
(driven over pipes with JSON-RPC, as an editor does).  Figures are the
zoo's own (resnet50.cnn's header: torchvision's) or hand-computed here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import MODELS, ROOT

from archdsl import lsp

RESNET50 = MODELS / "resnet50.cnn"


def at(doc: lsp.Document, needle: str, shift: int = 0) -> tuple[int, int]:
    offset = doc.text.index(needle) + shift
    before = doc.text[:offset]
    return before.count("\n"), offset - (before.rfind("\n") + 1)


@pytest.fixture(scope="module")
def resnet50() -> lsp.Document:
    return lsp.open_document(RESNET50.resolve(), RESNET50.read_text(encoding="utf-8"))


def test_diagnostics_carry_codes_ranges_and_related_producers(tmp_path):
    path = tmp_path / "m.cnn"
    text = "model M {\n    input x: [3, 8, 8]\n    y = x -> conv2d(4, 3)\n    add(x, y)\n}\n"
    found = lsp.diagnostics(lsp.open_document(path, text))
    mismatch = [d for d in found if d["severity"] == 1]
    assert mismatch and mismatch[0]["code"].startswith("E4")
    assert mismatch[0]["range"]["start"]["line"] == 3
    # the producers of the mismatched shapes are related locations in the file
    related_lines = {r["location"]["range"]["start"]["line"] for r in mismatch[0]["relatedInformation"]}
    assert related_lines and related_lines <= {1, 2}
    assert all(r["location"]["uri"] == path.resolve().as_uri() for r in mismatch[0]["relatedInformation"])


def test_an_expect_result_is_a_diagnostic(resnet50):
    edited = resnet50.text.replace("fc: linear(1000)", "fc: linear(1001)")
    found = lsp.diagnostics(lsp.open_document(RESNET50.resolve(), edited))
    codes = {d["code"] for d in found}
    assert codes and all(d["source"] == "archdsl" for d in found)
    assert lsp.diagnostics(lsp.open_document(RESNET50.resolve(), RESNET50.read_text())) == []


def test_hover_on_an_op_shows_its_shape_counts_and_documentation(resnet50):
    line, column = at(resnet50, "conv2d(64, 7", 2)
    text = lsp.hover(resnet50, line, column)
    # conv1: 7x7, 3 -> 64, no bias: 3*64*49 = 9,408 parameters; 112x112 outputs
    assert "**conv1**" in text and "[64, 112, 112]" in text and "parameters 9,408" in text
    assert "MACs 118,013,952" in text  # 9,408 * 112 * 112
    assert "out_channels" in text  # the op's signature


def test_hover_on_a_block_call_shows_the_instance_totals(resnet50):
    line, column = at(resnet50, "Bottleneck(64", 2)
    text = lsp.hover(resnet50, line, column)
    # layer1.0: 1x1 64->64, 3x3 64->64, 1x1 64->256, downsample 64->256 and 4 batchnorms
    params = 64 * 64 + 9 * 64 * 64 + 64 * 256 + 64 * 256 + 2 * (64 + 64 + 256 + 256)
    assert "block `Bottleneck`" in text and f"parameters {params:,}" in text and "[256, 56, 56]" in text


def test_definition_of_a_block_across_an_import_and_of_a_value(resnet50):
    line, column = at(resnet50, "Bottleneck(64", 1)
    found = lsp.definition(resnet50, line, column)
    target = (MODELS / "blocks" / "resnet.cnn").resolve()
    assert found["uri"] == target.as_uri()
    assert target.read_text().split("\n")[found["range"]["start"]["line"]].startswith("block Bottleneck(")
    line, column = at(resnet50, "output logits", len("output "))
    found = lsp.definition(resnet50, line, column)
    assert found["range"]["start"]["line"] == at(resnet50, "logits = image")[0]


def test_completion_of_names_and_keyword_arguments(resnet50):
    line, column = at(resnet50, "stride=2, padding=3", 0)
    labels = {item["label"]: item for item in lsp.completion(resnet50, line, column)}
    assert labels["groups="]["detail"] == "int, default 1" and labels["bias="]["detail"] == "bool, default True"
    line, column = at(resnet50, "-> conv1", 3)
    names = {item["label"] for item in lsp.completion(resnet50, line, column)}
    assert {"conv2d", "relu", "Bottleneck", "BasicBlock"} <= names


def test_symbols_and_formatting(resnet50, tmp_path):
    (model,) = lsp.symbols(resnet50)
    assert model["name"] == "ResNet50"
    assert [c["name"] for c in model["children"]][:4] == ["image", "conv1", "bn1", "relu_1"]
    assert lsp.formatting(resnet50) == []
    messy = lsp.open_document(tmp_path / "m.cnn", "model M{input x:[3,4,4]}")
    (edit,) = lsp.formatting(messy)
    assert edit["newText"] == "model M {\n    input x: [3, 4, 4]\n}\n"


def _send(process, message: dict) -> None:
    body = json.dumps(message).encode()
    process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    process.stdin.flush()


def _receive(process) -> dict:
    length = 0
    while True:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(process.stdout.read(length))


def _until(process, predicate) -> dict:
    for _ in range(50):
        message = _receive(process)
        if predicate(message):
            return message
    raise AssertionError("no such message")


def _start(tmp_path, capabilities: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "archdsl", "lsp"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=env, cwd=tmp_path)
    _send(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": capabilities}})
    return process


def _stop(process: subprocess.Popen) -> None:
    try:
        _send(process, {"jsonrpc": "2.0", "id": 99, "method": "shutdown"})
        _until(process, lambda m: m.get("id") == 99)
        _send(process, {"jsonrpc": "2.0", "method": "exit"})
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_server_over_pipes(tmp_path):
    pytest.importorskip("pygls")  # the test extra installs it; see pyproject.toml
    path = tmp_path / "m.cnn"
    uri = path.resolve().as_uri()
    process = _start(tmp_path, {})
    try:
        init = _until(process, lambda m: m.get("id") == 1)
        capabilities = init["result"]["capabilities"]
        assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
        assert capabilities["documentFormattingProvider"] and capabilities["documentSymbolProvider"]
        _send(process, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        text = "model M {\n    input x: [3, 4, 4]\n    x -> conv2d(8, 7)\n}\n"
        _send(process, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "cnn", "version": 1, "text": text}}})
        published = _until(process, lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert [d["code"] for d in published["params"]["diagnostics"]] == ["E401"]  # 7x7 window on 4x4
        _send(process, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": text.replace("conv2d(8, 7)", "conv2d(8, 3)")}]}})
        published = _until(process, lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert [d["code"] for d in published["params"]["diagnostics"]] == ["I301"]  # sees 3x3 of 4x4
        _send(process, {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": 10}}})
        hover = _until(process, lambda m: m.get("id") == 2)
        assert "[8, 2, 2]" in hover["result"]["contents"]["value"]  # 4 - 3 + 1 = 2
    finally:
        _stop(process)


def test_without_pygls_the_command_says_how_to_install_it(tmp_path):
    blocker = tmp_path / "pygls"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('no', name='pygls')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "archdsl", "lsp"], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "archdsl[lsp]" in result.stderr


def test_the_latency_benchmark_runs():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lsp_latency.py")], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "median" in result.stdout
