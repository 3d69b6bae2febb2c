"""``archdsl report``: the self-contained HTML page, read as text and used
in a real browser (headless Chromium over the DevTools protocol; see
tests/browser.py).  The figures checked are torchvision's ResNet-18 ones:
conv1 64·3·7·7 = 9,408 parameters and 112·112·64·147 = 118,013,952 MACs;
11,689,512 parameters in all."""

import os
import re
import shutil
from pathlib import Path

import pytest
from browser import INSTALL_HINT, Browser, find_browser
from conftest import MODELS, run_cli

#: Screenshots are kept here when set (to look at them), else in pytest's tmp_path.
SHOTS = os.environ.get("ARCHDSL_SCREENSHOTS")


def write_report(tmp_path: Path, model: Path, *args: str) -> Path:
    out = tmp_path / f"{model.stem}.html"
    result = run_cli("report", str(model), "-o", str(out), *args)
    assert result.returncode == 0, result.stderr
    return out


def test_report_is_one_self_contained_file(tmp_path):
    page = write_report(tmp_path, MODELS / "resnet18.cnn").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles, images or links; the
    # only URLs are the SVG namespaces that Graphviz writes.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"<(link|img|iframe)\b", page) and "<script src" not in page
    assert "11,689,512" in page and "1,814,073,344" in page  # totals
    assert '<svg width=' in page and 'class="node"' in page  # the diagram, inline
    assert 'id="row-layer1.0.conv1"' in page  # a table row per layer ...
    assert 'id="row-layer1"' in page  # ... and per scope
    assert "Parameters by stage" in page and "peak" in page


def test_charts_use_the_analysis_figures(tmp_path):
    page = write_report(tmp_path, MODELS / "resnet18.cnn").read_text(encoding="utf-8")
    # layer4's parameters: 3,673,088 + 4,720,640 (see tests/test_summary_tree.py).
    assert "<title>layer4: 8,393,728</title>" in page
    # The liveness peak of ResNet-18 at batch 1 is while relu_1 runs... whatever node the
    # memory pass names, the chart marks the same one.
    import archdsl

    analysis = archdsl.analyze(archdsl.load(MODELS / "resnet18.cnn").model())
    assert f"at {analysis.memory.peak_node}</text>" in page


def hostile_model(tmp_path: Path) -> Path:
    """A file whose name and source lines carry markup, with an error on the
    line that holds a script tag, so that the diagnostic's excerpt shows it."""
    path = tmp_path / "<img src=x onerror=alert(1)>.cnn"
    path.write_text(
        "model Evil {\n"
        "    input x: [3, 8, 8]\n"
        "    y = x -> conv2d(4, 3, padding=1)  # <script>alert('line')</script>\n"
        "    z = x -> conv2d(4, 3, stride=2, padding=1)\n"
        "    output out = add(y, z)  # </pre><script>alert('excerpt')</script>\n"
        "}\n", encoding="utf-8")
    return path


def test_markup_from_the_model_is_escaped(tmp_path):
    source = hostile_model(tmp_path)
    out = tmp_path / "evil.html"
    result = run_cli("report", str(source), "-o", str(out))
    assert result.returncode == 1 and "E404" in result.stderr  # the add's shapes differ
    page = out.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;excerpt&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.cnn" in page
    assert page.count("<script") == 2  # the JSON data and the page's own script


def test_failed_report_leaves_nothing_and_keeps_an_old_file(tmp_path):
    broken = tmp_path / "broken.cnn"
    broken.write_text("model M { input x: [3, 8, 8] x -> conv2d(8 3) }")
    out = tmp_path / "report.html"
    out.write_text("old report")
    result = run_cli("report", str(broken), "-o", str(out))
    assert result.returncode == 1 and "E101" in result.stderr
    assert out.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == sorted(["broken.cnn", "report.html"]) or \
        sorted(p.name for p in tmp_path.iterdir()) == ["broken.cnn", "report.html"]


def test_usage_errors(tmp_path):
    assert run_cli("report", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "r.txt")).returncode == 2
    assert run_cli("report", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "no" / "r.html")).returncode == 2
    assert run_cli("report", str(tmp_path / "missing.cnn"), "-o", str(tmp_path / "r.html")).returncode == 2


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    # Not a skip: scripts/test.sh installs Debian's chromium, so a missing
    # browser is a broken setup, and the report's behaviour would go untested.
    assert find_browser(), INSTALL_HINT
    with Browser() as b:
        yield b


