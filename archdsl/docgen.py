"""The generated parts of the documentation, from the registries.

Whole files: ``docs/ops.md`` (the op catalogue) and ``docs/rules.md`` (the
code table).  Sections of hand-written pages, between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``: the per-op
tables of ``docs/analysis.md`` (shape rules, tensors, MACs, FLOPs,
receptive-field windows, from the docstrings of the methods that compute
each fact), of ``docs/runtime.md`` (each op's NumPy kernel and its
semantics, from the kernel's docstring) and of ``docs/export.md`` (ONNX
operators and PyTorch calls per op).

``python scripts/gen_docs.py`` writes them; ``tests/test_registry.py``
fails when a document is out of date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

#: Marks a generated section of a hand-written page.
_SECTION = re.compile(r"(<!-- generated: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


class MissingSection(ValueError):
    """A page lacks a section the generator fills."""


def replace_sections(text: str, sections: dict[str, str]) -> str:
    """``text`` with each generated section's body replaced by ``sections[name]``."""
    found = set()

    def body(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in sections:
            return match.group(0)
        found.add(name)
        return match.group(1) + sections[name] + match.group(4)

    result = _SECTION.sub(body, text)
    missing = set(sections) - found
    if missing:
        raise MissingSection(f"no '<!-- generated: NAME -->' section for {', '.join(sorted(missing))}")
    return result


def _section_generators() -> dict[str, dict[str, Callable[[], str]]]:
    from .emit.onnx import mapping_table
    from .ops.catalog import facet_table, kernel_table, torch_table

    return {
        "analysis.md": {
            "shape-rules": lambda: facet_table("shapes", "output shape"),
            "tensors": lambda: facet_table("tensors", "parameters and buffers (PyTorch names and layouts)"),
            "macs": lambda: facet_table("macs", "MACs per sample"),
            "flops": lambda: facet_table("flops", "FLOPs per sample"),
            "windows": lambda: facet_table("window", "receptive-field window"),
        },
        "runtime.md": {"kernels": kernel_table},
        "export.md": {"onnx-ops": mapping_table, "torch-calls": torch_table},
    }


def documents(docs: Path) -> dict[Path, str]:
    """Every generated document's expected text, by path under ``docs``."""
    from .diagnostics.codes import markdown as rules_markdown
    from .ops.catalog import markdown as ops_markdown

    expected = {docs / "ops.md": ops_markdown(), docs / "rules.md": rules_markdown()}
    for page, generators in _section_generators().items():
        path = docs / page
        sections = {name: generate() for name, generate in generators.items()}
        expected[path] = replace_sections(path.read_text(encoding="utf-8"), sections)
    return expected


def stale(docs: Path) -> list[Path]:
    """The documents whose text differs from what the registries give."""
    return [path for path, text in documents(docs).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def write(docs: Path) -> list[Path]:
    """Rewrites the stale documents; returns them."""
    changed = stale(docs)
    texts = documents(docs)
    for path in changed:
        path.write_text(texts[path], encoding="utf-8")
    return changed
