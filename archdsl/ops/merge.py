"""Ops that combine several tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from .activation import normalize_dim
from .base import Conventions, Family, KernelCall, OpSpec, Shape, ShapeError, numel, show_shape
from .torch_lowering import TorchLowering, call

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


class _Merge(OpSpec):
    family = Family.MERGE
    min_inputs = 2
    max_inputs: ClassVar[int | None] = None

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """One operation per output element per input after the first."""
        return (len(inputs) - 1) * numel(output)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.merge.{op}``: the kernel named as the op (``add``, ``mul``, ``sub``, ``concat``)."""
        from ..runtime.kernels import merge

        return KernelCall(getattr(merge, self.kind()), self.arguments())


def _shapes(inputs: list[Shape]) -> str:
    return ", ".join(show_shape(s) for s in inputs)


def broadcast_shape(op: OpSpec, inputs: list[Shape]) -> Shape:
    """The shape of an elementwise op on ``inputs`` of one rank whose dims
    of size 1 broadcast (``[C, H, W]`` with ``[C, 1, 1]``)."""
    # Ranks must agree: PyTorch aligns from the right *including the
    # batch*, so [C] against [C, H, W] would meet W, not C.
    kind = op.kind()
    for index, shape in enumerate(inputs[1:], start=1):
        if len(shape) != len(inputs[0]):
            raise ShapeError(
                "E404",
                f"{kind} needs inputs of one rank, got {_shapes(inputs)}",
                inputs=(0, index),
                hint="a per-channel gate must be [C, 1, 1]: keep the pooled dims (global_avgpool does)",
            )
    rank = len(inputs[0])
    result = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in inputs if axis - rank + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ShapeError(
                "E404",
                f"{kind} cannot broadcast {_shapes(inputs)}: sizes {sorted(sizes)} meet in one dimension",
                inputs=tuple(range(len(inputs))),
                hint="shapes broadcast when each dimension is equal or 1, aligned from the right",
            )
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


class Add(_Merge):
    """Elementwise sum of tensors of one shape (residual connections)."""

    op: Literal["add"] = "add"

    def infer(self, inputs: list[Shape]) -> Shape:
        """Every input's shape, all equal."""
        for index, shape in enumerate(inputs[1:], start=1):
            if shape != inputs[0]:
                first = inputs[0]
                if len(shape) == len(first) and shape[0] == first[0]:
                    hint = "the sizes differ: resize one branch (stride, pooling or upsample) to match the other"
                else:
                    hint = ("a skip connection needs a projection (a 1x1 conv with the branch's stride) "
                            "to match channels and size")
                raise ShapeError(
                    "E404",
                    f"add needs inputs of one shape, got {_shapes(inputs)}",
                    inputs=(0, index),
                    hint=hint,
                )
        return inputs[0]

    onnx_ops = ("Add", "Sum")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Add" if len(inputs) == 2 else "Sum", inputs)


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``a + b + ...``."""
        return TorchLowering(" + ".join(f"{{{index}}}" for index in range(len(inputs))))


class Mul(_Merge):
    """Elementwise product of tensors of one rank, broadcasting dims of size 1
    (squeeze-and-excitation: ``[C, H, W] * [C, 1, 1]``)."""

    op: Literal["mul"] = "mul"

    def infer(self, inputs: list[Shape]) -> Shape:
        """Inputs of one rank; dims of size 1 broadcast (``[C, H, W] * [C, 1, 1]``)."""
        return broadcast_shape(self, inputs)

    onnx_ops = ("Mul",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """Binary ``Mul`` nodes, left to right (numpy-style broadcasting, as PyTorch)."""
        value = inputs[0]
        for other in inputs[1:]:
            value = g.node("Mul", [value, other])
        return value


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``a * b * ...``: PyTorch broadcasts as the shape rule does (same rank, batch included)."""
        return TorchLowering(" * ".join(f"{{{index}}}" for index in range(len(inputs))))


class Sub(_Merge):
    """Elementwise difference ``a − b`` of two tensors of one rank,
    broadcasting dims of size 1 as ``mul`` (torch.sub)."""

    op: Literal["sub"] = "sub"
    max_inputs = 2

    def infer(self, inputs: list[Shape]) -> Shape:
        """Two inputs of one rank; dims of size 1 broadcast (as ``mul``)."""
        if len(inputs) != 2:
            raise ShapeError("E404", f"sub takes two inputs (a − b), got {len(inputs)}: {_shapes(inputs)}",
                             inputs=tuple(range(2, len(inputs))), hint="subtract in two steps: sub(sub(a, b), c)")
        return broadcast_shape(self, inputs)

    onnx_ops = ("Sub",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Sub", inputs[:2])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``a - b``."""
        return TorchLowering("{0} - {1}")


class Concat(_Merge):
    """Concatenation along ``dim`` (batch is dim 0, so 1 is channels); the
    other dimensions must agree."""

    op: Literal["concat"] = "concat"
    dim: int = 1

    def infer(self, inputs: list[Shape]) -> Shape:
        """The sum along ``dim``; every other dim equal."""
        first = inputs[0]
        axis = normalize_dim(self, self.dim, first)
        for index, shape in enumerate(inputs[1:], start=1):
            if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, shape)) if i != axis):
                raise ShapeError(
                    "E405",
                    f"concat along dim {self.dim} needs the other dimensions to agree, got {_shapes(inputs)}",
                    inputs=(0, index),
                    hint="crop, pad or resize one branch so the spatial sizes match",
                )
        return tuple(sum(s[axis] for s in inputs) if i == axis else d for i, d in enumerate(first))


    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``torch.cat`` along the same ``dim`` (batch is 0 in both)."""
        return TorchLowering(call("torch.cat", "[{inputs}]", dim=self.dim))

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """0: a copy."""
        return 0

    onnx_ops = ("Concat",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        return g.node("Concat", inputs, axis=normalize_dim(self, self.dim, shapes[0]) + 1)


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    Add,
    Mul,
    Sub,
    Concat,
)
