"""The pygls wiring of ``archdsl lsp`` (imported only by the server: pygls is
the optional ``archdsl[lsp]`` extra).  Every answer comes from a function of
:mod:`archdsl.lsp`; this module converts them to lsprotocol's types."""

from __future__ import annotations

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


def build_server() -> LanguageServer:
    server = LanguageServer("archdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
    documents: dict[str, lsp.Document] = {}

    def refresh(uri: str) -> None:
        text = server.workspace.get_text_document(uri).source
        doc = lsp.open_document(_path(uri), text)
        documents[uri] = doc
        found = _CONVERTER.structure(lsp.diagnostics(doc), list[types.Diagnostic])
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))

    def document(uri: str) -> lsp.Document:
        if uri not in documents:
            refresh(uri)
        return documents[uri]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        documents.pop(params.text_document.uri, None)

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

    _unused: Any = (did_open, did_change, did_close, hover, definition, completion, symbols, formatting)
    return server
