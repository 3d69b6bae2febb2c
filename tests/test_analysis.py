"""Static analysis checked against numbers derived by hand.

Every expected figure below comes from a hand calculation written next to it,
from PyTorch's documented shape formulas, from a paper, or from torchvision's
documented weights metadata; none is copied from archdsl's own output.
Conventions used (PyTorch's, batch excluded from shapes):

* conv / pool output: ``O = floor((I + 2P - D(K-1) - 1)/S) + 1`` (torch.nn.Conv2d,
  torch.nn.MaxPool2d docs); with ``ceil_mode`` ceil instead of floor, and "sliding
  windows that would start in the right padded region are ignored"
  (torch.nn.MaxPool2d / AvgPool2d docs).
* transposed conv: ``O = (I-1)S - 2P + D(K-1) + output_padding + 1``
  (torch.nn.ConvTranspose2d docs); weight ``[C_in, C_out/groups, K, K]``.
* MACs: conv ``H_out·W_out·C_out·(C_in/groups)·K·K``; transposed conv per input
  element ``H_in·W_in·C_in·(C_out/groups)·K·K``; linear ``in·out``; bias excluded.
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

import pytest
from conftest import MODELS, run_cli
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.ops import arith
from archdsl.ops.base import Conventions, ShapeError
from archdsl.ops.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from archdsl.ops.pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d

# ---------------------------------------------------------------- helpers


def analyze(text: str, **options) -> archdsl.Analysis:
    program = archdsl.loads(text)
    assert program.diagnostics == [], [f"{d.code} {d.message}" for d in program.diagnostics]
    return archdsl.analyze(program.model(), **options)


def single(shape: tuple[int, ...], op: str, **options) -> tuple[archdsl.Analysis, str]:
    """Applies one op (labelled ``n``) to an input of ``shape``."""
    dims = ", ".join(map(str, shape))
    a = analyze(f"model M {{\n    input x: [{dims}]\n    x -> n: {op}\n}}", **options)
    assert a.diagnostics == [], [f"{d.code} {d.message}" for d in a.diagnostics]
    return a, "n"


def out_shape(shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    a, n = single(shape, op)
    return a.shapes[n]


def weight(shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    a, n = single(shape, op)
    return a.costs[n].parameter_shapes["weight"]


def macs(shape: tuple[int, ...], op: str) -> int:
    a, n = single(shape, op)
    return a.costs[n].macs


def field_size(a: archdsl.Analysis, node: str, origin: str = "x") -> tuple:
    return a.fields[node][origin].size


# ================================================================ seed notes
# ../shared/seed-notes.md: every worked example.


def test_seed_1d_kernel_3_over_length_5_gives_3_outputs():
    # o1 = x1w1 + x2w2 + x3w3, o2 = x2.., o3 = x3w1 + x4w2 + x5w3: the window
    # starts at 1, 2, 3 (it must end by x5): 5 - 3 + 1 = 3 outputs, 3 MACs each.
    a, n = single((1, 5), "conv1d(1, 3, bias=false)")
    assert a.shapes[n] == (1, 3)
    assert a.costs[n].parameter_shapes == {"weight": (1, 1, 3)}
    assert a.costs[n].macs == 3 * 3


def test_seed_5x5x3_kernel_over_32x32x3_image():
    # O = 32 - 5 + 1 = 28; the kernel has as many channels as the input (3).
    a, n = single((3, 32, 32), "conv2d(1, 5)")
    assert a.shapes[n] == (1, 28, 28)
    assert a.costs[n].parameter_shapes["weight"] == (1, 3, 5, 5)
    # four such kernels stack four maps: 28x28x4
    a, n = single((3, 32, 32), "conv2d(4, 5)")
    assert a.shapes[n] == (4, 28, 28)
    assert a.costs[n].parameter_shapes["weight"] == (4, 3, 5, 5)


def test_seed_40x50x128_input_64_filters_3x3_pad_1():
    # W x H x C = 40 x 50 x 128, i.e. [C, H, W] = [128, 50, 40].
    # O = (50 + 2 - 3)/1 + 1 = 50 and (40 + 2 - 3) + 1 = 40.
    a, n = single((128, 50, 40), "conv2d(64, 3, padding=1, bias=false)")
    assert a.shapes[n] == (64, 50, 40)
    assert a.costs[n].parameter_shapes == {"weight": (64, 128, 3, 3)}
    assert a.costs[n].params == 3 * 3 * 128 * 64 == 73_728
    a, n = single((128, 50, 40), "conv2d(64, 3, padding=1)")
    assert a.costs[n].params == 73_728 + 64 == 73_792


ALEXNET = """
# Krizhevsky, Sutskever, Hinton 2012, Fig. 2: the two-GPU split is groups=2.
model AlexNet {
    input image: [3, 227, 227]
    image -> conv1: conv2d(96, 11, stride=4) -> relu -> local_response_norm(5, 1e-4, 0.75, 2.0)
          -> pool1: maxpool2d(3, stride=2)
          -> conv2: conv2d(256, 5, padding=2, groups=2) -> relu -> local_response_norm(5, 1e-4, 0.75, 2.0)
          -> pool2: maxpool2d(3, stride=2)
          -> conv3: conv2d(384, 3, padding=1) -> relu
          -> conv4: conv2d(384, 3, padding=1, groups=2) -> relu
          -> conv5: conv2d(256, 3, padding=1, groups=2) -> relu
          -> pool5: maxpool2d(3, stride=2)
          -> flatten
          -> fc6: linear(4096) -> relu -> dropout
          -> fc7: linear(4096) -> relu -> dropout
          -> fc8: linear(1000)
}
"""


def test_seed_alexnet_grouped_weights():
    a = analyze(ALEXNET)
    assert a.diagnostics == []
    w = {n: a.costs[n].parameter_shapes["weight"] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")}
    # weight [C_out, C_in/groups, K, K]; the paper's per-GPU halves multiplied back.
    assert w["conv1"] == (96, 3, 11, 11)      # 11·11·3·48·2 = 34,848
    assert w["conv2"] == (256, 48, 5, 5)      # 5·5·48·128·2 = 307,200
    assert w["conv3"] == (384, 256, 3, 3)     # 3·3·128·2·192·2 = 884,736
    assert w["conv4"] == (384, 192, 3, 3)     # 3·3·192·192·2 = 663,552
    assert w["conv5"] == (256, 192, 3, 3)     # 3·3·192·128·2 = 442,368
    sizes = {n: a.costs[n].params - a.costs[n].parameter_shapes["weight"][0] for n in w}  # minus bias
    assert sizes == {"conv1": 11 * 11 * 3 * 48 * 2, "conv2": 5 * 5 * 48 * 128 * 2,
                     "conv3": 3 * 3 * 128 * 2 * 192 * 2, "conv4": 3 * 3 * 192 * 192 * 2,
                     "conv5": 3 * 3 * 192 * 128 * 2}
    assert sizes == {"conv1": 34_848, "conv2": 307_200, "conv3": 884_736, "conv4": 663_552, "conv5": 442_368}


def test_seed_alexnet_shapes_and_total():
    a = analyze(ALEXNET)
    # 227 -> (227 - 11)/4 + 1 = 55 -> pool (55 - 3)/2 + 1 = 27 -> conv2 keeps 27
    # -> pool 13 -> conv3..5 keep 13 -> pool (13 - 3)/2 + 1 = 6; 256·6·6 = 9216.
    assert a.shapes["conv1"] == (96, 55, 55)
    assert a.shapes["pool1"] == (96, 27, 27)
    assert a.shapes["conv2"] == (256, 27, 27)
    assert a.shapes["pool2"] == (256, 13, 13)
    assert a.shapes["conv5"] == (256, 13, 13)
    assert a.shapes["pool5"] == (256, 6, 6)
    assert a.costs["fc6"].parameter_shapes["weight"] == (4096, 9216)
    conv_weights = 34_848 + 307_200 + 884_736 + 663_552 + 442_368   # 2,332,704
    conv_biases = 96 + 256 + 384 + 384 + 256                         # 1,376
    fc = 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000  # 58,631,144
    assert a.totals.params == conv_weights + conv_biases + fc == 60_965_224  # "about 60 million"
    # conv1 MACs: 55·55 outputs · 96 maps · (3·11·11) = 105,415,200
    assert a.costs["conv1"].macs == 55 * 55 * 96 * 3 * 11 * 11


def test_seed_alexnet_224_with_padding():
    # torchvision's variant: 224 input, conv1 padding 2: (224 + 4 - 11)/4 + 1 = 55.25 -> 55
    a, n = single((3, 224, 224), "conv2d(96, 11, stride=4, padding=2)")
    assert a.shapes[n] == (96, 55, 55)


# ================================================================ shapes per op


@pytest.mark.parametrize("shape, op, expected", [
    # dilation: extent D(K-1)+1 = 5: 32 - 5 + 1 = 28; padding 2 keeps 32
    ((3, 32, 32), "conv2d(8, 3, dilation=2)", (8, 28, 28)),
    ((3, 32, 32), "conv2d(8, 3, dilation=2, padding=2)", (8, 32, 32)),
    # stride that does not divide: floor((8 - 3)/2) + 1 = 3, floor((7 - 3)/2) + 1 = 3
    ((3, 8, 7), "conv2d(8, 3, stride=2)", (8, 3, 3)),
    # floor((7 + 2 - 3)/2) + 1 = 4
    ((3, 7, 7), "conv2d(8, 3, stride=2, padding=1)", (8, 4, 4)),
    # rectangular kernel/stride/padding per dimension:
    # H: (10 + 2·1 - 3)/1 + 1 = 10; W: floor((9 + 0 - 5)/2) + 1 = 3
    ((3, 10, 9), "conv2d(4, (3, 5), stride=(1, 2), padding=(1, 0))", (4, 10, 3)),
    # "same" keeps the size, also for even kernels (PyTorch pads 1 before, 2 after)
    ((3, 10, 9), 'conv2d(4, 4, padding="same")', (4, 10, 9)),
    ((3, 10, 9), 'conv2d(4, 3, padding="same", dilation=3)', (4, 10, 9)),
    ((3, 10, 9), 'conv2d(4, 3, padding="valid")', (4, 8, 7)),
    # conv1d / conv3d
    ((2, 100), "conv1d(4, 7, stride=3)", (4, 32)),                    # floor(93/3) + 1 = 32
    ((2, 8, 16, 16), "conv3d(4, 3, padding=1, stride=2)", (4, 4, 8, 8)),  # floor(7/2)+1, floor(15/2)+1
    # transposed: (7 - 1)·2 - 2·1 + 1·(3 - 1) + 1 + 1 = 14; without output_padding 13
    ((16, 7, 7), "conv_transpose2d(8, 3, stride=2, padding=1, output_padding=1)", (8, 14, 14)),
    ((16, 7, 7), "conv_transpose2d(8, 3, stride=2, padding=1)", (8, 13, 13)),
    # DCGAN's 4x4 stride 2 pad 1 doubles: (7 - 1)·2 - 2 + 3 + 1 = 14
    ((16, 7, 7), "conv_transpose2d(8, 4, stride=2, padding=1)", (8, 14, 14)),
    # dilated transposed: (5 - 1)·1 - 0 + 2·(3 - 1) + 1 = 9
    ((4, 5), "conv_transpose1d(2, 3, dilation=2)", (2, 9)),
    # pooling: stride defaults to the kernel: floor((7 - 2)/2) + 1 = 3
    ((3, 7, 7), "maxpool2d(2)", (3, 3, 3)),
    # ceil_mode adds the window at 6 (it starts inside the 7-long input): ceil(5/2) + 1 = 4
    ((3, 7, 7), "maxpool2d(2, ceil_mode=true)", (3, 4, 4)),
    # PyTorch MaxPool2d(3, stride=2, padding=1, ceil_mode=True) on 6: ceil((6 + 2 - 3)/2) + 1
    # = ceil(2.5) + 1 = 4; the last window starts at -1 + 3·2 = 5 < 6, inside the input: kept.
    # (floor mode: floor(2.5) + 1 = 3.)
    ((3, 6, 6), "maxpool2d(3, stride=2, padding=1, ceil_mode=true)", (3, 4, 4)),
    ((3, 6, 6), "maxpool2d(3, stride=2, padding=1)", (3, 3, 3)),
    # the dropped window: MaxPool1d(2, stride=2, padding=1, ceil_mode=True) on 5:
    # ceil((5 + 2 - 2)/2) + 1 = 4 windows starting at -1, 1, 3, 5; the one at 5
    # starts in the right padding (input is 0..4) and is ignored: 3.
    ((3, 5), "maxpool1d(2, stride=2, padding=1, ceil_mode=true)", (3, 3)),
    # GoogLeNet's MaxPool2d(3, 2, ceil_mode=True) on 112: ceil(109/2) + 1 = 56 (floor: 55)
    ((64, 112, 112), "maxpool2d(3, stride=2, ceil_mode=true)", (64, 56, 56)),
    ((64, 112, 112), "maxpool2d(3, stride=2)", (64, 55, 55)),
    # dilated max pooling: extent 2·(3-1)+1 = 5: 10 - 5 + 1 = 6
    ((3, 10, 10), "maxpool2d(3, stride=1, dilation=2)", (3, 6, 6)),
    ((3, 10, 10), "avgpool2d(3, stride=2, padding=1)", (3, 5, 5)),   # floor(9/2) + 1 = 5
    # adaptive: the output size is given
    ((3, 13, 20), "adaptive_avgpool2d((5, 7))", (3, 5, 7)),
    ((3, 13, 20), "adaptive_avgpool2d(1)", (3, 1, 1)),
    ((3, 13, 20), "global_avgpool", (3, 1, 1)),
    ((3, 50), "global_avgpool", (3, 1)),
    # upsample by scale: floor(I·s): 8·1.5 = 12, 10·1.5 = 15; 7·1.5 = 10.5 -> 10
    ((3, 8, 10), "upsample(scale_factor=1.5)", (3, 12, 15)),
    ((3, 7), 'upsample(scale_factor=1.5, mode="linear")', (3, 10)),
    ((3, 8, 10), 'upsample(size=(20, 30), mode="bilinear")', (3, 20, 30)),
    ((3, 8, 10), "upsample(size=16)", (3, 16, 16)),
    # flatten: [16, 5, 5] -> 400; flatten(2) keeps channels: [3, 8·10]
    ((16, 5, 5), "flatten", (400,)),
    ((3, 8, 10), "flatten(2)", (3, 80)),
    # pad (F.pad): an int pads both sides of every spatial dim: 8+2, 10+2;
    # (1, 2, 3, 4) pads the last dim by 1+2 and the one before by 3+4
    ((3, 8, 10), "pad(1)", (3, 10, 12)),
    ((3, 8, 10), "pad((1, 2, 3, 4))", (3, 15, 13)),
    ((3, 8, 10), "pad((1, 1))", (3, 8, 12)),
    # linear, softmax, layernorm, channel shuffle keep or replace the feature size
    ((400,), "linear(120)", (120,)),
    ((10,), "softmax(dim=1)", (10,)),
    ((49, 192), "layernorm(192)", (49, 192)),
    ((12, 4, 4), "channel_shuffle(3)", (12, 4, 4)),
])
def test_output_shape(shape, op, expected):
    assert out_shape(shape, op) == expected


MERGES = """
model M {
    input x: [3, 8, 8]
    y = x -> y5: conv2d(5, 1)
    g = x -> global_avgpool
    c: concat(x, y)
    cw: concat(x, x, dim=-1)
    ch: concat(x, x, x, dim=2)
    m1: mul(y, y -> global_avgpool)
    m2: mul(g -> conv2d(1, 1) -> global_avgpool, x -> conv2d(16, 1) -> global_avgpool, x -> conv2d(1, 1))
    s: add(x, x, x)
    output o = c
}
"""


def test_merge_shapes():
    a = archdsl.analyze(archdsl.loads(MERGES).model())
    assert a.diagnostics == []
    assert a.shapes["c"] == (3 + 5, 8, 8)          # channels add up
    assert a.shapes["cw"] == (3, 8, 16)            # dim -1 is W
    assert a.shapes["ch"] == (3, 24, 8)            # dim 2 is H
    assert a.shapes["m1"] == (5, 8, 8)             # [5, 8, 8] * [5, 1, 1]
    assert a.shapes["m2"] == (16, 8, 8)            # [1,1,1] * [16,1,1] * [1,8,8]
    assert a.shapes["s"] == (3, 8, 8)


def test_mul_of_different_ranks_does_not_broadcast():
    # Every tensor carries the batch dimension: PyTorch multiplies [N, 3, 8, 8]
    # by [N, 8], aligned from the right, so N meets H (8) and the product fails
    # for a general batch size (for N = 1 it scales columns, never channels).
    # Only shapes of equal rank broadcast safely: E404, as for [64,8,8]*[16,1,1].
    a = analyze("""
