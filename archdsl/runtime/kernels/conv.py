"""Convolution kernels: N-d convolution (im2col + BLAS, with depthwise and
few-input-channel paths) and transposed convolution, and the weight packing
each does once per weight load."""

import numpy as np

from ...ops.arith import conv_output_size, transposed_output_size
from .activation import _finish
from .shared import (
    _block_bytes,
    _buffer,
    _channels_first,
    _channels_last,
    _offsets,
    _pad_spatial,
    _pairs,
    _product,
    _row_blocks,
    _tuple,
    _windows,
)
from .winograd import use_winograd, winograd_conv, winograd_weight


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


def pack_conv_weight_winograd(weight, groups=1, bias=None):
    """For a convolution that always takes the Winograd path
    (:func:`conv_packing`): ``(None, winograd_weight(weight), bias)``, no
    im2col matrices to keep."""
    return None, winograd_weight(weight), bias


def pack_conv_weight_both(weight, groups=1, bias=None):
    """For a convolution that takes the Winograd path from some batch size
    on (:func:`conv_packing`): ``(pack_conv_weight(...), winograd_weight(weight), bias)``."""
    return pack_conv_weight(weight, groups, bias), winograd_weight(weight), bias


def _winograd_taken(shape, c_out, kernel, stride, pairs, dilation, groups, packed, winograd):
    """Whether :func:`conv` of ``[N, C, *S]`` (``shape``) takes the Winograd
    path: it fits (:func:`_winograd_fits`), no im2col matrix came alone
    (``packed`` without ``winograd``), and either the packing holds no
    im2col matrix or ``use_winograd`` picks it."""
    if not _winograd_fits(kernel, stride, dilation, groups) or packed is not None and winograd is None:
        return False
    return packed is None and winograd is not None or use_winograd(
        shape[0], shape[1], c_out, *(s + a + b - 2 for s, (a, b) in zip(shape[2:], pairs)))


def _winograd_fits(kernel, stride, dilation, groups):
    """Whether F(2x2, 3x3) computes this convolution: 2-d, 3x3, stride 1,
    dilation 1, one group."""
    return tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1


