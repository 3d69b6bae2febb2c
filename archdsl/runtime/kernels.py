"""NumPy kernels: the one implementation of every op's forward pass.

Conventions shared by every kernel:

- Tensors are NumPy arrays in PyTorch's logical layout, batch first:
  ``[N, C, L]``, ``[N, C, H, W]``, ``[N, C, D, H, W]``, or ``[N, F]``.  Their
  *memory* may be channels-last: the convolution and pooling kernels work
  on ``[N, *spatial, C]`` memory (the channels contiguous, so that im2col
  rows are contiguous and one matrix multiply covers the whole batch) and
  return that memory viewed as ``[N, C, *spatial]``.  Every other kernel
  takes any strides, so no layout conversion happens between layers.
- Arguments have PyTorch's names and meaning (``dim`` counts the batch as 0).
  Weights have PyTorch's layouts: conv ``[C_out, C_in/groups, *K]``,
  transposed conv ``[C_in, C_out/groups, *K]``, linear ``[out, in]``.
- No Python loop runs over pixels, the batch or channels.  Loops that remain
  run over kernel taps (at most prod(K) iterations), groups of a grouped
  convolution's batched multiply, spatial axes, or polynomial terms.
- ``inplace=True`` lets an elementwise kernel overwrite its first input; the
  interpreter asks for it only when that input is dead afterwards.

The source text of these functions is copied verbatim into modules written by
``archdsl export`` (``archdsl/emit/numpy_module.py``), so they may use only
NumPy and each other.  Each docstring gives the formula and the PyTorch
function whose semantics it follows (checked in tests/test_runtime_kernels.py
against direct loop implementations of the definitions).
"""

import numpy as np


# --------------------------------------------------------------------- helpers


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
    """Every window of ``x`` ``[N, *S, C]`` as a read-only strided view
    ``[N, *O, *K, C]`` (im2col without copying)."""
    n = len(kernel)
    strides = x.strides
    shape = (x.shape[0], *counts, *kernel, x.shape[-1])
    view_strides = (strides[0], *(strides[1 + d] * stride[d] for d in range(n)),
                    *(strides[1 + d] * dilation[d] for d in range(n)), strides[-1])
    return np.lib.stride_tricks.as_strided(x, shape, view_strides, writeable=False)


def _gather(view, scratch):
    """A C-contiguous copy of ``view``, written into the buffer kept in the
    ``scratch`` dict (one per forward pass, shared by its convolutions) when
    given, so that large im2col buffers are allocated once, not per layer."""
    if scratch is None:
        return np.ascontiguousarray(view)
    size = view.size
    buffer = scratch.get(view.dtype.str)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, view.dtype)
        scratch[view.dtype.str] = buffer
    out = buffer[:size].reshape(view.shape)
    np.copyto(out, view)
    return out


