"""Activation memory: each node's output, the inference peak under liveness,
and what a training step keeps.

Inference runs the nodes in topological order; a tensor is allocated when
its node runs and freed right after its last consumer has run (model
outputs are kept).  The peak is the largest total of live tensors, measured
while a node runs (its inputs and its output are live together).  Training
keeps every node's output for the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import Model
from ..ops.base import Shape, numel

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class Memory:
    activation_bytes: dict[str, int]
    peak_bytes: int
    peak_node: str | None
    training_bytes: int


def activation_memory(model: Model, shapes: dict[str, Shape | None], *, batch: int = 1,
                      dtype: str = "float32") -> Memory:
    size = DTYPE_BYTES[dtype] * batch
    nbytes = {name: (numel(shape) * size if shape is not None else 0) for name, shape in shapes.items()}
    live = live_bytes(model, nbytes)
    peak, peak_node = sum(nbytes[name] for name in model.inputs), (model.inputs[0] if model.inputs else None)
    for name, total in live:
        if total > peak:
            peak, peak_node = total, name
    return Memory(nbytes, peak, peak_node, sum(nbytes.values()))


def live_bytes(model: Model, nbytes: dict[str, int]) -> list[tuple[str, int]]:
    """The bytes live while each non-input node runs, in execution order
    (what the report's memory chart draws; the peak is their maximum)."""
    last_use: dict[str, int] = {}
    order = list(model.nodes.values())
    for index, node in enumerate(order):
        for name in node.inputs:
            last_use[name] = index
    kept = set(model.outputs.values())
    live = sum(nbytes[name] for name in model.inputs)
    series = []
    for index, node in enumerate(order):
        if node.name in model.inputs:
            continue
        live += nbytes[node.name]
        series.append((node.name, live))
        for name in dict.fromkeys(node.inputs):
            if last_use.get(name) == index and name not in kept:
                live -= nbytes[name]
        if node.name not in last_use and node.name not in kept:
            live -= nbytes[node.name]  # a dead value is freed at once
    return series
