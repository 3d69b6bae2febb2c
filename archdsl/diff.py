"""``archdsl diff``: what a reviewer wants to see when a model changes —
parameters, MACs, FLOPs, memory and output shapes before and after, and
which layers were added, removed or changed."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .analysis import Analysis
from .ops.base import show_shape
from .report import si

FIGURES = (
    ("params", "Trainable parameters"),
    ("buffers", "Buffers"),
    ("macs", "MACs"),
    ("flops", "FLOPs"),
    ("param_bytes", "Parameter bytes"),
    ("peak_activation_bytes", "Peak activations (bytes)"),
)


@dataclass
class ModelDiff:
    name: str
    figures: list[tuple[str, str, int, int]]  # key, label, before, after
    outputs: list[tuple[str, tuple | None, tuple | None]]
    added: list[str]
    removed: list[str]
    changed: list[tuple[str, int, int]]  # node, params before, after


def percent(before: int, after: int) -> str:
    if before == after:
        return "0%"
    if before == 0:
        return "new"
    return f"{100 * (after - before) / before:+.2f}%"


def compare(old: Analysis, new: Analysis) -> ModelDiff:
    t_old, t_new = old.totals, new.totals
    figures = [(key, label, getattr(t_old, key), getattr(t_new, key)) for key, label in FIGURES]
    names = list(dict.fromkeys([*old.model.outputs, *new.model.outputs]))
    outputs = []
    for name in names:
        before = old.shapes.get(old.model.outputs[name]) if name in old.model.outputs else None
        after = new.shapes.get(new.model.outputs[name]) if name in new.model.outputs else None
        outputs.append((name, before, after))
    old_nodes, new_nodes = old.model.nodes, new.model.nodes
    added = [n for n in new_nodes if n not in old_nodes]
    removed = [n for n in old_nodes if n not in new_nodes]
    changed = []
    for name in new_nodes:
        if name in old_nodes:
            a, b = old.costs.get(name), new.costs.get(name)
            pa, pb = (a.params if a else 0), (b.params if b else 0)
            if old_nodes[name].spec != new_nodes[name].spec or pa != pb:
                changed.append((name, pa, pb))
    return ModelDiff(new.model.name, figures, outputs, added, removed, changed)


def _shape(shape) -> str:
    return show_shape(shape) if shape is not None else "—"


def _list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def render_text(diffs: list[ModelDiff], old_label: str, new_label: str) -> str:
    out = []
    for d in diffs:
        out.append(f"{d.name}: {old_label} -> {new_label}")
        width = max(len(label) for _, label, _, _ in d.figures)
        for _, label, before, after in d.figures:
            out.append(f"  {label.ljust(width)}  {before:>15,} -> {after:>15,}  {percent(before, after):>9}")
        for name, old_shape, new_shape in d.outputs:
            mark = "" if old_shape == new_shape else "  (changed)"
            out.append(f"  output {name}: {_shape(old_shape)} -> {_shape(new_shape)}{mark}")
        if d.added:
            out.append(f"  added {len(d.added)} layer(s): {_list(d.added)}")
        if d.removed:
            out.append(f"  removed {len(d.removed)} layer(s): {_list(d.removed)}")
        for name, before, after in d.changed[:12]:
            what = f"params {before:,} -> {after:,}" if before != after else "arguments changed"
            out.append(f"  changed {name}: {what}")
        if len(d.changed) > 12:
            out.append(f"  ... and {len(d.changed) - 12} more changed layers")
    return "\n".join(out) + "\n"


def render_markdown(diffs: list[ModelDiff], old_label: str, new_label: str) -> str:
    out = []
    for d in diffs:
        out += [f"### {d.name}: `{old_label}` → `{new_label}`", "",
                "| | before | after | change |", "|---|---:|---:|---:|"]
        for _, label, before, after in d.figures:
            out.append(f"| {label} | {before:,} ({si(before)}) | {after:,} ({si(after)}) | {percent(before, after)} |")
        for name, old_shape, new_shape in d.outputs:
            out.append(f"| output `{name}` | {_shape(old_shape)} | {_shape(new_shape)} | "
                       f"{'same' if old_shape == new_shape else '**changed**'} |")
        out.append("")
        if d.added:
            out.append(f"Added: {_list([f'`{n}`' for n in d.added])}  ")
        if d.removed:
            out.append(f"Removed: {_list([f'`{n}`' for n in d.removed])}  ")
        if d.changed:
            out.append(f"Changed: {_list([f'`{n}` ({a:,} → {b:,} params)' for n, a, b in d.changed])}")
        out.append("")
    return "\n".join(out)


def render_json(diffs: list[ModelDiff], old_label: str, new_label: str) -> str:
    payload = {
        "old": old_label,
        "new": new_label,
        "models": [
            {
                "model": d.name,
                "figures": {key: {"before": before, "after": after, "change": percent(before, after)}
                            for key, _, before, after in d.figures},
                "outputs": {name: {"before": list(b) if b else None, "after": list(a) if a else None}
                            for name, b, a in d.outputs},
                "added": d.added,
                "removed": d.removed,
                "changed": [{"node": n, "params_before": a, "params_after": b} for n, a, b in d.changed],
            }
            for d in diffs
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


class GitError(Exception):
    pass


def checkout_revision(revision: str, path: Path, into: Path) -> Path:
    """Extracts the repository containing ``path`` at ``revision`` into the
    folder ``into`` (so that imports resolve as they did then) and returns
    the path of the same file there."""
    folder = path.resolve().parent
    if revision.startswith("-"):  # git would read it as an option
        raise GitError("a revision cannot start with '-'")
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        archive = subprocess.run(["git", "-C", top, "archive", "--format=tar", revision], capture_output=True,
                                 check=True).stdout
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.CalledProcessError as error:
        message = (error.stderr.decode() if isinstance(error.stderr, bytes) else error.stderr).strip()
        raise GitError(message or f"git failed on {revision!r}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    relative = path.resolve().relative_to(Path(top).resolve())
    target = into / relative
    if not target.is_file():
        raise GitError(f"{relative} does not exist at {revision}")
    return target


def temporary_directory():
    return tempfile.TemporaryDirectory(prefix="archdsl-diff-")


# ---------------------------------------------------------------- HTML


def _marked_svg(svg: str, marks: dict[str, str]) -> str:
    """Adds a class (added, removed, changed) to the diagram nodes named in ``marks``."""
    import html
    import re

    def mark(match: re.Match) -> str:
        kind = marks.get(html.unescape(match.group(2)))
        return match.group(0) if kind is None else match.group(0).replace('class="node"', f'class="node {kind}"', 1)

    return re.sub(r'(<g id="[^"]*" class="node">\s*<title>)(.*?)(</title>)', mark, svg)


def _marks(drawn_as: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    """Drawn node -> the strongest change among the layers it draws."""
    rank = {"changed": 1, "added": 2, "removed": 2}
    out: dict[str, str] = {}
    for name, kind in names.items():
        key = drawn_as.get(name)
        if key is not None and rank[kind] > rank.get(out.get(key, ""), 0):
            out[key] = kind
    return out


def render_html(pairs: list[tuple[ModelDiff, Analysis, Analysis]], old_label: str, new_label: str) -> str:
    """One self-contained page: totals side by side, and both diagrams with
    removed (old) and added or changed (new) layers highlighted."""
    from html import escape

    from .html_report import make_diagram

    sections = []
    for d, old, new in pairs:
        rows = "".join(
            f"<tr><th>{escape(label)}</th><td>{before:,}</td><td>{after:,}</td>"
            f'<td class="{"up" if after > before else "down" if after < before else ""}">'
            f"{escape(percent(before, after))}</td></tr>" for _, label, before, after in d.figures)
        rows += "".join(
            f"<tr><th>output {escape(name)}</th><td>{escape(_shape(b))}</td><td>{escape(_shape(a))}</td>"
            f"<td>{'same' if a == b else 'changed'}</td></tr>" for name, b, a in d.outputs)
        changed = {n: "changed" for n, _, _ in d.changed}
        old_diagram, new_diagram = make_diagram(old), make_diagram(new)
        old_svg = _marked_svg(old_diagram.svg or escape(old_diagram.note),
                              _marks(old_diagram.drawn_as, {**changed, **{n: "removed" for n in d.removed}}))
        new_svg = _marked_svg(new_diagram.svg or escape(new_diagram.note),
                              _marks(new_diagram.drawn_as, {**changed, **{n: "added" for n in d.added}}))
        lists = "".join(
            f"<p><b>{title}</b> ({len(names)}): {escape(', '.join(names[:60]))}"
            f"{' …' if len(names) > 60 else ''}</p>"
            for title, names in (("Added", d.added), ("Removed", d.removed), ("Changed", [n for n, _, _ in d.changed]))
            if names)
        sections.append(
            f"<h2>{escape(d.name)}</h2><table class='totals'><tr><th></th><th>{escape(old_label)}</th>"
            f"<th>{escape(new_label)}</th><th>change</th></tr>{rows}</table>{lists}"
            f"<div class='side'><div><h3>before</h3>{old_svg}</div><div><h3>after</h3>{new_svg}</div></div>")
    return DIFF_PAGE.format(title=escape(f"{old_label} → {new_label}"), body="\n".join(sections))


DIFF_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
.totals {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
.totals th, .totals td {{ padding: 2px 10px; border-bottom: 1px solid #eee; text-align: right; }}
.totals th:first-child {{ text-align: left; font-weight: normal; }}
.up {{ color: #cc0000; }} .down {{ color: #38761d; }}
.side {{ display: flex; gap: 1em; align-items: flex-start; }}
.side > div {{ flex: 1; overflow: auto; max-height: 90vh; border: 1px solid #ddd; }}
.side svg {{ max-width: 100%; height: auto; }}
g.node.added polygon, g.node.added path {{ stroke: #38761d; stroke-width: 4; }}
g.node.removed polygon, g.node.removed path {{ stroke: #cc0000; stroke-width: 4; stroke-dasharray: 6 3; }}
g.node.changed polygon, g.node.changed path {{ stroke: #e69138; stroke-width: 4; }}
.key span {{ padding: 0 .5em; border: 3px solid; margin-right: .5em; }}
</style></head><body>
<h1>{title}</h1>
<p class="key"><span style="border-color:#38761d">added</span><span style="border-color:#cc0000">removed</span>
<span style="border-color:#e69138">changed</span></p>
{body}
</body></html>
"""