def _window_count(size, kernel, stride, padding, dilation, ceil_mode=False):
    """PyTorch's output size ``floor((I + 2P - D(K-1) - 1)/S) + 1``; with
    ``ceil_mode`` rounded up, less one if the last window would start in
    the right padding."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return numerator // stride + 1
    count = -(-numerator // stride) + 1
    if (count - 1) * stride >= size + padding:
        count -= 1
    return count


# ---------------------------------------------------------------- convolution


def pack_conv_weight(weight, groups=1):
    """The conv weight ``[C_out, C_in/g, *K]`` as the matrices :func:`conv`
    multiplies by: ``[g, prod(K)·C_in/g, C_out/g]`` (rows ordered tap-major,
    as the channels-last im2col columns), or ``[prod(K), C]`` for a depthwise
    convolution.  Computed once per weight load, not per call."""
    c_out, c_group = weight.shape[:2]
    taps = int(np.prod(weight.shape[2:], dtype=np.int64))
    if groups > 1 and c_group == 1 and groups == c_out:
        return np.ascontiguousarray(weight.reshape(c_out, taps).T)
    packed = weight.reshape(groups, c_out // groups, c_group, taps).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(packed.reshape(groups, taps * c_group, c_out // groups))


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, packed=None, scratch=None):
    """N-d convolution (cross-correlation: the kernel is not flipped), as
    ``torch.nn.functional.conv1d/conv2d/conv3d``:

        y[n, o, *p] = bias[o] + sum_{c, *k} w[o, c, *k] · x_pad[n, g(o)·C_in/g + c, *(p·S + k·D)]

    where ``g(o) = o // (C_out/groups)`` and ``x_pad`` is ``x`` with zero
    ``padding`` (an int, one int per dim, or (before, after) pairs per dim:
    PyTorch's ``padding="same"`` with an even extent puts the extra one at
    the end).  Output size ``floor((I + P_before + P_after - D(K-1) - 1)/S) + 1``.

    Implementation: channels-last im2col (a strided view of every window,
    copied once into ``[groups, N·prod(O), prod(K)·C_in/g]``) and one batched
    BLAS matrix multiply by :func:`pack_conv_weight`'s matrices; 1x1 kernels
    skip im2col; depthwise convolutions (``groups == C_in == C_out``)
    accumulate one multiply per kernel tap.  ``packed``: the weight from
    :func:`pack_conv_weight`, computed once; ``scratch``: a dict reused for
    the im2col buffer (see :func:`_gather`).
    """
    n = x.ndim - 2
    kernel = weight.shape[2:]
    c_out = weight.shape[0]
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    xc = _pad_spatial(_channels_last(x), _pairs(padding, n))
    batch, channels = xc.shape[0], xc.shape[-1]
    counts = tuple((s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(xc.shape[1:-1], kernel, stride, dilation))
    if packed is None:
        packed = pack_conv_weight(weight, groups)
    if groups > 1 and weight.shape[1] == 1 and groups == c_out:
        # Depthwise: y = sum over taps of (window · w_tap), channel by channel.
        y = np.empty((batch, *counts, channels), xc.dtype)
        term = np.empty_like(y)
        for tap, offset in enumerate(np.ndindex(*kernel)):
            window = _tap(xc, [o * d for o, d in zip(offset, dilation)], counts, stride)
            if tap == 0:
                np.multiply(window, packed[0], out=y)
            else:
                np.multiply(window, packed[tap], out=term)
                y += term
    else:
        rows = batch * int(np.prod(counts, dtype=np.int64))
        c_group = channels // groups
        if all(k == 1 for k in kernel):
            if any(s > 1 for s in stride):
                xc = _gather(_tap(xc, (0,) * n, counts, stride), scratch)
            cols = xc.reshape(rows, groups, c_group).transpose(1, 0, 2)
        else:
            view = _windows(xc, kernel, stride, dilation, counts)
            view = view.reshape(*view.shape[:-1], groups, c_group)
            cols = _gather(np.moveaxis(view, -2, 0), scratch).reshape(groups, rows, -1)
        y = np.matmul(cols, packed)
        y = y[0] if groups == 1 else y.transpose(1, 0, 2).reshape(rows, c_out)
        y = y.reshape(batch, *counts, c_out)
    if bias is not None:
        y += bias
    return _channels_first(y)


def pack_conv_transpose_weight(weight, groups=1):
    """The transposed-conv weight ``[C_in, C_out/g, *K]`` as
    ``[g, C_in/g, prod(K)·C_out/g]`` matrices for :func:`conv_transpose`."""
    c_in, c_group = weight.shape[:2]
    taps = int(np.prod(weight.shape[2:], dtype=np.int64))
    packed = weight.reshape(groups, c_in // groups, c_group, taps).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(packed.reshape(groups, c_in // groups, taps * c_group))


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   packed=None, scratch=None):
    """N-d transposed convolution (the gradient of :func:`conv` with respect
    to its input), as ``torch.nn.functional.conv_transpose1d/2d/3d``:

        full[n, g·C_out/g + o, *(i·S + k·D)] += x[n, g·C_in/g + c, *i] · w[g·C_in/g + c, o, *k]
        y = full[:, :, P : P + O] + bias,   O = (I - 1)S - 2P + D(K-1) + output_padding + 1

    ``output_padding`` only adds positions at the end (zeros plus bias where
    no input reaches).  Implementation: one batched matrix multiply of every
    input pixel by every kernel tap, then one strided add per tap (col2im).
    ``packed``: :func:`pack_conv_transpose_weight`'s matrices; ``scratch``
    as in :func:`conv` (unused: accepted so that both take the same
    prepared arguments).
    """
    n = x.ndim - 2
    kernel = weight.shape[2:]
    c_in, c_group = weight.shape[:2]
    c_out = c_group * groups
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    padding, output_padding = _tuple(padding, n), _tuple(output_padding, n)
    if packed is None:
        packed = pack_conv_transpose_weight(weight, groups)
    xc = _channels_last(x)
    batch, sizes = xc.shape[0], xc.shape[1:-1]
    rows = batch * int(np.prod(sizes, dtype=np.int64))
    cols = np.matmul(xc.reshape(rows, groups, c_in // groups).transpose(1, 0, 2), packed)
    cols = cols.reshape(groups, batch, *sizes, -1, c_group)
    full_sizes = tuple((i - 1) * s + d * (k - 1) + 1 + op
                       for i, s, d, k, op in zip(sizes, stride, dilation, kernel, output_padding))
    full = np.zeros((batch, *full_sizes, groups, c_group), xc.dtype)
    for tap, offset in enumerate(np.ndindex(*kernel)):
        target = full[(slice(None),
                       *(slice(o * d, o * d + (i - 1) * s + 1, s) for o, d, i, s in zip(offset, dilation, sizes, stride)),
                       slice(None), slice(None))]
        target += np.moveaxis(cols[..., tap, :], 0, -2)
    outputs = tuple(f - 2 * p for f, p in zip(full_sizes, padding))
    y = full[(slice(None), *(slice(p, p + o) for p, o in zip(padding, outputs)), slice(None), slice(None))]
    y = np.ascontiguousarray(y).reshape(batch, *outputs, c_out)
    if bias is not None:
        y += bias
    return _channels_first(y)


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


def linear(x, weight, bias=None):
    """``y = x · weight^T + bias`` over the last dimension, as
    ``torch.nn.functional.linear`` (weight ``[out, in]``).  A small batch
    is computed as ``(weight · x^T)^T``, which BLAS streams the weight
    through much faster than the skinny ``x · weight^T``."""
    if x.ndim == 2 and x.shape[0] < 64:
        y = np.ascontiguousarray(np.matmul(weight, np.ascontiguousarray(x.T)).T)
    else:
        y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y


# -------------------------------------------------------------------- pooling


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d max pooling, as ``torch.nn.functional.max_pool1d/2d/3d``:
    ``y[n, c, *p] = max_k x_pad[n, c, *(p·S + k·D)]``, where the padding is
    ``-inf`` (a padded element never wins).  ``stride`` defaults to the
    kernel size; output size as :func:`_window_count` (``ceil_mode`` adds a
    last, partial window unless it would start in the right padding).
    Implementation: an elementwise maximum over one strided view per tap.
    """
    n = x.ndim - 2
    kernel = _tuple(kernel_size, n)
    stride = kernel if stride is None else _tuple(stride, n)
    padding, dilation = _tuple(padding, n), _tuple(dilation, n)
    xc = _channels_last(x)
    sizes = xc.shape[1:-1]
    counts = tuple(_window_count(i, k, s, p, d, ceil_mode)
                   for i, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    pairs = tuple((p, max(0, (c - 1) * s + d * (k - 1) + 1 - i - p))
                  for i, k, s, p, d, c in zip(sizes, kernel, stride, padding, dilation, counts))
    xp = _pad_spatial(xc, pairs, -np.inf)
    y = None
    for offset in np.ndindex(*kernel):
        window = _tap(xp, [o * d for o, d in zip(offset, dilation)], counts, stride)
        if y is None:
            y = np.array(window)
        else:
            np.maximum(y, window, out=y)
    return _channels_first(y)


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
    counts = tuple(_window_count(i, k, s, p, 1, ceil_mode) for i, k, s, p in zip(sizes, kernel, stride, padding))
    pairs = tuple((p, max(0, (c - 1) * s + k - i - p)) for i, k, s, p, c in zip(sizes, kernel, stride, padding, counts))
    xp = _pad_spatial(xc, pairs)
    y = None
    for offset in np.ndindex(*kernel):
        window = _tap(xp, offset, counts, stride)
        if y is None:
            y = np.array(window)
        else:
            y += window
    divisor = np.ones((), np.float64)
    for d, (i, k, s, p, c) in enumerate(zip(sizes, kernel, stride, padding, counts)):
        start = np.arange(c) * s - p
        end = np.minimum(start + k, i + p)
        size = end - start if count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, size)
    y *= (1.0 / divisor)[..., None].astype(y.dtype)
    return _channels_first(y)


