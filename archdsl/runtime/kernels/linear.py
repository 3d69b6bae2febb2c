"""The fully connected layer, and a learnable elementwise scale."""

import numpy as np


def pack_linear_weight(weight, groups=1, bias=None):
    """The linear weight ``[out, in]`` transposed to a C-contiguous
    ``[in, out]``, the matrix :func:`linear` multiplies many rows by
    (``groups`` and ``bias`` are accepted, as :func:`pack_conv_weight` takes
    them, and not used).  Computed once per weight load."""
    return np.ascontiguousarray(weight.T)


def linear(x, weight, bias=None, packed=None, scratch=None):
    """``y = x · weight^T + bias`` over the last dimension, as
    ``torch.nn.functional.linear`` (weight ``[out, in]``).  More than two
    dims are flattened to one matrix first (one BLAS call, where ``matmul``
    would make one per row of a stack: ConvNeXt's MLP on ``[N, H, W, C]``).
    Fewer than 64 rows are computed as ``(weight · x^T)^T``, which BLAS
    streams the weight through much faster than the skinny ``x · weight^T``
    (ConvNeXt-T's last stage at batch 1, 49 rows of 768 by 3072: 2.4 ms
    instead of 2.9, weights in cache); more as ``x · packed``, ``packed``
    being :func:`pack_linear_weight`'s ``[in, out]`` copy of the weight
    (5-15% faster than the transposed view ``weight^T``, weights in memory:
    3.1 instead of 3.6 ms at 49 rows, 1.95 instead of 2.14 ms at 196 rows of
    384 by 1536).  ``scratch`` is accepted, as the convolutions take it, and
    not used."""
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] < 64:
        y = np.ascontiguousarray(np.matmul(weight, np.ascontiguousarray(rows.T)).T)
    else:
        y = np.matmul(rows, weight.T if packed is None else packed)
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


def scale(x, weight, inplace=False):
    """``x · weight``, the weight broadcast from the right over ``x`` without
    its batch dim (ConvNeXt's ``layer_scale``, ``[C, 1, 1]``); with
    ``inplace`` the result goes into ``x``."""
    return np.multiply(x, weight, out=x if inplace else None)
