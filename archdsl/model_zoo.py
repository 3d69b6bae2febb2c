"""The shipped models (``archdsl zoo``): list them, copy one out.

The zoo is the repository's ``models/`` folder, shipped in the wheel as the
package folder ``archdsl/zoo`` (pyproject's force-include); its ``blocks/``
is the standard block library that ``import "std/..."`` reads
(:func:`archdsl.search_path.std_directory`).  A zoo model imports its
blocks as ``import "blocks/resnet.cnn"``, relative to itself; a copy taken
out of the package imports them as ``import "std/resnet.cnn"`` instead.

(Not called ``zoo.py``: that name is the package folder in the wheel.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .search_path import STD_PREFIX, std_directory

#: ``import "blocks/`` at the start of a line (after indentation): the
#: zoo's imports of its own block library.
_BLOCKS_IMPORT = re.compile(r'^(?P<lead>[ \t]*import[ \t]+")blocks/', re.MULTILINE)


@dataclass(frozen=True)
class ZooModel:
    """One shipped model file and its figures."""

    name: str            # the file's stem: what `archdsl zoo copy NAME` takes
    path: Path
    title: str           # the first line of the file's header comment
    model: str | None    # the name of the (first) model in the file
    input: tuple[int, ...] | None
    params: int | None
    macs: int | None
    figures_from: str    # "expect": the file's expect lines; "analysis": computed

    def as_json(self) -> dict:
        return {"name": self.name, "title": self.title, "model": self.model,
                "input": list(self.input) if self.input is not None else None,
                "params": self.params, "macs": self.macs, "figures_from": self.figures_from}


def zoo_directory() -> Path | None:
    """The folder of the shipped models: the parent of the standard block library."""
    std = std_directory()
    return std.parent if std is not None else None


def model_files() -> dict[str, Path]:
    """The shipped model files by name (file stem), sorted."""
    folder = zoo_directory()
    if folder is None:
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.cnn")) if path.is_file()}


def _title(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and stripped.lstrip("#").strip():
            return stripped.lstrip("#").strip()
        if stripped and not stripped.startswith("#"):
            break
    return ""


def describe(name: str, path: Path) -> ZooModel:
    """The figures of one shipped model: its ``expect params``/``expect
    macs`` values when it states them (each checked by the test suite
    against torchvision), else the analysis's."""
    from .elaborate import load
    from .ops import Input

    program = load(path)
    title = _title(path.read_text(encoding="utf-8"))
    if not program.ok or not program.models:
        return ZooModel(name, path, title, None, None, None, None, "analysis")
    model = program.models[0]
    stated = {e.figure: e.value for e in model.expectations if e.op == "==" and e.figure in ("params", "macs")}
    first_input = model.nodes[model.inputs[0]].spec if model.inputs else None
    shape = tuple(first_input.shape) if isinstance(first_input, Input) else None
    params, macs = stated.get("params"), stated.get("macs")
    if isinstance(params, int) and isinstance(macs, int):
        return ZooModel(name, path, title, model.name, shape, params, macs, "expect")
    from .analysis import analyze

    totals = analyze(model).totals
    return ZooModel(name, path, title, model.name, shape, totals.params, totals.macs, "analysis")


def zoo_models() -> list[ZooModel]:
    """Every shipped model with its figures, by name."""
    return [describe(name, path) for name, path in model_files().items()]


def portable_text(text: str) -> str:
    """A zoo model's text with its ``import "blocks/..."`` lines rewritten to
    ``import "std/..."``, so that it reads its blocks from an installed
    archdsl wherever the copy lives."""
    return _BLOCKS_IMPORT.sub(lambda m: m.group("lead") + STD_PREFIX, text)
