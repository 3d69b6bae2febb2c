"""The fully connected layer, and a learnable elementwise scale."""

import numpy as np


def linear(x, weight, bias=None):
    """``y = x · weight^T + bias`` over the last dimension, as
    ``torch.nn.functional.linear`` (weight ``[out, in]``).  A small batch
    is computed as ``(weight · x^T)^T``, which BLAS streams the weight
    through much faster than the skinny ``x · weight^T``.  More than two
    dims are flattened to one matrix first (one BLAS call, where ``matmul``
    would make one per row of a stack: ConvNeXt's MLP on ``[N, H, W, C]``)."""
    if x.ndim == 2 and x.shape[0] < 64:
        y = np.ascontiguousarray(np.matmul(weight, np.ascontiguousarray(x.T)).T)
    elif x.ndim > 2:
        y = np.matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(*x.shape[:-1], weight.shape[0])
    else:
        y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y


def scale(x, weight):
    """``x · weight``, the weight broadcast from the right over ``x`` without
    its batch dim (ConvNeXt's ``layer_scale``, ``[C, 1, 1]``)."""
    return x * weight
