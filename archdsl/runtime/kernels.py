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
  run over kernel taps (at most prod(K) iterations), blocks of output rows
  (sized to stay in cache: :func:`_block_bytes`), groups of a grouped
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


def _product(values):
    """The product of a sequence of ints (1 when empty), as a Python int."""
    result = 1
    for value in values:
        result *= int(value)
    return result


def _offsets(kernel):
    """Every kernel tap ``(k_0, ..., k_{n-1})``, in row-major order (as
    ``np.ndindex``)."""
    offsets = [()]
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


def _finish(y, bias, activation, residual=None):
    """``y += bias``, ``y += residual``, then the fused ``activation``
    (``"relu"``, ``"relu6"`` or None), in place: the same operations, in the
    same order, as the separate kernels."""
    if bias is not None:
        y += bias
    if residual is not None:
        y += residual
    if activation == "relu":
        relu(y, inplace=True)
    elif activation == "relu6":
        relu6(y, inplace=True)
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")


def _block_bytes(kind):
    """Work-set sizes, in bytes, of the kernels that run block by block:
    ``"gemm"``, the im2col rows copied then multiplied at once (they stay in
    the last-level cache in between); ``"tap"``, the output block of a
    depthwise convolution, whose input rows, output and product buffer stay
    in cache through its taps.  (Measured on a 2-core AMD EPYC, 1 MB L2 per
    core, 32 MB L3: flat around these values.)"""
    return 1 << 22 if kind == "gemm" else 1 << 20


# ---------------------------------------------------------------- convolution


