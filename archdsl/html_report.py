"""``archdsl report``: one self-contained HTML page for reviewing a model.

The page holds the totals and counting conventions, the diagnostics with
their source excerpts, charts (parameters and MACs per stage; activation
memory along the network with the inference peak marked), the diagram as
inline SVG made by Graphviz, and the summary as a tree table that sorts
and folds.  Hovering a diagram node shows its figures; clicking it goes
to its table row, and each row links back to its node.

Nothing is fetched: CSS, script and SVG are inline.  Everything that comes
from the model or its files (names, file names, messages, source lines) is
HTML-escaped; the data the script reads is JSON inside a
``<script type="application/json">`` element with ``<``, ``>`` and ``&``
written as ``\\u`` escapes, so no value can close the element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from .analysis import Analysis
from .diagnostics import Diagnostic
from .diagnostics.render import render_one
from .ops.base import show_shape
from .passes.memory import live_bytes
from .report import TreeRow, _totals_lines, rows, si, thousands, tree_cell, tree_rows
from .source import SourceFile

#: Table columns: (key, title, numeric).
TABLE_COLUMNS = (
    ("name", "Layer", False), ("op", "Op", False), ("input", "Input shape", False),
    ("output", "Output shape", False), ("kernel", "Kernel", False), ("params", "Params", True),
    ("macs", "MACs", True), ("memory", "Memory", True), ("rf", "RF", False),
    ("connected", "Connected to", False), ("line", "Line", True),
)


@dataclass
class Diagram:
    """The diagram as Graphviz drew it, and which drawn node shows each layer."""

    svg: str | None  # None when Graphviz's dot is not installed
    drawn_as: dict[str, str]  # node name -> drawn node key
    note: str = ""


def script_json(value) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def make_diagram(analysis: Analysis) -> Diagram:
    """Draws the automatic view (as ``archdsl render`` does by default) as SVG."""
    import graphviz

    from .emit.dot import RenderOptions, _groups, choose_view, to_graphviz

    options = RenderOptions(auto=True)
    view = choose_view(analysis, options)
    drawn_as = {m: g.key for g in _groups(analysis, view) for m in g.members}
    try:
        svg = to_graphviz(analysis, options).pipe(format="svg", quiet=True).decode("utf-8")
    except graphviz.ExecutableNotFound:
        return Diagram(None, drawn_as, "The diagram needs Graphviz's dot program (apt-get install graphviz).")
    depth = "every layer" if view.depth is None else f"names up to {view.depth} components"
    note = f"Drawn at {depth}" + (", runs of identical blocks collapsed" if view.collapse_repeats else "")
    return Diagram(_bare_svg(svg), drawn_as, note + ". Hover a node for its figures; click it for its row.")


def _bare_svg(svg: str) -> str:
    """The <svg> element alone: no XML declaration, doctype or comments."""
    svg = svg[svg.index("<svg"):]
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S)


# ---------------------------------------------------------------- charts


def bar_chart(title: str, items: Sequence[tuple[str, int]], colour: str, unit: str = "") -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per item."""
    label_width, bar_width, row = 150, 260, 18
    largest = max((v for _, v in items), default=0) or 1
    height = row * len(items) + 28
    parts = [f'<svg class="chart" width="{label_width + bar_width + 90}" height="{height}" role="img" '
             f'aria-label="{escape(title)}"><text x="0" y="14" class="chart-title">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = 24 + i * row
        width = round(bar_width * value / largest, 1)
        shown = label if len(label) <= 22 else label[:21] + "…"
        parts.append(f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{escape(shown)}</text>'
                     f'<rect x="{label_width}" y="{y + 2}" width="{width}" height="{row - 5}" fill="{colour}">'
                     f"<title>{escape(label)}: {value:,}</title></rect>"
                     f'<text x="{label_width + width + 4}" y="{y + 12}">{escape(si(value, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def memory_chart(series: Sequence[tuple[str, int]], peak_node: str | None) -> str:
    """Live activation bytes while each layer runs, as a line; the peak marked."""
    width, height, left, bottom = 640, 220, 60, 24
    if not series:
        return ""
    top = max(v for _, v in series) or 1
    n = max(len(series) - 1, 1)

    def point(i: int, value: int) -> tuple[float, float]:
        x = left + (width - left - 10) * i / n
        y = height - bottom - (height - bottom - 24) * value / top
        return round(x, 1), round(y, 1)

    points = " ".join(f"{x},{y}" for x, y in (point(i, v) for i, (_, v) in enumerate(series)))
    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="activation memory">',
             '<text x="0" y="14" class="chart-title">Activation memory while each layer runs (inference, '
             "tensors freed after their last use)</text>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="axis"/>',
             f'<line x1="{left}" y1="24" x2="{left}" y2="{height - bottom}" class="axis"/>',
             f'<text x="{left - 4}" y="30" text-anchor="end">{escape(si(top, "B"))}</text>',
             f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>',
             f'<text x="{left}" y="{height - 6}">{escape(series[0][0])}</text>',
             f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">{escape(series[-1][0])}</text>',
             f'<polyline points="{points}" fill="none" stroke="#3c78d8" stroke-width="1.5"/>']
    for i, (name, value) in enumerate(series):
        if name == peak_node:
            x, y = point(i, value)
            anchor = "end" if i > len(series) / 2 else "start"
            dx = -8 if anchor == "end" else 8
            parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="#cc0000" class="peak"><title>peak</title></circle>'
                         f'<text x="{x + dx}" y="{y + 4}" text-anchor="{anchor}" class="peak-label">'
                         f"peak {escape(si(value, 'B'))} at {escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- table


def _sort_value(row: TreeRow, key: str, index: int) -> str:
    numeric = {"params": row.params, "macs": row.macs, "memory": row.memory, "line": row.span_line or 0}
    return str(numeric[key]) if key in numeric else str(index)


def _table_row(row: TreeRow, index: int, drawn_as: Mapping[str, str]) -> str:
    parent = row.name.rpartition(".")[0] if row.level else ""
    label = row.name.rpartition(".")[2] if row.level else row.name
    toggle = '<button class="fold" aria-label="fold">▾</button>' if row.is_scope else '<span class="leaf"></span>'
    target = drawn_as.get(row.name) or drawn_as.get(row.members[0], "")
    link = (f'<a class="to-node" href="#" data-node="{escape(target)}" title="show in the diagram">◆</a>'
            if target else "")
    cells = [f'<td class="name" style="padding-left:{0.3 + 1.1 * row.level:.1f}em">{toggle}'
             f'<span title="{escape(row.name)}">{escape(label)}</span> {link}</td>',
             f"<td>{escape(row.op)}</td>"]
    for key, _, numeric in TABLE_COLUMNS[2:]:
        text = str(row.span_line or "") if key == "line" else tree_cell(row, key)
        value = _sort_value(row, key, index) if numeric else ""
        cells.append(f'<td class="num" data-v="{value}">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>")
    kind = "scope" if row.is_scope else "layer"
    return (f'<tr id="row-{escape(row.name)}" class="{kind}" data-name="{escape(row.name)}" '
            f'data-parent="{escape(parent)}" data-index="{index}" data-level="{row.level}">{"".join(cells)}</tr>')


def summary_table(analysis: Analysis, drawn_as: Mapping[str, str]) -> str:
    head = "".join(f'<th data-key="{key}" data-numeric="{int(numeric)}" title="sort">{escape(title)}</th>'
                   for key, title, numeric in TABLE_COLUMNS)
    body = "\n".join(_table_row(row, i, drawn_as) for i, row in enumerate(tree_rows(analysis)))
    return f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


# ---------------------------------------------------------------- page


def _node_data(analysis: Analysis, drawn_as: Mapping[str, str]) -> dict[str, dict]:
    """What a diagram node's hover box shows: the figures of the layers it draws."""
    members: dict[str, list[str]] = {}
    for name, key in drawn_as.items():
        members.setdefault(key, []).append(name)
    data = {}
    batch = analysis.settings.batch
    for key, names in members.items():
        costs = [analysis.costs.get(n) for n in names]
        node = analysis.model.nodes.get(key)
        instance = analysis.model.blocks.get(key)
        span = node.span if node is not None else instance.span if instance is not None else None
        shape = analysis.shapes.get(names[-1])
        data[key] = {
            "name": key,
            "op": node.op if node is not None else (instance.block if instance is not None else f"{len(names)} layers"),
            "layers": len(names),
            "shape": show_shape(shape) if shape is not None else "?",
            "params": f"{sum(c.params for c in costs if c):,}",
            "macs": f"{batch * sum(c.macs for c in costs if c):,}",
            "where": f"{span.file.rpartition('/')[2]}:{span.line}" if span is not None else "",
            "row": key,  # a node's name or a scope's: the tree table has a row for each
        }
    return data


def _diagnostics_section(diagnostics: Sequence[Diagnostic], sources: Mapping[str, SourceFile]) -> str:
    if not diagnostics:
        return '<p class="ok">No diagnostics: the model elaborated and every shape is known.</p>'
    items = []
    for d in diagnostics:
        items.append(f'<pre class="diag {escape(d.severity.value)}">{escape(render_one(d, sources))}</pre>')
    return "\n".join(items)


def _totals(analysis: Analysis) -> str:
    lines = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _totals_lines(analysis))
    peak = analysis.memory.peak_node
    if peak:
        lines += f"<tr><th>Peak reached at</th><td>{escape(peak)}</td></tr>"
    return f'<table class="totals">{lines}</table>'


def render_report(analysis: Analysis, *, source_name: str, diagnostics: Sequence[Diagnostic],
                  sources: Mapping[str, SourceFile], diagram: Diagram) -> str:
    """The whole page as one string."""
    model = analysis.model
    stages = rows(analysis, 1)
    inputs = ", ".join(f"{name} {show_shape(analysis.shapes[name] or ())}" for name in model.inputs)
    series = live_bytes(model, analysis.memory.activation_bytes)
    figure = diagram.svg if diagram.svg is not None else ""
    data = {"nodes": _node_data(analysis, diagram.drawn_as)}
    return PAGE.format(
        title=escape(f"{model.name} — {source_name}"),
        model=escape(model.name),
        source=escape(source_name),
        inputs=escape(inputs),
        settings=escape(analysis.settings.describe()),
        totals=_totals(analysis),
        diagnostics=_diagnostics_section(diagnostics, sources),
        count=len(diagnostics),
        params_chart=bar_chart("Parameters by stage", [(r.name, r.params) for r in stages if r.params], "#6d9eeb"),
        macs_chart=bar_chart("MACs by stage", [(r.name, r.macs) for r in stages if r.macs], "#93c47d"),
        memory_chart=memory_chart(series, analysis.memory.peak_node),
        diagram=figure,
        diagram_note=escape(diagram.note),
        table=summary_table(analysis, diagram.drawn_as),
        layers=thousands(len(model.nodes)),
        data=script_json(data),
        css=CSS,
        script=SCRIPT,
    )


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .2em; } h2 { font-size: 1.15em; margin: 1.4em 0 .5em; }
.meta { color: #555; } table { border-collapse: collapse; }
.totals th { text-align: left; font-weight: normal; color: #444; padding: 1px 1.2em 1px 0; }
.totals td { font-variant-numeric: tabular-nums; }
pre.diag { background: #fbf3f3; border-left: 4px solid #cc0000; padding: .5em .8em; overflow-x: auto; }
pre.diag.warning { background: #fdf8ea; border-color: #e69138; }
pre.diag.info, pre.diag.note { background: #f1f5fb; border-color: #3c78d8; }
.ok { color: #38761d; }
.charts { display: flex; flex-wrap: wrap; gap: 2em; }
.chart text { font-size: 11px; fill: #333; } .chart .chart-title { font-size: 12px; font-weight: 600; }
.chart .axis { stroke: #999; } .chart .peak-label { fill: #cc0000; font-weight: 600; }
#diagram { overflow: auto; max-height: 80vh; border: 1px solid #ddd; padding: .5em; }
#diagram g.node { cursor: pointer; }
#diagram g.node.hl polygon, #diagram g.node.hl path { stroke: #cc0000; stroke-width: 3; }
#tip { position: fixed; display: none; background: #fff; border: 1px solid #888; padding: .4em .6em;
       box-shadow: 0 2px 6px rgba(0,0,0,.2); font-size: 12px; pointer-events: none; z-index: 10; }
#tip b { display: block; }
#summary { font-size: 12.5px; font-variant-numeric: tabular-nums; }
#summary th { position: sticky; top: 0; background: #eee; cursor: pointer; padding: 3px 6px; text-align: left;
              user-select: none; white-space: nowrap; }
#summary th.asc::after { content: " ▲"; } #summary th.desc::after { content: " ▼"; }
#summary td { padding: 2px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
#summary td.num { text-align: right; } #summary tr.scope td { background: #f3f6fc; font-weight: 600; }
#summary tr.hl td { background: #fff2cc; } #summary tr.hidden { display: none; }
button.fold { border: 0; background: none; cursor: pointer; width: 1.3em; padding: 0; font-size: 11px; }
span.leaf { display: inline-block; width: 1.3em; } a.to-node { text-decoration: none; color: #3c78d8; }
.tools button { margin-right: .5em; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const tip = document.getElementById("tip");
  const table = document.getElementById("summary");
  const body = table.tBodies[0];
  const rowsByName = new Map();
  for (const tr of body.rows) rowsByName.set(tr.dataset.name, tr);
  const collapsed = new Set();

  function nodeKey(g) { const t = g.querySelector("title"); return t ? t.textContent : ""; }
  function ancestors(name) {
    const out = []; let p = rowsByName.get(name) ? rowsByName.get(name).dataset.parent : "";
    while (p) { out.push(p); const r = rowsByName.get(p); p = r ? r.dataset.parent : ""; }
    return out;
  }
  function refresh() {
    for (const tr of body.rows) {
      const hidden = ancestors(tr.dataset.name).some(a => collapsed.has(a));
      tr.classList.toggle("hidden", hidden);
      const b = tr.querySelector("button.fold");
      if (b) b.textContent = collapsed.has(tr.dataset.name) ? "▸" : "▾";
    }
  }
  function fold(name, on) { if (on) collapsed.add(name); else collapsed.delete(name); refresh(); }
  for (const tr of body.rows) {
    if (tr.classList.contains("scope") && Number(tr.dataset.level) >= 1) collapsed.add(tr.dataset.name);
  }
  refresh();
  body.addEventListener("click", function (event) {
    const button = event.target.closest("button.fold");
    if (button) { const name = button.closest("tr").dataset.name; fold(name, !collapsed.has(name)); return; }
    const link = event.target.closest("a.to-node");
    if (link) { event.preventDefault(); showNode(link.dataset.node); }
  });
  document.getElementById("expand-all").addEventListener("click", () => { collapsed.clear(); refresh(); });
  document.getElementById("collapse-all").addEventListener("click", () => {
    for (const tr of body.rows) if (tr.classList.contains("scope")) collapsed.add(tr.dataset.name);
    refresh();
  });

  // Sorting: numbers by their data-v value, text by its content; the Layer column restores tree order.
  let sortKey = "name", ascending = true;
  table.tHead.addEventListener("click", function (event) {
    const th = event.target.closest("th"); if (!th) return;
    ascending = sortKey === th.dataset.key ? !ascending : true;
    sortKey = th.dataset.key;
    const index = Array.from(th.parentNode.children).indexOf(th);
    const numeric = th.dataset.numeric === "1";
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      let d;
      if (sortKey === "name") d = Number(a.dataset.index) - Number(b.dataset.index);
      else if (numeric) d = Number(a.cells[index].dataset.v) - Number(b.cells[index].dataset.v);
      else d = a.cells[index].textContent.localeCompare(b.cells[index].textContent);
      return ascending ? d : -d;
    });
    for (const tr of rows) body.appendChild(tr);
    for (const other of th.parentNode.children) other.classList.remove("asc", "desc");
    th.classList.add(ascending ? "asc" : "desc");
  });

  function showRow(name) {
    const tr = rowsByName.get(name); if (!tr) return;
    for (const a of ancestors(name)) collapsed.delete(a);
    refresh();
    for (const other of body.querySelectorAll("tr.hl")) other.classList.remove("hl");
    tr.classList.add("hl");
    tr.scrollIntoView({block: "center"});
  }
  function showNode(key) {
    for (const g of document.querySelectorAll("#diagram g.node")) {
      const on = g.dataset.key === key; g.classList.toggle("hl", on);
      if (on) g.scrollIntoView({block: "center", inline: "center"});
    }
  }
  for (const g of document.querySelectorAll("#diagram g.node")) {
    const info = data.nodes[nodeKey(g)];
    if (!info) continue;
    const t = g.querySelector("title"); if (t) t.remove();  // our box replaces the browser's tooltip
    g.addEventListener("mouseenter", function (event) {
      tip.textContent = "";
      const head = document.createElement("b"); head.textContent = info.name; tip.appendChild(head);
      const lines = [info.op + (info.layers > 1 ? " (" + info.layers + " layers)" : ""), "output " + info.shape,
                     "params " + info.params, "MACs " + info.macs, info.where];
      for (const line of lines) {
        if (!line) continue;
        const d = document.createElement("div"); d.textContent = line; tip.appendChild(d);
      }
      tip.style.display = "block";
      tip.style.left = (event.clientX + 14) + "px"; tip.style.top = (event.clientY + 14) + "px";
    });
    g.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    g.dataset.key = info.name;
    g.addEventListener("click", () => showRow(info.row));
  }
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{model}</h1>
<p class="meta">{source} · input {inputs} · {layers} layers<br>Counting: {settings}</p>
<h2>Totals</h2>
{totals}
<h2 id="diagnostics">Diagnostics ({count})</h2>
{diagnostics}
<h2>Where the cost is</h2>
<div class="charts">{params_chart}{macs_chart}</div>
<div class="charts">{memory_chart}</div>
<h2>Diagram</h2>
<p class="meta">{diagram_note}</p>
<div id="diagram">{diagram}</div>
<h2>Layers</h2>
<p class="tools"><button id="expand-all">expand all</button><button id="collapse-all">collapse all</button>
<span class="meta">Click a column title to sort (Layer: tree order); ◆ shows the layer in the diagram.</span></p>
{table}
<div id="tip" role="tooltip"></div>
<script type="application/json" id="report-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
