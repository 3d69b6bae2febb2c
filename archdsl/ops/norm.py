"""Normalisation: batch, layer (over trailing dims or over channels), group,
instance and local response norm."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from .base import (
    NORM_INIT,
    Conventions,
    Family,
    KernelCall,
    OpSpec,
    Shape,
    ShapeError,
    Size,
    Window,
    expand,
    numel,
    show_shape,
)
from .conv import check_channels
from .torch_lowering import TorchLowering, call, keywords, literal

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph


def statistics_window(spatial: Shape, over: tuple[bool, ...]) -> Window | None:
    """The window of an op whose output at each position depends on
    statistics over the spatial dims flagged in ``over`` (normalisation over
    space): along those, every output reads the whole input, stated as a
    reach of ``2(I − 1)`` about the output's own position (step 1, offset 0),
    which covers all ``I`` inputs from any position and keeps the field's
    centre and jump those of the input (so that a residual around the op
    still lines up); along the others, pointwise.  None when no spatial dim
    is flagged."""
    if not any(over):
        return None
    return Window(tuple(2 * (i - 1) if flag else 0 for i, flag in zip(spatial, over)), (1,) * len(spatial),
                  (0,) * len(spatial))


class _ChannelNorm(OpSpec):
    """What batch and instance norm share: a per-channel affine and running
    statistics (their defaults differ), and the channel check."""

    family = Family.NORMALIZATION
    positional = ("num_features",)
    #: Optional: checked against the incoming channels when given.
    num_features: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    momentum: float = Field(0.1, ge=0.0, le=1.0)
    affine: bool = True
    track_running_stats: bool = True

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``num_features``, when given, must equal C."""
        check_channels(self, inputs[0][0], self.num_features, "num_features")
        return inputs[0]

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [C]``, ``bias [C]`` (with ``affine``)."""
        channels = inputs[0][0]
        return {"weight": (channels,), "bias": (channels,)} if self.affine else {}

    def buffer_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``running_mean [C]``, ``running_var [C]``, ``num_batches_tracked`` (one element) with
        ``track_running_stats``."""
        channels = inputs[0][0]
        if not self.track_running_stats:
            return {}
        return {"running_mean": (channels,), "running_var": (channels,), "num_batches_tracked": ()}


