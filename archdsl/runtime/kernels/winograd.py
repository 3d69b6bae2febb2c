"""Winograd's minimal filtering F(2x2, 3x3) for the 2-d convolutions it
serves (3x3 kernel, stride 1, dilation 1, one group): each 2x2 block of
outputs from its 4x4 input tile with 16 multiplies per (input, output)
channel pair instead of 36, 2.25x fewer (Lavin and Gray, "Fast Algorithms
for Convolutional Neural Networks", 2016):

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A

summed over the input channels, so the 16 elementwise products become 16
matrix multiplies ``[tiles, C_in] · [C_in, C_out]``.  The weight transform
``G g G^T`` is done once per weight load (:func:`pack_winograd_weight`);
the input and output transforms are additions and subtractions of strided
views of channels-last memory, one block of tile rows at a time."""

import numpy as np

from .activation import _finish
from .shared import _buffer, _row_blocks


def _winograd_block(channels, c_out, cols, itemsize):
    """Tile rows (of ``cols`` tiles) per block of :func:`winograd_conv`:
    about 1 MB of transformed input and products, so that the transforms'
    passes stay in the core's L2 (1 MB on the development machine), but at
    least 128 tiles, so that each of the 16 multiplies reads its
    ``[C, C_out]`` matrix for enough rows (measured with
    ``benchmarks/winograd.py``, one thread: 1-2 MB and 128-256 tiles within
    noise of each other; 4 MB without a floor 10-20% slower on 64@56x56 and
    1.2-1.7x slower on 512@7x7 at batch 8)."""
    return max((1 << 20) // (16 * cols * (channels + c_out) * itemsize), -(-128 // cols))


def winograd_weight(weight):
    """The conv weight ``[C_out, C_in, 3, 3]`` as the 16 matrices
    ``[16, C_in, C_out]`` the transformed input tiles are multiplied by:
    ``U[4a + b, c, o] = (G w[o, c] G^T)[a, b]``, computed in float64 and
    stored in the weight's dtype."""
    g = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])  # G (Lavin and Gray, 4.1)
    transformed = np.einsum("ai,ocij,bj->abco", g, weight.astype(np.float64), g)
    return np.ascontiguousarray(transformed.reshape(16, *transformed.shape[2:]).astype(weight.dtype))


