"""Kernels joining several tensors: add, mul, sub, concat."""

import numpy as np

from .activation import _finish
from .shared import _channels_first, _channels_last, _is_channels_last


def add(*xs, inplace=False, activation=None):
    """The elementwise sum of tensors of one shape (``torch.add``); with
    ``inplace`` the result goes into the first.  ``activation``
    (``"relu"``, ``"relu6"``) is applied to the sum in place, as the
    separate kernel would."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    first = xs[0]
    if inplace and first.shape == shape:
        y = first
        for other in xs[1:]:
            y += other
    else:
        y = np.add(xs[0], xs[1])
        for other in xs[2:]:
            y += other
    _finish(y, None, activation)
    return y


def mul(*xs, inplace=False):
    """The elementwise product with NumPy (= PyTorch) broadcasting, aligned
    from the right (``[N, C, H, W] * [N, C, 1, 1]``), as ``torch.mul``; with
    ``inplace`` the result goes into the first when it has the result's
    shape."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    first = xs[0]
    if inplace and first.shape == shape:
        y = first
        for other in xs[1:]:
            y *= other
        return y
    y = np.multiply(xs[0], xs[1])
    for other in xs[2:]:
        y *= other
    return y


def sub(a, b):
    """The elementwise difference ``a - b`` with NumPy (= PyTorch)
    broadcasting, as ``torch.sub``."""
    return np.subtract(a, b)


def concat(*xs, dim=1):
    """Concatenation along ``dim`` (batch is 0), as ``torch.cat``; channels-
    last inputs joined along channels stay channels-last."""
    axis = dim % xs[0].ndim
    if axis == 1 and all(_is_channels_last(x) for x in xs):
        return _channels_first(np.concatenate([_channels_last(x) for x in xs], axis=-1))
    return np.concatenate(xs, axis=axis)