def shot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def node_centre(browser, key: str) -> tuple[float, float]:
    box = browser.evaluate(f"""(() => {{
        const g = Array.from(document.querySelectorAll('#diagram g.node')).find(g => g.dataset.key === {key!r});
        g.scrollIntoView({{block: 'center', inline: 'center'}});
        const r = g.getBoundingClientRect();
        return [r.x + r.width / 2, r.y + r.height / 2];
    }})()""")
    return box[0], box[1]


def test_hovering_a_node_shows_its_figures(browser, tmp_path):
    browser.open(write_report(tmp_path, MODELS / "resnet18.cnn"))
    x, y = node_centre(browser, "conv1")
    browser.mouse("mouseMoved", x, y)
    tip = browser.evaluate("(() => { const t = document.getElementById('tip'); "
                           "return [getComputedStyle(t).display, t.innerText]; })()")
    assert tip[0] == "block"
    assert "conv1" in tip[1] and "params 9,408" in tip[1] and "MACs 118,013,952" in tip[1]
    assert "resnet18.cnn:" in tip[1]  # the source line
    shot = browser.screenshot(shot_path(tmp_path, "report-hover.png"))
    assert shot.read_bytes()[:4] == b"\x89PNG"
    browser.mouse("mouseMoved", 5, 5)
    assert browser.evaluate("getComputedStyle(document.getElementById('tip')).display") == "none"
    assert browser.problems() == []


def test_clicking_a_node_shows_its_row_and_the_row_links_back(browser, tmp_path):
    browser.open(write_report(tmp_path, MODELS / "resnet18.cnn"))
    # layer2.0 is drawn collapsed (the automatic view of ResNet-18 is depth 2).
    x, y = node_centre(browser, "layer2.0")
    browser.click(x, y)
    row = browser.evaluate("(() => { const r = document.querySelector('#summary tr.hl'); "
                           "return [r.dataset.name, r.classList.contains('hidden'), r.getBoundingClientRect().top]; })()")
    assert row[0] == "layer2.0" and row[1] is False and 0 <= row[2] <= 900
    browser.screenshot(shot_path(tmp_path, "report-row.png"))
    browser.evaluate("document.querySelector('#row-layer3\\\\.1 a.to-node').click()")
    assert browser.evaluate("Array.from(document.querySelectorAll('#diagram g.node.hl')).map(g => g.dataset.key)") \
        == ["layer3.1"]
    assert browser.problems() == []


def test_table_sorts_and_folds(browser, tmp_path):
    browser.open(write_report(tmp_path, MODELS / "resnet18.cnn"))
    visible = "Array.from(document.querySelectorAll('#summary tbody tr:not(.hidden)')).map(r => r.dataset.name)"
    first = browser.evaluate(visible)
    # Scopes below the top level start folded: layer1 shows its blocks, not their layers.
    assert "layer1.0" in first and "layer1.0.conv1" not in first
    browser.evaluate("document.querySelector('#row-layer1 button.fold').click()")
    assert not any(n.startswith("layer1.") for n in browser.evaluate(visible))
    browser.evaluate("document.getElementById('expand-all').click()")
    assert len(browser.evaluate(visible)) == browser.evaluate("document.querySelectorAll('#summary tbody tr').length")

    def params_column() -> list[int]:
        return browser.evaluate("Array.from(document.querySelectorAll('#summary tbody tr')).map(r => "
                                "Number(r.cells[5].dataset.v))")

    header = "document.querySelector('#summary th[data-key=params]')"
    browser.evaluate(f"{header}.click()")
    ascending = params_column()
    assert ascending == sorted(ascending) and ascending[0] == 0
    browser.evaluate(f"{header}.click()")
    descending = params_column()
    assert descending == sorted(descending, reverse=True)
    assert descending[0] == 8_393_728  # layer4, the largest row (scopes included)
    assert browser.evaluate(f"{header}.className") == "desc"
    browser.screenshot(shot_path(tmp_path, "report-sorted.png"))
    browser.evaluate("document.querySelector('#summary th[data-key=name]').click()")
    assert browser.evaluate(visible)[:3] == ["image", "conv1", "bn1"]  # tree order again
    assert browser.problems() == []