model M {
    input x: [3, 8, 8]
    input v: [8]
    output y = m: mul(x, v)
}""")
    assert [d.code for d in a.diagnostics] == ["E404"]
    assert a.shapes["m"] is None


def test_arith_helpers_by_hand():
    # PyTorch's "same": total padding D(K-1), the odd one after
    assert arith.same_padding(4, 1) == (1, 2)
    assert arith.same_padding(3, 2) == (2, 2)
    assert arith.same_padding(4, 2) == (3, 3)
    assert arith.effective_kernel(3, 4) == 9
    # adaptive 10 -> 3: windows [0, 4), [3, 7), [6, 10)
    assert [arith.adaptive_range(i, 10, 3) for i in range(3)] == [(0, 4), (3, 7), (6, 10)]
    assert arith.transposed_output_size(7, kernel=3, stride=2, padding=1, dilation=1, output_padding=1) == 14


def test_kernel_larger_than_input_is_e401_with_shapes():
    a = analyze("model M {\n    input x: [3, 4, 4]\n    x -> n: conv2d(8, 5)\n}")
    assert [d.code for d in a.diagnostics] == ["E401"]
    assert "5x5" in a.diagnostics[0].message and "4x4" in a.diagnostics[0].message
    assert a.shapes["n"] is None and a.costs["n"] is None and not a.ok


# ================================================================ properties


def windows_by_sliding(size: int, kernel: int, stride: int, padding: int, dilation: int,
                       ceil_mode: bool = False) -> int:
    """Output length counted from the definition, not from the formula.

    Window i starts at s = -P + i·S and covers [s, s + D(K-1) + 1).  It counts
    if it fits inside the padded input [-P, I + P).  In ceil mode one more,
    partial window is taken when the previous window stopped short of the end
    of the padded input (that is rounding (I + 2P - extent)/S up), but only if
    it starts inside the input or the left padding: PyTorch's docs say
    "sliding windows that would start in the right padded region are ignored".
    """
    extent = dilation * (kernel - 1) + 1
    count, i = 0, 0
    while True:
        start = -padding + i * stride
        end = start + extent
        if end <= size + padding:
            count += 1
            i += 1
            continue
        if ceil_mode and i > 0:
            previous_end = end - stride
            if previous_end < size + padding and start < size:
                count += 1
        return count


def transposed_by_scatter(size: int, kernel: int, stride: int, padding: int, dilation: int,
                          output_padding: int) -> int:
    """Input position i scatters into full-output positions i·S + j·D (j < K);
    the full output ends after the last touched position; padding crops P
    from each side and output_padding adds positions at the end."""
    touched = {i * stride + j * dilation for i in range(size) for j in range(kernel)}
    return max(touched) + 1 - 2 * padding + output_padding


@st.composite
def window_settings(draw, pool: bool):
    size = draw(st.integers(1, 40))
    kernel = draw(st.integers(1, 7))
    dilation = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 5))
    extent = dilation * (kernel - 1) + 1
    # PyTorch: pooling padding at most half the effective kernel; conv: any.
    padding = draw(st.integers(0, extent // 2 if pool else 4))
    assume(extent <= size + 2 * padding)  # the window fits somewhere: a valid layer
    return size, kernel, stride, padding, dilation


@settings(max_examples=200, deadline=None)
@given(window_settings(pool=False), st.integers(1, 40))
def test_conv_output_size_matches_sliding_window(setting, other):
    size, kernel, stride, padding, dilation = setting
    expected = windows_by_sliding(size, kernel, stride, padding, dilation)
    assert arith.conv_output_size(size, kernel=kernel, stride=stride, padding=padding, dilation=dilation) == expected
    conv1 = Conv1d(out_channels=2, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    assert conv1.output_shape([(3, size)]) == (2, expected)
    # second spatial dim with a kernel of 1 and no padding keeps ``other`` / stride
    conv2 = Conv2d(out_channels=2, kernel_size=(kernel, 1), stride=(stride, 1), padding=(padding, 0),
                   dilation=(dilation, 1))
    assert conv2.output_shape([(3, size, other)]) == (2, expected, other)


@settings(max_examples=300, deadline=None)
@given(window_settings(pool=True), st.booleans())
def test_pool_output_size_matches_sliding_window(setting, ceil_mode):
    size, kernel, stride, padding, dilation = setting
    expected = windows_by_sliding(size, kernel, stride, padding, dilation, ceil_mode)
    assert arith.pool_output_size(size, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                                  ceil_mode=ceil_mode) == expected
    maxpool = MaxPool2d(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    assert maxpool.output_shape([(4, size, size)]) == (4, expected, expected)
    assert MaxPool1d(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                     ceil_mode=ceil_mode).output_shape([(4, size)]) == (4, expected)
    if dilation == 1:
        avgpool = AvgPool2d(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
        assert avgpool.output_shape([(4, size, size)]) == (4, expected, expected)
        assert AvgPool1d(kernel_size=kernel, stride=stride, padding=padding,
                         ceil_mode=ceil_mode).output_shape([(4, size)]) == (4, expected)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.data())
def test_transposed_conv_output_size(size, kernel, stride, dilation, data):
    padding = data.draw(st.integers(0, 3))
    output_padding = data.draw(st.integers(0, max(stride, dilation) - 1))  # PyTorch: < stride or < dilation
    expected = transposed_by_scatter(size, kernel, stride, padding, dilation, output_padding)
    assume(expected >= 1)
    assert arith.transposed_output_size(size, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                                        output_padding=output_padding) == expected
    op = ConvTranspose1d(out_channels=2, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                         output_padding=output_padding)
    assert op.output_shape([(3, size)]) == (2, expected)
    # The transposed conv inverts the conv's shape map: a conv with the same
    # settings takes the transposed output back to ``size`` (output_padding < stride).
    if output_padding < stride and expected >= dilation * (kernel - 1) + 1 - 2 * padding:
        assert windows_by_sliding(expected, kernel, stride, padding, dilation) == size


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 9), st.integers(0, 3), st.integers(1, 3))
def test_too_large_kernel_is_e401(size, kernel, padding, dilation):
    extent = dilation * (kernel - 1) + 1
    assume(extent > size + 2 * padding)
    op = Conv2d(out_channels=2, kernel_size=kernel, padding=padding, dilation=dilation)
    with pytest.raises(ShapeError) as error:
        op.output_shape([(3, size, size)])
    assert error.value.code == "E401"


def test_transposed_conv2d_shape_direct():
    # (7 - 1)·2 - 2·1 + 1·(3 - 1) + 1 + 1 = 14
    op = ConvTranspose2d(out_channels=8, kernel_size=3, stride=2, padding=1, output_padding=1)
    assert op.output_shape([(16, 7, 7)]) == (8, 14, 14)


# ================================================================ parameters and MACs


def test_macs_conv():
    # [16, 32, 32] -> [32, 32, 32]: H_out·W_out·C_out·C_in·K·K
    assert macs((16, 32, 32), "conv2d(32, 3, padding=1)") == 32 * 32 * 32 * 16 * 3 * 3 == 4_718_592


def test_macs_depthwise_conv():
    # groups = channels: each output channel sees one input channel
    assert macs((32, 56, 56), "conv2d(32, 3, padding=1, groups=32)") == 56 * 56 * 32 * 1 * 3 * 3 == 903_168
    assert weight((32, 56, 56), "conv2d(32, 3, padding=1, groups=32)") == (32, 1, 3, 3)


def test_macs_grouped_conv():
    # 4 groups of 64/4 = 16 input channels
    assert macs((64, 28, 28), "conv2d(128, 3, padding=1, groups=4)") == 28 * 28 * 128 * 16 * 3 * 3 == 14_450_688
    assert weight((64, 28, 28), "conv2d(128, 3, padding=1, groups=4)") == (128, 16, 3, 3)


def test_macs_and_weight_of_transposed_conv():
    # per input element: H_in·W_in·C_in·(C_out/groups)·K·K = 7·7·16·8·9
    op = "conv_transpose2d(8, 3, stride=2, padding=1, output_padding=1)"
    assert macs((16, 7, 7), op) == 7 * 7 * 16 * 8 * 3 * 3 == 56_448
    # PyTorch ConvTranspose2d.weight: [in_channels, out_channels/groups, kH, kW]
    assert weight((16, 7, 7), op) == (16, 8, 3, 3)
    grouped = "conv_transpose2d(8, 3, stride=2, padding=1, output_padding=1, groups=2)"
    assert weight((16, 7, 7), grouped) == (16, 4, 3, 3)
    assert macs((16, 7, 7), grouped) == 7 * 7 * 16 * 4 * 3 * 3


def test_macs_and_params_of_linear():
    a, n = single((400,), "linear(120)")
    assert a.costs[n].macs == 400 * 120
    assert a.costs[n].parameter_shapes == {"weight": (120, 400), "bias": (120,)}
    assert a.costs[n].params == 400 * 120 + 120


def test_conv_without_bias_has_only_weight():
    a, n = single((3, 8, 8), "conv2d(4, 3, bias=false)")
    assert a.costs[n].parameter_shapes == {"weight": (4, 3, 3, 3)}
    assert a.costs[n].params == 4 * 3 * 3 * 3


def test_batchnorm_parameters_and_buffers():
    a, n = single((32, 8, 8), "batchnorm2d")
    # trainable: weight (gamma) and bias (beta), C each
    assert a.costs[n].parameter_shapes == {"weight": (32,), "bias": (32,)}
    assert a.costs[n].params == 2 * 32
    # buffers: running_mean and running_var, C each, and the scalar num_batches_tracked
    assert a.costs[n].buffer_shapes == {"running_mean": (32,), "running_var": (32,), "num_batches_tracked": ()}
    assert a.costs[n].buffers == 32 + 32 + 1
    assert a.costs[n].macs == 0
    a, n = single((32, 8, 8), "batchnorm2d(affine=false)")
    assert a.costs[n].params == 0 and a.costs[n].buffers == 65
    a, n = single((10,), "batchnorm1d(10)")  # after a linear layer
    assert a.costs[n].params == 20


def test_layernorm_parameters():
    # nn.LayerNorm(192): weight and bias of the normalized shape
    a, n = single((49, 192), "layernorm(192)")
    assert a.costs[n].parameter_shapes == {"weight": (192,), "bias": (192,)}
    assert a.costs[n].params == 2 * 192 and a.costs[n].buffers == 0
    a, n = single((3, 8, 10), "layernorm((8, 10))")
    assert a.costs[n].params == 2 * 8 * 10
    a, n = single((49, 192), "layernorm(192, elementwise_affine=false)")
    assert a.costs[n].params == 0


def test_flops_conventions():
    # conv1d(1, 3) over 5: 3 outputs · 3 MACs = 9; FLOPs = 2·9 + 3 bias adds
    a, n = single((1, 5), "conv1d(1, 3)")
    assert (a.costs[n].macs, a.costs[n].flops) == (9, 2 * 9 + 3)
    a, n = single((1, 5), "conv1d(1, 3)", conventions=Conventions(bias=False))
    assert a.costs[n].flops == 2 * 9
    # batchnorm: scale and shift per element, or folded into the conv: 0
    a, n = single((4, 3, 3), "batchnorm2d")
    assert a.costs[n].flops == 2 * 4 * 3 * 3
    a, n = single((4, 3, 3), "batchnorm2d", conventions=Conventions(batchnorm="folded"))
    assert a.costs[n].flops == 0


# ================================================================ memory

CHAIN = """
model Chain {
    input x: [3, 8, 8]
    x -> c1: conv2d(4, 3, padding=1) -> r: relu -> c2: conv2d(2, 3, padding=1)
}
"""

RESIDUAL = """
model Residual {
    input x: [8, 8, 8]
    a = x -> c1: conv2d(16, 3, padding=1) -> r1: relu -> c2: conv2d(8, 3, padding=1)
    output y = s: add(a, x) -> r2: relu
}
"""


def test_memory_chain_by_hand():
    a = analyze(CHAIN)
    # float32: x 3·64·4 = 768, c1 4·64·4 = 1024, r 1024, c2 2·64·4 = 512
    assert a.memory.activation_bytes == {"x": 768, "c1": 1024, "r": 1024, "c2": 512}
    # running c1: x + c1 = 1792, then x is dead; running r: c1 + r = 2048;
    # running c2: r + c2 = 1536.  Peak 2048 while r runs.
    assert a.memory.peak_bytes == 2048
    assert a.memory.peak_node == "r"
    # training keeps everything: 768 + 1024 + 1024 + 512
    assert a.memory.training_bytes == 3328
    assert a.totals.peak_activation_bytes == 2048


def test_memory_residual_keeps_the_skip_alive():
    a = analyze(RESIDUAL)
    # x [8,8,8] 2048 B; c1, r1 [16,8,8] 4096 B; c2, s, r2 2048 B.
    # c1 runs: x + c1 = 6144; r1 runs: x (still needed by the add) + c1 + r1
    # = 10240, then c1 dies; c2: x + r1 + c2 = 8192; s: x + c2 + s = 6144.
    assert a.memory.peak_bytes == 2048 + 4096 + 4096 == 10_240
    assert a.memory.peak_node == "r1"
    assert a.memory.training_bytes == 2048 + 4096 + 4096 + 2048 + 2048 + 2048


def test_batch_scales_macs_and_activations_dtype_halves_bytes():
    one = analyze(CHAIN)
    eight = analyze(CHAIN, batch=8)
    # MACs of c1: 8·8·4·3·9 = 6912, c2: 8·8·2·4·9 = 4608; per sample 11,520
    assert one.totals.macs == 8 * 8 * 4 * 3 * 9 + 8 * 8 * 2 * 4 * 9 == 11_520
    assert eight.totals.macs == 8 * 11_520
    assert eight.totals.flops == 8 * one.totals.flops
    assert eight.memory.peak_bytes == 8 * 2048
    assert eight.memory.training_bytes == 8 * 3328
    assert eight.totals.params == one.totals.params  # weights do not depend on the batch
    half = analyze(CHAIN, dtype="float16")
    assert half.memory.peak_bytes == 2048 // 2
    assert half.memory.activation_bytes["c1"] == 4 * 8 * 8 * 2
    # parameters: c1 4·3·9 + 4 = 112, c2 2·4·9 + 2 = 74; 186 · 2 bytes
    assert half.totals.params == 186
    assert half.totals.param_bytes == 186 * 2 and one.totals.param_bytes == 186 * 4


def test_analyze_rejects_bad_settings():
    model = archdsl.loads(CHAIN).model()
    with pytest.raises(ValueError):
        archdsl.analyze(model, batch=0)
    with pytest.raises(ValueError):
        archdsl.analyze(model, dtype="float8")
    with pytest.raises(ValueError):
        archdsl.analyze(model, inputs={"image": (3, 8, 8)})


def test_input_override_changes_shapes():
    a = archdsl.analyze(archdsl.loads(CHAIN).model(), inputs={"x": (3, 16, 12)})
    assert a.shapes["c2"] == (2, 16, 12)
    assert a.costs["c1"].macs == 16 * 12 * 4 * 3 * 9


# ================================================================ receptive field


def test_receptive_field_of_a_3x3_stack_is_1_plus_2n():
    a = analyze("""