def _adaptive_matrix(size, out, dtype):
    """The ``[out, size]`` averaging matrix of adaptive pooling along one
    dimension: row i averages ``[floor(i·I/O), ceil((i+1)·I/O))``."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
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
            averaged = np.tensordot(_adaptive_matrix(size, out, x.dtype), y, axes=([1], [d + 1]))
            y = np.moveaxis(averaged, 0, d + 1)
    return _channels_first(np.ascontiguousarray(y))


def global_avg_pool(x):
    """The mean over every spatial dimension, kept as size 1:
    ``[N, C, *S] -> [N, C, 1, ...]``, as ``adaptive_avg_pool(x, 1)``
    (``torch.mean(x, dim=spatial, keepdim=True)``); float32 is summed in
    float64."""
    axes = tuple(range(1, x.ndim - 1))
    xc = x.transpose(0, *range(2, x.ndim), 1)
    mean = xc.mean(axis=axes, dtype=np.float64 if x.dtype == np.float32 else None).astype(x.dtype)
    return mean.reshape(*mean.shape, *(1,) * (x.ndim - 2))


# -------------------------------------------------------------- normalisation


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
    weight + bias`` with the biased variance (float32 reduced in float64)."""
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    wide = np.float64 if x.dtype == np.float32 else None
    mean = x.mean(axis=axes, keepdims=True, dtype=wide)
    var = x.var(axis=axes, keepdims=True, dtype=wide)
    y = ((x - mean) / np.sqrt(var + eps)).astype(x.dtype)
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias
    return y


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


