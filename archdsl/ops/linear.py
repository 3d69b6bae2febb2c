"""Fully connected layer, as torch.nn.Linear."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt

from .base import WEIGHT_INIT, Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, show_shape
from .conv import check_channels
from .torch_lowering import TorchLowering, keywords

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class Linear(OpSpec):
    """``y = x W^T + b`` over the last dimension; W is ``[out, in]``."""

    family = Family.LINEAR
    op: Literal["linear"] = "linear"
    positional = ("out_features",)
    out_features: PositiveInt
    bias: bool = True
    #: Optional: checked against the incoming features when given.
    in_features: PositiveInt | None = None

    @property
    def has_bias(self) -> bool:
        return self.bias

    def infer(self, inputs: list[Shape]) -> Shape:
        """``[F] → [out_features]`` over the last dim; ``in_features``, when given, must equal F."""
        shape = inputs[0]
        if len(shape) != 1:
            raise ShapeError(
                "E406",
                f"linear takes a flat vector of features, but its input is a {show_shape(shape)} feature map",
                inputs=(0,),
                hint="insert 'flatten' (or a global pooling then 'flatten') before it",
            )
        check_channels(self, shape[0], self.in_features, "in_features", noun="features")
        return (self.out_features,)

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [out, in]``, ``bias [out]`` (with ``bias``)."""
        shapes: dict[str, Shape] = {"weight": (self.out_features, inputs[0][0])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """``in · out`` per position of the leading dims."""
        return inputs[0][0] * self.out_features

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str:
        return f"{inputs[0][0]}·{self.out_features} = {self.macs(inputs, output):,}"

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """``2·MACs``, plus one per output element for the bias (when bias counts in FLOPs)."""
        return 2 * self.macs(inputs, output) + (self.out_features if self.bias and conventions.bias else 0)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.linear.linear``."""
        from ..runtime.kernels.linear import linear

        return KernelCall(linear, tensors={"weight": "weight", "bias": "bias" if self.bias else None},
                          init=WEIGHT_INIT)

    onnx_ops = ("Gemm",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Gemm`` with ``transB=1``: the weight stays ``[out, in]`` as in the state_dict."""
        tensors = [g.weight("weight"), *([g.weight("bias")] if self.bias else [])]
        return g.node("Gemm", [inputs[0], *tensors], transB=1)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.Linear``."""
        arguments = keywords({"bias": self.bias}, {"bias": True})
        return TorchLowering("{module}({0})", f"nn.Linear({inputs[0][0]}, {self.out_features}"
                                              f"{', ' + arguments if arguments else ''})")


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Linear,
)
