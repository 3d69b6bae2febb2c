"""archdsl import of Caffe deploy files.

Golden figures (published, reproduced from fixtures written from the
architectures, never copied from the released files):
- BVLC AlexNet 60,965,224 parameters: models/alexnet_2012.cnn's header
  (a PyTorch rebuild, and the per-layer sum by hand).
- VGG-16 138,357,544: torchvision's VGG16_Weights.IMAGENET1K_V1 num_params
  (VGG-16 has no batch norm, so Caffe's and torchvision's counts agree).
- KaimingHe ResNet-50 deploy 25,557,096 learnable parameters: torchvision's
  25,557,032 plus the 64 biases of conv1, which the authors' Caffe file has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.cli import main
from archdsl.diagnostics.model import DiagnosticError
from archdsl.importers import import_file, import_source
from archdsl.importers.caffe import caffe_pooled_size
from archdsl.runtime.kernels import pool as pool_kernels
from archdsl.source import SourceFile

FIXTURES = Path(__file__).parent / "fixtures" / "import" / "caffe"


def _import(tmp_path: Path, name: str) -> tuple[Path, archdsl.Analysis]:
    out = tmp_path / (Path(name).stem + ".cnn")
    assert main(["import", str(FIXTURES / name), "-o", str(out), "-q"]) == 0
    assert main(["check", str(out), "-q"]) == 0
    program = archdsl.load(out)
    return out, archdsl.analyze(program.models[0])


@pytest.mark.parametrize(("name", "params"), [
    ("alexnet_deploy.prototxt", 60_965_224),
    ("vgg16_deploy.prototxt", 138_357_544),
    ("resnet50_deploy.prototxt", 25_557_096),
])
def test_published_parameter_counts(tmp_path, name, params):
    _, analysis = _import(tmp_path, name)
    assert analysis.totals.params == params


def test_alexnet_macs_match_the_hand_built_model(tmp_path):
    _, analysis = _import(tmp_path, "alexnet_deploy.prototxt")
    reference = archdsl.analyze(archdsl.load(Path(__file__).parents[1] / "models" / "alexnet_2012.cnn").models[0])
    assert analysis.totals.macs == reference.totals.macs == 724_406_816


def test_resnet50_folds_scale_into_batch_norm_and_keeps_layer_names(tmp_path):
    out, analysis = _import(tmp_path, "resnet50_deploy.prototxt")
    nodes = analysis.model.nodes
    assert nodes["bn_conv1"].op == "batchnorm2d" and "scale_conv1" not in nodes
    assert nodes["conv1"].spec.bias is True
    assert analysis.shapes["pool1"] == (64, 56, 56)   # Caffe's ceil rounding: 112 -> 56
    assert analysis.shapes["prob"] == (1000,)
    assert 'with Caffe Scale "scale_conv1"' in out.read_text()


def _net(body: str, name: str = "t.prototxt") -> archdsl.Model:
    net = import_source(SourceFile(name, body), "caffe")
    program = archdsl.loads(net.to_cnn())
    assert program.ok, program.diagnostics
    return program.models[0]


CONV = 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }'


@pytest.mark.parametrize("declaration", [
    'input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8',
    'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }',
    'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }',
])
def test_three_input_styles(declaration):
    model = _net(declaration + "\n" + CONV)
    assert model.nodes["data"].spec.shape == (3, 8, 8)
    assert archdsl.analyze(model).shapes["c"] == (4, 6, 6)


def test_convolution_options_and_in_place_layers():
    model = _net('input: "data" input_shape { dim: 1 dim: 4 dim: 9 dim: 11 }\n'
                 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 8 '
                 'kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 stride: 2 group: 2 dilation: 2 bias_term: false } }\n'
                 'layer { name: "r" type: "ReLU" bottom: "c" top: "c" relu_param { negative_slope: 0.2 } }\n'
                 'layer { name: "s" type: "Sigmoid" bottom: "c" top: "c" }\n')
    conv = model.nodes["c"].spec
    assert (conv.kernel_size, conv.padding, conv.groups, conv.dilation, conv.bias) == ((3, 1), (1, 0), 2, 2, False)
    assert model.nodes["r"].op == "leaky_relu" and model.nodes["r"].spec.negative_slope == 0.2
    assert model.nodes["s"].inputs == ("r",)   # the in-place chain is renamed SSA-style
    assert archdsl.analyze(model).shapes["s"] == (8, 4, 6)


def test_training_layers_are_left_out_with_a_note():
    body = ('layer { name: "d" type: "Data" top: "data" top: "label" }\n'
            'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' + CONV +
            '\nlayer { name: "loss" type: "SoftmaxWithLoss" bottom: "c" bottom: "label" top: "loss" }\n'
            'layer { name: "x" type: "ReLU" bottom: "c" top: "x" include { phase: TRAIN } }\n')
    net = import_source(SourceFile("t.prototxt", body), "caffe")
    assert [layer.label for layer in net.layers] == ["c"]
    assert "d (Data), loss (SoftmaxWithLoss), x (ReLU)" in net.to_cnn()


def test_eltwise_concat_and_batch_norm_without_scale():
    model = _net('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' + CONV +
                 '\nlayer { name: "d" type: "Convolution" bottom: "data" top: "d" '
                 'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                 'layer { name: "p" type: "Eltwise" bottom: "c" bottom: "d" top: "p" '
                 'eltwise_param { operation: PROD } }\n'
                 'layer { name: "s" type: "Eltwise" bottom: "c" bottom: "d" top: "s" eltwise_param { coeff: 1 coeff: 1 } }\n'
                 'layer { name: "cat" type: "Concat" bottom: "p" bottom: "s" top: "cat" concat_param { concat_dim: 1 } }\n'
                 'layer { name: "bn" type: "BatchNorm" bottom: "cat" top: "cat" }\n')
    analysis = archdsl.analyze(model)
    assert [model.nodes[n].op for n in ("p", "s", "cat", "bn")] == ["mul", "add", "concat", "batchnorm2d"]
    assert model.nodes["bn"].spec.affine is False and analysis.costs["bn"].params == 0
    assert analysis.shapes["bn"] == (8, 6, 6)


# ------------------------------------------------------------ pooling rules


def caffe_ave_pool(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Caffe's AVE pooling (pooling_layer.cpp Forward_cpu), one plane: the
    window clipped to the padded image is the divisor, then clipped to the
    image for the sum."""
    h, w = x.shape
    oh, ow = caffe_pooled_size(h, k, s, p, True), caffe_pooled_size(w, k, s, p, True)
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            out[i, j] = x[hs:he, ws:we].sum() / size
    return out