# ----------------------------------------------------------------- activations


def relu(x, inplace=False):
    """``max(0, x)``, as ``torch.nn.functional.relu``."""
    return np.maximum(x, 0, out=x if inplace else None)


def relu6(x, inplace=False):
    """``min(max(0, x), 6)``, as ``torch.nn.functional.relu6``."""
    return np.clip(x, 0, 6, out=x if inplace else None)


def leaky_relu(x, negative_slope=0.01):
    """``x if x > 0 else negative_slope · x``, as
    ``torch.nn.functional.leaky_relu``."""
    return np.where(x > 0, x, x * np.asarray(negative_slope, x.dtype))


def sigmoid(x):
    """``1 / (1 + exp(-x))``, as ``torch.sigmoid``; evaluated as
    ``e / (1 + e)`` with ``e = exp(-|x|)`` on the negative side, so that
    ``exp`` never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x, inplace=False):
    """``tanh(x)``, as ``torch.tanh``."""
    return np.tanh(x, out=x if inplace else None)


def erf(x):
    """The error function ``erf(x) = 2/sqrt(pi) · integral_0^x exp(-t^2) dt``,
    vectorised, without SciPy: Chebyshev expansions fitted to the correctly
    rounded erf (absolute error below 3e-15 in float64; float32 inputs are
    evaluated, and returned, in float64):

        |x| < 1:      erf(x) = x · sum_j a_j T_j(2x^2 - 1)
        1 <= |x| < 6: erf(x) = sign(x) · sum_j b_j T_j(t), t mapped from
                      [1, 2.5], [2.5, 4] or [4, 6] onto [-1, 1]
        |x| >= 6:     erf(x) = sign(x)   (1 - erf(6) < 2.2e-17)
    """
    inner = (0.975476939382654, -0.14226120510371365, 0.01003558218759958, -0.0005768764699767281,
             2.7419931252194793e-05, -1.1043175507576628e-06, 3.8488755071952596e-08,
             -1.1808581334982193e-09, 3.233384267402202e-11, -7.990275108227252e-13, 1.7511244979314968e-14)
    pieces = (
        (1.0, 2.5, (0.9555018694229291, 0.06868056884383081, -0.0328147894348236, 0.009756490312318131,
                    -0.0015927248935882342, 1.9131436092702602e-05, 5.2450955927815645e-05,
                    -1.0314610604037664e-05, 1.5039593170840249e-07, 2.5290492828610706e-07,
                    -3.688717446112982e-08, -1.304670324991638e-09, 9.173883494966991e-10,
                    -6.752819940652144e-11, -1.0455110461592946e-11, 2.0845839674315788e-12,
                    -1.42576009478178e-15, -3.193352015566569e-14, 2.8778149454099454e-15)),
        (2.5, 4.0, (0.9999181037208068, 0.00014369534414177863, -9.760891384374677e-05, 5.1963455155118175e-05,
                    -2.193250926369198e-05, 7.387956318669503e-06, -1.981648520756417e-06,
                    4.1562205055940897e-07, -6.448856155515908e-08, 6.07830103208815e-09,
                    9.353522634787743e-11, -1.535996359342861e-10, 2.861797056640189e-11,
                    -2.3320117766669875e-12, -1.1379786002407855e-13, 5.791273893189435e-14,
                    -6.205562379746927e-15, 9.349246523159212e-17, 4.93757082004346e-16)),
        (4.0, 6.0, (0.9999999978454461, 4.0496577319596615e-09, -3.3628571272677285e-09, 2.4706731631334533e-09,
                    -1.6090441026356554e-09, 9.309945095549809e-10, -4.796892123281574e-10,
                    2.205566723408705e-10, -9.064311874184521e-11, 3.332688511124472e-11,
                    -1.096019181844847e-11, 3.2191091897378725e-12, -8.409647247581712e-13,
                    1.9411957421617013e-13, -3.8413716652030416e-14, 6.6730247059048886e-15,
                    -2.220446049250313e-16, -1.7529837230923523e-17, 4.674623261579606e-16)),
    )

    def chebyshev(t, coefficients):
        # Clenshaw's recurrence for sum_j c_j T_j(t).
        b1 = np.zeros_like(t)
        b2 = np.zeros_like(t)
        for c in coefficients[:0:-1]:
            b1, b2 = 2.0 * t * b1 - b2 + c, b1
        return t * b1 - b2 + coefficients[0]

    wide = np.asarray(x, dtype=np.float64)
    magnitude = np.abs(wide)
    result = np.ones_like(wide)
    small = magnitude < 1.0
    if small.any():
        s = magnitude[small]
        result[small] = s * chebyshev(2.0 * s * s - 1.0, inner)
    for low, high, coefficients in pieces:
        part = (magnitude >= low) & (magnitude < high)
        if part.any():
            result[part] = chebyshev((2.0 * magnitude[part] - (low + high)) / (high - low), coefficients)
    result[np.isnan(wide)] = np.nan
    return np.sign(wide) * result


def gelu(x, approximate="none"):
    """GELU, as ``torch.nn.functional.gelu``: ``x · Phi(x) = x/2 · (1 +
    erf(x/sqrt(2)))`` (exact, :func:`erf`), or with ``approximate="tanh"``
    ``x/2 · (1 + tanh(sqrt(2/pi) · (x + 0.044715 x^3)))``."""
    if approximate == "tanh":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    else:
        y = 0.5 * x * (1 + erf(x / np.sqrt(2.0)))
    return y.astype(x.dtype, copy=False)


def silu(x):
    """``x · sigmoid(x)`` (swish), as ``torch.nn.functional.silu``."""
    return x * sigmoid(x)


def hardsigmoid(x):
    """``relu6(x + 3) / 6``, as ``torch.nn.functional.hardsigmoid``."""
    y = x + 3
    np.clip(y, 0, 6, out=y)
    y /= 6
    return y


def hardswish(x):
    """``x · relu6(x + 3) / 6``, as ``torch.nn.functional.hardswish``."""
    y = x + 3
    np.clip(y, 0, 6, out=y)
    y *= x
    y /= 6
    return y


def softmax(x, dim=1):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (the batch is dim 0), as
    ``torch.softmax``; the maximum is subtracted first."""
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    e /= e.sum(axis=dim, keepdims=True)
    return e


