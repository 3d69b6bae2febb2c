"""What running a plan would take, checked before anything is allocated
(docs/security.md): a model from a stranger's pull request must not make
``archdsl run`` or ``export`` allocate without bound or hand NumPy
arguments it cannot hold.

* :func:`oversized_arguments`: an integer argument of an op (a stride, a
  kernel size, a padding) beyond ``Limits.max_dimension`` (2**31) is E901 at
  the op: no input the runtime can hold makes such a value meaningful, and
  NumPy's strided views overflow on it.
* :func:`memory_estimate`: the bytes a run needs, from the analysis's
  activation memory (archdsl/passes/memory.py: the inference peak under
  liveness) plus the weights (twice: as loaded, and packed for the kernels)
  plus one more of the largest activation (the kernels' workspace: im2col
  blocks, padded copies).  A lower-bound-style estimate, not an exact
  figure: it is used to refuse runs that cannot fit, before allocating.
  (The packed copy is larger for 3x3 convolutions on the Winograd path:
  16/9 of their weight, 25/9 where both forms are kept; ResNet-50's packed
  weights are 138 MB for 102 MB loaded.  Still a lower bound.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..diagnostics import Diagnostic
from ..graph import Model
from ..passes.memory import DTYPE_BYTES, activation_memory

#: ``archdsl run --max-memory`` default: 8 GiB.
DEFAULT_MAX_MEMORY = 8 * 2**30


def _integers(value) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _integers(item)


def oversized_arguments(model: Model, limit: int) -> list[Diagnostic]:
    """E901 for each node with an integer argument larger than ``limit``."""
    found = []
    for node in model.nodes.values():
        for field_name in type(node.spec).model_fields:
            largest = max(_integers(getattr(node.spec, field_name)), default=0, key=abs)
            if abs(largest) > limit:
                found.append(Diagnostic.error(
                    "E901", f"{node.spec.kind()}: {field_name} {largest} is larger than the limit of {limit} that a "
                    "model can run with", node.span))
                break
    return found


def memory_estimate(plan, *, batch: int, dtype: str) -> int:
    """Bytes that running ``plan`` on a batch of ``batch`` needs (see the module docstring)."""
    memory = activation_memory(plan.model, plan.shapes, batch=batch, dtype=dtype)
    size = DTYPE_BYTES[dtype]
    weights = sum(math.prod(shape) for _, shape, _, _ in plan.parameters) * size
    largest = max(memory.activation_bytes.values(), default=0)
    return memory.peak_bytes + 2 * weights + largest


def gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"
