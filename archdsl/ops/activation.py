"""Elementwise activations and softmax: the output shape is the input's."""

from __future__ import annotations

from typing import Literal

from .base import Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, numel, show_shape
from .torch_lowering import TorchLowering, call


class _Activation(OpSpec):
    """Elementwise: 1 FLOP per element by convention (docs/analysis.md)."""

    family = Family.ACTIVATION
    flops_per_element = 1

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """The kernel named as the op (``kernels.relu``, ``kernels.softmax``...),
        with the op's arguments."""
        return KernelCall(self.kind(), self.arguments())


def normalize_dim(op: OpSpec, dim: int, shape: Shape, argument: str = "dim") -> int:
    """A PyTorch dim (batch is 0, negatives count from the end) as an index
    into ``shape`` (which has no batch dimension)."""
    rank = len(shape) + 1
    index = dim + rank if dim < 0 else dim
    if not 1 <= index < rank:
        raise ShapeError(
            "E408",
            f"{op.kind()}: {argument}={dim} is out of range for input {show_shape(shape)} "
            f"(dims 1..{rank - 1}; 0 is the batch)",
            argument=argument,
            inputs=(0,),
        )
    return index - 1


class ReLU(_Activation):
    """``max(0, x)``"""

    op: Literal["relu"] = "relu"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.relu``."""
        return TorchLowering(call("F.relu", "{0}"))


class ReLU6(_Activation):
    """``min(max(0, x), 6)``"""

    op: Literal["relu6"] = "relu6"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.relu6``."""
        return TorchLowering(call("F.relu6", "{0}"))


class LeakyReLU(_Activation):
    """``x if x >= 0 else negative_slope·x``"""

    op: Literal["leaky_relu"] = "leaky_relu"
    positional = ("negative_slope",)
    negative_slope: float = 0.01


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.leaky_relu``."""
        return TorchLowering(call("F.leaky_relu", "{0}", negative_slope=self.negative_slope))


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``"""

    op: Literal["sigmoid"] = "sigmoid"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.sigmoid``."""
        return TorchLowering(call("torch.sigmoid", "{0}"))


class Tanh(_Activation):
    """``tanh(x)``"""

    op: Literal["tanh"] = "tanh"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.tanh``."""
        return TorchLowering(call("torch.tanh", "{0}"))


class GELU(_Activation):
    """``x·Φ(x)`` (exact, with erf), or its tanh approximation."""

    op: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = "none"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.gelu`` (exact, or ``approximate="tanh"``)."""
        return TorchLowering(call("F.gelu", "{0}", approximate=self.approximate))


class SiLU(_Activation):
    """``x·sigmoid(x)``, also called swish."""

    op: Literal["silu"] = "silu"
    op_aliases = ("swish",)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.silu``."""
        return TorchLowering(call("F.silu", "{0}"))


class Hardswish(_Activation):
    """``x·relu6(x + 3)/6``"""

    op: Literal["hardswish"] = "hardswish"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.hardswish``."""
        return TorchLowering(call("F.hardswish", "{0}"))


class Hardsigmoid(_Activation):
    """``relu6(x + 3)/6``"""

    op: Literal["hardsigmoid"] = "hardsigmoid"


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.hardsigmoid``."""
        return TorchLowering(call("F.hardsigmoid", "{0}"))


class Softmax(_Activation):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (batch is dim 0)."""

    op: Literal["softmax"] = "softmax"
    positional = ("dim",)
    dim: int = 1

    def infer(self, inputs: list[Shape]) -> Shape:
        normalize_dim(self, self.dim, inputs[0])
        return inputs[0]

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """exp, sum and divide: 3 per element."""
        return 3 * numel(output)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.softmax`` along the same ``dim`` (batch is 0 in both)."""
        return TorchLowering(call("F.softmax", "{0}", dim=self.dim))