def conv_packing(shape, c_out, kernel, stride, padding, dilation, groups):
    """The packing for a convolution of ``[N, *shape]`` inputs (``shape``:
    channels and spatial sizes, fixed when the model is compiled):
    :func:`pack_conv_weight_winograd` when ``use_winograd`` picks the
    Winograd path at batch 1 (then at every batch: it only asks for more
    tiles), :func:`pack_conv_weight_both` when it does at some larger batch,
    else :func:`pack_conv_weight`."""
    if not _winograd_fits(kernel, stride, dilation, groups):
        return pack_conv_weight
    counts = [conv_output_size(s + a + b, kernel=3, stride=1, padding=0, dilation=1)
              for s, (a, b) in zip(shape[1:], _pairs(padding, 2))]
    if use_winograd(1, shape[0], c_out, *counts):
        return pack_conv_weight_winograd
    if use_winograd(1 << 20, shape[0], c_out, *counts):
        return pack_conv_weight_both
    return pack_conv_weight


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
    then ``activation`` (``"relu"``, ``"relu6"``, ``"silu"``, ``"sigmoid"``,
    ``"hardswish"`` or ``"hardsigmoid"``) applied, as the separate
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
    3x3, stride-1 convolutions (one group) that ``use_winograd`` picks by
    shape and batch: Winograd's F(2x2, 3x3) (``winograd.winograd_conv``),
    when ``packed`` is None or comes from :func:`pack_conv_weight_both` or
    :func:`pack_conv_weight_winograd` (an im2col matrix alone keeps them on
    im2col; :func:`conv_packing` chooses the packing per layer).
    ``packed``: :func:`pack_conv_weight`'s matrices, computed once (when
    they hold the bias, ``bias`` is not used); ``scratch``: a dict for work
    buffers (see :func:`_buffer`).
    """
    n = x.ndim - 2
    kernel = weight.shape[2:]
    c_out = weight.shape[0]
    stride, dilation, pairs = _tuple(stride, n), _tuple(dilation, n), _pairs(padding, n)
    if residual is not None:
        residual = _channels_last(residual)  # as y's memory
    winograd = None
    if isinstance(packed, tuple):  # pack_conv_weight_winograd's or pack_conv_weight_both's
        packed, winograd = packed[0], packed[1:]
    if _winograd_taken(x.shape, c_out, kernel, stride, pairs, dilation, groups, packed, winograd):
        transformed, bias = winograd or (winograd_weight(weight), bias)
        xc = _channels_last(x)
        size = x.shape[0] * _product(s + a + b - 2 for s, (a, b) in zip(x.shape[2:], pairs)) * c_out
        work = _work(scratch, activation, size, np.result_type(xc.dtype, transformed.dtype))
        return _channels_first(winograd_conv(xc, transformed, pairs, bias, activation, residual, scratch, work))
    if packed is None:
        packed = pack_conv_weight(weight, groups, bias)
    if groups > 1 and weight.shape[1] == 1 and groups == c_out:
        depthwise = _depthwise_kernel(stride, c_out)
        y = depthwise(_channels_last(x), packed, kernel, stride, pairs, dilation, bias, activation, scratch, residual)
        return _channels_first(y)
    batch, channels = x.shape[:2]
    counts = tuple(conv_output_size(s + a + b, kernel=k, stride=st, padding=0, dilation=d)
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
        _finish(y, bias, activation, residual, _work(scratch, activation, y.size, y.dtype))
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
                None if residual is None else residual.reshape(rows, c_out),
                _work(scratch, activation, out.size, dtype))
        return _channels_first(y)
    view = _windows(xc, kernel, stride, dilation, counts)  # [N, *O, *K, C]
    width = depth + ones
    lines, line = counts[0], _product(counts[1:]) * width  # line: one (n, o_0)'s im2col rows
    per_chunk = max(1, _block_bytes("gemm") // (line * xc.dtype.itemsize))
    chunks: list[tuple[slice, ...]]
    if len(counts) > 2 and line * xc.dtype.itemsize > 2 * _block_bytes("gemm"):
        # 3-d: one output plane is far beyond the block; rows of one plane instead.
        # (C3D's conv2 at 16x56x56: a 22 MB plane; 10-15% faster so, measured.)
        line = _product(counts[2:]) * width  # now: one (n, o_0, o_1)'s im2col rows
        blocks = _row_blocks(1, counts[1], max(1, _block_bytes("gemm") // (line * xc.dtype.itemsize)))
        chunks = [(slice(n0, n0 + 1), slice(o0, o0 + 1), slice(r0, r1))
                  for n0 in range(batch) for o0 in range(lines) for _, _, r0, r1 in blocks]
    else:
        blocks = _row_blocks(batch, lines, per_chunk)
        chunks = [(slice(n0, n1), slice(r0, r1)) for n0, n1, r0, r1 in blocks]
    work = _buffer(scratch, "cols", max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * line, xc.dtype)
    act_work = _work(scratch, activation, work.size // width * c_out, dtype)
    for chunk in chunks:
        window = view[chunk]
        positions = window.shape[:window.ndim - n - 1]  # [n, o_0, o_1, ...] of this block
        cols = work[:_product(positions) * width].reshape(*positions, width)
        np.copyto(cols[..., :depth].reshape(*positions, *kernel, channels), window)  # splits the last axis: a view
        if ones:
            cols[..., depth] = 1
        block = y[chunk].reshape(-1, c_out)
        np.matmul(cols.reshape(-1, width), matrix, out=block)
        _finish(block, bias, activation, None if residual is None else residual[chunk].reshape(-1, c_out), act_work)
    return _channels_first(y)


def _work(scratch, activation, size, dtype):
    """A work buffer for a fused activation that needs one (see
    ``activation._finish``), from ``scratch``; None for the others."""
    if activation not in ("silu", "sigmoid", "hardswish"):
        return None
    return _buffer(scratch, "activation", size, dtype)


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
    taps, c_out = _product(kernel), matrix.shape[1]
    depth = taps * channels
    ones = matrix.shape[0] == depth + 1
    dtype = np.result_type(x.dtype, matrix.dtype)
    counts = [conv_output_size(s + a + b, kernel=k, stride=st, padding=0, dilation=d)
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
            phase_index: tuple[int | slice, ...] = (r, slice(None), slice(None), *targets, slice(low, high))
            plane_index: tuple[slice, ...] = (slice(None), slice(None), *sources, columns)
            phases[phase_index] = planes[plane_index]
    y = np.empty((batch, *counts, c_out), dtype)
    lines, line = counts[0], _product(counts[1:])  # line: the output positions of one (n, o_0)
    per_chunk = max(1, _block_bytes("gemm") // (line * (depth + ones) * x.dtype.itemsize))
    chunks = _row_blocks(batch, lines, per_chunk)
    work = _buffer(scratch, "cols", (depth + ones) * max((b - a) * (c - o) for a, b, o, c in chunks) * line, x.dtype)
    offsets = _offsets(kernel)
    act_work = _work(scratch, activation, work.size // (depth + ones) * c_out, dtype)
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
                None if residual is None else residual[n0:n1, o0:o1].reshape(positions, c_out), act_work)
    return y


def _depthwise_kernel(stride, channels):
    """The depthwise path for this stride and channel count.  Unstrided
    along the last dimension: :func:`_depthwise_einsum`, whose inner loop
    then runs over a whole output row.  Strided: :func:`_depthwise_einsum`
    over every window with at least 64 channels, else the phase-split work
    buffer of :func:`_depthwise` (einsum's inner loop over the channels
    alone would be too short).  Measured (one thread, 2-core AMD EPYC, 3x3,
    stride 2): 16 channels at 112x112: phase split 0.33 ms, windows 0.69 ms;
    64 channels: 1.8 ms both; 144 channels at 56x56, 5x5: 1.3 ms and
    1.0 ms."""
    return _depthwise_einsum if stride[-1] == 1 or channels >= 64 else _depthwise


def _padded(xc, pairs, scratch):
    """Channels-last ``xc`` ``[N, *S, C]`` zero-padded by ``pairs``, in a work
    buffer from ``scratch`` (only the border is zeroed; ``xc`` itself when
    there is no padding)."""
    if not any(before or after for before, after in pairs):
        return xc
    shape = (xc.shape[0], *(s + a + b for s, (a, b) in zip(xc.shape[1:-1], pairs)), xc.shape[-1])
    out = _buffer(scratch, "padded", _product(shape), xc.dtype).reshape(shape)
    for axis, (before, after) in enumerate(pairs, start=1):
        if before:
            out[(slice(None),) * axis + (slice(0, before),)] = 0
        if after:
            out[(slice(None),) * axis + (slice(shape[axis] - after, None),)] = 0
    out[(slice(None), *(slice(a, a + s) for s, (a, _) in zip(xc.shape[1:-1], pairs)), slice(None))] = xc
    return out


def _depthwise_einsum(xc, packed, kernel, stride, pairs, dilation, bias, activation, scratch, residual=None):
    """:func:`_depthwise` (same arguments and result) as one ``einsum`` per
    block of output rows over a strided view of every window of the padded
    input, each block then given its bias, residual and activation while it
    is in cache.  Unstrided along the last dimension, a tap's inputs for one
    output row are ``O_last·C`` contiguous numbers, so the view is
    ``[N, *O[:-1], *K, pieces, width·C]`` (each row cut into pieces of
    ``width`` positions, about 4 kB, ``width`` dividing ``O_last``) times the
    weights tiled to ``[*K, width·C]`` (einsum's inner loop runs over a
    piece, which stays in L1 through the taps with its weights: ConvNeXt-T's
    7x7 convolutions 25-40% faster than over whole rows, 2.0 instead of
    3.1 ms at 96x56x56); strided, it is ``[N, *O, *K, C] · [*K, C]``.  The taps are summed in kernel
    order, as :func:`_depthwise` sums them."""
    if len(kernel) == 1:  # 1-d: a 2-d convolution over a height of one
        y = _depthwise_einsum(xc[:, None], packed, (1, *kernel), (1, *stride), ((0, 0), *pairs), (1, *dilation),
                              bias, activation, scratch, None if residual is None else residual[:, None])
        return y[:, 0]
    n = len(kernel)
    batch, *sizes, channels = xc.shape
    counts = [conv_output_size(s + a + b, kernel=k, stride=st, padding=0, dilation=d)
              for s, (a, b), k, st, d in zip(sizes, pairs, kernel, stride, dilation)]
    dtype = np.result_type(xc.dtype, packed.dtype)
    padded = _padded(xc, pairs, scratch)
    weights = packed.reshape(*kernel, channels).astype(dtype, copy=False)
    outputs, taps = "abc"[:n], "ijk"[:n]
    strides = padded.strides
    if stride[-1] == 1:
        # Each output row as `pieces` pieces of `width` positions (about 4 kB: einsum's inner loop and
        # the weights it reads stay in L1 through the taps); the weights tiled over one piece.
        width = max([w for w in range(1, counts[-1] + 1)
                     if counts[-1] % w == 0 and w * channels * dtype.itemsize <= 4096] or [1])
        pieces = counts[-1] // width
        shape = (batch, *counts[:-1], *kernel, pieces, width * channels)
        view_strides = (strides[0], *(strides[1 + d] * stride[d] for d in range(n - 1)),
                        *(strides[1 + d] * dilation[d] for d in range(n)), strides[-2] * width, strides[-1])
        view = np.ndarray(shape, padded.dtype, padded, 0, view_strides)
        tiled = np.empty((*kernel, 1, width, channels), dtype)
        tiled[...] = weights[..., None, None, :]
        weights = np.broadcast_to(tiled.reshape(*kernel, 1, width * channels), (*kernel, pieces, width * channels))
        outputs, inner = outputs[:-1], "yz"
    else:
        view = _windows(padded, kernel, stride, dilation, counts)  # [N, *O, *K, C]
        inner = "z"
    subscripts = f"n{outputs}{taps}{inner},{taps}{inner}->n{outputs}{inner}"
    y = np.empty((batch, *counts, channels), dtype)
    flat = y.reshape(view.shape[:1 + len(outputs)] + view.shape[1 + len(outputs) + n:])
    lines, line = counts[0], _product(counts[1:]) * channels
    per_chunk = max(1, _block_bytes("tap") // (line * dtype.itemsize))
    work = _work(scratch, activation, min(batch * lines, max(per_chunk, lines)) * line, dtype)
    for n0, n1, r0, r1 in _row_blocks(batch, lines, per_chunk):
        chunk = (slice(n0, n1), slice(r0, r1))
        block = flat[chunk]
        np.einsum(subscripts, view[chunk], weights, out=block)
        _finish(y[chunk], bias, activation, None if residual is None else residual[chunk], work)
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
    over ``O_last·C`` contiguous numbers, with the weights tiled to match.
    With a 2-d kernel the taps of each phase are summed by one einsum over a
    view holding all of them (one to ``S_last`` einsums, each over whole
    output rows); otherwise one multiply and one add per tap."""
    if len(kernel) == 1:  # 1-d: a 2-d convolution over a height of one
        y = _depthwise(xc[:, None], packed, (1, *kernel), (1, *stride), ((0, 0), *pairs), (1, *dilation),
                       bias, activation, scratch, None if residual is None else residual[:, None])
        return y[:, 0]
    batch, *sizes, channels = xc.shape
    counts = [conv_output_size(s + a + b, kernel=k, stride=st, padding=0, dilation=d)
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

    views: dict = {}
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
                views[key] = _phase_windows(local, count, lines_here, kernel, stride, dilation, tiled) \
                    if len(kernel) == 2 else windows(count, lines_here)
            out = y[n0:n0 + count, o0:o0 + lines_here].reshape(count, lines_here, *counts[1:-1], width)
            extra_in = None if residual is None else \
                residual[n0:n0 + count, o0:o0 + lines_here].reshape(count, lines_here, *counts[1:-1], width)
            extra = term[:out.size].reshape(out.shape)
            _sum_taps(views[key], tiled, out, extra, phased=len(kernel) == 2)
            _finish(out, tiled_bias, activation, extra_in, extra)
    return y


def _phase_windows(local, count, lines_here, kernel, stride, dilation, tiled):
    """For :func:`_depthwise` with a 2-d kernel, per phase of the last
    stride: the view of the work buffer ``local`` ``[images, rows, S_last,
    phase_width, C]`` holding every tap of that phase, ``[count, lines,
    K_0, taps in the phase, O_last·C]``, and those taps' tiled weights
    (``tiled`` ``[taps, O_last·C]``)."""
    last_stride, width = stride[-1], tiled.shape[-1]
    item = local.strides
    groups = []
    for r in range(last_stride):
        js = [j for j in range(kernel[1]) if (j * dilation[1]) % last_stride == r]
        if not js:
            continue
        first = (js[0] * dilation[1]) // last_stride
        step = ((js[1] - js[0]) * dilation[1]) // last_stride if len(js) > 1 else 1
        corner = local[0:count, 0:1, r:r + 1, first:first + 1, 0:1]
        view = np.lib.stride_tricks.as_strided(
            corner, (count, lines_here, kernel[0], len(js), width),
            (item[0], item[1] * stride[0], item[1] * dilation[0], item[3] * step, item[4]), writeable=False)
        groups.append((view, tiled.reshape(kernel[0], kernel[1], width)[:, js]))
    return groups


def _sum_taps(views, tiled, out, extra, phased):
    """``out`` = the sum over the taps of window times weights: per phase
    one einsum (``phased``: :func:`_phase_windows`'s views), else one
    multiply and add per tap; ``extra`` is a work array of ``out``'s shape."""
    if phased:
        for index, (window, weights) in enumerate(views):
            np.einsum("nlijz,ijz->nlz", window, weights, out=out if index == 0 else extra)
            if index:
                out += extra
        return
    for tap, window in enumerate(views):
        if tap == 0:
            np.multiply(window, tiled[0], out=out)
        else:
            np.multiply(window, tiled[tap], out=extra)
            out += extra


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
    full_sizes = tuple(transposed_output_size(i, kernel=k, stride=s, padding=0, dilation=d, output_padding=op)
                       for i, s, d, k, op in zip(sizes, stride, dilation, kernel, output_padding))
    full = np.zeros((batch, *full_sizes, groups, c_group), xc.dtype)
    for tap, offset in enumerate(np.ndindex(*kernel)):
        reached = (slice(o * d, o * d + (i - 1) * s + 1, s) for o, d, i, s in zip(offset, dilation, sizes, stride))
        target = full[(slice(None), *reached, slice(None), slice(None))]
        target += np.moveaxis(cols[..., tap, :], 0, -2)
    outputs = tuple(transposed_output_size(i, kernel=k, stride=s, padding=p, dilation=d, output_padding=op)
                    for i, k, s, p, d, op in zip(sizes, kernel, stride, padding, dilation, output_padding))
    y = full[(slice(None), *(slice(p, p + o) for p, o in zip(padding, outputs)), slice(None), slice(None))]
    y = np.ascontiguousarray(y).reshape(batch, *outputs, c_out)
    if bias is not None:
        y += bias
    return _channels_first(y)
