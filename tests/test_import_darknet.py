"""archdsl import of Darknet cfg and .weights files.

Golden figures (published; fixtures written from the architectures):
- yolov3 at 416x416: 65.864 BFLOPs (pjreddie's darknet, convolutions only;
  the YOLOv3 web page and darknet's per-layer print) and 65.879 "Total
  BFLOPS" as AlexeyAB/darknet prints it (max pooling and shortcut adds too).
- yolov3-tiny 5.571 and yolov4-tiny 6.910 "Total BFLOPS" (AlexeyAB/darknet).
Weights are checked against torch.nn.functional on the converted arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.cli import main
from archdsl.importers.conventions import convention_totals

FIXTURES = Path(__file__).parent / "fixtures" / "import" / "darknet"


def _import(tmp_path: Path, name: str) -> archdsl.Analysis:
    out = tmp_path / (Path(name).stem + ".cnn")
    assert main(["import", str(FIXTURES / name), "-o", str(out), "-q"]) == 0
    assert main(["check", str(out), "-q"]) == 0
    return archdsl.analyze(archdsl.load(out).models[0])


@pytest.mark.parametrize(("name", "convention", "bflops"), [
    ("yolov3.cfg", "darknet", "65.864"),
    ("yolov3.cfg", "darknet-alexeyab", "65.879"),
    ("yolov3-tiny.cfg", "darknet-alexeyab", "5.571"),
    ("yolov4-tiny.cfg", "darknet-alexeyab", "6.910"),
])
def test_published_bflops(tmp_path, name, convention, bflops):
    totals = convention_totals(_import(tmp_path, name), convention)
    assert f"{totals.operations / 1e9:.3f}" == bflops


def test_summary_prints_the_totals_as_each_tool_counts_them(tmp_path, capsys):
    _import(tmp_path, "yolov3-tiny.cfg")
    capsys.readouterr()
    path = str(tmp_path / "yolov3-tiny.cnn")
    assert main(["summary", path, "--convention", "darknet-alexeyab", "--convention", "torchvision"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "yolov3_tiny as darknet-alexeyab counts: 8,852,366 parameters, 5.571 BFLOPs (darknet-alexeyab)" in lines
    assert "yolov3_tiny as torchvision counts: 8,852,366 parameters, 2,782,480,896 MACs (torchvision)" in lines
    assert main(["summary", path, "--format", "json", "--convention", "darknet"]) == 0
    out, err = capsys.readouterr()
    assert "5.565 BFLOPs (darknet)" in err and "BFLOPs" not in out  # the JSON document stays clean
    with pytest.raises(SystemExit):
        main(["summary", path, "--convention", "tensorflow"])


def test_yolov3_heads_are_named_outputs_with_their_anchors(tmp_path):
    analysis = _import(tmp_path, "yolov3.cfg")
    model = analysis.model
    assert list(model.outputs) == ["yolo82", "yolo94", "yolo106"]
    assert [analysis.shapes[model.outputs[o]] for o in model.outputs] == [(255, 13, 13), (255, 26, 26),
                                                                         (255, 52, 52)]
    text = (tmp_path / "yolov3.cnn").read_text()
    assert "mask=6,7,8, anchors=10,13,16,30" in text


def test_conventions_differ_as_documented(tmp_path):
    analysis = _import(tmp_path, "yolov3-tiny.cfg")
    caffe = convention_totals(analysis, "caffe")
    darknet = convention_totals(analysis, "darknet")
    assert caffe.operations == analysis.totals.macs and darknet.operations == 2 * analysis.totals.macs
    assert convention_totals(analysis, "darknet-alexeyab").operations > darknet.operations
    with pytest.raises(ValueError):
        convention_totals(analysis, "keras")


def _cfg(tmp_path: Path, body: str, name: str = "t.cfg") -> Path:
    path = tmp_path / name
    path.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n" + body)
    return path


def test_maxpool_size2_stride1_pads_after_only(tmp_path):
    path = _cfg(tmp_path, "[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=2\n[maxpool]\nsize=2\nstride=2\n")
    assert main(["import", str(path), "-o", str(tmp_path / "t.cnn"), "-q"]) == 0
    analysis = archdsl.analyze(archdsl.load(tmp_path / "t.cnn").models[0])
    # maxpool_layer.c: out = (in + padding - size)/stride + 1, padding = size - 1
    assert analysis.shapes["maxpool0"] == (3, 8, 8)      # (8 + 1 - 2)/1 + 1
    assert analysis.model.nodes["pad0"].spec.padding == (0, 1, 0, 1)
    assert analysis.shapes["maxpool1"] == (3, 4, 4)      # (8 + 2 - 3)/2 + 1, padded 1 before and after
    assert analysis.shapes["maxpool2"] == (3, 2, 2)      # (4 + 1 - 2)/2 + 1; the padding is never read
    assert "pad2" not in analysis.model.nodes


def test_route_groups_slice_each_input(tmp_path):
    path = _cfg(tmp_path, "[convolutional]\nfilters=8\nsize=1\nactivation=linear\n"
                          "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
                          "[route]\nlayers=0,1\n")
    assert main(["import", str(path), "-o", str(tmp_path / "t.cnn"), "-q"]) == 0
    analysis = archdsl.analyze(archdsl.load(tmp_path / "t.cnn").models[0])
    assert analysis.model.nodes["route1"].spec.start == 4 and analysis.shapes["route1"] == (4, 8, 8)
    assert analysis.shapes["route2"] == (12, 8, 8)
    # darknet's default activation is logistic: a conv without one gets a sigmoid
    path = _cfg(tmp_path, "[convolutional]\nfilters=2\nsize=1\n", "u.cfg")
    assert main(["import", str(path), "-o", str(tmp_path / "u.cnn"), "-q"]) == 0
    assert "logistic0: sigmoid" in (tmp_path / "u.cnn").read_text()


def _weights_file(path: Path, values: np.ndarray, major: int = 0, minor: int = 2) -> None:
    seen = np.array([1234], "<u8" if major * 10 + minor >= 2 else "<u4").tobytes()
    path.write_bytes(np.array([major, minor, 0], "<i4").tobytes() + seen + values.astype("<f4").tobytes())


@pytest.mark.parametrize("minor", [1, 2])
def test_weights_convert_and_run_like_torch(tmp_path, minor):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    path = _cfg(tmp_path, "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
                          "[maxpool]\nsize=2\nstride=1\n"
                          "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    rng = np.random.default_rng(minor)
    biases, scales, mean = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    var = rng.uniform(0.5, 2, 4)
    w0, b2, w2 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(2), rng.standard_normal((2, 4, 1, 1))
    _weights_file(tmp_path / "t.weights", np.concatenate([biases, scales, mean, var, w0.ravel(), b2, w2.ravel()]),
                  minor=minor)
    assert main(["import", str(path), "-o", str(tmp_path / "t.cnn"), "--weights", str(tmp_path / "t.weights"),
                 "-q"]) == 0
    with np.load(tmp_path / "t.npz") as data:
        arrays = dict(data)
    assert sorted(arrays) == ["bn0.bias", "bn0.num_batches_tracked", "bn0.running_mean", "bn0.running_var", "bn0.weight",
                              "conv0.weight", "conv2.bias", "conv2.weight"]
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "t.cnn"), "--input", str(tmp_path / "x.npy"), "--weights",
                 str(tmp_path / "t.npz"), "-o", str(tmp_path / "y.npy"), "-q"]) == 0
    t = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
    y = F.conv2d(t(x), t(w0), padding=1)
    y = F.batch_norm(y, t(mean), t(var), t(scales), t(biases), training=False, eps=1e-5)
    y = F.max_pool2d(F.pad(F.leaky_relu(y, 0.1), (0, 1, 0, 1), mode="replicate"), 2, stride=1)
    y = F.conv2d(y, t(w2), t(b2))
    assert np.allclose(np.load(tmp_path / "y.npy"), y.numpy(), atol=1e-4)


def test_weights_of_the_wrong_size_are_rejected(tmp_path, capsys):
    path = _cfg(tmp_path, "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    for count, text in ((7, "the file ends"), (9, "left over")):
        _weights_file(tmp_path / "t.weights", np.zeros(count))
        out = tmp_path / "t.cnn"
        assert main(["import", str(path), "-o", str(out), "--weights", str(tmp_path / "t.weights")]) == 1
        err = capsys.readouterr().err
        assert "[E606]" in err and text in err and not out.exists()


@pytest.mark.parametrize(("body", "code", "line", "text"), [
    ("[convolutional\nfilters=2\n", "E601", 5, "malformed section"),
    ("[convolutional]\nfilters 2\n", "E601", 6, "key=value"),
    ("[convolutionl]\nfilters=2\n", "E602", 5, "[convolutionl]"),
    ("[reorg]\nstride=2\n", "E603", 5, "[reorg]"),
    ("[convolutional]\nfilters=2\nsize=1\n[route]\nlayers=-5\n", "E604", 9, "layers index -5"),
    ("[convolutional]\nfilters=2\nsize=1\n[shortcut]\nfrom=3\n", "E604", 9, "from index 3"),
    ("[convolutional]\nfilters=two\n", "E605", 6, "expected an integer"),
    ("[convolutional]\nfilters=2\nactivation=elu\n", "E603", 7, "activation=elu"),
])
def test_located_errors(tmp_path, capsys, body, code, line, text):
    path = _cfg(tmp_path, body)
    out = tmp_path / "t.cnn"
    assert main(["import", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}:" in err and f"[{code}]" in err and text in err
    assert not out.exists()
