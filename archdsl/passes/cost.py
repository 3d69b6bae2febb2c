"""Parameters, buffers, MACs and FLOPs of every node, asked of each op.

Conventions (docs/analysis.md): parameters are the trainable tensors as
PyTorch counts them; buffers (batchnorm running statistics and its
``num_batches_tracked`` counter) are separate; MACs are the multiply-
accumulates of convolutions and linear layers only, bias excluded (what
torchvision's "GFLOPS" column reports); FLOPs follow :class:`Conventions`.
All figures are for one sample; multiply by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..graph import Model
from ..ops.base import Conventions, Shape, numel
from .shapes import known_inputs


@dataclass(frozen=True)
class Cost:
    parameter_shapes: dict[str, Shape]
    buffer_shapes: dict[str, Shape]
    macs: int
    flops: int

    # Computed once: totals, reports and lint rules ask for them repeatedly.
    @cached_property
    def params(self) -> int:
        return sum(numel(s) for s in self.parameter_shapes.values())

    @cached_property
    def buffers(self) -> int:
        return sum(numel(s) for s in self.buffer_shapes.values())


#: The counting choices when none are given (a frozen dataclass: safe to share).
DEFAULT_CONVENTIONS = Conventions()


def count_costs(model: Model, shapes: dict[str, Shape | None], conventions: Conventions = DEFAULT_CONVENTIONS
                ) -> dict[str, Cost | None]:
    """Cost of each node whose shapes are known; None elsewhere."""
    costs: dict[str, Cost | None] = {}
    for node in model.nodes.values():
        output = shapes.get(node.name)
        inputs = known_inputs(shapes, node)
        if output is None or inputs is None:
            costs[node.name] = None
            continue
        spec = node.spec
        costs[node.name] = Cost(
            parameter_shapes=spec.parameter_shapes(inputs),
            buffer_shapes=spec.buffer_shapes(inputs),
            macs=spec.macs(inputs, output),
            flops=spec.flops(inputs, output, conventions),
        )
    return costs
