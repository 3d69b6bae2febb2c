"""``archdsl import``: Caffe, Darknet and ONNX networks as .cnn files.

:func:`import_file` reads a Caffe deploy ``.prototxt`` or a Darknet ``.cfg``
and returns a :class:`~archdsl.importers.writer.Network`, whose
``to_cnn()`` is the text; problems in the file raise
:class:`~archdsl.diagnostics.model.DiagnosticError` with E6xx codes.
ONNX files are binary: :func:`archdsl.importers.onnx.import_onnx` reads their
bytes and returns the network with its weights.  See docs/import.md.
"""

from __future__ import annotations

from pathlib import Path

from ..source import SourceFile
from .writer import Network

FORMATS = ("caffe", "darknet", "onnx")


def detect_format(path: str | Path) -> str | None:
    suffix = Path(path).suffix.lower()
    return {".prototxt": "caffe", ".pbtxt": "caffe", ".cfg": "darknet", ".onnx": "onnx"}.get(suffix)


def import_source(source: SourceFile, fmt: str) -> Network:
    if fmt == "caffe":
        from .caffe import import_caffe

        return import_caffe(source)
    if fmt == "darknet":
        from .darknet import import_darknet

        return import_darknet(source)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def import_file(path: str | Path, fmt: str | None = None) -> Network:
    fmt = fmt or detect_format(path)
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the format from the extension; name it ({', '.join(FORMATS)})")
    if fmt == "onnx":
        from .onnx import import_onnx

        return import_onnx(Path(path).read_bytes(), str(path), Path(path).parent).net
    text = Path(path).read_text(encoding="utf-8")
    return import_source(SourceFile(str(path), text), fmt)


__all__ = ["FORMATS", "Network", "detect_format", "import_file", "import_source"]
