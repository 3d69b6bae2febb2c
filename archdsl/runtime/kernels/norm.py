"""Normalisation kernels (batch, layer, group, instance, local response), and folding an
inference batchnorm into the convolution before it."""

import numpy as np

from .shared import _product


def fold_batch_norm(weight, bias, bn_weight, bn_bias, running_mean, running_var, eps=1e-5):
    """A convolution followed by inference batchnorm, as one convolution:

        w'[o] = w[o] · s[o],   b'[o] = (b[o] - mean[o]) · s[o] + beta[o],   s = gamma / sqrt(var + eps)

    (``gamma`` = 1 and ``beta`` = 0 without affine, ``b`` = 0 without bias);
    exact in real arithmetic, computed in float64, returned in the weight's
    dtype.  The interpreter applies it once per weight load."""
    scale = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    if bn_weight is not None:
        scale = scale * bn_weight
    shift = -running_mean * scale
    if bn_bias is not None:
        shift = shift + bn_bias
    if bias is not None:
        shift = shift + bias * scale
    folded = weight * scale.reshape(-1, *(1,) * (weight.ndim - 1))
    return folded.astype(weight.dtype), shift.astype(weight.dtype)


def batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, eps=1e-5, inplace=False):
    """Batch normalisation at inference, as ``torch.nn.functional.batch_norm``
    with ``training=False``, per channel (dim 1):

        y = (x - mean) / sqrt(var + eps) · weight + bias

    with the running statistics; without them (``track_running_stats=False``)
    the batch's own mean and biased variance over every dim but 1, as
    PyTorch does in eval mode too.  Computed as ``x · scale + shift`` with
    scale and shift folded in float64."""
    axes = (0, *range(2, x.ndim))
    if running_mean is None:
        mean = x.mean(axis=axes, dtype=np.float64)
        var = x.var(axis=axes, dtype=np.float64)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    scale = 1.0 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = np.multiply(x, scale.astype(x.dtype).reshape(shape), out=x if inplace else None)
    y += shift.astype(x.dtype).reshape(shape)
    return y


def layer_norm(x, normalized_ndim, weight=None, bias=None, eps=1e-5):
    """Layer normalisation, as ``torch.nn.functional.layer_norm``: over the
    last ``normalized_ndim`` dims, ``y = (x - mean) / sqrt(var + eps) ·
    weight + bias`` with the biased variance, in ``x``'s dtype as PyTorch
    computes it (float32 statistics for float32).  Two passes for the
    statistics: the mean (a matrix-vector product with ones: BLAS sums a
    row several times faster than ``sum(axis=-1)``), then the mean of the
    squared deviations (``einsum``), so no cancellation as in
    ``E[x^2] - mean^2``; the result is a new C-contiguous array."""
    size = _product(x.shape[x.ndim - normalized_ndim:])
    rows = x.reshape(-1, size)
    y = np.empty(rows.shape, x.dtype)
    mean = rows @ np.ones(size, x.dtype)
    mean /= size
    np.subtract(rows, mean[:, None], out=y)
    var = np.einsum("ij,ij->i", y, y)
    var /= size
    var += eps
    y *= (1 / np.sqrt(var))[:, None]
    if weight is not None:
        y *= weight.reshape(-1)
    if bias is not None:
        y += bias.reshape(-1)
    return y.reshape(x.shape)


def layer_norm2d(x, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the channels (dim 1) at each position, as
    torchvision's ``LayerNorm2d``: ``layer_norm`` of the channels-last view
    over its last dim, moved back."""
    y = layer_norm(np.moveaxis(x, 1, -1), 1, weight, bias, eps)
    return np.moveaxis(y, -1, 1)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation, as ``torch.nn.functional.group_norm``: channels
    split into ``num_groups`` consecutive groups; each group of each sample
    normalised by its mean and biased variance over its channels and every
    position, ``y = (x - mean_g) / sqrt(var_g + eps) · weight_c + bias_c``
    (float32 reduced in float64)."""
    grouped = x.reshape(x.shape[0], num_groups, -1)
    wide = np.float64 if x.dtype == np.float32 else None
    mean = grouped.mean(axis=2, keepdims=True, dtype=wide)
    var = grouped.var(axis=2, keepdims=True, dtype=wide)
    y = ((grouped - mean) / np.sqrt(var + eps)).astype(x.dtype).reshape(x.shape)
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    if weight is not None:
        y *= weight.reshape(per_channel)
    if bias is not None:
        y += bias.reshape(per_channel)
    return y


def instance_norm(x, weight=None, bias=None, running_mean=None, running_var=None, eps=1e-5):
    """Instance normalisation at inference, as ``torch.nn.InstanceNorm{1,2,3}d``
    in eval mode: each channel of each sample normalised by its own mean and
    biased variance over the positions (``group_norm`` with one group per
    channel), then ``· weight + bias``; with running statistics
    (``track_running_stats``) those instead, as ``batch_norm``."""
    if running_mean is not None:
        return batch_norm(x, weight, bias, running_mean, running_var, eps)
    return group_norm(x, x.shape[1], weight, bias, eps)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels, as
    ``torch.nn.functional.local_response_norm``:

        y[c] = x[c] / (k + alpha · mean_{j = c - size//2 .. c + (size-1)//2} x[j]^2)^beta

    the mean always dividing by ``size`` (channels beyond the edges count as
    zeros).  Implementation: one shifted add per window position."""
    channels = x.shape[1]
    squares = np.square(x)
    before, after = size // 2, (size - 1) // 2
    padded = np.zeros((x.shape[0], channels + before + after, *x.shape[2:]), x.dtype)
    padded[:, before:before + channels] = squares
    total = np.zeros_like(squares)
    for j in range(size):
        total += padded[:, j:j + channels]
    return x / (k + alpha * (total / size)) ** beta
