"""What every op kind shares: the spec base class, argument types, families.

An op kind is one Pydantic model: its fields are the op's arguments, named
as PyTorch names them, validated strictly (``3.0`` is not a kernel size, and
``"3"`` is not a number).  Class variables describe how it is called
(positional argument order, how many inputs it takes) and how it is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, model_validator

if TYPE_CHECKING:
    from ..emit.onnx import OnnxGraph
from .torch_lowering import NoTorchLowering, TorchLowering


class Family(StrEnum):
    """What an op does, for diagrams and summaries."""

    INPUT = "input"
    CONVOLUTION = "convolution"
    POOLING = "pooling"
    NORMALIZATION = "normalization"
    ACTIVATION = "activation"
    LINEAR = "linear"
    MERGE = "merge"
    RESHAPE = "reshape"
    REGULARIZATION = "regularization"


class ArgumentError(ValueError):
    """A cross-argument check failed; ``argument`` says which argument to blame."""

    def __init__(self, argument: str | None, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _int_tuple_validator(minimum: int, what: str, words: tuple[str, ...] = ()):
    """An int >= minimum, or a tuple of them; optionally one of some strings."""

    def validate(value: Any):
        if isinstance(value, list):  # JSON has no tuples
            value = tuple(value)
        if isinstance(value, str) and value in words:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        if (
            isinstance(value, tuple)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
        ):
            return value
        choices = [what, "a tuple of them", *(_describe(w) for w in words)]
        expected = ", ".join(choices[:-1]) + " or " + choices[-1]
        raise ValueError(f"expected {expected}; got {_describe(value)}")

    return validate


_INT_OR_TUPLE_SCHEMA = int | tuple[int, ...]


def _json_size(value: int | tuple[int, ...] | str) -> int | list[int] | str:
    """A size as JSON writes it.  Without it, pydantic serialises through
    the plain validator's input type and warns on every tuple (it sees
    the list the tuple already became)."""
    return list(value) if isinstance(value, tuple) else value


_AS_JSON = PlainSerializer(_json_size, when_used="json")

#: kernel_size, stride, dilation: a positive int or one per spatial dimension.
Size = Annotated[
    int | tuple[int, ...],
    PlainValidator(_int_tuple_validator(1, "a positive integer"), json_schema_input_type=_INT_OR_TUPLE_SCHEMA),
    _AS_JSON,
]
#: padding of pooling and output_padding: a non-negative int or tuple.
NonNegativeSize = Annotated[
    int | tuple[int, ...],
    PlainValidator(_int_tuple_validator(0, "a non-negative integer"), json_schema_input_type=_INT_OR_TUPLE_SCHEMA),
    _AS_JSON,
]
#: convolution padding: as above, or "same" / "valid" as PyTorch accepts.
ConvPadding = Annotated[
    int | tuple[int, ...] | str,
    PlainValidator(
        _int_tuple_validator(0, "a non-negative integer", ("same", "valid")),
        json_schema_input_type=int | tuple[int, ...] | str,
    ),
    _AS_JSON,
]


#: A tensor shape without the batch dimension: (C,), (C, L), (C, H, W), (C, D, H, W).
Shape = tuple[int, ...]

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def show_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def show_sizes(sizes) -> str:
    """Per-dimension sizes as people write them: 3x3."""
    return "x".join(str(s) for s in sizes)


def numel(shape: Shape) -> int:
    return math.prod(shape)


class NoOnnxLowering(Exception):
    """An op (or these arguments of it) has no ONNX lowering; ``archdsl
    export --to onnx`` reports it at the node (E701)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ShapeError(Exception):
    """An op cannot take the shapes it is given.

    ``argument`` names the argument to point at; ``inputs`` lists the input
    positions whose shapes are to blame (labelled at their producers).
    """

    def __init__(self, code: str, message: str, *, argument: str | None = None, hint: str | None = None,
                 inputs: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.argument = argument
        self.hint = hint
        self.inputs = inputs


@dataclass(frozen=True)
class Window:
    """How output positions map onto input positions, per spatial dimension
    (what the receptive-field pass needs).  Output position ``o`` is centred
    on input coordinate ``offset + o·step`` and reads ``reach + 1`` input
    positions.  For a sliding window of dilated extent K, stride S and
    leading padding P: reach K-1, step S, offset (K-1)/2 - P."""

    reach: tuple[int, ...]
    step: tuple[Fraction | int, ...]
    offset: tuple[Fraction | int, ...]

    @classmethod
    def sliding(cls, kernel, stride, padding) -> Window:
        return cls(
            tuple(k - 1 for k in kernel),
            tuple(stride),
            tuple(((k - 1) // 2 if k % 2 else Fraction(k - 1, 2)) - p for k, p in zip(kernel, padding)),
        )


@dataclass(frozen=True)
class SlidingWindow:
    """The arguments of a sliding-window op (convolution, pooling) as one
    value per spatial dimension, defaults and shorthands resolved: what
    rules about strides, kernels and padding read (see
    :meth:`OpSpec.geometry`).

    ``padding`` is the leading padding; with ``same`` (``padding="same"``)
    it is the part before the input, ``floor(D·(K − 1)/2)``, and an even
    dilated kernel puts one more row at the end.  ``ceil_mode`` is
    pooling's: a last partial window is kept."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    same: bool = False
    ceil_mode: bool = False

    @property
    def extent(self) -> tuple[int, ...]:
        """The dilated kernel: how many input positions one window spans."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


@dataclass(frozen=True)
class Conventions:
    """The counting choices that tools disagree on, named and printed.

    ``batchnorm``: "counted" (2 FLOPs per element: scale and shift) or
    "folded" (0: assumed folded into the preceding convolution at inference).
    ``bias``: whether bias additions are part of FLOPs (MACs never include them).
    """

    batchnorm: str = "counted"
    bias: bool = True

    def describe(self) -> str:
        return f"FLOPs = 2·MACs{' + bias' if self.bias else ''} + elementwise work; batchnorm {self.batchnorm}"


@dataclass(frozen=True)
class KernelCall:
    """How the NumPy runtime runs an op: the call
    ``kernel(*inputs, **tensors, **arguments)`` of a function of
    ``archdsl/runtime/kernels/`` (the function itself, not its name), which
    the interpreter makes and ``archdsl export`` writes out.

    ``tensors`` maps the kernel's tensor arguments to the op's parameter or
    buffer names (``None``: the kernel gets ``None``, e.g. no bias);
    ``pack`` is a kernel that turns ``weight`` into the form the kernel
    multiplies by, once per weight load (``pack(weight, groups)``, passed as
    ``packed``); ``init`` gives each parameter and buffer its PyTorch default
    initialisation (``archdsl/runtime/init.py``); ``view`` says the output may
    share memory with the first input.
    """

    kernel: Callable[..., Any]
    arguments: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, str | None] = field(default_factory=dict)
    pack: Callable[..., Any] | None = None
    init: dict[str, str] = field(default_factory=dict)
    view: bool = False


#: PyTorch's default initialisation of conv and linear layers (reset_parameters).
WEIGHT_INIT = {"weight": "kaiming_uniform", "bias": "fan_in_uniform"}
#: ... and of normalisation layers and their running statistics.
NORM_INIT = {"weight": "ones", "bias": "zeros", "running_mean": "zeros", "running_var": "ones",
             "num_batches_tracked": "count"}


def state_key(node: str, tensor: str) -> str:
    """The state_dict key of a node's ``tensor``: ``<node>.<tensor>``
    (``conv1.weight``), or the node's own name for the unnamed tensor ``""``
    of an op that is a bare learnable tensor (``scale``: ConvNeXt's
    ``features.1.0.layer_scale``), as PyTorch names an ``nn.Parameter``
    held directly by a module."""
    return f"{node}.{tensor}" if tensor else node


def expand(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    """An int or an n-tuple as an n-tuple (the per-dimension value)."""
    return value if isinstance(value, tuple) else (value,) * n


class OpSpec(BaseModel):
    """Base of every op kind.  Subclasses declare ``op: Literal["name"]``."""

    # defer_build: an op's validator is built when the op is first used, so
    # start-up does not pay for the ops a model does not use.
    # Source arguments are validated with strict=True (``3.0`` is not a
    # kernel size); the model itself is lax so that JSON (lists for tuples)
    # validates back into specs.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    if TYPE_CHECKING:
        # Every subclass declares its tag as ``op: Literal["name"]``; the
        # base class declares no field, so that the tag keeps its place in
        # each op's field order (and in the JSON it writes).
        op: str

    #: Argument names in the order positional arguments bind to them.
    positional: ClassVar[tuple[str, ...]] = ()
    #: Other spellings accepted for an argument (``kernel`` for ``kernel_size``).
    argument_aliases: ClassVar[dict[str, str]] = {}
    #: Other names the op is called by in source (``swish`` for ``silu``).
    op_aliases: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[Family]
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    #: Spatial dimensions for per-dimension tuples (conv2d: 2); None if not spatial.
    spatial_dims: ClassVar[int | None] = None
    #: Arguments whose tuple length must equal ``spatial_dims``.
    per_dimension: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def kind(cls) -> str:
        return cls.model_fields["op"].default

    @classmethod
    def is_merge(cls) -> bool:
        return cls.max_inputs is None or cls.max_inputs > 1

    def arguments(self) -> dict[str, Any]:
        """The op's arguments without the ``op`` tag, for display."""
        return {k: v for k, v in self.__dict__.items() if k != "op"}

    def _check_per_dimension(self) -> None:
        for name in self.per_dimension:
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != self.spatial_dims:
                raise ArgumentError(
                    name,
                    f"{self.kind()} takes {self.spatial_dims} value(s) per tuple; "
                    f"{name} has {len(value)}",
                )

    @model_validator(mode="after")
    def _cross_checks(self):
        self._check_per_dimension()
        self.check()
        return self

    def check(self) -> None:
        """Cross-argument checks; raise :class:`ArgumentError`."""

    # ------------------------------------------------------------------ public facts
    # What lint rules and emitters may ask of any op without knowing its
    # class (ops' own classes and helpers are private to archdsl/ops).

    #: The op normalises with per-channel statistics of the batch (batch
    #: norm): it subtracts the channel mean, which cancels a constant
    #: per-channel bias before it, and its running statistics are gathered
    #: from what reaches it in training.
    uses_batch_statistics: ClassVar[bool] = False

    @property
    def has_bias(self) -> bool:
        """The op adds a learned per-output-channel bias to a weighted sum
        (convolution, linear with ``bias=true``).  Normalisation layers'
        affine shift is not counted: it is applied after normalising."""
        return False

    def geometry(self) -> SlidingWindow | None:
        """Kernel, stride, padding and dilation per spatial dimension for an
        op that slides a fixed window over its input (convolution, max and
        average pooling); None for every other op, including adaptive and
        global pooling, whose windows depend on the input size, and
        transposed convolution, which scatters rather than slides."""
        return None

    # ------------------------------------------------------------------ facts
    # Everything below describes the op applied to inputs of known shapes.
    # The defaults fit an elementwise op without weights.

    #: Input ranks (batch excluded) the op accepts; None: any rank.
    input_ranks: ClassVar[tuple[int, ...] | None] = None
    #: FLOPs per output element of an elementwise op.
    flops_per_element: ClassVar[int] = 0

    def output_shape(self, inputs: list[Shape]) -> Shape:
        """The output shape; raises :class:`ShapeError`."""
        if self.input_ranks is not None:
            for index, shape in enumerate(inputs):
                if len(shape) not in self.input_ranks:
                    expected = " or ".join(f"{r}-d" for r in self.input_ranks)
                    raise ShapeError(
                        "E407",
                        f"{self.kind()} expects a {expected} input ({self.rank_words()}), got {show_shape(shape)}",
                        inputs=(index,),
                        hint=self.rank_hint(shape),
                    )
        return self.infer(inputs)

    def rank_words(self) -> str:
        return {1: "[C]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}.get(
            (self.input_ranks or (0,))[-1], "batch excluded")

    def rank_hint(self, shape: Shape) -> str | None:
        return None

    def infer(self, inputs: list[Shape]) -> Shape:
        """The input's shape."""
        return inputs[0]

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """None.

        Trainable tensors by PyTorch's name and layout ("weight", "bias")."""
        return {}

    def buffer_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """None.

        Non-trainable state (batchnorm running statistics)."""
        return {}

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """0: only convolutions and linear layers multiply-accumulate.

        Multiply-accumulates of one sample (conv, linear only)."""
        return 0

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """{flops_per_element} per output element.

        Floating-point operations of one sample (see docs/analysis.md)."""
        return self.flops_per_element * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """None: pointwise (each output position reads the same input position).

        Sliding-window geometry, or None for a pointwise op."""
        return None

    def explain_shape(self, inputs: list[Shape], output: Shape) -> list[str]:
        """The output-size arithmetic, line by line, for ``archdsl explain``."""
        return []

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str | None:
        """The MAC count as a product of named factors."""
        return None

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """How the NumPy runtime computes this op (archdsl/runtime/kernels/).
        Kernels import NumPy: implementations import their kernel module
        inside this method, so that loading the op set does not."""
        raise NotImplementedError(f"{self.kind()} has no NumPy kernel")

    # ----------------------------------------------------------------- ONNX
    # The lowering to ONNX (archdsl/emit/onnx.py walks the graph and calls it).

    #: The ONNX operators the lowering may emit (docs/export.md's table).
    onnx_ops: ClassVar[tuple[str, ...]] = ()

    def to_onnx(self, g: OnnxGraph, inputs: list[str], shapes: list[Shape]) -> str:
        """Adds this op to the ONNX graph builder ``g`` (``archdsl.emit.onnx.OnnxGraph``)
        reading the values ``inputs`` of ``shapes`` (batch excluded); returns
        the name of the output value."""
        raise NoOnnxLowering(f"{self.kind()} has no ONNX lowering")

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """How an exported PyTorch module computes this op
        (``archdsl/ops/torch_lowering.py``, ``archdsl/emit/torch_module.py``)."""
        raise NoTorchLowering(self.kind(), "no lowering is defined for this op")


# Pydantic evaluates the class-variable annotations of every base class
# again for each subclass it creates; under ``from __future__ import
# annotations`` those above are strings, so the op classes compiled and
# evaluated them about a thousand times at import (a third of the import
# time of ``archdsl check``).  Evaluated once here, subclasses read objects.
OpSpec.__annotations__ = {name: hint for name, hint in get_type_hints(OpSpec, include_extras=True).items()
                          if name in OpSpec.__annotations__}
