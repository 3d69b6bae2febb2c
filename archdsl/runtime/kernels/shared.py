"""Helpers shared by the kernel families: per-dimension arguments,
channels-last memory, padding, strided window views, work buffers."""

import numpy as np


def _tuple(value, n):
    """An int or a sequence as an n-tuple of ints (one value per spatial dim)."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _pairs(padding, n):
    """Padding as n (before, after) pairs: an int, one int per dim, or pairs."""
    if isinstance(padding, (tuple, list)):
        return tuple((int(p), int(p)) if not isinstance(p, (tuple, list)) else (int(p[0]), int(p[1]))
                     for p in padding)
    return ((int(padding), int(padding)),) * n


def _product(values):
    """The product of a sequence of ints (1 when empty), as a Python int."""
    result = 1
    for value in values:
        result *= int(value)
    return result


def _offsets(kernel):
    """Every kernel tap ``(k_0, ..., k_{n-1})``, in row-major order (as
    ``np.ndindex``)."""
    offsets: list[tuple[int, ...]] = [()]
    for size in kernel:
        offsets = [offset + (k,) for offset in offsets for k in range(size)]
    return offsets


def _channels_last(x):
    """``x`` ``[N, C, *S]`` as a C-contiguous ``[N, *S, C]`` array; no copy
    when its memory already is channels-last."""
    return np.ascontiguousarray(x.transpose(0, *range(2, x.ndim), 1))


def _channels_first(y):
    """``[N, *S, C]`` memory viewed as ``[N, C, *S]`` (no copy)."""
    return y.transpose(0, y.ndim - 1, *range(1, y.ndim - 1))


def _is_channels_last(x):
    return x.ndim > 2 and x.transpose(0, *range(2, x.ndim), 1).flags.c_contiguous


def _pad_spatial(x, pairs, value=0.0):
    """``x`` ``[N, *S, C]`` with its spatial dims padded by (before, after)
    ``pairs`` of ``value``; ``x`` itself when there is nothing to pad."""
    if not any(before or after for before, after in pairs):
        return x
    shape = (x.shape[0], *(s + a + b for s, (a, b) in zip(x.shape[1:-1], pairs)), x.shape[-1])
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    out[(slice(None), *(slice(a, a + s) for s, (a, _) in zip(x.shape[1:-1], pairs)), slice(None))] = x
    return out


def _tap(x, offsets, counts, stride):
    """The strided view of ``x`` ``[N, *S, C]`` that one kernel tap sees:
    ``counts[d]`` positions from ``offsets[d]`` every ``stride[d]``."""
    return x[(slice(None),
              *(slice(o, o + (c - 1) * s + 1, s) for o, c, s in zip(offsets, counts, stride)),
              slice(None))]


def _windows(x, kernel, stride, dilation, counts):
    """Every window of the C-contiguous ``x`` ``[N, *S, C]`` as a strided
    view ``[N, *O, *K, C]`` (im2col without copying; only read)."""
    n = len(kernel)
    strides = x.strides
    shape = (x.shape[0], *counts, *kernel, x.shape[-1])
    view_strides = (strides[0], *(strides[1 + d] * stride[d] for d in range(n)),
                    *(strides[1 + d] * dilation[d] for d in range(n)), strides[-1])
    return np.ndarray(shape, x.dtype, x, 0, view_strides)


def _buffer(scratch, name, size, dtype):
    """A work array of ``size`` elements: a fresh one, or the start of the
    buffer kept under ``name`` in ``scratch`` (a dict shared by one forward
    pass's kernels, grown as needed), so that large buffers are allocated
    once per pass, not once per layer or per chunk."""
    if scratch is None:
        return np.empty(size, dtype)
    key = (name, np.dtype(dtype).str)
    buffer = scratch.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        scratch[key] = buffer
    return buffer[:size]


def _row_blocks(batch, lines, per_block):
    """How the kernels that work block by block split a batch of images of
    ``lines`` rows each (output rows, tile rows): blocks of whole images
    when an image fits in ``per_block`` rows, else runs of at most
    ``per_block`` rows of one image; as ``(n0, n1, r0, r1)``, images
    ``n0:n1`` and rows ``r0:r1``."""
    if per_block >= lines:
        images = min(batch, per_block // lines)
        return [(n0, min(batch, n0 + images), 0, lines) for n0 in range(0, batch, images)]
    return [(n0, n0 + 1, r0, min(lines, r0 + per_block)) for n0 in range(batch) for r0 in range(0, lines, per_block)]


def _block_bytes(kind):
    """Work-set sizes, in bytes, of the kernels that run block by block:
    ``"gemm"``, the im2col rows copied then multiplied at once (they stay in
    the last-level cache in between); ``"tap"``, the output block of a
    depthwise convolution, whose input rows, output and product buffer stay
    in cache through its taps.  (Measured on a 2-core AMD EPYC, 1 MB L2 per
    core, 32 MB L3: flat around these values.)"""
    return 1 << 22 if kind == "gemm" else 1 << 20
