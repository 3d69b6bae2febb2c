"""What every op kind shares: the spec base class, argument types, families.

An op kind is one Pydantic model: its fields are the op's arguments, named
as PyTorch names them, validated strictly (``3.0`` is not a kernel size, and
``"3"`` is not a number).  Class variables describe how it is called
(positional argument order, how many inputs it takes) and how it is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator

from .torch_lowering import NoTorchLowering, TorchLowering


class Family(str, Enum):
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


_INT_OR_TUPLE_SCHEMA = Union[int, tuple[int, ...]]

#: kernel_size, stride, dilation: a positive int or one per spatial dimension.
Size = Annotated[
    int | tuple[int, ...],
    PlainValidator(_int_tuple_validator(1, "a positive integer"), json_schema_input_type=_INT_OR_TUPLE_SCHEMA),
]
#: padding of pooling and output_padding: a non-negative int or tuple.
NonNegativeSize = Annotated[
    int | tuple[int, ...],
    PlainValidator(_int_tuple_validator(0, "a non-negative integer"), json_schema_input_type=_INT_OR_TUPLE_SCHEMA),
]
#: convolution padding: as above, or "same" / "valid" as PyTorch accepts.
ConvPadding = Annotated[
    int | tuple[int, ...] | str,
    PlainValidator(
        _int_tuple_validator(0, "a non-negative integer", ("same", "valid")),
        json_schema_input_type=Union[int, tuple[int, ...], str],
    ),
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
    ``kernels.<kernel>(*inputs, **tensors, **arguments)`` of
    ``archdsl/runtime/kernels.py``, which the interpreter makes and
    ``archdsl export`` writes out.

    ``tensors`` maps the kernel's tensor arguments to the op's parameter or
    buffer names (``None``: the kernel gets ``None``, e.g. no bias);
    ``pack`` names a kernel that turns ``weight`` into the form the kernel
    multiplies by, once per weight load (``pack(weight, groups)``, passed as
    ``packed``); ``init`` gives each parameter and buffer its PyTorch default
    initialisation (``archdsl/runtime/init.py``); ``view`` says the output may
    share memory with the first input.
    """

    kernel: str
    arguments: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, str | None] = field(default_factory=dict)
    pack: str | None = None
    init: dict[str, str] = field(default_factory=dict)
    view: bool = False


#: PyTorch's default initialisation of conv and linear layers (reset_parameters).
WEIGHT_INIT = {"weight": "kaiming_uniform", "bias": "fan_in_uniform"}
#: ... and of normalisation layers and their running statistics.
NORM_INIT = {"weight": "ones", "bias": "zeros", "running_mean": "zeros", "running_var": "ones",
             "num_batches_tracked": "count"}


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
        return inputs[0]

    def parameter_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Trainable tensors by PyTorch's name and layout ("weight", "bias")."""
        return {}

    def buffer_shapes(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Non-trainable state (batchnorm running statistics)."""
        return {}

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """Multiply-accumulates of one sample (conv, linear only)."""
        return 0

    def flops(self, inputs: list[Shape], output: Shape, conventions: Conventions) -> int:
        """Floating-point operations of one sample (see docs/analysis.md)."""
        return self.flops_per_element * numel(output)

    def window(self, inputs: list[Shape], output: Shape) -> Window | None:
        """Sliding-window geometry, or None for a pointwise op."""
        return None

    def explain_shape(self, inputs: list[Shape], output: Shape) -> list[str]:
        """The output-size arithmetic, line by line, for ``archdsl explain``."""
        return []

    def explain_macs(self, inputs: list[Shape], output: Shape) -> str | None:
        """The MAC count as a product of named factors."""
        return None

    def kernel_call(self, inputs: list[Shape]) -> KernelCall:
        """How the NumPy runtime computes this op (archdsl/runtime/kernels.py)."""
        raise NotImplementedError(f"{self.kind()} has no NumPy kernel")

    def to_torch(self, inputs: list[Shape]) -> TorchLowering:
        """How an exported PyTorch module computes this op
        (``archdsl/ops/torch_lowering.py``, ``archdsl/emit/torch_module.py``)."""
        raise NoTorchLowering(self.kind(), "no lowering is defined for this op")