def test_hostile_report_runs_no_script_of_the_model(browser, tmp_path):
    source = hostile_model(tmp_path)
    out = tmp_path / "evil.html"
    assert run_cli("report", str(source), "-o", str(out)).returncode == 1
    browser.open(out)
    assert browser.evaluate("document.scripts.length") == 2
    text = browser.evaluate("document.getElementById('diagnostics').nextElementSibling.innerText")
    assert "<script>alert('excerpt')</script>" in text  # shown as text, not run
    browser.screenshot(shot_path(tmp_path, "report-diagnostics.png"))
    assert browser.problems() == []


@pytest.mark.parametrize("name", ["googlenet", "densenet121", "unet"])
def test_zoo_reports_load_cleanly(browser, tmp_path, name):
    browser.open(write_report(tmp_path, MODELS / f"{name}.cnn"))
    assert browser.evaluate("document.querySelectorAll('#diagram g.node').length") >= 10
    assert browser.evaluate("document.querySelectorAll('.chart polyline').length") == 1
    browser.screenshot(shot_path(tmp_path, f"report-{name}.png"), full_page=False)
    assert browser.problems() == []


def test_chromium_is_installed():
    # CI's scripts/test.sh installs it; say so plainly when it is missing.
    assert find_browser() or shutil.which("chromium"), INSTALL_HINT


# ---------------------------------------------------------------- diff --format html

DIFF_OLD = """model Net {
    input x: [3, 32, 32]
    logits = x -> conv1: conv2d(16, 3, padding=1) -> relu -> drop: dropout(0.1) -> global_avgpool -> flatten
               -> fc: linear(10)
    output logits
}
"""
# conv1 doubled to 32 channels (changed), conv2 added, drop removed.
DIFF_NEW = """model Net {
    input x: [3, 32, 32]
    logits = x -> conv1: conv2d(32, 3, padding=1) -> relu -> conv2: conv2d(32, 3, padding=1)
               -> global_avgpool -> flatten -> fc: linear(10)
    output logits
}
"""


def diff_page(tmp_path: Path) -> Path:
    (tmp_path / "old.cnn").write_text(DIFF_OLD)
    (tmp_path / "new.cnn").write_text(DIFF_NEW)
    result = run_cli("diff", "old.cnn", "new.cnn", "--format", "html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "diff.html"
    out.write_text(result.stdout, encoding="utf-8")
    return out


def test_diff_html_has_totals_side_by_side_and_marks_the_changes(tmp_path):
    page = diff_page(tmp_path).read_text(encoding="utf-8")
    # params: old conv1 16·27 + 16 = 448, fc 170 -> 618; new 896 + 9,248 + 330 = 10,474.
    assert "<td>618</td><td>10,474</td>" in page
    assert re.search(r'class="node added">\s*<title>conv2</title>', page)
    assert re.search(r'class="node changed">\s*<title>conv1</title>', page)
    assert re.search(r'class="node removed">\s*<title>drop</title>', page)
    # fc reads 32 channels instead of 16: 170 -> 330 parameters, so it changed too; relu did not.
    assert re.search(r'class="node changed">\s*<title>fc</title>', page)
    assert re.search(r'class="node">\s*<title>relu_1</title>', page)
    assert "<script" not in page


def test_diff_html_in_the_browser(browser, tmp_path):
    browser.open(diff_page(tmp_path))
    marked = browser.evaluate("Array.from(document.querySelectorAll('g.node.added, g.node.removed, g.node.changed'))"
                              ".map(g => [g.querySelector('title').textContent, g.getAttribute('class'), "
                              "getComputedStyle(g.querySelector('polygon, path')).stroke])")
    assert sorted(m[:2] for m in marked) == [["conv1", "node changed"], ["conv1", "node changed"],
                                               ["conv2", "node added"], ["drop", "node removed"],
                                               ["fc", "node changed"], ["fc", "node changed"]]
    assert {m[0]: m[2] for m in marked}["conv2"] == "rgb(56, 118, 29)"  # the CSS applied: green
    browser.screenshot(shot_path(tmp_path, "diff.png"))
    assert browser.problems() == []