model M {
    input x: [1, 64, 64]
    x -> c1: conv2d(4, 3, padding=1) -> c2: conv2d(4, 3, padding=1) -> c3: conv2d(4, 3, padding=1)
      -> c4: conv2d(4, 3, padding=1) -> c5: conv2d(4, 3, padding=1)
}""")
    for n in range(1, 6):
        assert field_size(a, f"c{n}") == (1 + 2 * n,) * 2
        assert a.fields[f"c{n}"]["x"].jump == (1, 1)
        # padding 1 keeps the first output centred on pixel 0
        assert a.fields[f"c{n}"]["x"].start == (0, 0)
    assert field_size(a, "x") == (1, 1)


def test_receptive_field_stride_changes_the_jump():
    a = analyze("""
model M {
    input x: [1, 64, 64]
    x -> s: conv2d(4, 3, stride=2, padding=1) -> c: conv2d(4, 3, padding=1) -> p: maxpool2d(2)
      -> d: conv2d(4, 3, padding=1)
}""")
    # r' = r + (K - 1)·j,  j' = j·S
    assert field_size(a, "s") == (3, 3) and a.fields["s"]["x"].jump == (2, 2)
    assert field_size(a, "c") == (3 + 2 * 2,) * 2 == (7, 7)
    assert field_size(a, "p") == (7 + 1 * 2,) * 2 and a.fields["p"]["x"].jump == (4, 4)
    assert field_size(a, "d") == (9 + 2 * 4,) * 2 == (17, 17)
    # centre of the first output of the 2x2 pool: start + ((K-1)/2 - P)·j = 0 + 0.5·2 = 1
    assert a.fields["p"]["x"].start == (Fraction(1), Fraction(1))


def test_receptive_field_dilation():
    a = analyze("""