# ---------------------------------------------------------------------- merge


def add(*xs, inplace=False):
    """The elementwise sum of tensors of one shape (``torch.add``); with
    ``inplace`` the result goes into the first."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    first = xs[0]
    if inplace and first.shape == shape:
        y = first
        for other in xs[1:]:
            y += other
        return y
    y = np.add(xs[0], xs[1])
    for other in xs[2:]:
        y += other
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


def concat(*xs, dim=1):
    """Concatenation along ``dim`` (batch is 0), as ``torch.cat``; channels-
    last inputs joined along channels stay channels-last."""
    axis = dim % xs[0].ndim
    if axis == 1 and all(_is_channels_last(x) for x in xs):
        return _channels_first(np.concatenate([_channels_last(x) for x in xs], axis=-1))
    return np.concatenate(xs, axis=axis)


# -------------------------------------------------------------------- reshape


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
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


def _resize_axis(x, axis, out, scale_factor, mode, align_corners):
    """One spatial axis of :func:`interpolate` (separable), PyTorch's index
    arithmetic (``UpSample.h``) in the input's precision."""
    size = x.shape[axis]
    real = np.float32 if x.dtype == np.float32 else np.float64
    if mode == "nearest":
        if out == size:
            return x
        if out == 2 * size:
            return np.take(x, np.arange(out) >> 1, axis=axis)
        scale = np.float32(1.0 / scale_factor if scale_factor else np.float32(size) / np.float32(out))
        index = np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64)
        return np.take(x, np.minimum(index, size - 1), axis=axis)
    if align_corners:
        scale = real((size - 1) / (out - 1)) if out > 1 else real(0)
    else:
        scale = real(1.0 / scale_factor) if scale_factor else real(real(size) / real(out))
    dst = np.arange(out).astype(real)
    shape = [1] * x.ndim
    shape[axis] = out
    if mode == "bicubic":
        source = scale * dst if align_corners else scale * (dst + real(0.5)) - real(0.5)
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
    source = scale * dst if align_corners else np.maximum(scale * (dst + real(0.5)) - real(0.5), real(0))
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
