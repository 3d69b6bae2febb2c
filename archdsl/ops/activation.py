"""Elementwise activations and softmax: the output shape is the input's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from .base import Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, numel, show_shape
from .torch_lowering import TorchLowering, call

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class _Activation(OpSpec):
    """Elementwise: 1 FLOP per element by convention (docs/analysis.md)."""

    family = Family.ACTIVATION
    flops_per_element = 1

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.activation.{op}``: the kernel named as the op (``relu``,
        ``softmax``...), with the op's arguments."""
        from ..runtime.kernels import activation

        return KernelCall(getattr(activation, self.kind()), self.arguments())

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """The one attribute-free ONNX operator of ``onnx_ops`` (ops with more override this)."""
        if len(self.onnx_ops) != 1:
            return super().to_onnx(g, inputs, shapes)
        return g.node(self.onnx_ops[0], inputs[:1])


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

    onnx_ops = ("Relu",)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.relu``."""
        return TorchLowering(call("F.relu", "{0}"))


class ReLU6(_Activation):
    """``min(max(0, x), 6)``"""

    op: Literal["relu6"] = "relu6"

    onnx_ops = ("Clip",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Clip", [inputs[0], g.constant("min", 0.0), g.constant("max", 6.0)])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.relu6``."""
        return TorchLowering(call("F.relu6", "{0}"))


class LeakyReLU(_Activation):
    """``x if x >= 0 else negative_slope·x``"""

    op: Literal["leaky_relu"] = "leaky_relu"
    positional = ("negative_slope",)
    negative_slope: float = 0.01

    onnx_ops = ("LeakyRelu",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("LeakyRelu", inputs[:1], alpha=self.negative_slope)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.leaky_relu``."""
        return TorchLowering(call("F.leaky_relu", "{0}", negative_slope=self.negative_slope))


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``"""

    op: Literal["sigmoid"] = "sigmoid"

    onnx_ops = ("Sigmoid",)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.sigmoid``."""
        return TorchLowering(call("torch.sigmoid", "{0}"))


class Tanh(_Activation):
    """``tanh(x)``"""

    op: Literal["tanh"] = "tanh"

    onnx_ops = ("Tanh",)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.tanh``."""
        return TorchLowering(call("torch.tanh", "{0}"))


class GELU(_Activation):
    """``x·Φ(x)`` (exact, with erf), or its tanh approximation."""

    op: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = "none"

    onnx_ops = ("Gelu", "Erf", "Tanh", "Mul", "Add", "Pow")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Gelu`` from opset 20; before, its formula: ``x·(1 + erf(x/√2))/2``,
        or ``x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2``."""
        x = inputs[0]
        if g.opset >= 20:
            return g.node("Gelu", [x], approximate=self.approximate)
        if self.approximate == "tanh":
            cube = g.node("Mul", [g.node("Pow", [x, g.constant("three", 3.0)]), g.constant("c", 0.044715)])
            inner = g.node("Mul", [g.node("Add", [x, cube]), g.constant("k", math.sqrt(2 / math.pi))])
            core = g.node("Tanh", [inner])
        else:
            core = g.node("Erf", [g.node("Mul", [x, g.constant("k", 1 / math.sqrt(2))])])
        half = g.node("Mul", [x, g.constant("half", 0.5)])
        return g.node("Mul", [half, g.node("Add", [core, g.constant("one", 1.0)])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.gelu`` (exact, or ``approximate="tanh"``)."""
        return TorchLowering(call("F.gelu", "{0}", approximate=self.approximate))


class SiLU(_Activation):
    """``x·sigmoid(x)``, also called swish."""

    op: Literal["silu"] = "silu"
    op_aliases = ("swish",)

    onnx_ops = ("Sigmoid", "Mul")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Mul", [inputs[0], g.node("Sigmoid", inputs[:1])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.silu``."""
        return TorchLowering(call("F.silu", "{0}"))


class Mish(_Activation):
    """``x·tanh(softplus(x))``, ``softplus(x) = log(1 + exp(x))`` (torch.nn.Mish)."""

    op: Literal["mish"] = "mish"
    onnx_ops = ("Mish",)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.mish``."""
        return TorchLowering(call("F.mish", "{0}"))


class Hardswish(_Activation):
    """``x·relu6(x + 3)/6``"""

    op: Literal["hardswish"] = "hardswish"

    onnx_ops = ("HardSwish",)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.hardswish``."""
        return TorchLowering(call("F.hardswish", "{0}"))


class Hardsigmoid(_Activation):
    """``relu6(x + 3)/6``"""

    op: Literal["hardsigmoid"] = "hardsigmoid"

    onnx_ops = ("HardSigmoid",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """ONNX's default slope is 0.2; PyTorch's is 1/6."""
        return g.node("HardSigmoid", inputs[:1], alpha=1 / 6, beta=0.5)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.hardsigmoid``."""
        return TorchLowering(call("F.hardsigmoid", "{0}"))


class Softmax(_Activation):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (batch is dim 0)."""

    op: Literal["softmax"] = "softmax"
    positional = ("dim",)
    dim: int = 1

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``dim`` must exist."""
        normalize_dim(self, self.dim, inputs[0])
        return inputs[0]

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """exp, sum and divide: 3 per element."""
        return 3 * numel(output)

    onnx_ops = ("Softmax",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Softmax", inputs[:1], axis=normalize_dim(self, self.dim, shapes[0]) + 1)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.softmax`` along the same ``dim`` (batch is 0 in both)."""
        return TorchLowering(call("F.softmax", "{0}", dim=self.dim))


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    ReLU,
    ReLU6,
    LeakyReLU,
    Sigmoid,
    Tanh,
    GELU,
    SiLU,
    Mish,
    Hardswish,
    Hardsigmoid,
    Softmax,
)
