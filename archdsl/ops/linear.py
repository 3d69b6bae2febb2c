"""Fully connected layer, as torch.nn.Linear, and a learnable elementwise scale."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt

from .base import WEIGHT_INIT, Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, Window, numel, show_shape
from .conv import check_channels
from .torch_lowering import TorchLowering, keywords, literal

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
        """``[F] → [out_features]`` over the last dim; ``in_features``, when given, must equal F.  A map
        (``[H, W, C]`` after ``permute``) only with ``in_features`` given: ``[..., F] → [..., out_features]``."""
        shape = inputs[0]
        if len(shape) != 1 and (self.in_features is None or shape[-1] != self.in_features):
            raise ShapeError(
                "E406",
                f"linear takes a flat vector of features, but its input is a {show_shape(shape)} feature map",
                inputs=(0,),
                hint="insert 'flatten' (or a global pooling then 'flatten') before it; to apply it at every "
                     f"position over the last dim (channels-last, after permute), say so: in_features={shape[-1]}",
            )
        check_channels(self, shape[-1], self.in_features, "in_features", noun="features")
        return (*shape[:-1], self.out_features)

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [out, in]``, ``bias [out]`` (with ``bias``)."""
        shapes: dict[str, Shape] = {"weight": (self.out_features, inputs[0][-1])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """``in · out`` per position of the leading dims."""
        return inputs[0][-1] * self.out_features * numel(inputs[0][:-1])

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """None on a vector; on a map, pointwise along the leading dims and
        the whole last dim (reach twice the larger of ``in`` and ``out``, step 1)."""
        n = len(inputs[0]) - 1
        if n == 0:
            return None
        return Window((0,) * (n - 1) + (2 * max(inputs[0][-1], self.out_features),), (1,) * n, (0,) * n)

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str:
        positions = numel(inputs[0][:-1])
        return f"{inputs[0][-1]}·{self.out_features}{f'·{positions}' if positions > 1 else ''} = " \
               f"{self.macs(inputs, output):,}"

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """``2·MACs``, plus one per output element for the bias (when bias counts in FLOPs)."""
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias and conventions.bias else 0)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.linear.linear``, the weight packed by ``pack_linear_weight``."""
        from ..runtime.kernels.linear import linear, pack_linear_weight

        return KernelCall(linear, tensors={"weight": "weight", "bias": "bias" if self.bias else None},
                          pack=pack_linear_weight, init=WEIGHT_INIT)

    onnx_ops = ("Gemm", "Transpose", "MatMul", "Add")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Gemm`` with ``transB=1``: the weight stays ``[out, in]`` as in the
        state_dict.  On a map (Gemm is 2-d only): ``MatMul`` by the transposed
        weight, then ``Add`` the bias."""
        if len(shapes[0]) == 1:
            tensors = [g.weight("weight"), *([g.weight("bias")] if self.bias else [])]
            return g.node("Gemm", [inputs[0], *tensors], transB=1)
        y = g.node("MatMul", [inputs[0], g.node("Transpose", [g.weight("weight")], perm=[1, 0])])
        return g.node("Add", [y, g.weight("bias")]) if self.bias else y

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.Linear``."""
        arguments = keywords({"bias": self.bias}, {"bias": True})
        return TorchLowering("{module}({0})", f"nn.Linear({inputs[0][-1]}, {self.out_features}"
                                              f"{', ' + arguments if arguments else ''})")


class Scale(OpSpec):
    """``y = x · s`` with a learnable tensor ``s`` of ``shape`` (the input's
    rank; dims of size 1 broadcast), initialised to ``init``: ConvNeXt's
    ``layer_scale`` (``nn.Parameter(torch.ones(C, 1, 1) * 1e-6)``).  Its
    state_dict key is the node's own name (``features.1.0.layer_scale``),
    as PyTorch names a parameter a module holds directly."""

    family = Family.LINEAR
    op: Literal["scale"] = "scale"
    positional = ("shape",)
    shape: tuple[PositiveInt, ...]
    init: float = 1.0

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``shape`` must have its rank and broadcast to it (each dim equal or 1)."""
        shape = inputs[0]
        if len(self.shape) != len(shape) or any(s not in (1, d) for s, d in zip(self.shape, shape)):
            raise ShapeError("E404", f"scale of shape {show_shape(self.shape)} does not broadcast to its input "
                             f"{show_shape(shape)} (same rank, each dim equal or 1)", argument="shape", inputs=(0,),
                             hint=f"a per-channel scale of this input is ({shape[0]}{', 1' * (len(shape) - 1)})")
        return shape

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """The unnamed tensor ``""`` of ``shape``: its state_dict key is the node's name."""
        return {"": self.shape}

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.linear.scale``, the tensor initialised to ``init``."""
        from ..runtime.kernels.linear import scale

        return KernelCall(scale, tensors={"weight": ""}, init={"": f"constant={self.init!r}"})

    onnx_ops = ("Mul",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``Mul`` by the tensor (broadcast from the right, the batch dim added)."""
        return g.node("Mul", [inputs[0], g.weight("")])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``x * p`` with ``p`` an ``nn.Parameter`` held by the parent module
        under the node's name, as torchvision's CNBlock holds ``layer_scale``."""
        return TorchLowering("{0} * {module}", f"nn.Parameter(torch.full({literal(self.shape)}, {literal(self.init)}))",
                             parameter=True)


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Linear,
    Scale,
)