model M {
    input x: [1, 20, 64]
    x -> d1: conv2d(4, 3, padding=1) -> d2: conv2d(4, 3, padding=2, dilation=2)
      -> d4: conv2d(4, 3, padding=4, dilation=4)
}""")
    # dilated extent D(K-1)+1: 3, 5, 9; 1 + 2 + 4 + 8 = 15 (WaveNet-style doubling)
    assert field_size(a, "d1") == (3, 3)
    assert field_size(a, "d2") == (7, 7)
    assert field_size(a, "d4") == (15, 15)


def test_receptive_field_merge_takes_the_larger_branch():
    a = analyze("""
model M {
    input x: [1, 32, 32]
    a = x -> a1: conv2d(4, 3, padding=1)
    b = x -> b1: conv2d(4, 3, padding=1) -> b2: conv2d(4, 3, padding=1) -> b3: conv2d(4, 3, padding=1)
    output y = s: add(a, b) -> after: conv2d(4, 3, padding=1)
    output z = t: concat(b, a)
}""")
    assert field_size(a, "a1") == (3, 3)
    assert field_size(a, "b3") == (7, 7)
    assert field_size(a, "s") == (7, 7)          # max(3, 7)
    assert field_size(a, "t") == (7, 7)
    assert field_size(a, "after") == (9, 9)      # 7 + 2


def test_receptive_field_rectangular_kernel():
    a = analyze("""
