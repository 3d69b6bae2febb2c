"""Darknet .weights -> state_dict arrays (PyTorch names and layouts).

The file (parser.c load_weights_upto): int32 major, minor, revision; then
``seen``, 64-bit when major·10 + minor >= 2, else 32-bit; then float32
tensors layer by layer: a convolution's biases, then with batch norm its
scales, rolling mean and rolling variance, then its weights
[filters, channels/groups, size, size] (PyTorch's layout already); a
connected layer's biases then weights [outputs, inputs] (transposed in the
file when major or minor > 1000).
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from .writer import Network


def _fail(message: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error("E606", message, None)])


def convert_weights(net: Network, data: bytes, name: str = "weights") -> dict[str, np.ndarray]:
    if len(data) < 16:
        raise _fail(f"{name}: {len(data)} bytes is too short for a Darknet weights header")
    major, minor, _revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    offset = 20 if major * 10 + minor >= 2 else 16
    transpose = major > 1000 or minor > 1000
    if (len(data) - offset) % 4:
        raise _fail(f"{name}: the data after the header is not a whole number of float32 values")
    values = np.frombuffer(data, "<f4", offset=offset)
    arrays: dict[str, np.ndarray] = {}
    at = 0

    def take(count: int, shape: tuple[int, ...]) -> np.ndarray:
        nonlocal at
        if at + count > len(values):
            raise _fail(f"{name}: the file ends after {len(values):,} numbers; the network needs more "
                        "(is it the weights of another cfg?)")
        out = values[at:at + count].reshape(shape).astype(np.float32)
        at += count
        return out

    for kind, label, bn, shape in net.weight_plan:
        n = shape[0]
        biases = take(n, (n,))
        if kind == "connected":
            weight = take(shape[0] * shape[1], (shape[1], shape[0]) if transpose else shape)
            arrays[f"{label}.weight"] = weight.T.copy() if transpose else weight
            arrays[f"{label}.bias"] = biases
            continue
        if bn is not None:
            arrays[f"{bn}.bias"] = biases          # darknet's biases are the batch norm's shift
            arrays[f"{bn}.weight"] = take(n, (n,))
            arrays[f"{bn}.running_mean"] = take(n, (n,))
            arrays[f"{bn}.running_var"] = take(n, (n,))
            arrays[f"{bn}.num_batches_tracked"] = np.array(0, np.int64)  # a PyTorch buffer darknet lacks
        else:
            arrays[f"{label}.bias"] = biases
        arrays[f"{label}.weight"] = take(int(np.prod(shape)), shape)
    if at != len(values):
        raise _fail(f"{name}: {len(values) - at:,} numbers are left over after the network's {at:,} "
                    "(is it the weights of another cfg?)")
    return arrays
