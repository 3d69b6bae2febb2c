"""Elementwise activations and softmax: the output shape is the input's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt

from .base import Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, numel, show_shape
from .torch_lowering import TorchLowering, call, keywords

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


class PReLU(_Activation):
    """``x if x >= 0 else a·x`` with a learned slope ``a``: one for every
    channel (``num_parameters`` = C), or one shared (``num_parameters`` = 1),
    as torch.nn.PReLU (initial value ``init``)."""

    op: Literal["prelu"] = "prelu"
    positional = ("num_parameters",)
    num_parameters: PositiveInt = 1
    init: float = 0.25

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``num_parameters`` must be 1 or the channel count (dim 1)."""
        shape = inputs[0]
        if self.num_parameters != 1 and self.num_parameters != shape[0]:
            raise ShapeError("E402", f"prelu has {self.num_parameters} slopes, but its input {show_shape(shape)} "
                             f"has {shape[0]} channels (dim 1); num_parameters must be 1 or the channels",
                             argument="num_parameters", inputs=(0,))
        return shape

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [num_parameters]`` (the slopes)."""
        return {"weight": (self.num_parameters,)}

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.activation.prelu``, the slopes initialised to ``init``."""
        from ..runtime.kernels.activation import prelu

        return KernelCall(prelu, tensors={"weight": "weight"}, init={"weight": f"constant={self.init!r}"})

    onnx_ops = ("PRelu", "Reshape")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``PRelu`` with the slopes reshaped to ``[C, 1, ...]`` (ONNX broadcasts the slope from the right)."""
        slope = g.weight("weight")
        if self.num_parameters > 1:
            per_channel = g.ints("per_channel", [self.num_parameters, *(1,) * (len(shapes[0]) - 1)])
            slope = g.node("Reshape", [slope, per_channel])
        return g.node("PRelu", [inputs[0], slope])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.PReLU`` (its state_dict key is ``weight``)."""
        arguments = keywords({"num_parameters": self.num_parameters, "init": self.init},
                             {"num_parameters": 1, "init": 0.25})
        return TorchLowering("{module}({0})", f"nn.PReLU({arguments})")


class ELU(_Activation):
    """``x if x > 0 else alpha·(exp(x) - 1)`` (torch.nn.ELU)."""

    op: Literal["elu"] = "elu"
    positional = ("alpha",)
    alpha: float = 1.0

    onnx_ops = ("Elu",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Elu", inputs[:1], alpha=self.alpha)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.elu``."""
        return TorchLowering(call("F.elu", "{0}", alpha=self.alpha, defaults={"alpha": 1.0}))


#: SELU's constants, as torch.nn.SELU (Klambauer et al. 2017): ONNX's Selu
#: defaults are these rounded to float32, so they are passed explicitly.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class SELU(_Activation):
    """``scale·(x if x > 0 else alpha·(exp(x) - 1))`` with ``alpha`` ≈ 1.6733
    and ``scale`` ≈ 1.0507 (torch.nn.SELU)."""

    op: Literal["selu"] = "selu"

    onnx_ops = ("Selu",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Selu", inputs[:1], alpha=SELU_ALPHA, gamma=SELU_SCALE)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.selu``."""
        return TorchLowering(call("F.selu", "{0}"))


class Softplus(_Activation):
    """``log(1 + exp(beta·x))/beta``, or ``x`` where ``beta·x > threshold``
    (torch.nn.Softplus)."""

    op: Literal["softplus"] = "softplus"
    positional = ("beta", "threshold")
    beta: float = 1.0
    threshold: float = 20.0

    onnx_ops = ("Softplus", "Mul", "Div", "Greater", "Where")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Softplus`` (which has neither beta nor threshold) of ``beta·x``,
        divided by ``beta``, and ``x`` itself where ``beta·x > threshold``
        (``Where``), as PyTorch."""
        x = inputs[0]
        scaled = x if self.beta == 1 else g.node("Mul", [x, g.constant("beta", self.beta)])
        soft = g.node("Softplus", [scaled])
        if self.beta != 1:
            soft = g.node("Div", [soft, g.constant("beta", self.beta)])
        linear = g.node("Greater", [scaled, g.constant("threshold", self.threshold)])
        return g.node("Where", [linear, x, soft])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.softplus``."""
        return TorchLowering(call("F.softplus", "{0}", beta=self.beta, threshold=self.threshold,
                                  defaults={"beta": 1.0, "threshold": 20.0}))


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
    PReLU,
    ELU,
    SELU,
    Softplus,
    Softmax,
)
