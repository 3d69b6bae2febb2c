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
    root = ET.parse(out).getroot()
    legend = next(g for g in root.iter(f"{SVG}g")
                  if g.get("class") == "node" and g.find(f"{SVG}title").text == "legend")
    names = {t.text for t in legend.iter(f"{SVG}text")}
    assert names == {"input", "convolution", "pooling", "activation", "reshape", "linear"}
    # Three swatches a row, so six families make two rows and the legend stays narrow.
    rows = {round(float(t.get("y"))) for t in legend.iter(f"{SVG}text")}
    assert len(rows) == 2


def test_resnet50_blocks_are_clusters_and_depth_collapses_them(tmp_path):
    full = tmp_path / "full.svg"
    assert run_cli("render", str(MODELS / "resnet50.cnn"), "-o", str(full), "--no-legend",
                   "--depth", "all").returncode == 0
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


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header: the IHDR chunk follows the 8-byte signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.cnn")), ids=lambda p: p.stem)
def test_default_render_of_every_zoo_model_fits_2000_px(tmp_path, path):
    """The default view (--depth auto) stays readable: at most 60 nodes, long
    side at most 2000 px at 96 dpi, and nothing from dot on the terminal."""
    out = tmp_path / f"{path.stem}.png"
    result = run_cli("render", str(path), "-o", str(out), "-q")
    assert result.returncode == 0
    assert result.stderr == ""  # no "scaling by 0.902", no layout warnings
    width, height = png_size(out)
    assert max(width, height) <= 2000, (width, height)
    assert min(width, height) >= 150  # not a blank or degenerate image


def dot_text(tmp_path: Path, path: Path, *options: str) -> str:
    out = tmp_path / f"{path.stem}.dot"
    result = run_cli("render", str(path), "-o", str(out), "-q", *options)
    assert result.returncode == 0, result.stderr
    return out.read_text(encoding="utf-8")


def drawn_nodes(tmp_path: Path, path: Path, *options: str) -> list[str]:
    dot = dot_text(tmp_path, path, "--no-legend", *options)
    names = re.findall(r"^\t+(\"[^\"]+\"|[\w.]+) \[", dot, flags=re.M)
    return [n.strip('"') for n in names if n not in ("graph", "node", "edge")]


def test_auto_depth_keeps_small_models_whole_and_collapses_big_ones(tmp_path):
    lenet = archdsl.load(MODELS / "lenet5.cnn").model()
    assert len(drawn_nodes(tmp_path, MODELS / "lenet5.cnn")) == len(lenet.nodes) == 13
    densenet = drawn_nodes(tmp_path, MODELS / "densenet121.cnn")
    assert 10 <= len(densenet) <= 60
    everything = drawn_nodes(tmp_path, MODELS / "densenet121.cnn", "--depth", "all")
    assert len(everything) == 428  # --depth all is the way back to every layer


def test_collapse_repeats_works_at_full_depth(tmp_path):
    """DenseNet's dense layers differ only in their input channels: each
    dense block's run of DenseLayers is one node, even with every layer drawn."""
    nodes = drawn_nodes(tmp_path, MODELS / "densenet121.cnn", "--depth", "all", "--collapse-repeats")
    runs = [n for n in nodes if "denselayer" in n]
    assert runs == ["features.denseblock1.denselayer1", "features.denseblock2.denselayer1",
                    "features.denseblock3.denselayer1", "features.denseblock4.denselayer1"]
    dot = dot_text(tmp_path, MODELS / "densenet121.cnn", "--depth", "all", "--collapse-repeats")
    assert "denselayer1 … denselayer24\\nDenseLayer(growth_rate=32, bn_size=4) ×24" in dot  # denseblock3: 24 layers
    # ResNet-18 at full depth: layer1's two BasicBlocks are identical, layer2's are not (stride, projection).
    nodes = drawn_nodes(tmp_path, MODELS / "resnet18.cnn", "--depth", "all", "--collapse-repeats")
    assert "layer1.0" in nodes and "layer1.1" not in nodes and "layer1.0.conv1" not in nodes
    assert "layer2.0.conv1" in nodes and "layer2.1.conv1" in nodes


def test_collapsed_inception_shows_its_branches(tmp_path):
    dot = dot_text(tmp_path, MODELS / "googlenet.cnn", "--depth", "1")
    block = next(line for line in dot.splitlines() if line.strip().startswith("inception3a ["))
    assert "layers" not in block
    for branch in ("branch1", "branch2", "branch3", "branch4"):
        assert f"<B>{branch}</B>" in block
    # torchvision's Inception(192, 96, 128, 16, 32, 32) for 3a: branch outputs 64, 128, 32, 32 channels.
    assert "64×28×28" in block and "128×28×28" in block and "32×28×28" in block
    assert "BasicConv2d(96, 1)" in block and "BasicConv2d(128, 3, 1)" in block