def pack_conv_weight(weight, groups=1, bias=None):
    """The conv weight ``[C_out, C_in/g, *K]`` as the matrices :func:`conv`
    multiplies by: ``[g, prod(K)·C_in/g, C_out/g]`` (rows ordered tap-major,
    as the channels-last im2col columns), or ``[prod(K), C]`` for a depthwise
    convolution.  With ``bias`` and one group, the bias is appended as a
    last row, ``[1, prod(K)·C_in + 1, C_out]``: :func:`conv` then gives its
    im2col rows a last column of ones, so the multiply adds the bias.
    Computed once per weight load, not per call."""
    c_out, c_group = weight.shape[:2]
    taps = _product(weight.shape[2:])
    if groups > 1 and c_group == 1 and groups == c_out:
        return np.ascontiguousarray(weight.reshape(c_out, taps).T)
    packed = weight.reshape(groups, c_out // groups, c_group, taps).transpose(0, 3, 2, 1)
    packed = packed.reshape(groups, taps * c_group, c_out // groups)
    if bias is not None and groups == 1:
        return np.concatenate([packed, np.asarray(bias, weight.dtype).reshape(1, 1, c_out)], axis=1)
    return np.ascontiguousarray(packed)


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, packed=None, scratch=None,
         activation=None, residual=None):
    """N-d convolution (cross-correlation: the kernel is not flipped), as
    ``torch.nn.functional.conv1d/conv2d/conv3d``:

        y[n, o, *p] = bias[o] + sum_{c, *k} w[o, c, *k] · x_pad[n, g(o)·C_in/g + c, *(p·S + k·D)]

    where ``g(o) = o // (C_out/groups)`` and ``x_pad`` is ``x`` with zero
    ``padding`` (an int, one int per dim, or (before, after) pairs per dim:
    PyTorch's ``padding="same"`` with an even extent puts the extra one at
    the end).  Output size ``floor((I + P_before + P_after - D(K-1) - 1)/S) + 1``.
    ``residual`` (a tensor of the output's shape) is added to the result,
    then ``activation`` (``"relu"`` or ``"relu6"``) applied, as the separate
    ``add`` and activation kernels would (the interpreter fuses them when
    they alone read the convolution).

    Implementation, on channels-last memory: im2col (a strided view of every
    window) and BLAS matrix multiplies by :func:`pack_conv_weight`'s
    matrices, in blocks of output rows: each block of im2col rows is copied
    (with a last column of ones when the packed weight holds the bias) and
    multiplied while it is in cache, straight into the output, then
    activated.  A 1x1, stride-1 kernel multiplies the input itself, no copy
    (unless it has fewer input than output channels and a bias: copying the
    input with its column of ones costs less than a pass adding the bias to
    the output).  Grouped convolutions: one batched multiply.  Depthwise
    convolutions (``groups == C_in == C_out``): see :func:`_depthwise`.
    ``packed``: :func:`pack_conv_weight`'s matrices, computed once (when
    they hold the bias, ``bias`` is not used); ``scratch``: a dict for work
    buffers (see :func:`_buffer`).
    """
    n = x.ndim - 2
    kernel = weight.shape[2:]
    c_out = weight.shape[0]
    stride, dilation, pairs = _tuple(stride, n), _tuple(dilation, n), _pairs(padding, n)
    if packed is None:
        packed = pack_conv_weight(weight, groups, bias)
    if residual is not None:
        residual = _channels_last(residual)  # as y's memory
    if groups > 1 and weight.shape[1] == 1 and groups == c_out:
        y = _depthwise(_channels_last(x), packed, kernel, stride, pairs, dilation, bias, activation, scratch,
                       residual)
        return _channels_first(y)
    batch, channels = x.shape[:2]
    counts = tuple((s + a + b - d * (k - 1) - 1) // st + 1
                   for s, (a, b), k, st, d in zip(x.shape[2:], pairs, kernel, stride, dilation))
    rows = batch * _product(counts)
    if groups == 1 and channels * kernel[-1] < 32 and rows >= 4096 and not all(k == 1 for k in kernel):
        y = _conv_few_channels(x, packed[0], kernel, stride, pairs, dilation, bias, activation, scratch, residual)
        return _channels_first(y)
    xc = _pad_spatial(_channels_last(x), pairs)
    dtype = np.result_type(xc.dtype, packed.dtype)
    if groups > 1:
        c_group = channels // groups
        if all(k == 1 for k in kernel) and all(s == 1 for s in stride):
            cols = xc.reshape(rows, groups, c_group).transpose(1, 0, 2)
        else:
            view = _windows(xc, kernel, stride, dilation, counts)
            view = view.reshape(*view.shape[:-1], groups, c_group)
            view = np.moveaxis(view, -2, 0)
            cols = _buffer(scratch, "cols", view.size, xc.dtype).reshape(view.shape)
            np.copyto(cols, view)
            cols = cols.reshape(groups, rows, -1)
        y = np.matmul(cols, packed).transpose(1, 0, 2).reshape(batch, *counts, c_out)
        _finish(y, bias, activation, residual)
        return _channels_first(y)
    depth = _product(kernel) * channels
    matrix = packed[0]
    ones = matrix.shape[0] == depth + 1  # the bias is the matrix's last row
    if ones:
        bias = None
    y = np.empty((batch, *counts, c_out), dtype)
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not (ones and channels < c_out):
        # The channels-last input is already the im2col matrix.
        out = y.reshape(rows, c_out)
        np.matmul(xc.reshape(rows, channels), matrix[:depth], out=out)
        _finish(out, matrix[depth] if ones else bias, activation,
                None if residual is None else residual.reshape(rows, c_out))
        return _channels_first(y)
    view = _windows(xc, kernel, stride, dilation, counts)  # [N, *O, *K, C]
    width = depth + ones
    lines, line = counts[0], _product(counts[1:]) * width  # line: one (n, o_0)'s im2col rows
    per_chunk = max(1, _block_bytes("gemm") // (line * xc.dtype.itemsize))
    if per_chunk >= lines:
        images = min(batch, per_chunk // lines)
        chunks = [(slice(n0, n0 + images),) for n0 in range(0, batch, images)]
        work = _buffer(scratch, "cols", images * lines * line, xc.dtype)
    else:
        chunks = [(n0, slice(o0, o0 + per_chunk)) for n0 in range(batch) for o0 in range(0, lines, per_chunk)]
        work = _buffer(scratch, "cols", per_chunk * line, xc.dtype)
    for chunk in chunks:
        window = view[chunk]
        positions = window.shape[:window.ndim - n - 1]  # [n, o_0, o_1, ...] of this block
        cols = work[:_product(positions) * width].reshape(*positions, width)
        np.copyto(cols[..., :depth].reshape(*positions, *kernel, channels), window)  # splits the last axis: a view
        if ones:
            cols[..., depth] = 1
        block = y[chunk].reshape(-1, c_out)
        np.matmul(cols.reshape(-1, width), matrix, out=block)
        _finish(block, bias, activation, None if residual is None else residual[chunk].reshape(-1, c_out))
    return _channels_first(y)


def _conv_few_channels(x, matrix, kernel, stride, pairs, dilation, bias, activation, scratch, residual=None):
    """:func:`conv` (one group) of an input with few channels (an RGB image)
    and many output positions, whose channels-last im2col rows would be
    copied a few numbers at a time:
    here the im2col matrix is built transposed, ``[C·prod(K) (+ 1), rows]``,
    from the input channel-major and split by the phase of the last
    dimension's stride (``x_pad[..., j·S + r]`` at phase ``r``, position
    ``j``), so that each tap copies whole output rows; it is multiplied as
    the transpose, block by block.  ``matrix`` is :func:`pack_conv_weight`'s
    (rows in (tap, channel) order, maybe a last bias row); returns
    ``[N, *O, C_out]`` memory (``residual``: channels-last memory of that
    shape)."""
    if len(kernel) == 1:  # 1-d: a 2-d convolution over a height of one
        y = _conv_few_channels(x[:, :, None], matrix, (1, *kernel), (1, *stride), ((0, 0), *pairs),
                               (1, *dilation), bias, activation, scratch,
                               None if residual is None else residual[:, None])
        return y[:, 0]
    batch, channels, *sizes = x.shape
    n, taps, c_out = len(kernel), _product(kernel), matrix.shape[1]
    depth = taps * channels
    ones = matrix.shape[0] == depth + 1
    dtype = np.result_type(x.dtype, matrix.dtype)
    counts = [(s + a + b - d * (k - 1) - 1) // st + 1
              for s, (a, b), k, st, d in zip(sizes, pairs, kernel, stride, dilation)]
    # The weight rows in (channel, tap) order, as the transposed im2col's.
    weights = np.empty((depth + ones, c_out), matrix.dtype)
    weights[:depth] = matrix[:depth].reshape(taps, channels, c_out).transpose(1, 0, 2).reshape(depth, c_out)
    if ones:
        weights[depth] = matrix[depth]
        bias = None
    # The padded input, channel-major, by phase: [S_last, C, N, *reach[:-1], ceil(reach_last / S_last)].
    reach = [(o - 1) * s + (k - 1) * d + 1 for o, k, s, d in zip(counts, kernel, stride, dilation)]
    last_stride = stride[-1]
    phase_width = -(-reach[-1] // last_stride)
    phases = np.zeros((last_stride, channels, batch, *reach[:-1], phase_width), x.dtype)
    planes = x.transpose(1, 0, *range(2, x.ndim))
    targets = [slice(max(0, before), min(extent, before + size))
               for size, (before, _), extent in zip(sizes[:-1], pairs[:-1], reach[:-1])]
    sources = [slice(max(0, -before), min(size, extent - before))
               for size, (before, _), extent in zip(sizes[:-1], pairs[:-1], reach[:-1])]
    before_last, size_last = pairs[-1][0], sizes[-1]
    for r in range(last_stride):
        low = max(0, -(-(before_last - r) // last_stride))
        high = min(phase_width, (size_last - 1 + before_last - r) // last_stride + 1)
        if high > low:
            first = low * last_stride + r - before_last
            columns = slice(first, first + (high - low - 1) * last_stride + 1, last_stride)
            phases[(r, slice(None), slice(None), *targets, slice(low, high))] = \
                planes[(slice(None), slice(None), *sources, columns)]
    y = np.empty((batch, *counts, c_out), dtype)
    lines, line = counts[0], _product(counts[1:])  # line: the output positions of one (n, o_0)
    per_chunk = max(1, _block_bytes("gemm") // (line * (depth + ones) * x.dtype.itemsize))
    if per_chunk >= lines:
        images = min(batch, per_chunk // lines)
        chunks = [(n0, min(batch, n0 + images), 0, lines) for n0 in range(0, batch, images)]
    else:
        chunks = [(n0, n0 + 1, o0, min(lines, o0 + per_chunk))
                  for n0 in range(batch) for o0 in range(0, lines, per_chunk)]
    work = _buffer(scratch, "cols", (depth + ones) * max((b - a) * (c - o) for a, b, o, c in chunks) * line, x.dtype)
    offsets = _offsets(kernel)
    for n0, n1, o0, o1 in chunks:
        positions = (n1 - n0) * (o1 - o0) * line
        cols = work[:(depth + ones) * positions].reshape(depth + ones, positions)
        target = cols[:depth].reshape(channels, taps, n1 - n0, o1 - o0, *counts[1:])
        for tap, offset in enumerate(offsets):
            index = [slice(None), slice(n0, n1),
                     slice(o0 * stride[0] + offset[0] * dilation[0], (o1 - 1) * stride[0] + offset[0] * dilation[0] + 1,
                           stride[0])]
            for k, d, o, st in zip(offset[1:-1], dilation[1:-1], counts[1:-1], stride[1:-1]):
                index.append(slice(k * d, k * d + (o - 1) * st + 1, st))
            q = offset[-1] * dilation[-1]
            index.append(slice(q // last_stride, q // last_stride + counts[-1]))
            target[:, tap] = phases[q % last_stride][tuple(index)]
        if ones:
            cols[depth] = 1
        block = y[n0:n1, o0:o1].reshape(positions, c_out)
        np.matmul(cols.T, weights, out=block)
        _finish(block, bias, activation,
                None if residual is None else residual[n0:n1, o0:o1].reshape(positions, c_out))
    return y


def _depthwise(xc, packed, kernel, stride, pairs, dilation, bias, activation, scratch, residual=None):
    """Depthwise convolution of channels-last ``xc`` ``[N, *S, C]`` (one
    filter per channel, ``packed`` ``[prod(K), C]``), returned as
    ``[N, *O, C]`` memory:

        y[n, *p, c] = bias[c] + sum_k packed[k, c] · x_pad[n, *(p·S + k·D), c]

    summed tap by tap (one multiply and one add each, in kernel order), in
    blocks of output rows small enough to stay in cache.  Each block's input
    rows are first copied into a zero-bordered work buffer, split by the
    phase of the last dimension's stride (column ``j·S + r`` goes to phase
    ``r``, position ``j``), so that every tap reads rows whose last spatial
    dimension and channels are contiguous: each multiply and add then runs
    over ``O_last·C`` contiguous numbers, with the weights tiled to match."""
    if len(kernel) == 1:  # 1-d: a 2-d convolution over a height of one
        y = _depthwise(xc[:, None], packed, (1, *kernel), (1, *stride), ((0, 0), *pairs), (1, *dilation),
                       bias, activation, scratch, None if residual is None else residual[:, None])
        return y[:, 0]
    batch, *sizes, channels = xc.shape
    counts = [(s + a + b - d * (k - 1) - 1) // st + 1
              for s, (a, b), k, st, d in zip(sizes, pairs, kernel, stride, dilation)]
    dtype = np.result_type(xc.dtype, packed.dtype)
    y = np.empty((batch, *counts, channels), dtype)
    # Extents of the padded input that the windows reach, per spatial dim.
    reach = [(o - 1) * s + (k - 1) * d + 1 for o, k, s, d in zip(counts, kernel, stride, dilation)]
    last_stride, width = stride[-1], counts[-1] * channels
    phase_width = -(-reach[-1] // last_stride)
    taps = _offsets(kernel)
    tiled = np.empty((len(taps), counts[-1], channels), dtype)  # the weights tiled: [taps, O_last·C]
    tiled[...] = packed[:, None, :]
    tiled = tiled.reshape(len(taps), width)
    tiled_bias = None
    if bias is not None:
        tiled_bias = np.empty((counts[-1], channels), dtype)
        tiled_bias[...] = bias
        tiled_bias = tiled_bias.reshape(width)
    lines, line = counts[0], _product(counts[1:]) * channels
    per_chunk = max(1, _block_bytes("tap") // (line * dtype.itemsize))
    images, per_chunk = (min(batch, per_chunk // lines), lines) if per_chunk >= lines else (1, per_chunk)
    rows_in = (per_chunk - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    middle = reach[1:-1]
    local_shape = (images, rows_in, *middle, last_stride, phase_width, channels)
    local = _buffer(scratch, "depthwise", _product(local_shape), xc.dtype).reshape(local_shape)
    local[...] = 0
    term = _buffer(scratch, "term", images * per_chunk * line, dtype)
    # Where the input goes in the work buffer: middle dims and phases are the same for every block.
    targets, sources = [], []
    for size, (before, _), extent in zip(sizes[1:-1], pairs[1:-1], middle):
        targets.append(slice(max(0, before), min(extent, before + size)))
        sources.append(slice(max(0, -before), min(size, extent - before)))
    before_last, size_last = pairs[-1][0], sizes[-1]
    phases = []
    for r in range(last_stride):
        # padded column j·S + r is input column j·S + r - before_last
        low = max(0, -(-(before_last - r) // last_stride))
        high = min(phase_width, (size_last - 1 + before_last - r) // last_stride + 1)
        if high > low:
            first = low * last_stride + r - before_last
            phases.append((r, slice(low, high), slice(first, first + (high - low - 1) * last_stride + 1, last_stride)))

    def windows(count, lines_here):
        """Each tap's view of the work buffer, ``[count, lines, *O_middle, O_last·C]``."""
        views = []
        for offset in taps:
            start = offset[0] * dilation[0]
            index = [slice(0, count), slice(start, start + (lines_here - 1) * stride[0] + 1, stride[0])]
            for k, d, o, s in zip(offset[1:-1], dilation[1:-1], counts[1:-1], stride[1:-1]):
                index.append(slice(k * d, k * d + (o - 1) * s + 1, s))
            q = offset[-1] * dilation[-1]
            index += [q % last_stride, slice(q // last_stride, q // last_stride + counts[-1])]
            view = local[tuple(index)]
            views.append(view.reshape(*view.shape[:-2], width))
        return views

    views = {}
    before_first, size_first = pairs[0][0], sizes[0]
    for n0 in range(0, batch, images):
        count = min(images, batch - n0)
        for o0 in range(0, lines, per_chunk):
            lines_here = min(per_chunk, lines - o0)
            # Padded rows o0·S .. o0·S + used of the block are input rows from `start`.
            start = o0 * stride[0] - before_first
            used = (lines_here - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
            low, high = max(0, -start), min(used, size_first - start)
            if low > 0:
                local[:count, :low] = 0
            if high < used:
                local[:count, max(high, low):used] = 0
            if high > low:
                for r, target, columns in phases:
                    local[(slice(0, count), slice(low, high), *targets, r, target)] = \
                        xc[(slice(n0, n0 + count), slice(start + low, start + high), *sources, columns)]
            key = (count, lines_here)
            if key not in views:
                views[key] = windows(count, lines_here)
            out = y[n0:n0 + count, o0:o0 + lines_here].reshape(count, lines_here, *counts[1:-1], width)
            extra_in = None if residual is None else \
                residual[n0:n0 + count, o0:o0 + lines_here].reshape(count, lines_here, *counts[1:-1], width)
            extra = term[:out.size].reshape(out.shape)
            for tap, window in enumerate(views[key]):
                if tap == 0:
                    np.multiply(window, tiled[0], out=out)
                else:
                    np.multiply(window, tiled[tap], out=extra)
                    out += extra
            _finish(out, tiled_bias, activation, extra_in)
    return y


def pack_conv_transpose_weight(weight, groups=1, bias=None):
    """The transposed-conv weight ``[C_in, C_out/g, *K]`` as
    ``[g, C_in/g, prod(K)·C_out/g]`` matrices for :func:`conv_transpose`
    (``bias`` is accepted, as :func:`pack_conv_weight` takes it, and not
    used: the bias is added after col2im)."""
    c_in, c_group = weight.shape[:2]
    taps = _product(weight.shape[2:])
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
    rows = batch * _product(sizes)
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
    kernel size; output size as :func:`_window_count` (``ceil_mode`` adds a
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
        count = _window_count(y.shape[1 + d], kernel[d], stride[d], padding[d], dilation[d], ceil_mode)
        y = _max_along(y, 1 + d, kernel[d], stride[d], padding[d], dilation[d], count)
    return _channels_first(np.ascontiguousarray(y))


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
    """``max(0, x)``, as ``torch.nn.functional.relu`` (NaN stays NaN, -0.0
    stays -0.0, as in PyTorch).  Computed as ``clip(x, 0, inf)``: NumPy's
    clip has a vectorised loop, its maximum with a scalar does not (3x
    slower)."""
    return x.clip(0, np.inf, out=x if inplace else None)


def relu6(x, inplace=False):
    """``min(max(0, x), 6)``, as ``torch.nn.functional.relu6``."""
    return x.clip(0, 6, out=x if inplace else None)


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