def use_winograd(batch, channels, c_out, height, width):
    """Whether :func:`conv` takes the Winograd path for a 3x3, stride-1,
    dilation-1, one-group convolution of ``batch`` images of ``channels``
    channels to ``c_out`` channels, ``height`` x ``width`` output positions:
    at least 64 channels in and out (below, the transforms, linear in the
    channels, outweigh the multiplies saved, quadratic in them; not
    measured, so not taken), and at least ``max(32, C·C_out/4096)`` tiles
    (2x2 output blocks): each of the 16 multiplies reads its whole
    ``[C, C_out]`` matrix, 16/9 of the im2col weight, so with few tiles it
    is bound by reading weights.  Measured per ResNet layer shape
    (``benchmarks/winograd.py``, one thread; docs/runtime.md): 512@7x7
    (16 tiles per image) loses at batch 1 and 2 (1.1-1.2x im2col's time)
    and wins from batch 4 (0.8-0.9x); 256@14x14 (49 tiles) wins at batch
    1 (0.8x); 64@56x56 and 128@28x28 win at every batch (0.8-0.9x)."""
    tiles = batch * -(-height // 2) * -(-width // 2)
    return min(channels, c_out) >= 64 and tiles >= max(32, channels * c_out // 4096)


def winograd_conv(xc, transformed, pairs, bias=None, activation=None, residual=None, scratch=None, work=None):
    """The 3x3, stride-1 convolution of channels-last ``xc`` ``[N, H, W, C]``
    zero-padded by ``pairs`` (two (before, after) pairs), by F(2x2, 3x3),
    as ``[N, H_out, W_out, C_out]`` memory; ``transformed``:
    :func:`winograd_weight`'s matrices.  Per block of tile rows
    (:func:`_winograd_block`):

    1. the block's padded input rows are copied into a work buffer split by
       column parity (column ``2j + r`` at phase ``r``, position ``j``), so
       that every strided view below has whole tile rows contiguous;
    2. the input transform ``B^T d B``, rows then columns (eight
       subtractions and additions of views), into ``[16, tiles, C]``;
    3. 16 matrix multiplies by ``transformed``, into ``[16, tiles, C_out]``;
    4. the bias added to ``m[1, 1]``, the one product that reaches each of
       a tile's four outputs with weight one (``A^T``'s second column is
       all ones);
    5. the output transform ``A^T m A``, rows then columns, into a buffer
       ``[2, 2, tiles, C_out]`` that one strided copy interleaves into the
       output (cropped where the output's height or width is odd);
    6. the residual and the activation on the block (``_finish``'s order).
    """
    batch, height, width, channels = xc.shape
    c_out = transformed.shape[-1]
    dtype = np.result_type(xc.dtype, transformed.dtype)
    (top, bottom), (left, right) = pairs
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    rows, cols = -(-out_h // 2), -(-out_w // 2)  # tiles down and across
    y = np.empty((batch, out_h, out_w, c_out), dtype)
    per_block = _winograd_block(channels, c_out, cols, dtype.itemsize)
    blocks = _row_blocks(batch, rows, per_block)
    largest = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks)  # tile rows
    most_rows = max((n1 - n0) * (2 * (r1 - r0) + 2) for n0, n1, r0, r1 in blocks)  # padded input rows
    phased = _buffer(scratch, "winograd_input", most_rows * 2 * (cols + 1) * channels, xc.dtype)
    row_pass = _buffer(scratch, "winograd_rows", 4 * largest * 2 * (cols + 1) * channels, dtype)
    tiles_in = _buffer(scratch, "winograd_tiles", 16 * largest * cols * channels, dtype)
    products = _buffer(scratch, "winograd_products", 16 * largest * cols * c_out, dtype)
    sums = _buffer(scratch, "winograd_sums", 8 * largest * cols * c_out, dtype)
    outputs = _buffer(scratch, "winograd_outputs", 4 * largest * cols * c_out, dtype)
    for n0, n1, r0, r1 in blocks:
        count, lines = n1 - n0, r1 - r0
        tiles = count * lines * cols
        local = phased[:count * (2 * lines + 2) * 2 * (cols + 1) * channels]
        local = local.reshape(count, 2 * lines + 2, 2, cols + 1, channels)
        _copy_phased(local, xc[n0:n1], 2 * r0 - top, left)
        # Rows: t[a] = (B^T d)[a], d[r] the input rows 2i + r of every tile row i.
        t = row_pass[:4 * count * lines * 2 * (cols + 1) * channels].reshape(4, count, lines, 2, cols + 1, channels)
        d = [local[:, r:r + 2 * lines:2] for r in range(4)]
        np.subtract(d[0], d[2], out=t[0])
        np.add(d[1], d[2], out=t[1])
        np.subtract(d[2], d[1], out=t[2])
        np.subtract(d[1], d[3], out=t[3])
        # Columns: v[a, b] = (t[a] B)[b], c[q] the columns 2j + q (phase q % 2, position j + q // 2).
        v = tiles_in[:16 * tiles * channels].reshape(4, 4, count, lines, cols, channels)
        c = [t[:, :, :, q % 2, q // 2:q // 2 + cols] for q in range(4)]
        np.subtract(c[0], c[2], out=v[:, 0])
        np.add(c[1], c[2], out=v[:, 1])
        np.subtract(c[2], c[1], out=v[:, 2])
        np.subtract(c[1], c[3], out=v[:, 3])
        m = products[:16 * tiles * c_out].reshape(16, tiles, c_out)
        np.matmul(v.reshape(16, tiles, channels), transformed, out=m)
        m = m.reshape(4, 4, count, lines, cols, c_out)
        if bias is not None:
            m[1, 1] += bias
        # Rows of A^T m A: s[p, b] = (A^T m)[p, b]; then z[p, q] = (s A)[p, q], output (2i + p, 2j + q).
        s = sums[:8 * tiles * c_out].reshape(2, 4, count, lines, cols, c_out)
        np.add(m[0], m[1], out=s[0])
        s[0] += m[2]
        np.subtract(m[1], m[2], out=s[1])
        s[1] -= m[3]
        z = outputs[:4 * tiles * c_out].reshape(2, 2, count, lines, cols, c_out)
        np.add(s[:, 0], s[:, 1], out=z[:, 0])
        z[:, 0] += s[:, 2]
        np.subtract(s[:, 1], s[:, 2], out=z[:, 1])
        z[:, 1] -= s[:, 3]
        h0, h1 = 2 * r0, min(out_h, 2 * r1)
        block = y[n0:n1, h0:h1]
        for p in range(min(2, h1 - h0)):
            for q in range(min(2, out_w)):
                target = block[:, p::2, q::2]
                target[...] = z[p, q, :, :target.shape[1], :target.shape[2]]
        _finish(block, None, activation, None if residual is None else residual[n0:n1, h0:h1],
                None if work is None else work[:block.size])
    return y


def _copy_phased(local, images, first, left):
    """``local`` ``[n, rows, 2, span/2, C]`` := the rows ``first .. first +
    rows`` of ``images`` ``[n, H, W, C]`` shifted right by ``left``
    columns (zero where that is outside the images), padded column
    ``2j + r`` at ``local[:, :, r, j]``."""
    rows, halves = local.shape[1], local.shape[3]
    height, width = images.shape[1:3]
    low, high = max(0, -first), min(rows, height - first)
    if low > 0:
        local[:, :low] = 0
    if high < rows:
        local[:, max(low, high):] = 0
    if high <= low:
        return
    source = images[:, first + low:first + high]
    for r in range(2):
        # padded column 2j + r is input column 2j + r - left
        j0 = max(0, -(-(left - r) // 2))
        j1 = min(halves, (width - 1 + left - r) // 2 + 1)
        target = local[:, low:high, r]
        if j0 > 0:
            target[:, :, :j0] = 0
        if j1 < halves:
            target[:, :, max(j0, j1):] = 0
        if j1 > j0:
            start = 2 * j0 + r - left
            target[:, :, j0:j1] = source[:, :, start:start + 2 * (j1 - j0) - 1:2]