model M {
    input x: [1, 32, 32]
    x -> k: conv2d(4, (1, 7), padding=(0, 3)) -> j: conv2d(4, (7, 1), padding=(3, 0))
}""")
    assert field_size(a, "k") == (1, 7)
    assert field_size(a, "j") == (7, 7)


def test_receptive_field_of_transposed_conv():
    # ConvTranspose1d(K=3, S=2, padding P): output o receives input i when
    # o = i·S − P + k, k = 0, 1, 2.  Counting, as for a padded conv, positions
    # that fall outside the input (i = -1) as part of the window:
    #   P = 1: i = (o + 1 − k)/2:  o = 0 -> {0}, o = 1 -> {0, 1}, o = 2 -> {1} ...
    #          first centre 0;     at most 2 inputs per output
    #   P = 0: i = (o − k)/2:      o = 0 -> {-1, 0} (k = 2, 0), o = 1 -> {0}, ...
    #          first centre -1/2;  at most 2 inputs per output
    # In general the centre of output o is at input (o + P − (K − 1)/2)/S, so
    # each unit of padding moves the first centre by 1/S; the jump is 1/S and
    # at most ceil(K/S) inputs reach one output.
    a = analyze("""
model M {
    input x: [1, 8]
    x -> t1: conv_transpose1d(1, 3, stride=2, padding=1)
    x -> t0: conv_transpose1d(1, 3, stride=2, padding=0)
}""")
    t1, t0 = a.fields["t1"]["x"], a.fields["t0"]["x"]
    got = {"t1": (t1.size, t1.jump, t1.start), "t0": (t0.size, t0.jump, t0.start)}
    assert got == {"t1": ((2,), (Fraction(1, 2),), (0,)),
                   "t0": ((2,), (Fraction(1, 2),), (Fraction(-1, 2),))}


# ================================================================ the zoo


@pytest.fixture(scope="module")
def resnet18():
    return archdsl.analyze(archdsl.load(MODELS / "resnet18.cnn").model())


@pytest.fixture(scope="module")
def resnet50():
    return archdsl.analyze(archdsl.load(MODELS / "resnet50.cnn").model())


def test_resnet18_matches_torchvision(resnet18):
    a = resnet18
    assert a.diagnostics == []
    # ResNet18_Weights.IMAGENET1K_V1.meta["num_params"]
    assert a.totals.params == 11_689_512
    # torchvision documents GFLOPS 1.81 (MACs); He et al. Table 1: 1.8e9
    assert a.totals.macs == pytest.approx(1.814e9, rel=0.005)
    assert a.shapes["fc"] == (1000,)
    assert a.shapes["conv1"] == (64, 112, 112)   # (224 + 6 - 7)/2 + 1 = 112
    assert a.shapes["maxpool"] == (64, 56, 56)   # (112 + 2 - 3)/2 + 1 = 56
    # 20 batchnorms over 64 + 4·64 + (4·128 + 128) + (4·256 + 256) + (4·512 + 512)
    # = 4,800 channels: 2 running statistics each and one counter per layer
    assert a.totals.buffers == 2 * 4800 + 20
    # peak: bn1 runs while conv1's output is alive: 2 · 64·112·112·4 bytes
    assert a.totals.peak_activation_bytes == 2 * 64 * 112 * 112 * 4
    # receptive field, r' = r + (K-1)·j, j' = j·S: conv1 7 (j 2), maxpool 7 + 2·2 = 11 (j 4);
    # layer1: four 3x3 at j 4: 11 + 4·8 = 43; layer2: 43 + 2·4 = 51 (j 8), + 3·16 = 99;
    # layer3: 99 + 2·8 = 115 (j 16), + 3·32 = 211; layer4: 211 + 2·16 = 243 (j 32), + 3·64 = 435.
    last_layer4 = [n for n in a.model.nodes if n.startswith("layer4.")][-1]
    assert field_size(a, last_layer4, "image") == (435, 435)


def test_resnet18_weight_layouts(resnet18):
    costs = resnet18.costs
    assert costs["conv1"].parameter_shapes == {"weight": (64, 3, 7, 7)}
    assert costs["layer2.0.downsample.0"].parameter_shapes == {"weight": (128, 64, 1, 1)}
    assert costs["fc"].parameter_shapes == {"weight": (1000, 512), "bias": (1000,)}


def test_resnet50_matches_torchvision(resnet50):
    a = resnet50
    assert a.diagnostics == []
    # ResNet50_Weights.IMAGENET1K_V1.meta["num_params"]
    assert a.totals.params == 25_557_032
    # torchvision documents GFLOPS 4.09 (MACs)
    assert a.totals.macs == pytest.approx(4.089e9, rel=0.005)
    # 53 batchnorms (1 + 3·3+1 + 4·3+1 + 6·3+1 + 3·3+1) over 26,560 channels:
    # 64 + (3·384 + 256) + (4·768 + 512) + (6·1536 + 1024) + (3·3072 + 2048)
    assert a.totals.buffers == 2 * 26_560 + 53
    assert a.shapes["layer4.2.conv3"] == (2048, 7, 7)
    assert a.costs["layer2.0.conv2"].parameter_shapes == {"weight": (128, 128, 3, 3)}
    # stride on the 3x3 (v1.5): 56 -> floor((56 + 2 - 3)/2) + 1 = 28
    assert a.shapes["layer2.0.conv2"] == (128, 28, 28)
    assert a.shapes["layer2.0.conv1"] == (128, 56, 56)


def test_lenet5_hand_count():
    a = archdsl.analyze(archdsl.load(MODELS / "lenet5.cnn").model())
    # C1 6·(5·5·1) + 6, C3 16·(5·5·6) + 16, C5 120·(5·5·16) + 120, F6 84·120 + 84, out 10·84 + 10
    assert a.totals.params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    assert a.shapes["c1"] == (6, 28, 28)
    assert a.shapes["s2"] == (6, 14, 14)
    assert a.shapes["c3"] == (16, 10, 10)
    assert a.shapes["s4"] == (16, 5, 5)
    assert a.shapes["c5"] == (120, 1, 1)
    assert a.shapes["out"] == (10,)
    # MACs: 28·28·6·25 + 10·10·16·150 + 1·1·120·400 + 120·84 + 84·10
    assert a.totals.macs == 117_600 + 240_000 + 48_000 + 10_080 + 840


# ================================================================ command line


def summary_json(*args: str) -> dict:
    result = run_cli("summary", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["models"]) == 1
    return document["models"][0]


def test_cli_summary_json_documented_keys():
    m = summary_json("models/lenet5.cnn")
    assert {"schema_version", "model", "settings", "inputs", "outputs", "nodes", "totals",
            "diagnostics"} <= set(m)
    assert m["schema_version"] == 1
    assert m["model"] == "LeNet5"
    assert m["inputs"] == {"image": [1, 32, 32]}
    assert m["totals"]["params"] == 61_706
    assert m["diagnostics"] == []
    c1 = next(n for n in m["nodes"] if n["name"] == "c1")
    assert c1["shape"] == [6, 28, 28]
    assert c1["parameters"] == {"weight": [6, 1, 5, 5], "bias": [6]}
    assert c1["macs"] == 28 * 28 * 6 * 25
    assert c1["receptive_field"]["image"]["size"] == [5, 5]
    assert [o["shape"] for o in m["outputs"].values()] == [[10]]


def test_cli_summary_text():
    result = run_cli("summary", "models/lenet5.cnn")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("LeNet5: image [1, 32, 32]")
    c1 = next(line for line in out.splitlines() if line.startswith("c1 "))
    assert c1.split() == ["c1", "conv2d", "[6,", "28,", "28]", "156", "117,600", "5"]
    assert "61,706" in next(line for line in out.splitlines() if line.startswith("Trainable parameters"))


def test_cli_summary_csv():
    result = run_cli("summary", "models/lenet5.cnn", "--format", "csv")
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == ["name", "op", "shape", "params", "macs", "receptive_field"]
    rows = {row["name"]: row for row in table}
    assert rows["c3"] == {"name": "c3", "op": "conv2d", "shape": "16x10x10", "params": "2416",
                          "macs": str(10 * 10 * 16 * 6 * 25), "receptive_field": "14"}  # 6 + 4·2
    assert rows["f6"]["params"] == str(84 * 120 + 84)


def test_cli_summary_markdown():
    result = run_cli("summary", "models/lenet5.cnn", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "| Layer | Op | Output shape | Params | MACs | RF |" in lines
    assert "| `c1` | conv2d | [6, 28, 28] | 156 | 117,600 | 5 |" in lines
    assert any(line.startswith("| Trainable parameters | 61,706") for line in lines)


def test_cli_summary_depth_collapses_rows(resnet18):
    collapsed = run_cli("summary", "models/resnet18.cnn", "--depth", "2")
    assert collapsed.returncode == 0, collapsed.stderr
    names = [line.split()[0] for line in collapsed.stdout.splitlines() if line[:1].isalpha()]
    assert "layer1.0" in names and "layer4.1" in names
    assert not any(n.startswith("layer1.0.") for n in names)
    row = next(line for line in collapsed.stdout.splitlines() if line.startswith("layer1.0 "))
    # BasicBlock(64): two 3x3 convs 2·(64·64·9) and two batchnorms 2·(2·64)
    assert "BasicBlock" in row and f"{2 * 64 * 64 * 9 + 2 * 2 * 64:,}" in row
    # 8 blocks of ResNet-18 become 8 rows: far fewer rows than nodes
    block_rows = [n for n in names if n.startswith("layer")]
    assert len(block_rows) == 8
    assert len(names) < len(resnet18.model.nodes)
    # totals are unchanged by collapsing
    assert "11,689,512" in collapsed.stdout


def test_cli_input_override_changes_shapes():
    m = summary_json("models/resnet18.cnn", "--input", "image=3x128x128")
    assert m["inputs"] == {"image": [3, 128, 128]}
    shapes = {n["name"]: n["shape"] for n in m["nodes"]}
    assert shapes["conv1"] == [64, 64, 64]       # (128 + 6 - 7)/2 + 1 = 64
    assert shapes["maxpool"] == [64, 32, 32]     # (64 + 2 - 3)/2 + 1 = 32
    last_layer4 = [n for n in shapes if n.startswith("layer4.")][-1]
    assert shapes[last_layer4] == [512, 4, 4]    # 128 / 32
    assert m["totals"]["params"] == 11_689_512   # weights do not depend on the size
    conv1 = next(n for n in m["nodes"] if n["name"] == "conv1")
    assert conv1["macs"] == 64 * 64 * 64 * 3 * 7 * 7


@pytest.mark.parametrize("value", ["image=3xabc", "image=3x128"])
def test_cli_bad_input_is_a_usage_error(value):
    result = run_cli("summary", "models/resnet18.cnn", "--input", value)
    assert result.returncode == 2
    assert "--input" in result.stderr or "no input" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_batch_and_dtype():
    base = archdsl.analyze(archdsl.load(MODELS / "lenet5.cnn").model())
    scaled = summary_json("models/lenet5.cnn", "--batch", "4", "--dtype", "float16")
    assert scaled["settings"]["batch"] == 4 and scaled["settings"]["dtype"] == "float16"
    # MACs: 28·28·6·25 + 10·10·16·150 + 120·400 + 120·84 + 84·10 per sample
    assert scaled["totals"]["macs"] == 4 * (117_600 + 240_000 + 48_000 + 10_080 + 840)
    assert scaled["totals"]["macs"] == 4 * base.totals.macs
    assert scaled["totals"]["params"] == 61_706
    assert scaled["totals"]["param_bytes"] == 61_706 * 2
    # 4 samples at 2 bytes = twice the bytes of 1 sample at 4 bytes
    assert scaled["totals"]["peak_activation_bytes"] == 2 * base.totals.peak_activation_bytes
    c1 = next(n for n in scaled["nodes"] if n["name"] == "c1")
    assert c1["activation_bytes"] == 4 * 6 * 28 * 28 * 2


def test_cli_explain_shows_the_formula():
    result = run_cli("explain", "models/resnet50.cnn", "layer2.0.conv2")
    assert result.returncode == 0, result.stderr
    assert "O_H = floor((56 + 2·1 − 3)/2) + 1 = 28" in result.stdout
    assert "O_W = floor((56 + 2·1 − 3)/2) + 1 = 28" in result.stdout
    assert "147,456" in result.stdout   # weight 128·128·3·3
    assert f"{28 * 28 * 128 * 128 * 9:,}" in result.stdout  # MACs


EXPLAIN_PROBE = """
model P {
    input x: [4, 9, 9]
    input s: [4, 5]
    output y = x -> d: conv2d(4, 3, dilation=2, padding=1)
      -> m: maxpool2d(3, stride=2, padding=1, ceil_mode=true)
      -> t: conv_transpose2d(4, 3, stride=2, padding=1, output_padding=1)
    # MaxPool1d(2, 2, padding=1, ceil_mode=True) on 5: ceil(5/2) + 1 = 4 windows
    # (-1, 1, 3, 5); the one starting at 5 is in the right padding: 3.
    output z = s -> dropped: maxpool1d(2, stride=2, padding=1, ceil_mode=true)
}
"""


def _check_equation(line: str) -> None:
    """'O_H = floor((9 + 2·1 − 2·(3 − 1) − 1)/1) + 1 = 7': the left side must
    evaluate to the right side."""
    import math

    name, _, rest = line.strip().partition(" = ")
    left, _, right = rest.rpartition(" = ")
    expression = left.replace("·", "*").replace("−", "-").replace("floor(", "math.floor(").replace("ceil(", "math.ceil(")
    assert eval(expression, {"math": math}) == int(right), line


@pytest.mark.parametrize("node, dims", [("d", 7), ("m", 4), ("t", 8), ("dropped", 3)])
def test_explain_equations_are_true(node, dims):
    from archdsl.explain import explain

    text = explain(analyze(EXPLAIN_PROBE), node)
    lines = [line for line in text.splitlines() if line.strip().startswith("O_")]
    assert lines, text
    for line in lines:
        assert line.rstrip().endswith(f"= {dims}"), line  # hand-worked sizes above
        _check_equation(line)


def test_cli_explain_unknown_node_suggests():
    result = run_cli("explain", "models/resnet50.cnn", "layer2.0.con2")
    assert result.returncode == 2
    assert "layer2.0.con2" in result.stderr
    assert "layer2.0.conv2" in result.stderr  # did you mean


def test_cli_summary_with_shape_error_exits_1_and_prints_table():
    result = run_cli("summary", "tests/invalid/shape_residual_without_projection.cnn")
    assert result.returncode == 1
    assert "E404" in result.stderr and "[128, 28, 28]" in result.stderr and "[64, 56, 56]" in result.stderr
    assert "Layer" in result.stdout and "Output shape" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line[:1].isalpha()}
    # the convolution before the add is known: (56 + 2 - 3)/2 + 1 = 28
    assert "[128, 28, 28]" in rows["conv2d_1"]
    # the add and what follows are unknown
    assert rows["add_1"].split()[2] == "?"
    assert "Traceback" not in result.stderr
