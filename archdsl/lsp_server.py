"""The pygls wiring of ``archdsl lsp`` (imported only by the server: pygls is
the optional ``archdsl[lsp]`` extra).  Every answer comes from a function of
:mod:`archdsl.lsp`; this module converts them to lsprotocol's types."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter

from . import __version__, lsp

_CONVERTER = default_converter()


def _path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)


#: How long the text must stay unchanged after an edit before it is checked
#: again (typing a word sends one change per key; checking resnet152 takes a
#: good fraction of a second, benchmarks/lsp_latency.py).
DEBOUNCE_SECONDS = 0.15


class Debouncer:
    """Runs ``run(key)`` once ``delay`` seconds after the last
    :meth:`schedule` of that key; a newer schedule replaces a pending one,
    and :meth:`flush` runs a pending one at once (a request about the
    document must see its latest text)."""

    def __init__(self, delay: float, run: Callable[[str], None]) -> None:
        self.delay = delay
        self.run = run
        self._pending: dict[str, asyncio.TimerHandle] = {}

    def schedule(self, key: str) -> None:
        self.cancel(key)
        self._pending[key] = asyncio.get_running_loop().call_later(self.delay, self._fire, key)

    def cancel(self, key: str) -> bool:
        handle = self._pending.pop(key, None)
        if handle is not None:
            handle.cancel()
        return handle is not None

    def flush(self, key: str) -> None:
        if self.cancel(key):
            self.run(key)

    def pending(self, key: str) -> bool:
        return key in self._pending

    def _fire(self, key: str) -> None:
        del self._pending[key]
        self.run(key)


def build_server(debounce: float = DEBOUNCE_SECONDS) -> LanguageServer:
    server = LanguageServer("archdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
    documents: dict[str, lsp.Document] = {}

    def refresh(uri: str) -> None:
        """Checks the document's current text and publishes the result.  It
        runs on the event loop, so no edit can arrive between reading the
        text and publishing: what is published is the latest version's."""
        current = server.workspace.get_text_document(uri)
        negotiated = server.workspace.position_encoding  # pygls's choice from the client's offer
        encoding = str(getattr(negotiated, "value", negotiated) or "utf-16")
        doc = lsp.open_document(_path(uri), current.source, encoding, current.version)
        documents[uri] = doc
        found = _CONVERTER.structure(lsp.diagnostics(doc), list[types.Diagnostic])
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=current.version))

    pending = Debouncer(debounce, refresh)

    def document(uri: str) -> lsp.Document:
        pending.flush(uri)
        if uri not in documents:
            refresh(uri)
        return documents[uri]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        pending.cancel(params.text_document.uri)
        refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        pending.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        pending.cancel(params.text_document.uri)
        documents.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams) -> types.Hover | None:
        text = lsp.hover(document(params.text_document.uri), params.position.line, params.position.character)
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(params: types.DefinitionParams) -> types.Location | None:
        found = lsp.definition(document(params.text_document.uri), params.position.line, params.position.character)
        return None if found is None else _CONVERTER.structure(found, types.Location)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["(", ",", ">"]))
    def completion(params: types.CompletionParams) -> list[types.CompletionItem]:
        items = lsp.completion(document(params.text_document.uri), params.position.line, params.position.character)
        return _CONVERTER.structure(items, list[types.CompletionItem])

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        return _CONVERTER.structure(lsp.symbols(document(params.text_document.uri)), list[types.DocumentSymbol])

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(params: types.DocumentFormattingParams) -> list[types.TextEdit]:
        return _CONVERTER.structure(lsp.formatting(document(params.text_document.uri)), list[types.TextEdit])

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(params: types.InlayHintParams) -> list[types.InlayHint]:
        found = lsp.inlay_hints(document(params.text_document.uri), params.range.start.line, params.range.end.line)
        return _CONVERTER.structure(found, list[types.InlayHint])

    _unused: Any = (did_open, did_change, did_close, hover, definition, completion, symbols, formatting, inlay_hints)
    return server
