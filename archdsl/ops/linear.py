"""Fully connected layer, as torch.nn.Linear."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from .base import WEIGHT_INIT, Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, show_shape
from .conv import check_channels
from .torch_lowering import TorchLowering, keywords


class Linear(OpSpec):
    """``y = x W^T + b`` over the last dimension; W is ``[out, in]``."""

    family = Family.LINEAR
    op: Literal["linear"] = "linear"
    positional = ("out_features",)
    out_features: PositiveInt
    bias: bool = True
    #: Optional: checked against the incoming features when given.
    in_features: PositiveInt | None = None

    def infer(self, inputs: list[Shape]) -> Shape:
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
        shapes = {"weight": (self.out_features, inputs[0][0])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        return inputs[0][0] * self.out_features

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str:
        return f"{inputs[0][0]}·{self.out_features} = {self.macs(inputs, output):,}"

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        return 2 * self.macs(inputs, output) + (self.out_features if self.bias and conventions.bias else 0)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.linear``."""
        return KernelCall("linear", tensors={"weight": "weight", "bias": "bias" if self.bias else None},
                          init=WEIGHT_INIT)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.Linear``."""
        arguments = keywords({"bias": self.bias}, {"bias": True})
        return TorchLowering("{module}({0})", f"nn.Linear({inputs[0][0]}, {self.out_features}"
                                              f"{', ' + arguments if arguments else ''})")