@pytest.mark.parametrize(("size", "k", "s", "p"), [
    (7, 3, 2, 1), (8, 3, 2, 1), (6, 2, 2, 1), (13, 3, 2, 0), (112, 3, 2, 0), (9, 5, 3, 2), (10, 4, 3, 2), (5, 3, 3, 1),
])
def test_caffe_average_pooling_is_torch_ceil_mode_with_padding_counted(size, k, s, p):
    x = np.random.default_rng(size * 100 + k).standard_normal((1, 1, size, size))
    ours = pool_kernels.avg_pool(x, (k, k), (s, s), (p, p), ceil_mode=True, count_include_pad=True)
    assert np.allclose(ours[0, 0], caffe_ave_pool(x[0, 0], k, s, p))


def test_pooling_without_padding_where_caffe_and_torch_disagree_is_rejected():
    # k < s without padding: Caffe's ceil keeps a window starting past the image.
    body = ('input: "data" input_shape { dim: 1 dim: 3 dim: 5 dim: 5 }\n'
            'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
            'pooling_param { pool: MAX kernel_size: 1 stride: 3 } }')
    with pytest.raises(DiagnosticError) as error:
        import_source(SourceFile("t.prototxt", body), "caffe")
    assert error.value.diagnostics[0].code == "E603"


def test_floor_rounding_and_global_pooling():
    model = _net('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                 'pooling_param { pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR } }\n'
                 'layer { name: "g" type: "Pooling" bottom: "p" top: "g" pooling_param { pool: MAX global_pooling: true } }\n'
                 'layer { name: "fc" type: "InnerProduct" bottom: "g" top: "fc" inner_product_param { num_output: 5 } }')
    shapes = archdsl.analyze(model).shapes
    assert shapes["p"] == (3, 3, 3) and shapes["g"] == (3, 1, 1) and shapes["fc"] == (5,)


# ------------------------------------------------------------ errors


@pytest.mark.parametrize(("body", "code", "line", "text"), [
    ('input: "data"\nlayer { name: "c" type: }', "E601", 2, "syntax error"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: "z" type: "Zoom" bottom: "data" top: "z" }',
     "E602", 2, "unknown Caffe layer type 'Zoom'"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: "pr" type: "PReLU" bottom: "data" top: "x" }',
     "E603", 2, "PReLU"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: "r" type: "ReLU"\n bottom: "nope" top: "x" }',
     "E604", 3, "'nope'"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: "m" type: "Eltwise" bottom: "data" '
     'bottom: "data" top: "m" eltwise_param { operation: MAX } }', "E603", 2, "Eltwise MAX"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: "s" type: "Scale" bottom: "data" top: "s" }',
     "E603", 2, "Scale layer on its own"),
    ('input: "data"\ninput_dim: 1\nlayers { name: "c" type: CONVOLUTION bottom: "data" top: "c" }', "E603", 3,
     "legacy V1"),
    ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
     'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { kernel_size: 3 } }',
     "E605", 2, "num_output"),
])
def test_located_errors(tmp_path, capsys, body, code, line, text):
    source = tmp_path / "bad.prototxt"
    source.write_text(body)
    out = tmp_path / "bad.cnn"
    assert main(["import", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{source}:{line}:" in err and f"[{code}]" in err and text in err
    assert not out.exists()


def test_import_file_detects_the_format():
    assert import_file(FIXTURES / "alexnet_deploy.prototxt").name == "AlexNet"