class _BatchNorm(_ChannelNorm):
    """Per-channel affine normalisation; running mean/var are buffers."""

    family = Family.NORMALIZATION
    uses_batch_statistics = True
    #: Set by BatchNorm1d/2d/3d.
    spatial_dims: ClassVar[int]

    @property
    def input_ranks(self) -> tuple[int, ...]:  # type: ignore[override]
        # BatchNorm1d takes [C] (after linear) or [C, L], as in PyTorch.
        return (1, 2) if self.spatial_dims == 1 else (self.spatial_dims + 1,)

    def rank_hint(self, shape: Shape) -> str | None:
        rank = len(shape) - 1
        return f"a {show_shape(shape)} input needs batchnorm{max(rank, 1)}d" if 0 <= rank <= 3 else None

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """Inference: a scale and a shift per element, or none when folded."""
        return 0 if conventions.batchnorm == "folded" else 2 * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """None with running statistics (pointwise); without them the batch's
        statistics over every position make each output read the whole input
        (``statistics_window``: reach ``2(I − 1)``, step 1)."""
        spatial = inputs[0][1:]
        return None if self.track_running_stats else statistics_window(spatial, (True,) * len(spatial))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.batch_norm``: running statistics, or the batch's own
        without ``track_running_stats`` (as PyTorch in eval mode)."""
        from ..runtime.kernels.norm import batch_norm

        affine, tracked = self.affine, self.track_running_stats
        tensors = {"weight": "weight" if affine else None, "bias": "bias" if affine else None,
                   "running_mean": "running_mean" if tracked else None,
                   "running_var": "running_var" if tracked else None}
        return KernelCall(batch_norm, {"eps": self.eps}, tensors=tensors, init=NORM_INIT)

    onnx_ops = ("BatchNormalization", "ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div", "Reshape")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``BatchNormalization`` in inference form (``training_mode`` 0, the
        running statistics); without them, as PyTorch in eval mode, the
        batch's own mean and biased variance over every dim but 1."""
        x, channels, rank = inputs[0], shapes[0][0], len(shapes[0]) + 1
        if self.track_running_stats:
            scale = g.weight("weight") if self.affine else g.constant("scale", [1.0] * channels)
            shift = g.weight("bias") if self.affine else g.constant("shift", [0.0] * channels)
            return g.node("BatchNormalization", [x, scale, shift, g.weight("running_mean"), g.weight("running_var")],
                          epsilon=self.eps, training_mode=0)
        axes = g.ints("axes", [0, *range(2, rank)])
        centred = g.node("Sub", [x, g.node("ReduceMean", [x, axes], keepdims=1)])
        variance = g.node("ReduceMean", [g.node("Mul", [centred, centred]), axes], keepdims=1)
        y = g.node("Div", [centred, g.node("Sqrt", [g.node("Add", [variance, g.constant("eps", self.eps)])])])
        if not self.affine:
            return y
        per_channel = g.ints("per_channel", [channels, *(1,) * (rank - 2)])
        y = g.node("Mul", [y, g.node("Reshape", [g.weight("weight"), per_channel])])
        return g.node("Add", [y, g.node("Reshape", [g.weight("bias"), per_channel])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.BatchNorm{1,2,3}d``: batch statistics in training (updating the
        running ones), running statistics in eval, as PyTorch.  Without state
        (no affine, no running statistics) ``F.batch_norm`` on the batch's
        statistics, which is what the module does in both modes."""
        if not self.affine and not self.track_running_stats:
            return TorchLowering(call("F.batch_norm", "{0}", running_mean=None, running_var=None, training=True,
                                      momentum=self.momentum, eps=self.eps))
        arguments = keywords({"eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                              "track_running_stats": self.track_running_stats},
                             {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True})
        return TorchLowering("{module}({0})", f"nn.BatchNorm{self.spatial_dims}d({inputs[0][0]}"
                                              f"{', ' + arguments if arguments else ''})")


class BatchNorm1d(_BatchNorm):
    op: Literal["batchnorm1d"] = "batchnorm1d"
    spatial_dims = 1


class BatchNorm2d(_BatchNorm):
    op: Literal["batchnorm2d"] = "batchnorm2d"
    spatial_dims = 2


class BatchNorm3d(_BatchNorm):
    op: Literal["batchnorm3d"] = "batchnorm3d"
    spatial_dims = 3


class LayerNorm(OpSpec):
    """Normalises over the trailing ``normalized_shape`` dims (default: all
    non-batch dims), with an elementwise affine of that shape."""

    family = Family.NORMALIZATION
    op: Literal["layernorm"] = "layernorm"
    positional = ("normalized_shape",)
    normalized_shape: Size | None = None
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def _normalized(self, shape: Shape) -> Shape:
        if self.normalized_shape is None:
            return shape
        return expand(self.normalized_shape, 1)

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``normalized_shape`` must match its trailing dims."""
        shape = inputs[0]
        normalized = self._normalized(shape)
        if len(normalized) > len(shape) or shape[len(shape) - len(normalized):] != normalized:
            raise ShapeError(
                "E402",
                f"layernorm normalizes over {show_shape(normalized)}, which is not the end of its input "
                f"shape {show_shape(shape)}",
                argument="normalized_shape",
                inputs=(0,),
            )
        return shape

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight``, ``bias`` of ``normalized_shape`` (with ``elementwise_affine``; ``bias`` unless
        ``bias=false``)."""
        if not self.elementwise_affine:
            return {}
        normalized = self._normalized(inputs[0])
        return {"weight": normalized, "bias": normalized} if self.bias else {"weight": normalized}

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """5 per element (mean, variance, normalise), 2 more with the affine."""
        return (7 if self.elementwise_affine else 5) * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """The whole input along the spatial dims it normalises over (reach
        ``2(I − 1)``, step 1: ``statistics_window``), pointwise along the
        others; None when it normalises over channels or features only."""
        shape = inputs[0]
        first = len(shape) - len(self._normalized(shape))
        return statistics_window(shape[1:], tuple(axis >= first for axis in range(1, len(shape))))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.layer_norm`` over the trailing ``len(normalized_shape)`` dims."""
        from ..runtime.kernels.norm import layer_norm

        affine = self.elementwise_affine
        tensors = {"weight": "weight" if affine else None, "bias": "bias" if affine and self.bias else None}
        return KernelCall(layer_norm, {"normalized_ndim": len(self._normalized(inputs[0])), "eps": self.eps},
                          tensors=tensors, init=NORM_INIT)

    onnx_ops = ("LayerNormalization",)

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``LayerNormalization`` (opset 17) over the trailing dims; ones as the
        scale without the affine (ONNX requires one)."""
        import numpy as np

        normalized = self._normalized(shapes[0])
        affine = self.elementwise_affine
        scale = g.weight("weight") if affine else g.constant("scale", np.ones(normalized, np.float32))
        tensors = [inputs[0], scale, *([g.weight("bias")] if affine and self.bias else [])]
        return g.node("LayerNormalization", tensors, axis=-len(normalized), epsilon=self.eps)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.LayerNorm`` over the same trailing dims; ``F.layer_norm`` without an affine."""
        normalized = self._normalized(inputs[0])
        if not self.elementwise_affine:
            return TorchLowering(call("F.layer_norm", "{0}", normalized_shape=normalized, eps=self.eps))
        arguments = keywords({"eps": self.eps, "bias": self.bias}, {"eps": 1e-5, "bias": True})
        return TorchLowering("{module}({0})", f"nn.LayerNorm({literal(normalized)}"
                                              f"{', ' + arguments if arguments else ''})")


class LayerNorm2d(OpSpec):
    """Layer norm over the channels at each position of a ``[C, *spatial]``
    map (torchvision's ``LayerNorm2d`` of ConvNeXt: ``nn.LayerNorm(C)``
    applied channels-last): ``y = (x − mean_c) / sqrt(var_c + eps) · weight + bias``."""

    family = Family.NORMALIZATION
    op: Literal["layernorm2d"] = "layernorm2d"
    positional = ("normalized_shape",)
    #: Optional: checked against the incoming channels when given.
    normalized_shape: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    input_ranks = (2, 3, 4)

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``normalized_shape``, when given, must equal C."""
        check_channels(self, inputs[0][0], self.normalized_shape, "normalized_shape")
        return inputs[0]

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [C]``, ``bias [C]`` (with ``elementwise_affine``; ``bias`` unless ``bias=false``)."""
        if not self.elementwise_affine:
            return {}
        channels = (inputs[0][0],)
        return {"weight": channels, "bias": channels} if self.bias else {"weight": channels}

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """5 per element (mean, variance, normalise), 2 more with the affine."""
        return (7 if self.elementwise_affine else 5) * numel(output)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.layer_norm2d``."""
        from ..runtime.kernels.norm import layer_norm2d

        affine = self.elementwise_affine
        tensors = {"weight": "weight" if affine else None, "bias": "bias" if affine and self.bias else None}
        return KernelCall(layer_norm2d, {"eps": self.eps}, tensors=tensors, init=NORM_INIT)

    onnx_ops = ("Transpose", "LayerNormalization")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """Channels last (``Transpose``), ``LayerNormalization`` over the last
        axis, channels first again."""
        import numpy as np

        rank = len(shapes[0]) + 1
        channels = shapes[0][0]
        last = g.node("Transpose", inputs[:1], perm=[0, *range(2, rank), 1])
        affine = self.elementwise_affine
        scale = g.weight("weight") if affine else g.constant("scale", np.ones(channels, np.float32))
        tensors = [last, scale, *([g.weight("bias")] if affine and self.bias else [])]
        normed = g.node("LayerNormalization", tensors, axis=-1, epsilon=self.eps)
        return g.node("Transpose", [normed], perm=[0, rank - 1, *range(1, rank - 1)])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.LayerNorm(C)`` on the channels-last view (``movedim``), as
        torchvision's LayerNorm2d; ``F.layer_norm`` without an affine."""
        channels = inputs[0][0]
        if not self.elementwise_affine:
            return TorchLowering(call("F.layer_norm", "{0}.movedim(1, -1)", normalized_shape=(channels,),
                                      eps=self.eps) + ".movedim(-1, 1)")
        arguments = keywords({"eps": self.eps, "bias": self.bias}, {"eps": 1e-5, "bias": True})
        return TorchLowering("{module}({0}.movedim(1, -1)).movedim(-1, 1)",
                             f"nn.LayerNorm({channels}{', ' + arguments if arguments else ''})")


class GroupNorm(OpSpec):
    """Normalises each group of ``C/num_groups`` channels over the group's
    channels and every position, then a per-channel affine
    (torch.nn.GroupNorm): ``y = (x − mean_g) / sqrt(var_g + eps) · weight_c + bias_c``."""

    family = Family.NORMALIZATION
    op: Literal["groupnorm"] = "groupnorm"
    positional = ("num_groups", "num_channels")
    num_groups: PositiveInt
    #: Optional: checked against the incoming channels when given.
    num_channels: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    affine: bool = True

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape; ``num_groups`` must divide C (``num_channels``, when given, must equal it)."""
        channels = inputs[0][0]
        check_channels(self, channels, self.num_channels, "num_channels")
        if channels % self.num_groups:
            raise ShapeError("E403", f"groupnorm: num_groups={self.num_groups} does not divide the {channels} "
                             "input channels", argument="num_groups", inputs=(0,))
        return inputs[0]

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """``weight [C]``, ``bias [C]`` (with ``affine``)."""
        channels = inputs[0][0]
        return {"weight": (channels,), "bias": (channels,)} if self.affine else {}

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """5 per element (mean, variance, normalise), 2 more with the affine."""
        return (7 if self.affine else 5) * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """The whole input (statistics over every position: ``statistics_window``)."""
        spatial = inputs[0][1:]
        return statistics_window(spatial, (True,) * len(spatial))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.group_norm``."""
        from ..runtime.kernels.norm import group_norm

        tensors = {"weight": "weight" if self.affine else None, "bias": "bias" if self.affine else None}
        return KernelCall(group_norm, {"num_groups": self.num_groups, "eps": self.eps}, tensors=tensors,
                          init=NORM_INIT)

    onnx_ops = ("GroupNormalization", "Reshape", "InstanceNormalization", "Mul", "Add")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``GroupNormalization`` from opset 21 (per-channel scale and bias;
        ones and zeros without the affine).  Before: ``[N, G, C/G·prod(S)]``
        (``Reshape``), ``InstanceNormalization`` of that (one statistic per
        group), back to the input's shape, then the per-channel affine
        (``Mul``, ``Add`` by ``[C, 1, ...]``)."""
        import numpy as np

        channels, *spatial = shapes[0]
        affine = self.affine
        if g.opset >= 21:
            scale = g.weight("weight") if affine else g.constant("scale", np.ones(channels, np.float32))
            shift = g.weight("bias") if affine else g.constant("shift", np.zeros(channels, np.float32))
            return g.node("GroupNormalization", [inputs[0], scale, shift], num_groups=self.num_groups,
                          epsilon=self.eps)
        groups = self.num_groups
        grouped = g.node("Reshape", [inputs[0], g.ints("grouped", [0, groups, -1])])
        normed = g.node("InstanceNormalization", [grouped, g.constant("ones", np.ones(groups, np.float32)),
                                                  g.constant("zeros", np.zeros(groups, np.float32))],
                        epsilon=self.eps)
        y = g.node("Reshape", [normed, g.ints("shape", [0, channels, *spatial])])
        if not affine:
            return y
        per_channel = g.ints("per_channel", [channels, *(1,) * len(spatial)])
        y = g.node("Mul", [y, g.node("Reshape", [g.weight("weight"), per_channel])])
        return g.node("Add", [y, g.node("Reshape", [g.weight("bias"), per_channel])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.GroupNorm``; ``F.group_norm`` without the affine."""
        if not self.affine:
            return TorchLowering(call("F.group_norm", "{0}", num_groups=self.num_groups, eps=self.eps))
        arguments = keywords({"eps": self.eps}, {"eps": 1e-5})
        return TorchLowering("{module}({0})", f"nn.GroupNorm({self.num_groups}, {inputs[0][0]}"
                                              f"{', ' + arguments if arguments else ''})")


class _InstanceNorm(_ChannelNorm):
    """Normalises each channel of each sample over its positions
    (torch.nn.InstanceNorm{1,2,3}d; PyTorch's defaults: no affine, no running
    statistics); with ``track_running_stats`` inference uses the running
    statistics instead, as batch norm does."""

    family = Family.NORMALIZATION
    #: Set by InstanceNorm1d/2d/3d.
    spatial_dims: ClassVar[int]
    affine: bool = False
    track_running_stats: bool = False

    @property
    def input_ranks(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.spatial_dims + 1,)

    def rank_hint(self, shape: Shape) -> str | None:
        rank = len(shape) - 1
        return f"a {show_shape(shape)} input needs instancenorm{rank}d" if 1 <= rank <= 3 else None

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """5 per element (mean, variance, normalise), 2 more with the affine;
        with running statistics a scale and a shift per element (as batch norm, counted)."""
        if self.track_running_stats:
            return 2 * numel(output)
        return (7 if self.affine else 5) * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """The whole input (the sample's own statistics: ``statistics_window``);
        None with running statistics (pointwise)."""
        spatial = inputs[0][1:]
        return None if self.track_running_stats else statistics_window(spatial, (True,) * len(spatial))

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.instance_norm``."""
        from ..runtime.kernels.norm import instance_norm

        affine, tracked = self.affine, self.track_running_stats
        tensors = {"weight": "weight" if affine else None, "bias": "bias" if affine else None,
                   "running_mean": "running_mean" if tracked else None,
                   "running_var": "running_var" if tracked else None}
        return KernelCall(instance_norm, {"eps": self.eps}, tensors=tensors, init=NORM_INIT)

    onnx_ops = ("InstanceNormalization", "BatchNormalization")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``InstanceNormalization`` (ones and zeros as scale and bias without
        the affine); with running statistics ``BatchNormalization`` in
        inference form, as PyTorch in eval mode."""
        import numpy as np

        channels = shapes[0][0]
        scale = g.weight("weight") if self.affine else g.constant("scale", np.ones(channels, np.float32))
        shift = g.weight("bias") if self.affine else g.constant("shift", np.zeros(channels, np.float32))
        if self.track_running_stats:
            return g.node("BatchNormalization", [inputs[0], scale, shift, g.weight("running_mean"),
                                                 g.weight("running_var")], epsilon=self.eps, training_mode=0)
        return g.node("InstanceNormalization", [inputs[0], scale, shift], epsilon=self.eps)

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``nn.InstanceNorm{1,2,3}d`` when it holds weights or statistics;
        ``F.instance_norm`` otherwise (what the module does)."""
        if not self.affine and not self.track_running_stats:
            return TorchLowering(call("F.instance_norm", "{0}", eps=self.eps))
        arguments = keywords({"eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                              "track_running_stats": self.track_running_stats},
                             {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False})
        return TorchLowering("{module}({0})", f"nn.InstanceNorm{self.spatial_dims}d({inputs[0][0]}"
                                              f"{', ' + arguments if arguments else ''})")


class InstanceNorm1d(_InstanceNorm):
    op: Literal["instancenorm1d"] = "instancenorm1d"
    spatial_dims = 1


class InstanceNorm2d(_InstanceNorm):
    op: Literal["instancenorm2d"] = "instancenorm2d"
    spatial_dims = 2


class InstanceNorm3d(_InstanceNorm):
    op: Literal["instancenorm3d"] = "instancenorm3d"
    spatial_dims = 3


class LocalResponseNorm(OpSpec):
    """``b_c = a_c / (k + alpha/n · sum_{c' near c} a_c'^2)^beta`` over ``size``
    neighbouring channels (AlexNet: size 5, alpha 1e-4, beta 0.75, k 2)."""

    family = Family.NORMALIZATION
    op: Literal["local_response_norm"] = "local_response_norm"
    positional = ("size", "alpha", "beta", "k")
    size: PositiveInt
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    input_ranks = (2, 3, 4)

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """Per element: ``size`` squares and adds, then scale, power, divide."""
        return (2 * self.size + 3) * numel(output)

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """``kernels.norm.local_response_norm``."""
        from ..runtime.kernels.norm import local_response_norm

        return KernelCall(local_response_norm, self.arguments())

    onnx_ops = ("LRN", "Mul", "Pad", "Slice", "Sum", "Add", "Pow", "Div")

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """``LRN`` for an odd size on [C, H, W] (onnxruntime's LRN is 2-d only).
        For an even size ONNX's window is PyTorch's shifted by one channel
        (ONNX sums ``c - (size-1)//2 .. c + size//2``, PyTorch ``c - size//2 ..
        c + (size-1)//2``), so it is spelled out: squares, zero-padded along
        the channels, summed over ``size`` shifted slices."""
        x, channels, rank = inputs[0], shapes[0][0], len(shapes[0]) + 1
        if self.size % 2 and rank == 4:
            return g.node("LRN", [x], size=self.size, alpha=self.alpha, beta=self.beta, bias=self.k)
        squares = g.node("Mul", [x, x])
        before, after = self.size // 2, (self.size - 1) // 2
        pads = [0] * (2 * rank)
        pads[1], pads[rank + 1] = before, after
        padded = g.node("Pad", [squares, g.ints("pads", pads)], mode="constant")
        axis = g.ints("axis", [1])
        slices = [g.node("Slice", [padded, g.ints("start", [j]), g.ints("end", [j + channels]), axis])
                  for j in range(self.size)]
        total = g.node("Sum", slices) if len(slices) > 1 else slices[0]
        base = g.node("Add", [g.node("Mul", [total, g.constant("alpha", self.alpha / self.size)]),
                              g.constant("k", self.k)])
        return g.node("Div", [x, g.node("Pow", [base, g.constant("beta", self.beta)])])

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """``F.local_response_norm`` (the same ``alpha/size`` scaling)."""
        return TorchLowering(call("F.local_response_norm", "{0}", size=self.size, alpha=self.alpha, beta=self.beta,
                                  k=self.k))


#: This family's ops, in the order the registry (``archdsl.ops.OPS``) lists them.
OPS: tuple[type[OpSpec], ...] = (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    LayerNorm,
    LayerNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LocalResponseNorm,
)
