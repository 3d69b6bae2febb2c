"""``archdsl lsp`` for editors: positions in the negotiated encoding,
checks debounced while typing, hover on a value's name and inlay hints
with output shapes.  Columns are counted by hand in the comments; shapes
are the sliding-window rule out = in - kernel + 1 (PyTorch's Conv2d with
no padding), figures resnet50.cnn's (torchvision's)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import MODELS
from test_lsp import _receive, _send, _start, _stop, _until, at

from archdsl import lsp

# Line 2 (0-based) holds a non-BMP character (2 UTF-16 units, 4 UTF-8
# bytes) and an é (1 UTF-16 unit, 2 UTF-8 bytes) before the bad kernel
# size `7`: 4 spaces + `y = x -> ` (9) + `"é🙂": ` (6) + `conv2d(8, ` (10)
# = 29 characters, 30 UTF-16 units, 33 UTF-8 bytes.
TEXT = 'model M {\n    input x: [3, 4, 4]  # é🙂\n    y = x -> "é🙂": conv2d(8, 7)\n    output y\n}\n'


def hover(doc: lsp.Document, position: tuple[int, int]) -> str:
    text = lsp.hover(doc, *position)
    assert text is not None, position
    return text


@pytest.mark.parametrize(("encoding", "column"), [("utf-16", 30), ("utf-8", 33), ("utf-32", 29)])
def test_diagnostic_columns_count_code_units_of_the_encoding(tmp_path, encoding, column):
    doc = lsp.open_document(tmp_path / "m.cnn", TEXT, encoding)
    (found,) = lsp.diagnostics(doc)
    assert found["code"] == "E401"  # a 7x7 window on a 4x4 input
    assert found["range"] == {"start": {"line": 2, "character": column}, "end": {"line": 2, "character": column + 1}}


def test_request_positions_are_read_in_the_encoding(tmp_path):
    """`conv2d` starts at character 19 of line 2: UTF-16 column 20 (read as
    characters, column 20 would be its `o`), UTF-8 column 23."""
    doc = lsp.open_document(tmp_path / "m.cnn", TEXT, "utf-16")
    assert lsp.word_at(doc, 2, 20) == "conv2d"
    assert doc.offset(2, 20) == TEXT.index("conv2d")
    assert "`conv2d`" in hover(doc, (2, 20))
    utf8 = lsp.open_document(tmp_path / "m.cnn", TEXT, "utf-8")
    assert utf8.offset(2, 23) == TEXT.index("conv2d")  # 19 + 1 (é) + 3 (🙂)
    # a position inside a character (byte 17 is inside 🙂, bytes 16-19) moves
    # to the next character; one past the end of the line, to its end
    emoji = TEXT.index("🙂", TEXT.index("y = x"))
    assert utf8.offset(2, 17) == emoji + 1 and utf8.offset(2, 999) == TEXT.index("\n    output")


def test_an_unknown_encoding_is_refused(tmp_path):
    with pytest.raises(ValueError, match="utf-7"):
        lsp.open_document(tmp_path / "m.cnn", TEXT, "utf-7")


def test_formatting_ends_at_the_last_line_in_code_units(tmp_path):
    doc = lsp.open_document(tmp_path / "m.cnn", "model M{input x:[3,4,4]} # 🙂", "utf-16")
    (edit,) = lsp.formatting(doc)
    assert edit["range"]["end"] == {"line": 0, "character": 29}  # 28 characters, 🙂 counting 2 units


@pytest.fixture(scope="module")
def resnet50() -> lsp.Document:
    path = (MODELS / "resnet50.cnn").resolve()
    return lsp.open_document(path, path.read_text(encoding="utf-8"))


def test_hover_on_a_value_name_shows_the_node_it_names(resnet50):
    """`logits` is bound by `logits = image -> ... -> fc: linear(1000)` and
    used by `output logits`; both show fc: 2048 * 1000 + 1000 parameters."""
    used = hover(resnet50, at(resnet50, "output logits", len("output ")))
    bound = hover(resnet50, at(resnet50, "logits = image"))
    assert used == bound
    assert "value **logits**" in used and "**fc**: `linear` → `[1000]`" in used and "parameters 2,049,000" in used
    image = hover(resnet50, at(resnet50, "= image", 3))  # an input used at the head of a chain
    assert "value **image**" in image and "[3, 224, 224]" in image


def test_hover_on_a_value_bound_to_a_block_call(tmp_path):
    """`z` is the output of a block call (its return, the relu), `y` of a
    chain inside parentheses; each use shows the right node."""
    text = ("block B(c) {\n    return in -> conv2d(c, 3) -> relu\n}\n"
            "model M {\n    input x: [3, 8, 8]\n    y = x -> (conv2d(4, 3) -> relu)\n"
            "    z = y -> B(6)\n    output out = add(z, z)\n}\n")
    doc = lsp.open_document(tmp_path / "m.cnn", text)
    z_use = hover(doc, at(doc, "add(z", 4))
    assert "value **z**" in z_use and "`relu` → `[6, 4, 4]`" in z_use  # 8 - 3 + 1 = 6, 6 - 3 + 1 = 4
    y_use = hover(doc, at(doc, "z = y", 4))
    assert "value **y**" in y_use and "`relu` → `[4, 6, 6]`" in y_use
    # inside the block, `in` has one value per call: the op under the cursor is shown instead
    inside = hover(doc, at(doc, "conv2d(c", 1))
    assert inside is not None and "value" not in inside


def test_inlay_hints_show_each_output_shape(resnet50):
    hints = lsp.inlay_hints(resnet50, 0, len(resnet50.text.split("\n")))
    by_end = {}
    for hint in hints:
        line = resnet50.text.split("\n")[hint["position"]["line"]]
        by_end[line[: hint["position"]["character"]].split("->")[-1].strip()] = hint["label"]
    assert by_end["conv1: conv2d(64, 7, stride=2, padding=3, bias=false)"] == "[64, 112, 112]"  # (224+6-7)//2+1
    assert by_end["maxpool: maxpool2d(3, stride=2, padding=1)"] == "[64, 56, 56]"
    # a repeated block call: the last repetition's output, layer4's [2048, 7, 7]
    assert by_end["layer4: repeat 3 as i { Bottleneck(512, stride = if i == 0 then 2 else 1, project = i == 0)"] \
        == "[2048, 7, 7]"
    assert by_end["fc: linear(1000)"] == "[1000]"
    assert all(h["kind"] == 1 for h in hints)
    line = hints[-1]["position"]["line"]
    assert lsp.inlay_hints(resnet50, line + 1, line + 100) == [] and lsp.inlay_hints(resnet50, line, line)


# ---------------------------------------------------------------- debounce


def test_the_debouncer_runs_the_last_schedule_once_after_the_delay():
    from archdsl.lsp_server import Debouncer

    runs: list[tuple[str, float]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        debouncer = Debouncer(0.1, lambda key: runs.append((key, loop.time())))
        for _ in range(4):  # four edits 30 ms apart: one run, 100 ms after the last
            debouncer.schedule("a")
            last = loop.time()
            await asyncio.sleep(0.03)
        assert runs == [] and debouncer.pending("a")
        await asyncio.sleep(0.15)
        assert [key for key, _ in runs] == ["a"] and runs[0][1] >= last + 0.1
        debouncer.schedule("b")
        debouncer.flush("b")  # a request arrives: the check runs now, once
        await asyncio.sleep(0.15)
        assert [key for key, _ in runs] == ["a", "b"]
        debouncer.schedule("c")
        assert debouncer.cancel("c") and not debouncer.cancel("c")
        await asyncio.sleep(0.15)
        assert [key for key, _ in runs] == ["a", "b"]

    asyncio.run(scenario())


def test_the_server_debounces_edits_and_negotiates_utf8(tmp_path):
    """Edits sent together are checked once, as the last version; a version
    that was replaced before its check is never published.  The client
    offers UTF-8 first, so columns are UTF-8 bytes."""
    pytest.importorskip("pygls")  # the test extra installs it; see pyproject.toml
    uri = (tmp_path / "m.cnn").resolve().as_uri()
    process = _start(tmp_path, {"general": {"positionEncodings": ["utf-8", "utf-16"]}})
    try:
        init = _until(process, lambda m: m.get("id") == 1)
        assert init["result"]["capabilities"]["positionEncoding"] == "utf-8"
        assert init["result"]["capabilities"]["inlayHintProvider"]
        _send(process, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        _send(process, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "cnn", "version": 1, "text": TEXT}}})
        opened = _until(process, lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert opened["params"]["version"] == 1
        assert [d["range"]["start"]["character"] for d in opened["params"]["diagnostics"]] == [33]
        for version, kernel in [(2, 5), (3, 6), (4, 3)]:  # 5 and 6 would be E401 too; 3 fits
            _send(process, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": TEXT.replace("conv2d(8, 7)", f"conv2d(8, {kernel})")}]}})
        published = _until(process, lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert published["params"]["version"] == 4
        assert "E401" not in [d["code"] for d in published["params"]["diagnostics"]]
        # nothing else was published before the answer to a later request
        _send(process, {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 3, "character": 12}}})
        answer = _receive(process)
        assert answer.get("id") == 2 and "value **y**" in answer["result"]["contents"]["value"]
        assert "[8, 2, 2]" in answer["result"]["contents"]["value"]  # 4 - 3 + 1
    finally:
        _stop(process)


def test_a_request_during_the_delay_sees_the_latest_text(tmp_path):
    """A hover right after an edit (before the delay is over) is answered
    from the edited text, and the check it forced is published first."""
    pytest.importorskip("pygls")
    uri = (tmp_path / "m.cnn").resolve().as_uri()
    process = _start(tmp_path, {})
    try:
        init = _until(process, lambda m: m.get("id") == 1)
        assert init["result"]["capabilities"].get("positionEncoding", "utf-16") == "utf-16"
        _send(process, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        _send(process, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "cnn", "version": 1, "text": TEXT}}})
        opened = _until(process, lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert [d["range"]["start"]["character"] for d in opened["params"]["diagnostics"]] == [30]  # UTF-16
        _send(process, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": TEXT.replace("conv2d(8, 7)", "conv2d(5, 2)")}]}})
        _send(process, {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": 20}}})
        published = _receive(process)
        assert published.get("method") == "textDocument/publishDiagnostics" and published["params"]["version"] == 2
        answer = _receive(process)
        assert answer.get("id") == 2 and "[5, 3, 3]" in answer["result"]["contents"]["value"]  # 4 - 2 + 1
    finally:
        _stop(process)
