"""Resizing (``nn.Upsample``): nearest, linear, bicubic interpolation."""

import numpy as np

from .shared import _channels_first, _tuple


def _resize_axis(x, axis, out, scale_factor, mode, align_corners):
    """One spatial axis of :func:`interpolate` (separable), PyTorch's index
    arithmetic (``UpSample.h``) in the input's precision."""
    size = x.shape[axis]
    real: type[np.floating] = np.float32 if x.dtype == np.float32 else np.float64
    if mode == "nearest":
        if out == size:
            return x
        if out == 2 * size:
            return np.take(x, np.arange(out) >> 1, axis=axis)
        step = np.float32(1.0 / scale_factor if scale_factor else np.float32(size) / np.float32(out))
        index = np.floor(np.arange(out, dtype=np.float32) * step).astype(np.int64)
        return np.take(x, np.minimum(index, size - 1), axis=axis)
    scale: np.floating
    if align_corners:
        scale = real((size - 1) / (out - 1)) if out > 1 else real(0)
    else:
        scale = real(1.0 / scale_factor) if scale_factor else real(real(size) / real(out))
    dst: np.ndarray = np.arange(out).astype(real)
    shape = [1] * x.ndim
    shape[axis] = out
    if mode == "bicubic":
        source: np.ndarray = dst * scale if align_corners else (dst + real(0.5)) * scale - real(0.5)
        floor = np.floor(source)
        t = (source - floor).astype(real)
        a = real(-0.75)

        def near(v):  # |v| <= 1
            return ((a + 2) * v - (a + 3)) * v * v + 1

        def far(v):  # 1 < |v| < 2
            return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

        weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
        base = floor.astype(np.int64)
        y = None
        for j, w in enumerate(weights):
            term = np.take(x, np.clip(base - 1 + j, 0, size - 1), axis=axis) * w.reshape(shape).astype(x.dtype)
            y = term if y is None else y + term
        return y
    if out == size:
        return x
    source = dst * scale if align_corners else np.maximum((dst + real(0.5)) * scale - real(0.5), real(0))
    first = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.clip(source - first, 0, 1).astype(x.dtype)
    second = first + (first < size - 1)
    return (np.take(x, first, axis=axis) * (1 - high).reshape(shape)
            + np.take(x, second, axis=axis) * high.reshape(shape))


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resizing, as ``torch.nn.functional.interpolate`` (``nn.Upsample``):
    output size ``size``, or ``floor(I · scale_factor)``.  Per dimension,
    with ``scale = 1/scale_factor`` when given (PyTorch's rule), else
    ``I/O``:

    - ``nearest``: ``src = min(floor(dst · scale), I - 1)`` (float32 index
      arithmetic, as PyTorch's ``'nearest'``).
    - ``linear``/``bilinear``/``trilinear`` (separable):
      ``src = max(scale·(dst + 0.5) - 0.5, 0)``, or with ``align_corners``
      ``src = dst·(I-1)/(O-1)``; ``y = (1-λ)·x[i0] + λ·x[i0 + 1]`` where
      ``i0 = floor(src)``, ``λ = src - i0`` (``i0 + 1`` clamped to I - 1).
    - ``bicubic``: Keys' cubic convolution with ``A = -0.75`` over
      ``x[i0-1 .. i0+2]`` (indices clamped to the edge), src unclamped.
    """
    n = x.ndim - 2
    sizes = x.shape[2:]
    if size is not None:
        outputs, factors = _tuple(size, n), (None,) * n
    else:
        factors = tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (float(scale_factor),) * n
        outputs = tuple(int(np.floor(i * f)) for i, f in zip(sizes, factors))
    y = x.transpose(0, *range(2, x.ndim), 1)
    for d in range(n):
        y = _resize_axis(y, d + 1, outputs[d], factors[d], mode, bool(align_corners))
    return _channels_first(np.ascontiguousarray(y))
