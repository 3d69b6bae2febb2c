"""archdsl render: diagrams through the real Graphviz ``dot`` program."""

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import MODELS, ROOT, run_cli

import archdsl
from archdsl.emit.dot import RenderOptions, to_dot

SVG = "{http://www.w3.org/2000/svg}"
GOLDEN = Path(__file__).parent / "golden"


def svg_parts(path: Path):
    """(node titles, edge titles, cluster titles, all text) of a dot-made SVG."""
    root = ET.parse(path).getroot()
    groups = {"node": [], "edge": [], "cluster": []}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class")
        if kind in groups:
            groups[kind].append(g.find(f"{SVG}title").text)
    text = [t.text or "" for t in root.iter(f"{SVG}text")]
    return groups["node"], groups["edge"], groups["cluster"], text


def analysis_of(path, **kwargs):
    return archdsl.analyze(archdsl.load(path).model(), **kwargs)


def test_dot_is_on_path():
    # CI installs Debian's graphviz (scripts/test.sh); every test below uses it.
    assert shutil.which("dot"), "install Graphviz: apt-get install graphviz"


def test_lenet_svg_has_every_node_edge_and_shape(tmp_path):
    out = tmp_path / "lenet.svg"
    result = run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(out), "--no-legend")
    assert result.returncode == 0, result.stderr
    nodes, edges, clusters, text = svg_parts(out)
    model = archdsl.load(MODELS / "lenet5.cnn").model()
    assert sorted(nodes) == sorted(model.nodes)
    assert len(edges) == sum(len(n.inputs) for n in model.nodes.values()) == 12
    assert clusters == []
    # Edge labels carry the tensor shapes: C1's output 6x28x28, S4's 16x5x5.
    assert "6×28×28" in text and "16×5×5" in text and "120" in text
    assert "conv2d(6, 5)" in text


def test_legend_lists_the_families_drawn(tmp_path):
    out = tmp_path / "lenet.svg"
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(out)).returncode == 0
    nodes, _, clusters, _ = svg_parts(out)
    assert "cluster_legend" in clusters
    legend = {n.split(":", 1)[1] for n in nodes if n.startswith("legend:")}
    assert legend == {"input", "convolution", "pooling", "activation", "reshape", "linear"}


def test_resnet50_blocks_are_clusters_and_depth_collapses_them(tmp_path):
    full = tmp_path / "full.svg"
    assert run_cli("render", str(MODELS / "resnet50.cnn"), "-o", str(full), "--no-legend").returncode == 0
    nodes, edges, clusters, _ = svg_parts(full)
    assert len(nodes) == 176
    # 4 stages, 16 bottlenecks, 4 downsample groups.
    assert {"cluster_layer1", "cluster_layer4.2", "cluster_layer2.0.downsample"} <= set(clusters)
    assert len(clusters) == 4 + 16 + 4

    collapsed = tmp_path / "depth2.svg"
    result = run_cli("render", str(MODELS / "resnet50.cnn"), "-o", str(collapsed), "--depth", "2",
                     "--collapse-repeats", "--no-legend")
    assert result.returncode == 0, result.stderr
    nodes, edges, clusters, text = svg_parts(collapsed)
    # stem (image, conv1, bn1, relu, maxpool) + per stage: the first block and "×(n-1)" + avgpool, flatten, fc
    assert len(nodes) == 5 + 4 * 2 + 3
    assert any("×2" in t for t in text) and any("×5" in t for t in text)
    assert sorted(clusters) == ["cluster_layer1", "cluster_layer2", "cluster_layer3", "cluster_layer4"]


def test_show_params_and_rankdir(tmp_path):
    out = tmp_path / "lenet.dot"
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(out), "--show", "params,macs",
                   "--rankdir", "LR").returncode == 0
    source = out.read_text()
    assert "rankdir=LR" in source
    # C1: 6·5·5 + 6 = 156 parameters; 28·28·6·25 = 117,600 MACs.
    assert "params: 156" in source and "macs: 117,600" in source


def test_errors_are_drawn_red_with_the_message(tmp_path):
    src = tmp_path / "broken.cnn"
    src.write_text(
        "model Broken {\n"
        "    input image: [3, 32, 32]\n"
        "    x = image -> conv2d(16, 3, padding=1)\n"
        "    y = x -> conv2d(32, 3, stride=2, padding=1)\n"
        "    output out = add(x, y) -> relu\n"
        "}\n"
    )
    out = tmp_path / "broken.svg"
    result = run_cli("render", str(src), "-o", str(out))
    assert result.returncode == 1
    assert "error[E404]" in result.stderr
    svg = out.read_text()
    assert "add needs inputs of one shape" in svg
    assert "#e06666" in svg  # the error colour
    _, _, _, text = svg_parts(out)
    assert "?" in text  # the edge after the failing node has no known shape


def test_dot_output_without_graphviz_program(tmp_path, monkeypatch):
    """Writing .dot needs no Graphviz binary; other formats say how to get it."""
    import os

    out = tmp_path / "lenet.dot"
    env_path = str(tmp_path / "empty-bin")
    os.mkdir(env_path)
    import subprocess
    import sys

    env = {**os.environ, "PATH": env_path, "NO_COLOR": "1"}
    ok = subprocess.run([sys.executable, "-m", "archdsl", "render", str(MODELS / "lenet5.cnn"), "-o", str(out)],
                        env=env, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and out.read_text().startswith("digraph LeNet5")
    png = tmp_path / "lenet.png"
    bad = subprocess.run([sys.executable, "-m", "archdsl", "render", str(MODELS / "lenet5.cnn"), "-o", str(png)],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1
    assert "apt-get install graphviz" in bad.stderr and "Traceback" not in bad.stderr
    assert not png.exists()


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_binary_formats_are_written(tmp_path, fmt):
    out = tmp_path / f"lenet.{fmt}"
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(out)).returncode == 0
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}[fmt]
    assert out.read_bytes().startswith(magic)


def test_usage_errors(tmp_path):
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "x.jpg")).returncode == 2
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "x.svg"),
                   "--show", "bogus").returncode == 2
    assert run_cli("render", str(MODELS / "lenet5.cnn"), "-o", str(tmp_path / "no" / "x.svg")).returncode == 2


def test_failed_render_leaves_no_file(tmp_path):
    src = tmp_path / "syntax.cnn"
    src.write_text("model M { input x: [3, 8, 8] x -> conv2d(8 3) }")
    out = tmp_path / "m.svg"
    result = run_cli("render", str(src), "-o", str(out))
    assert result.returncode == 1 and "E101" in result.stderr
    assert not out.exists()


def test_golden_dot_for_lenet():
    """The DOT text of LeNet-5 is reviewed like code: regenerate with
    ``python -m archdsl render models/lenet5.cnn -o tests/golden/lenet5.dot``."""
    golden = (GOLDEN / "lenet5.dot").read_text(encoding="utf-8")
    assert to_dot(analysis_of(MODELS / "lenet5.cnn"), RenderOptions()) == golden


def test_dot_is_deterministic():
    a = to_dot(analysis_of(MODELS / "resnet18.cnn"))
    b = to_dot(analysis_of(MODELS / "resnet18.cnn"))
    assert a == b
    assert re.search(r"layer2\.0\.downsample\.0", a)
