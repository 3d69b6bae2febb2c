"""Kernels that move or select elements without arithmetic: flatten,
identity, dropout (inference), narrow, channel shuffle, pixel shuffle and
unshuffle, permute, pad."""

import numpy as np

from .shared import _channels_first, _channels_last, _is_channels_last


def flatten(x, start_dim=1, end_dim=-1):
    """Merges dims ``start_dim..end_dim``, as ``torch.flatten``: the
    elements in the logical (row-major NCHW) order whatever the memory
    layout."""
    start, end = start_dim % x.ndim, end_dim % x.ndim
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return x.reshape(shape)


def identity(x):
    """``x`` itself (``torch.nn.Identity``)."""
    return x


def dropout(x, p=0.5):
    """Inference: ``x`` itself, as ``torch.nn.functional.dropout`` with
    ``training=False`` (``p`` only matters when training)."""
    return x


def narrow(x, dim, start, length):
    """``x[..., start:start + length, ...]`` along ``dim``, as
    ``torch.narrow`` (a view)."""
    index = [slice(None)] * x.ndim
    index[dim % x.ndim] = slice(start, start + length)
    return x[tuple(index)]


def channel_shuffle(x, groups):
    """ShuffleNet's channel shuffle, as ``torch.nn.functional.channel_shuffle``:
    channels viewed as ``[groups, C/groups]``, transposed to
    ``[C/groups, groups]`` and flattened back: output channel
    ``j·groups + g`` is input channel ``g·(C/groups) + j``."""
    channels = x.shape[1]
    if x.ndim > 2 and _is_channels_last(x):
        xc = _channels_last(x)
        shuffled = xc.reshape(*xc.shape[:-1], groups, channels // groups).swapaxes(-1, -2)
        return _channels_first(np.ascontiguousarray(shuffled).reshape(xc.shape))
    shuffled = x.reshape(x.shape[0], groups, channels // groups, *x.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(shuffled).reshape(x.shape)


def pixel_shuffle(x, upscale_factor):
    """Sub-pixel rearrangement, as ``torch.nn.functional.pixel_shuffle``:
    ``[N, C·r², H, W] -> [N, C, H·r, W·r]`` with

        y[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w]

    (one reshape, one transpose, one copy)."""
    r = upscale_factor
    batch, channels, height, width = x.shape
    c = channels // (r * r)
    y = x.reshape(batch, c, r, r, height, width).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(batch, c, height * r, width * r)


def pixel_unshuffle(x, downscale_factor):
    """The inverse of :func:`pixel_shuffle`, as
    ``torch.nn.functional.pixel_unshuffle``: ``[N, C, H·r, W·r] -> [N,
    C·r², H, W]`` with

        y[n, c·r² + i·r + j, h, w] = x[n, c, h·r + i, w·r + j]

    (one reshape, one transpose, one copy)."""
    r = downscale_factor
    batch, channels, height, width = x.shape
    y = x.reshape(batch, channels, height // r, r, width // r, r).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(batch, channels * r * r, height // r, width // r)


def permute(x, dims):
    """The dims of ``x`` reordered, output dim i being input dim ``dims[i]``
    (the batch is 0), as ``torch.permute`` (a view)."""
    return x.transpose(dims)


def pad(x, pad, mode="constant", value=0.0):
    """Padding as ``torch.nn.functional.pad``: ``pad`` lists (before, after)
    pairs from the last dimension backwards; negative values crop.
    ``constant`` fills ``value``; ``reflect`` mirrors without repeating the
    edge; ``replicate`` repeats the edge; ``circular`` wraps around."""
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs[::-1]
    crop = tuple(slice(max(0, -a), s - max(0, -b)) for s, (a, b) in zip(x.shape, widths))
    x = x[crop]
    widths = [(max(0, a), max(0, b)) for a, b in widths]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    return np.pad(x, widths, mode="wrap")  # circular
