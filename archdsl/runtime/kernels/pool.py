"""Pooling kernels: max, average, adaptive average and max, global average and max.
Output sizes come from ``archdsl/ops/arith.py``, as the shape rules'."""

import numpy as np

from ...ops.arith import adaptive_range, pool_output_size
from .shared import _channels_first, _channels_last, _is_channels_last, _pad_spatial, _product, _tap, _tuple


def _max_along(x, axis, kernel, stride, padding, dilation, count):
    """Max pooling of ``x`` along one ``axis``: ``count`` outputs, output
    ``o`` the maximum of ``x[o·S + k·D - P]`` over the taps ``k`` that fall
    inside ``x`` (padding never wins, as ``-inf``; a window with no element
    inside is ``-inf``).  One maximum per tap, over the outputs it reaches."""
    size = x.shape[axis]
    ranges = []
    for k in range(kernel):
        offset = k * dilation - padding
        low = max(0, -(offset // stride))  # the first o with o·S + offset >= 0
        high = min(count, (size - 1 - offset) // stride + 1) if size - 1 - offset >= 0 else 0
        if high > low:
            ranges.append((low, high, offset))

    def view(low, high, offset):
        index = [slice(None)] * x.ndim
        index[axis] = slice(low * stride + offset, (high - 1) * stride + offset + 1, stride)
        return x[tuple(index)]

    full = [r for r in ranges if r[0] == 0 and r[1] == count]
    rest = [r for r in ranges if r not in full[:2]]
    if len(full) >= 2:
        y = np.maximum(view(*full[0]), view(*full[1]))
    elif full and not rest:  # one tap (C3D's kernel of 1 in time): a view; the caller copies once at the end
        return view(*full[0])
    elif full:
        y = np.array(view(*full[0]))
    else:
        shape = list(x.shape)
        shape[axis] = count
        y = np.full(shape, -np.inf, x.dtype)
    for low, high, offset in rest:
        index = [slice(None)] * x.ndim
        index[axis] = slice(low, high)
        target = y[tuple(index)]
        np.maximum(target, view(low, high, offset), out=target)
    return y


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d max pooling, as ``torch.nn.functional.max_pool1d/2d/3d``:
    ``y[n, c, *p] = max_k x_pad[n, c, *(p·S + k·D)]``, where the padding is
    ``-inf`` (a padded element never wins).  ``stride`` defaults to the
    kernel size; output size as ``pool_output_size`` (``ceil_mode`` adds a
    last, partial window unless it would start in the right padding).
    Implementation: the window is a box, so the maximum is taken one
    spatial dimension after the other (:func:`_max_along`, first dimension
    first: its taps are whole rows, contiguous), each tap an elementwise
    maximum over a strided view of the channels-last input, with no padded
    copy.
    """
    n = x.ndim - 2
    kernel = _tuple(kernel_size, n)
    stride = kernel if stride is None else _tuple(stride, n)
    padding, dilation = _tuple(padding, n), _tuple(dilation, n)
    y = _channels_last(x)
    for d in range(n):
        count = pool_output_size(y.shape[1 + d], kernel=kernel[d], stride=stride[d], padding=padding[d],
                                 dilation=dilation[d], ceil_mode=ceil_mode)
        y = _max_along(y, 1 + d, kernel[d], stride[d], padding[d], dilation[d], count)
    # A fresh array, never the input's memory (a window of one along every
    # dimension leaves a view of it): the plan may write into a kernel's output.
    return _channels_first(np.array(y) if np.may_share_memory(y, x) else np.ascontiguousarray(y))


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """N-d average pooling, as ``torch.nn.functional.avg_pool1d/2d/3d``:
    the sum of the window's elements (zero padding) over a divisor that,
    per dimension, is PyTorch's:

        start = p·S - P,  end = min(start + K, I + P)
        count_include_pad: end - start     (padding counts; a window clipped
                                            by ceil_mode at I + P does not)
        otherwise:         min(end, I) - max(start, 0)

    the divisor being the product over dimensions.  Implementation: a sum of
    one strided view per tap, times the reciprocal divisor grid.
    """
    n = x.ndim - 2
    kernel = _tuple(kernel_size, n)
    stride = kernel if stride is None else _tuple(stride, n)
    padding = _tuple(padding, n)
    xc = _channels_last(x)
    sizes = xc.shape[1:-1]
    counts = tuple(pool_output_size(i, kernel=k, stride=s, padding=p, dilation=1, ceil_mode=ceil_mode)
                   for i, k, s, p in zip(sizes, kernel, stride, padding))
    pairs = tuple((p, max(0, (c - 1) * s + k - i - p)) for i, k, s, p, c in zip(sizes, kernel, stride, padding, counts))
    xp = _pad_spatial(xc, pairs)
    offsets = np.ndindex(*kernel)
    y = np.array(_tap(xp, next(offsets), counts, stride))
    for offset in offsets:
        y += _tap(xp, offset, counts, stride)
    divisor = np.ones((), np.float64)
    for i, k, s, p, c in zip(sizes, kernel, stride, padding, counts):
        start = np.arange(c) * s - p
        end = np.minimum(start + k, i + p)
        size = end - start if count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, size)
    y *= (1.0 / divisor)[..., None].astype(y.dtype)
    return _channels_first(y)


def adaptive_matrix(size, out, dtype):
    """The ``[out, size]`` averaging matrix of adaptive pooling along one
    dimension: row i averages ``[floor(i·I/O), ceil((i+1)·I/O))``."""
    start, end = adaptive_range(np.arange(out), size, out)
    j = np.arange(size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool(x, output_size):
    """N-d adaptive average pooling, as
    ``torch.nn.functional.adaptive_avg_pool1d/2d/3d``: output position i
    along a dimension of size I averages input positions
    ``floor(i·I/O) .. ceil((i+1)·I/O) - 1``.  Averaging over a box is
    separable, so each dimension is one matrix multiply."""
    n = x.ndim - 2
    output_size = _tuple(output_size, n)
    y = x.transpose(0, *range(2, x.ndim), 1)
    for d, (size, out) in enumerate(zip(y.shape[1:-1], output_size)):
        if size != out:
            averaged = np.tensordot(adaptive_matrix(size, out, x.dtype), y, axes=([1], [d + 1]))
            y = np.moveaxis(averaged, 0, d + 1)
    return _channels_first(np.array(y) if np.may_share_memory(y, x) else np.ascontiguousarray(y))


def global_avg_pool(x):
    """The mean over every spatial dimension, kept as size 1:
    ``[N, C, *S] -> [N, C, 1, ...]``, as ``adaptive_avg_pool(x, 1)``
    (``torch.mean(x, dim=spatial, keepdim=True)``).  Summed by BLAS, as one
    matrix-vector product with ones per image over the memory as it lies
    (channels-last or channels-first): about 3x faster than NumPy's mean
    over strided axes with float64 sums, as it was (squeeze-and-excitation
    pools: 0.81 -> 0.25 ms at 1x96x112x112, 0.39 -> 0.15 ms at
    8x480x14x14), float32 sums within 1.6e-6 of float64 ones on such a map
    of 12,544 positive numbers."""
    n, c = x.shape[:2]
    size = _product(x.shape[2:])
    if _is_channels_last(x):
        sums = np.matmul(np.ones((1, size), x.dtype), x.transpose(0, *range(2, x.ndim), 1).reshape(n, size, c))
    else:
        sums = np.matmul(np.ascontiguousarray(x).reshape(n, c, size), np.ones((size, 1), x.dtype))
    sums /= np.asarray(size, x.dtype)
    return sums.reshape(n, c, *(1,) * (x.ndim - 2))


def adaptive_max_pool(x, output_size):
    """N-d adaptive max pooling, as
    ``torch.nn.functional.adaptive_max_pool1d/2d/3d``: output position i
    along a dimension of size I is the maximum over input positions
    ``floor(i·I/O) .. ceil((i+1)·I/O) - 1``.  The maximum over a box is
    taken one dimension after the other, one window at a time."""
    n = x.ndim - 2
    output_size = _tuple(output_size, n)
    y = x
    for d, out in enumerate(output_size):
        axis = d + 2
        size = y.shape[axis]
        if size == out:
            continue
        start, end = adaptive_range(np.arange(out), size, out)
        parts = [np.take(y, np.arange(s, e), axis=axis).max(axis=axis, keepdims=True) for s, e in zip(start, end)]
        y = np.concatenate(parts, axis=axis)
    return y


def global_max_pool(x):
    """The maximum over every spatial dimension, kept as size 1:
    ``[N, C, *S] -> [N, C, 1, ...]``, as ``adaptive_max_pool(x, 1)``."""
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)
