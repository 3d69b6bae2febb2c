"""The public facts lint rules and emitters read from an op spec
(``OpSpec.geometry``, ``has_bias``, ``uses_batch_statistics``).

Expected values are PyTorch's: ``padding="same"`` pads ``D·(K − 1)//2``
before the input (torch.nn.modules.conv._ConvNd, ``_reversed_padding_repeated_twice``),
pooling's stride defaults to its kernel size (torch.nn.MaxPool2d), and
only convolution and linear layers add a bias to a weighted sum.
"""

from __future__ import annotations

import pytest

from archdsl.ops import OPS, OpSpec
from archdsl.ops.activation import ReLU
from archdsl.ops.base import SlidingWindow
from archdsl.ops.conv import Conv1d, Conv2d, ConvTranspose2d
from archdsl.ops.linear import Linear
from archdsl.ops.norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm
from archdsl.ops.pool import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool, MaxPool2d, MaxPool3d


def test_same_padding_convolution_geometry():
    window = Conv2d(out_channels=8, kernel_size=(3, 4), dilation=2, padding="same").geometry()
    assert window == SlidingWindow(kernel=(3, 4), stride=(1, 1), padding=(2, 3), dilation=(2, 2), same=True)
    assert window.extent == (5, 7)


def test_explicit_padding_convolution_geometry():
    window = Conv1d(out_channels=4, kernel_size=7, stride=2, padding=3).geometry()
    assert window == SlidingWindow(kernel=(7,), stride=(2,), padding=(3,), dilation=(1,))
    assert Conv1d(out_channels=4, kernel_size=5, padding="valid").geometry().padding == (0,)


def test_pooling_geometry_defaults_the_stride_to_the_kernel():
    assert AvgPool2d(kernel_size=2).geometry() == SlidingWindow((2, 2), (2, 2), (0, 0), (1, 1))
    window = MaxPool3d(kernel_size=3, stride=(1, 2, 2), padding=1, dilation=2, ceil_mode=True).geometry()
    assert window == SlidingWindow((3, 3, 3), (1, 2, 2), (1, 1, 1), (2, 2, 2), ceil_mode=True)
    assert window.extent == (5, 5, 5)


@pytest.mark.parametrize("spec", [
    ConvTranspose2d(out_channels=4, kernel_size=3), AdaptiveAvgPool2d(output_size=1), GlobalAvgPool(), ReLU(),
    Linear(out_features=3), BatchNorm2d(),
])
def test_ops_without_a_fixed_sliding_window_have_no_geometry(spec):
    assert spec.geometry() is None


def test_exactly_the_sliding_window_ops_have_a_geometry():
    sliding = {op.kind() for op in OPS if op.geometry is not OpSpec.geometry}
    assert sliding == {"conv1d", "conv2d", "conv3d", "maxpool1d", "maxpool2d", "maxpool3d",
                       "avgpool1d", "avgpool2d", "avgpool3d"}
    batch_statistics = {op.kind() for op in OPS if op.uses_batch_statistics}
    assert batch_statistics == {"batchnorm1d", "batchnorm2d", "batchnorm3d"}


@pytest.mark.parametrize(("spec", "expected"), [
    (Conv2d(out_channels=8, kernel_size=3), True),
    (Conv2d(out_channels=8, kernel_size=3, bias=False), False),
    (ConvTranspose2d(out_channels=8, kernel_size=3), True),
    (ConvTranspose2d(out_channels=8, kernel_size=3, bias=False), False),
    (Linear(out_features=10), True),
    (Linear(out_features=10, bias=False), False),
    (LayerNorm(), False),  # an affine shift after normalising, not a weighted sum's bias
    (BatchNorm1d(), False),
    (MaxPool2d(kernel_size=2), False),
    (ReLU(), False),
])
def test_has_bias(spec, expected):
    assert spec.has_bias is expected


def test_batchnorm_of_every_rank_uses_batch_statistics():
    assert all(op().uses_batch_statistics for op in (BatchNorm1d, BatchNorm2d, BatchNorm3d))
    assert not LayerNorm().uses_batch_statistics
