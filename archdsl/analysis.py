"""Static analysis of a model: the passes run in order, and their results
gathered per node and in totals, as ``archdsl summary`` shows them.

>>> import archdsl
>>> model = archdsl.loads('''
... model Seed {
...     input x: [128, 50, 40]
...     x -> conv: conv2d(64, 3, padding=1, bias=false)
... }''').model()
>>> a = archdsl.analyze(model)
>>> a.shapes["conv"], a.totals.params
((64, 50, 40), 73728)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ._gc import paused_gc
from .diagnostics import Diagnostic
from .graph import Model
from .ops.base import Conventions, Shape
from .passes.cost import Cost, count_costs
from .passes.memory import DTYPE_BYTES, Memory, activation_memory
from .passes.receptive_field import Field, receptive_fields
from .passes.shapes import infer_shapes


@dataclass(frozen=True)
class Settings:
    batch: int = 1
    dtype: str = "float32"
    conventions: Conventions = field(default_factory=Conventions)

    def describe(self) -> str:
        return f"batch {self.batch}, {self.dtype}; {self.conventions.describe()}"


@dataclass(frozen=True)
class Totals:
    params: int
    buffers: int
    macs: int
    flops: int
    param_bytes: int
    peak_activation_bytes: int
    training_activation_bytes: int


@dataclass
class Analysis:
    model: Model
    settings: Settings
    shapes: dict[str, Shape | None]
    costs: dict[str, Cost | None]
    memory: Memory
    fields: dict[str, dict[str, Field]]
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return all(shape is not None for shape in self.shapes.values())

    # Computed once (the analysis is not changed after analyze() made it):
    # summaries, expectations and budgets each ask for it.
    @cached_property
    def totals(self) -> Totals:
        batch = self.settings.batch
        known = [c for c in self.costs.values() if c is not None]
        params = sum(c.params for c in known)
        return Totals(
            params=params,
            buffers=sum(c.buffers for c in known),
            macs=batch * sum(c.macs for c in known),
            flops=batch * sum(c.flops for c in known),
            param_bytes=params * DTYPE_BYTES[self.settings.dtype],
            peak_activation_bytes=self.memory.peak_bytes,
            training_activation_bytes=self.memory.training_bytes,
        )


@paused_gc
def analyze(model: Model, *, inputs: Mapping[str, Shape] | None = None, batch: int = 1, dtype: str = "float32",
            conventions: Conventions | None = None) -> Analysis:
    """Runs every pass on ``model``.  ``inputs`` overrides input shapes
    (batch excluded); ``batch`` scales MACs, FLOPs and activation memory."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    unknown = set(inputs or {}) - set(model.inputs)
    if unknown:
        raise ValueError(f"model {model.name} has no input named {', '.join(sorted(unknown))}; "
                         f"its inputs are {', '.join(model.inputs)}")
    settings = Settings(batch, dtype, conventions or Conventions())
    shapes, diagnostics = infer_shapes(model, inputs)
    return Analysis(
        model=model,
        settings=settings,
        shapes=shapes,
        costs=count_costs(model, shapes, settings.conventions),
        memory=activation_memory(model, shapes, batch=batch, dtype=dtype),
        fields=receptive_fields(model, shapes),
        diagnostics=diagnostics,
    )
