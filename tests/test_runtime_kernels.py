"""The NumPy kernels against direct implementations of their definitions.

Every reference below is written from the op's definition (PyTorch's
documented formula), element by element with nested loops on small sizes,
sharing no code with archdsl/runtime/kernels/.  Tolerance: 1e-5 max abs
error in float64 (most agree to 1e-12).  A few edge cases also carry values
recorded from PyTorch 2.13 (torch.nn.functional), marked as such.  Every
op of the registry runs through the runtime in tests/test_ops_contract.py.
"""

import itertools
import math

import numpy as np
import pytest

from archdsl.runtime.kernels import activation, conv, linear, merge, norm, pool, reshape, resize

TOL = 1e-5


def rng(seed=0):
    return np.random.default_rng(seed)


def close(actual, expected, tol=TOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert error <= tol, f"max abs error {error:.3g}"


def channels_last(x):
    """The same logical tensor with channels-last memory (kernels must not care)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(0, x.ndim - 1, *range(1, x.ndim - 1))


def positions(shape):
    return itertools.product(*(range(s) for s in shape))


# ------------------------------------------------------------------ conv


def out_size(size, kernel, stride, before, after, dilation):
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def conv_direct(x, w, b, stride, pads, dilation, groups):
    """y[n,o,p] = b[o] + sum_{c,k} w[o,c,k] x[n, g·Cg + c, p·S + k·D - P_before] (zero outside)."""
    n_batch, c_in, *size = x.shape
    c_out, c_group, *kernel = w.shape
    dims = len(size)
    outs = [out_size(size[d], kernel[d], stride[d], *pads[d], dilation[d]) for d in range(dims)]
    y = np.zeros((n_batch, c_out, *outs))
    per_group = c_out // groups
    for n, o in itertools.product(range(n_batch), range(c_out)):
        g = o // per_group
        for p in positions(outs):
            total = 0.0 if b is None else b[o]
            for c in range(c_group):
                for k in positions(kernel):
                    src = [p[d] * stride[d] + k[d] * dilation[d] - pads[d][0] for d in range(dims)]
                    if all(0 <= src[d] < size[d] for d in range(dims)):
                        total += w[(o, c, *k)] * x[(n, g * c_group + c, *src)]
            y[(n, o, *p)] = total
    return y


def test_conv_seed_notes_1d_example():
    """Kernel 3 over length 5 gives 3 outputs: o1 = x1w1 + x2w2 + x3w3 (no flip)."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[10.0, 100.0, 1000.0]]])
    y = conv.conv(x, w)
    assert y.tolist() == [[[3210.0, 4320.0, 5430.0]]]


CONV_CASES = [
    # (dims, c_in, c_out, groups, kernel, stride, padding, dilation, size)
    (2, 4, 6, 1, 3, 1, 1, 1, 7),        # plain, padded
    (2, 4, 6, 2, 3, 2, 1, 1, 8),        # grouped, strided
    (2, 6, 6, 6, 3, 1, 1, 1, 7),        # depthwise
    (2, 6, 6, 6, 3, 2, 2, 2, 9),        # depthwise, strided, dilated
    (2, 3, 6, 3, 3, 1, 0, 1, 6),        # depthwise with channel multiplier 2
    (2, 4, 5, 1, (3, 2), (2, 1), (1, 0), (2, 1), 9),  # per-dimension arguments
    (2, 4, 4, 1, 1, 2, 1, 1, 7),        # 1x1, strided, padded
    (2, 8, 4, 4, 1, 1, 0, 1, 5),        # 1x1 grouped
    (1, 3, 5, 1, 5, 3, 2, 1, 17),       # conv1d
    (1, 4, 4, 2, 3, 1, 3, 3, 11),       # conv1d grouped dilated
    (3, 2, 3, 1, 3, 2, 1, 1, 5),        # conv3d
    (3, 4, 4, 4, (1, 3, 2), 1, (0, 1, 1), 1, 4),  # conv3d depthwise
]


@pytest.mark.parametrize("dims, c_in, c_out, groups, kernel, stride, padding, dilation, size", CONV_CASES)
def test_conv(dims, c_in, c_out, groups, kernel, stride, padding, dilation, size):
    r = rng()
    kernel, stride, padding, dilation = (v if isinstance(v, tuple) else (v,) * dims
                                         for v in (kernel, stride, padding, dilation))
    x = r.standard_normal((2, c_in, *(size,) * dims))
    w = r.standard_normal((c_out, c_in // groups, *kernel))
    b = r.standard_normal(c_out)
    expected = conv_direct(x, w, b, stride, [(p, p) for p in padding], dilation, groups)
    close(conv.conv(x, w, b, stride, padding, dilation, groups), expected)
    close(conv.conv(channels_last(x), w, b, stride, padding, dilation, groups), expected)
    packed = conv.pack_conv_weight(w, groups)
    close(conv.conv(x, w, None, stride, padding, dilation, groups, packed=packed), expected - b.reshape(-1, *(1,) * dims))


# The paths conv takes by shape (each checked against the direct definition, in
# blocks small enough that every blocking branch runs, with the bias packed into
# the weight matrix or not, and with the fused residual and activation):
# pointwise multiplying the input itself or copying it with a column of ones,
# im2col in blocks (whole images or rows of one image), the transposed im2col of
# few-channel inputs, depthwise tap by tap (stride phases, dilation), grouped.
FAST_CASES = [
    # (path, dims, c_in, c_out, groups, kernel, stride, padding ((before, after) per dim), dilation, size, batch)
    ("pointwise", 2, 8, 4, 1, 1, 1, 0, 1, 6, 3),
    ("pointwise-ones", 2, 4, 9, 1, 1, 1, 0, 1, 6, 3),
    ("pointwise-strided", 2, 6, 5, 1, 1, 2, 0, 1, 7, 2),
    ("pointwise-padded", 2, 4, 6, 1, 1, 1, 1, 1, 5, 2),
    ("im2col", 2, 12, 5, 1, 3, 1, 1, 1, 9, 3),
    ("im2col-strided-dilated", 2, 12, 6, 1, (3, 2), (2, 1), ((2, 1), (0, 1)), (1, 2), 10, 2),
    ("im2col-1d", 1, 16, 4, 1, 3, 2, 1, 1, 20, 2),
    ("im2col-3d", 3, 11, 3, 1, 3, 1, 1, 1, 5, 2),
    ("few-channels", 2, 3, 8, 1, 7, 2, 3, 1, 16, 2),  # 8x8 outputs: the im2col path
    ("few-channels-large", 2, 3, 4, 1, 3, 1, 1, 1, 46, 2),  # 4232 output positions: the transposed im2col
    ("few-channels-asymmetric", 2, 2, 3, 1, (3, 4), (1, 3), ((0, 2), (2, 1)), (2, 1), 80, 2),
    ("few-channels-1d", 1, 2, 4, 1, 5, 1, ((2, 1),), 1, 2100, 2),
    ("few-channels-3d", 3, 1, 2, 1, 3, (1, 2, 1), 1, (2, 1, 1), 17, 2),
    ("depthwise", 2, 8, 8, 8, 3, 1, 1, 1, 9, 3),
    ("depthwise-strided", 2, 8, 8, 8, 3, 2, 1, 1, 9, 2),
    ("depthwise-stride3-dilated", 2, 5, 5, 5, 3, (3, 2), ((2, 0), (1, 2)), (2, 1), 11, 2),
    ("depthwise-1d", 1, 4, 4, 4, 5, 2, 2, 1, 15, 2),
    ("depthwise-3d", 3, 3, 3, 3, 3, (1, 2, 2), 1, 1, 6, 2),
    # Depthwise as einsum: unstrided along the last dim (any channel count), or 64+ channels.
    ("depthwise-dilated", 2, 8, 8, 8, 3, (2, 1), ((2, 0), (1, 2)), (2, 2), 11, 2),
    ("depthwise-1d-unstrided", 1, 4, 4, 4, 5, 1, 2, 2, 15, 2),
    ("depthwise-3d-unstrided", 3, 3, 3, 3, 3, (2, 1, 1), 1, 1, 6, 2),
    ("depthwise-wide-strided", 2, 64, 64, 64, 3, 2, ((1, 0), (2, 1)), (1, 2), 9, 2),
    ("depthwise-wide-1d", 1, 64, 64, 64, 5, 2, 2, 1, 15, 2),
    ("depthwise-wide-3d", 3, 64, 64, 64, 3, (1, 2, 2), 1, 1, 5, 2),
    ("grouped", 2, 8, 6, 2, 3, 1, 1, 1, 6, 2),
    # Grouped im2col from the group-major input copy (default blocks) or straight from the input ("tiny").
    ("grouped-strided-dilated", 2, 12, 8, 4, (3, 2), (2, 1), ((2, 1), (0, 1)), (1, 2), 9, 2),
    ("grouped-1d", 1, 6, 9, 3, 3, 2, 1, 1, 11, 2),
    ("grouped-3d", 3, 4, 6, 2, 3, (1, 2, 1), 1, 1, 5, 2),
    ("grouped-pointwise", 2, 6, 4, 2, 1, 1, 0, 1, 5, 2),
]


@pytest.mark.parametrize("blocks", ["default", "tiny"])
@pytest.mark.parametrize("path, dims, c_in, c_out, groups, kernel, stride, padding, dilation, size, batch", FAST_CASES,
                         ids=[case[0] for case in FAST_CASES])
def test_conv_paths(path, dims, c_in, c_out, groups, kernel, stride, padding, dilation, size, batch, blocks,
                    monkeypatch):
    if blocks == "tiny":  # a few output rows per block: every blocking branch runs
        monkeypatch.setattr(conv, "_block_bytes", lambda kind: 200 if kind == "tap" else 1500)
    r = rng(30)
    kernel, stride, dilation = (v if isinstance(v, tuple) else (v,) * dims for v in (kernel, stride, dilation))
    pads = padding if isinstance(padding, tuple) else ((padding, padding),) * dims
    pads = tuple(p if isinstance(p, tuple) else (p, p) for p in pads)
    x = r.standard_normal((batch, c_in, *(size,) * dims))
    w = r.standard_normal((c_out, c_in // groups, *kernel))
    b = r.standard_normal(c_out)
    plain = conv_direct(x, w, None, stride, pads, dilation, groups)
    with_bias = plain + b.reshape(-1, *(1,) * dims)
    residual = r.standard_normal(plain.shape)
    for packed in (None, conv.pack_conv_weight(w, groups), conv.pack_conv_weight(w, groups, b)):
        for source in (x, channels_last(x)):
            close(conv.conv(source, w, b, stride, pads, dilation, groups, packed=packed, scratch={}), with_bias)
        expected = with_bias + residual
        close(conv.conv(x, w, b, stride, pads, dilation, groups, packed=packed, residual=channels_last(residual),
                     activation="relu"), np.maximum(expected, 0))
        close(conv.conv(channels_last(x), w, b, stride, pads, dilation, groups, packed=packed, residual=residual,
                     activation="relu6"), np.clip(expected, 0, 6))
    close(conv.conv(x, w, None, stride, pads, dilation, groups, scratch={}, activation="relu"), np.maximum(plain, 0))
    # The fused activations that need a work buffer, and hardsigmoid, by their definitions.
    definitions = {"silu": lambda v: v / (1 + np.exp(-v)), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
                   "hardswish": lambda v: v * np.clip(v + 3, 0, 6) / 6, "hardsigmoid": lambda v: np.clip(v + 3, 0, 6) / 6}
    for name, definition in definitions.items():
        close(conv.conv(channels_last(x), w, b, stride, pads, dilation, groups, scratch={}, activation=name,
                        residual=residual), definition(with_bias + residual))


@pytest.mark.parametrize("path", ["im2col", "im2col-3d", "few-channels-large", "depthwise-strided", "depthwise",
                                  "depthwise-wide-1d", "pointwise-ones"])
def test_conv_any_block_size(path, monkeypatch):
    """Blocks of one row up to the whole batch, through blocks of several images
    with a smaller last one."""
    case = next(c for c in FAST_CASES if c[0] == path)
    _, dims, c_in, c_out, groups, kernel, stride, padding, dilation, size, batch = case
    r = rng(33)
    x = r.standard_normal((3, c_in, *(size,) * dims))
    w = r.standard_normal((c_out, c_in // groups, *(kernel,) * dims))
    b = r.standard_normal(c_out)
    pads, strides, dilations = ((padding, padding),) * dims, (stride,) * dims, (dilation,) * dims
    expected = conv_direct(x, w, b, strides, pads, dilations, groups)
    packed = conv.pack_conv_weight(w, groups, b)
    for exponent in range(12, 42):
        monkeypatch.setattr(conv, "_block_bytes", lambda kind, exponent=exponent: int(2 ** (exponent / 2)))
        close(conv.conv(channels_last(x), w, b, stride, padding, dilation, groups, packed=packed, scratch={}), expected)


@pytest.mark.parametrize("channels, width, kernel, dilation", [
    (64, 12, 3, 1),    # float64 rows of 6 kB: two pieces of 6 positions
    (64, 13, 5, 1),    # a prime width: pieces of one position
    (600, 11, 7, 1),   # one channel row alone above 4 kB: pieces of one position
    (8, 40, 7, 2),     # a whole row in one piece (2.5 kB), dilated
    (70, 9, 1, 1),     # a 1x1 kernel
])
def test_depthwise_rows_in_pieces(channels, width, kernel, dilation):
    """The unstrided depthwise einsum over output rows cut into pieces (about 4 kB)
    against the direct definition, with bias, residual and activation."""
    r = rng(34)
    x = r.standard_normal((2, channels, 5, width))
    w, b = r.standard_normal((channels, 1, kernel, kernel)), r.standard_normal(channels)
    pad = dilation * (kernel // 2)
    expected = conv_direct(x, w, b, (1, 1), ((pad, pad), (pad, pad)), (dilation, dilation), channels)
    residual = r.standard_normal(expected.shape)
    close(conv.conv(channels_last(x), w, b, 1, pad, dilation, channels, scratch={}), expected, 1e-10)
    close(conv.conv(x, w, b, 1, pad, dilation, channels, packed=conv.pack_conv_weight(w, channels, b),
                    residual=residual, activation="relu"), np.maximum(expected + residual, 0), 1e-10)
    y32 = conv.conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 1, pad, dilation, channels)
    assert y32.dtype == np.float32
    close(y32, expected, 1e-4)


def test_conv_packs_the_bias_as_a_last_row():
    r = rng(31)
    w, b = r.standard_normal((5, 3, 2, 2)), r.standard_normal(5)
    packed = conv.pack_conv_weight(w, 1, b)
    assert packed.shape == (1, 13, 5)
    close(packed[0, -1], b, 0)
    close(packed[0, :-1], conv.pack_conv_weight(w)[0], 0)
    assert conv.pack_conv_weight(w.reshape(5, 3, 2, 2)[:, :1], 5, b).shape == (4, 5)  # depthwise: no bias row
    assert conv.pack_conv_weight(r.standard_normal((4, 2, 3)), 2, r.standard_normal(4)).shape == (2, 6, 2)  # grouped
    with pytest.raises(ValueError, match="activation"):
        conv.conv(r.standard_normal((1, 3, 4, 4)), w, b, activation="gelu")


def test_conv_float32_paths_agree_with_float64():
    r = rng(32)
    for c_in, c_out, groups, kernel, stride in ((3, 8, 1, 7, 2), (16, 8, 1, 3, 1), (8, 24, 1, 1, 1), (8, 8, 8, 3, 2)):
        x = r.standard_normal((2, c_in, 11, 11))
        w = r.standard_normal((c_out, c_in // groups, kernel, kernel)) / kernel
        b = r.standard_normal(c_out)
        y64 = conv.conv(x, w, b, stride, kernel // 2, 1, groups, activation="relu")
        y32 = conv.conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), stride, kernel // 2, 1, groups,
                     packed=conv.pack_conv_weight(w.astype(np.float32), groups, b.astype(np.float32)), activation="relu")
        assert y32.dtype == np.float32
        close(y32, y64, 1e-4)


@pytest.mark.parametrize("kernel, dilation", [(4, 1), (2, 1), (3, 2), (4, 3)])
def test_conv_same_padding_puts_the_extra_at_the_end(kernel, dilation):
    """padding="same": total D(K-1), the odd one after (PyTorch)."""
    r = rng(1)
    x = r.standard_normal((1, 2, 7, 6))
    w = r.standard_normal((3, 2, kernel, kernel))
    total = dilation * (kernel - 1)
    pads = [(total // 2, total - total // 2)] * 2
    y = conv.conv(x, w, None, 1, pads, dilation)
    assert y.shape == (1, 3, 7, 6)
    close(y, conv_direct(x, w, None, (1, 1), pads, (dilation,) * 2, 1))


def test_conv_float32_agrees_with_float64():
    r = rng(2)
    x = r.standard_normal((2, 8, 9, 9))
    w = r.standard_normal((16, 8, 3, 3)) / 8
    y64 = conv.conv(x, w, None, 1, 1)
    y32 = conv.conv(x.astype(np.float32), w.astype(np.float32), None, 1, 1)
    assert y32.dtype == np.float32
    close(y32, y64, 1e-4)


def conv_transpose_direct(x, w, b, stride, padding, output_padding, dilation, groups):
    """Scatter: full[n, o, i·S + k·D] += x[n,c,i]·w[c,o',k]; y = full[P : P + O] + b."""
    n_batch, c_in, *size = x.shape
    _, c_group, *kernel = w.shape
    dims = len(size)
    c_out = c_group * groups
    per_group = c_in // groups
    outs = [(size[d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + output_padding[d] + 1
            for d in range(dims)]
    y = np.zeros((n_batch, c_out, *outs))
    for n, c in itertools.product(range(n_batch), range(c_in)):
        g = c // per_group
        for i in positions(size):
            for o in range(c_group):
                for k in positions(kernel):
                    target = [i[d] * stride[d] + k[d] * dilation[d] - padding[d] for d in range(dims)]
                    if all(0 <= target[d] < outs[d] for d in range(dims)):
                        y[(n, g * c_group + o, *target)] += x[(n, c, *i)] * w[(c, o, *k)]
    if b is not None:
        y += b.reshape(-1, *(1,) * dims)
    return y


CONV_T_CASES = [
    # (dims, c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, size)
    (2, 4, 6, 1, 3, 2, 1, 1, 1, 5),     # the usual 2x upsampling
    (2, 4, 6, 2, 3, 2, 0, 0, 1, 4),     # grouped
    (2, 4, 4, 4, 3, 1, 1, 0, 2, 5),     # depthwise, dilated
    (2, 3, 2, 1, (2, 3), (2, 3), (0, 1), (1, 2), 1, 4),
    (2, 2, 3, 1, 4, 3, 2, 2, 2, 3),     # output_padding < dilation
    (1, 3, 4, 1, 5, 2, 2, 1, 1, 6),
    (3, 2, 2, 2, 2, 2, 0, 1, 1, 3),
]


@pytest.mark.parametrize("dims, c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, size",
                         CONV_T_CASES)
def test_conv_transpose(dims, c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, size):
    r = rng(3)
    kernel, stride, padding, output_padding, dilation = (
        v if isinstance(v, tuple) else (v,) * dims for v in (kernel, stride, padding, output_padding, dilation))
    x = r.standard_normal((2, c_in, *(size,) * dims))
    w = r.standard_normal((c_in, c_out // groups, *kernel))
    b = r.standard_normal(c_out)
    expected = conv_transpose_direct(x, w, b, stride, padding, output_padding, dilation, groups)
    close(conv.conv_transpose(x, w, b, stride, padding, output_padding, dilation, groups), expected)
    close(conv.conv_transpose(channels_last(x), w, b, stride, padding, output_padding, dilation, groups), expected)


def test_linear():
    r = rng(4)
    x, w, b = r.standard_normal((3, 7)), r.standard_normal((5, 7)), r.standard_normal(5)
    expected = np.array([[b[o] + sum(w[o, i] * x[n, i] for i in range(7)) for o in range(5)] for n in range(3)])
    close(linear.linear(x, w, b), expected)
    close(linear.linear(x, w), expected - b)


@pytest.mark.parametrize("shape", [(3, 7), (70, 7), (2, 5, 7, 7), (2, 8, 5, 7)])
def test_linear_packed_and_over_a_stack_of_rows(shape):
    """Both row counts (below 64: weight times x^T; else x times the packed [in, out]
    weight), with and without the packed weight, 2-d and over [N, H, W, C]."""
    r = rng(5)
    x, w, b = r.standard_normal(shape), r.standard_normal((5, 7)), r.standard_normal(5)
    expected = np.einsum("...i,oi->...o", x, w) + b
    packed = linear.pack_linear_weight(w)
    assert packed.shape == (7, 5) and packed.flags.c_contiguous
    for y in (linear.linear(x, w, b), linear.linear(x, w, b, packed=packed), linear.linear(x[..., ::-1][..., ::-1], w, b)):
        assert y.shape == (*shape[:-1], 5)
        close(y, expected, 1e-12)


def test_scale_and_scale_in_place_on_channels_last_memory():
    """y[n, c, h, w] = x[n, c, h, w] · s[c, 0, 0]; in place on a channels-last view
    (ConvNeXt's layer scale after its permute) the same numbers, into x itself."""
    r = rng(6)
    x, s = channels_last(r.standard_normal((2, 3, 4, 5))), r.standard_normal((3, 1, 1))
    expected = np.array([[[[x[n, c, h, w] * s[c, 0, 0] for w in range(5)] for h in range(4)] for c in range(3)]
                         for n in range(2)])
    close(linear.scale(x, s), expected, 1e-15)
    y = x.copy(order="K")
    assert linear.scale(y, s, inplace=True) is y
    close(y, expected, 1e-15)


# --------------------------------------------------------------- pooling


def pool_out_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's MaxPool/AvgPool docs: floor or ceil of (I + 2P - D(K-1) - 1)/S, + 1; with
    ceil_mode the last window must start inside the input or the left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def max_pool_direct(x, kernel, stride, padding, dilation, ceil_mode):
    n_batch, channels, *size = x.shape
    dims = len(size)
    outs = [pool_out_size(size[d], kernel[d], stride[d], padding[d], dilation[d], ceil_mode) for d in range(dims)]
    y = np.empty((n_batch, channels, *outs))
    for n, c in itertools.product(range(n_batch), range(channels)):
        for p in positions(outs):
            best = -math.inf
            for k in positions(kernel):
                src = [p[d] * stride[d] - padding[d] + k[d] * dilation[d] for d in range(dims)]
                if all(0 <= src[d] < size[d] for d in range(dims)):
                    best = max(best, x[(n, c, *src)])
            y[(n, c, *p)] = best
    return y


def avg_pool_direct(x, kernel, stride, padding, ceil_mode, count_include_pad):
    """Sum over the window's input elements; divisor as PyTorch's AvgPool: the window
    clipped to [−P, I + P) when padding counts, else to [0, I)."""
    n_batch, channels, *size = x.shape
    dims = len(size)
    outs = [pool_out_size(size[d], kernel[d], stride[d], padding[d], 1, ceil_mode) for d in range(dims)]
    y = np.empty((n_batch, channels, *outs))
    for p in positions(outs):
        start = [p[d] * stride[d] - padding[d] for d in range(dims)]
        end = [min(start[d] + kernel[d], size[d] + padding[d]) for d in range(dims)]
        if count_include_pad:
            divisor = math.prod(end[d] - start[d] for d in range(dims))
        else:
            divisor = math.prod(min(end[d], size[d]) - max(start[d], 0) for d in range(dims))
        for n, c in itertools.product(range(n_batch), range(channels)):
            total = 0.0
            for k in positions(kernel):
                src = [start[d] + k[d] for d in range(dims)]
                if all(0 <= src[d] < size[d] for d in range(dims)):
                    total += x[(n, c, *src)]
            y[(n, c, *p)] = total / divisor
    return y


POOL_CASES = [
    # (dims, kernel, stride, padding, dilation, ceil_mode, size)
    (2, 3, 2, 1, 1, False, 8),
    (2, 3, 2, 1, 1, True, 8),
    (2, 2, 2, 0, 1, True, 7),
    (2, 3, 3, 1, 1, True, 7),
    (2, 4, 3, 2, 1, True, 9),
    (2, (3, 2), (2, 1), (1, 0), 1, True, 6),
    (2, 3, 2, 0, 2, True, 9),            # dilated (max pool only)
    (1, 3, 2, 1, 1, True, 10),
    (3, 2, 2, 1, 1, True, 5),
    (2, 2, 2, 1, 1, False, 4),           # no tap reaches every output
    (2, (2, 3), (3, 1), (1, 1), (3, 1), False, 8),  # dilated wider than the stride (max pool only)
    (3, (1, 2, 2), (1, 2, 2), 0, 1, False, 6),  # C3D's pool1: one tap in time
    (3, (1, 2, 2), (2, 2, 2), 0, 1, True, 5),   # one tap, strided
    (2, 1, 1, 0, 1, False, 5),           # one tap everywhere: a copy of the input
]


@pytest.mark.parametrize("dims, kernel, stride, padding, dilation, ceil_mode, size", POOL_CASES)
def test_max_pool(dims, kernel, stride, padding, dilation, ceil_mode, size):
    kernel, stride, padding, dilation = (v if isinstance(v, tuple) else (v,) * dims
                                         for v in (kernel, stride, padding, dilation))
    x = rng(5).standard_normal((2, 3, *(size,) * dims))
    expected = max_pool_direct(x, kernel, stride, padding, dilation, ceil_mode)
    close(pool.max_pool(x, kernel, stride, padding, dilation, ceil_mode), expected)
    x_last = channels_last(x)
    y = pool.max_pool(x_last, kernel, stride, padding, dilation, ceil_mode)
    close(y, expected)
    assert not np.may_share_memory(y, x_last)  # the plan may write into a kernel's output


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dims, kernel, stride, padding, dilation, ceil_mode, size",
                         [c for c in POOL_CASES if c[4] == 1])
def test_avg_pool(dims, kernel, stride, padding, dilation, ceil_mode, size, count_include_pad):
    kernel, stride, padding = (v if isinstance(v, tuple) else (v,) * dims for v in (kernel, stride, padding))
    x = rng(6).standard_normal((2, 3, *(size,) * dims))
    expected = avg_pool_direct(x, kernel, stride, padding, ceil_mode, count_include_pad)
    close(pool.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad), expected)
    close(pool.avg_pool(channels_last(x), kernel, stride, padding, ceil_mode, count_include_pad), expected)


def test_pooling_ceil_mode_matches_recorded_pytorch_values():
    """torch 2.13: F.avg_pool1d/max_pool1d(x=[1..7], 3, 2, 1, ceil_mode=True)."""
    x = np.arange(1.0, 8.0).reshape(1, 1, 7)
    close(pool.avg_pool(x, 3, 2, 1, True, True)[0, 0], [1.0, 3.0, 5.0, 4.333333333333])
    close(pool.avg_pool(x, 3, 2, 1, True, False)[0, 0], [1.5, 3.0, 5.0, 6.5])
    close(pool.max_pool(-x, 3, 2, 1, 1, True)[0, 0], [-1.0, -2.0, -4.0, -6.0])


def test_stride_defaults_to_kernel_size():
    x = rng(7).standard_normal((1, 2, 6, 6))
    close(pool.max_pool(x, 2), max_pool_direct(x, (2, 2), (2, 2), (0, 0), (1, 1), False))
    close(pool.avg_pool(x, 3), avg_pool_direct(x, (3, 3), (3, 3), (0, 0), False, True))


@pytest.mark.parametrize("dims, size, output", [(2, 7, 3), (2, 5, 5), (2, 4, 6), (2, 10, (4, 1)), (1, 9, 4), (3, 5, 2)])
def test_adaptive_avg_pool(dims, size, output):
    output = output if isinstance(output, tuple) else (output,) * dims
    x = rng(8).standard_normal((2, 3, *(size,) * dims))
    expected = np.empty((2, 3, *output))
    for p in positions(output):
        starts = [(p[d] * size) // output[d] for d in range(dims)]
        ends = [math.ceil((p[d] + 1) * size / output[d]) for d in range(dims)]
        window = x[(slice(None), slice(None), *(slice(s, e) for s, e in zip(starts, ends)))]
        expected[(slice(None), slice(None), *p)] = window.reshape(2, 3, -1).mean(axis=-1)
    close(pool.adaptive_avg_pool(x, output), expected)
    close(pool.adaptive_avg_pool(channels_last(x), output), expected)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
def test_global_avg_pool(shape):
    x = rng(9).standard_normal(shape)
    expected = np.array([[np.mean(x[n, c]) for c in range(3)] for n in range(2)]).reshape(2, 3, *(1,) * (len(shape) - 2))
    close(pool.global_avg_pool(x), expected)
    close(pool.global_avg_pool(channels_last(x)), expected)


# --------------------------------------------------------- normalisation


def test_batch_norm_running_statistics():
    r = rng(10)
    x = r.standard_normal((3, 4, 5, 2))
    w, b, mean, var = r.standard_normal(4), r.standard_normal(4), r.standard_normal(4), r.uniform(0.5, 2, 4)
    expected = np.empty_like(x)
    for n, c in itertools.product(range(3), range(4)):
        expected[n, c] = (x[n, c] - mean[c]) / math.sqrt(var[c] + 1e-3) * w[c] + b[c]
    close(norm.batch_norm(x, w, b, mean, var, eps=1e-3), expected)
    close(norm.batch_norm(channels_last(x), w, b, mean, var, eps=1e-3), expected)
    no_affine = norm.batch_norm(x, None, None, mean, var, eps=1e-3)
    close(no_affine * w.reshape(1, 4, 1, 1) + b.reshape(1, 4, 1, 1), expected)
    copy = x.copy()
    result = norm.batch_norm(copy, w, b, mean, var, eps=1e-3, inplace=True)
    assert result is copy
    close(copy, expected)


def test_batch_norm_without_running_statistics_uses_the_batch():
    """track_running_stats=False: the batch's mean and biased variance (PyTorch, eval too)."""
    x = rng(11).standard_normal((3, 2, 4))
    expected = np.empty_like(x)
    for c in range(2):
        values = x[:, c].ravel()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        expected[:, c] = (x[:, c] - mean) / math.sqrt(var + 1e-5)
    close(norm.batch_norm(x, eps=1e-5), expected)


@pytest.mark.parametrize("normalized_ndim", [1, 2, 3])
def test_layer_norm(normalized_ndim):
    r = rng(12)
    x = r.standard_normal((2, 3, 4, 5))
    shape = x.shape[4 - normalized_ndim:]
    w, b = r.standard_normal(shape), r.standard_normal(shape)
    expected = np.empty_like(x)
    for lead in positions(x.shape[:4 - normalized_ndim]):
        values = x[lead].ravel()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)  # biased
        expected[lead] = (x[lead] - mean) / math.sqrt(var + 1e-5) * w + b
    close(norm.layer_norm(x, normalized_ndim, w, b, 1e-5), expected)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("shape", [(2, 7, 4), (2, 7, 3, 2), (1, 7, 2, 2, 2)])
def test_local_response_norm(size, shape):
    """b_c = a_c / (k + alpha/size · sum_{c' = c - size//2}^{c + (size-1)//2} a_c'^2)^beta."""
    x = rng(13).standard_normal(shape)
    alpha, beta, k = 0.02, 0.75, 2.0
    expected = np.empty_like(x)
    channels = shape[1]
    for n in range(shape[0]):
        for c in range(channels):
            for p in positions(shape[2:]):
                total = sum(x[(n, j, *p)] ** 2 for j in range(c - size // 2, c + (size - 1) // 2 + 1)
                            if 0 <= j < channels)
                expected[(n, c, *p)] = x[(n, c, *p)] / (k + alpha / size * total) ** beta
    close(norm.local_response_norm(x, size, alpha, beta, k), expected)
    close(norm.local_response_norm(channels_last(x), size, alpha, beta, k), expected)


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 4), 3), ((2, 4, 5), 1), ((1, 6, 2, 2, 3), 6), ((2, 4), 2)])
def test_group_norm(shape, groups):
    """Mean and biased variance of each group, by loops over its elements."""
    x = rng(30).standard_normal(shape) * 3 + 1
    weight, bias = rng(31).standard_normal(shape[1]), rng(32).standard_normal(shape[1])
    per = shape[1] // groups
    expected = np.empty(shape)
    for n in range(shape[0]):
        for g in range(groups):
            values = [float(v) for c in range(g * per, (g + 1) * per) for v in x[n, c].ravel()]
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / len(values)
            for c in range(g * per, (g + 1) * per):
                expected[n, c] = (x[n, c] - mean) / math.sqrt(var + 1e-5) * weight[c] + bias[c]
    close(norm.group_norm(x, groups, weight, bias), expected, 1e-10)
    close(norm.group_norm(channels_last(x) if x.ndim > 2 else x, groups, weight, bias), expected, 1e-10)


def test_instance_norm_and_layer_norm2d():
    x = rng(33).standard_normal((2, 3, 4, 5)) * 2 - 1
    weight, bias = rng(34).standard_normal(3), rng(35).standard_normal(3)
    expected = np.empty_like(x)
    for n, c in itertools.product(range(2), range(3)):
        plane = x[n, c]
        expected[n, c] = (plane - plane.mean()) / math.sqrt(plane.var() + 1e-5) * weight[c] + bias[c]
    close(norm.instance_norm(x, weight, bias), expected, 1e-10)
    mean, var = rng(36).standard_normal(3), rng(37).uniform(0.5, 2, 3)
    close(norm.instance_norm(x, None, None, mean, var), (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5))
    expected = np.empty_like(x)
    for n, h, w in itertools.product(range(2), range(4), range(5)):
        column = x[n, :, h, w]
        expected[n, :, h, w] = (column - column.mean()) / math.sqrt(column.var() + 1e-6) * weight + bias
    close(norm.layer_norm2d(x, weight, bias, 1e-6), expected, 1e-10)


def test_group_instance_layer_norm2d_match_torch_when_installed():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng(38).standard_normal((2, 6, 5, 7)) * 3
    weight, bias = rng(39).standard_normal(6), rng(40).standard_normal(6)
    t, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    close(norm.group_norm(x, 3, weight, bias), F.group_norm(t, 3, tw, tb).numpy(), 1e-10)
    close(norm.instance_norm(x, weight, bias), F.instance_norm(t, weight=tw, bias=tb).numpy(), 1e-10)
    close(norm.instance_norm(x), torch.nn.InstanceNorm2d(6).eval()(t).numpy(), 1e-10)
    close(norm.layer_norm2d(x, weight, bias, 1e-6),
          F.layer_norm(t.permute(0, 2, 3, 1), (6,), tw, tb, 1e-6).permute(0, 3, 1, 2).numpy(), 1e-10)


@pytest.mark.parametrize("shape, normalized", [((2, 9, 11, 96), (96,)), ((3, 7, 768), (768,)), ((2, 5, 6, 8), (6, 8))])
def test_layer_norm_float32_matches_torch_when_installed(shape, normalized):
    """float32 statistics, as PyTorch computes them: within 1e-5 of the float64 result
    and of torch's float32 layer_norm, with the mean offset by 10x the spread."""
    torch = pytest.importorskip("torch")
    r = rng(43)
    x = (r.standard_normal(shape) * 2 + 20).astype(np.float32)
    w, b = (r.standard_normal(normalized).astype(np.float32) for _ in range(2))
    y = norm.layer_norm(x, len(normalized), w, b, 1e-6)
    assert y.dtype == np.float32 and y.shape == x.shape
    wide = norm.layer_norm(x.astype(np.float64), len(normalized), w.astype(np.float64), b.astype(np.float64), 1e-6)
    theirs = torch.nn.functional.layer_norm(torch.from_numpy(x), normalized, torch.from_numpy(w),
                                            torch.from_numpy(b), 1e-6).numpy()
    close(y, wide, 1e-5)
    close(y, theirs, 1e-5)


def test_local_response_norm_matches_recorded_pytorch_values():
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    close(norm.local_response_norm(x, 3, 0.3, 0.75, 2.0).ravel(),
          [0.502973371873, 0.798768275716, 0.910907325544, 0.92947232097, 1.288168360804])


# ----------------------------------------------------------- activations


def phi(v):
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


SCALAR = {
    "relu": lambda v: max(0.0, v),
    "relu6": lambda v: min(max(0.0, v), 6.0),
    "leaky_relu": lambda v: v if v > 0 else 0.01 * v,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)) if v > -700 else 0.0,
    "tanh": math.tanh,
    "gelu": lambda v: v * phi(v),
    "silu": lambda v: v / (1 + math.exp(-v)) if v > -700 else -0.0,
    "hardswish": lambda v: v * min(max(v + 3, 0.0), 6.0) / 6,
    "hardsigmoid": lambda v: min(max(v + 3, 0.0), 6.0) / 6,
    "elu": lambda v: v if v > 0 else math.expm1(v),
    # SELU's constants from Klambauer et al. (2017), as torch.nn.SELU's documentation prints them.
    "selu": lambda v: 1.0507009873554804934193349852946 * (v if v > 0 else
                                                           1.6732632423543772848170429916717 * math.expm1(v)),
    "softplus": lambda v: v if v > 20 else math.log1p(math.exp(v)),
}


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_activation(name):
    x = np.concatenate([rng(14).standard_normal(200) * 4, [0.0, -0.0, 3.0, -3.0, 6.0, 50.0, -50.0, -800.0, 800.0]])
    expected = np.array([SCALAR[name](float(v)) for v in x])
    kernel = getattr(activation, name)
    close(kernel(x.reshape(1, -1)), expected.reshape(1, -1), 1e-12)
    y32 = kernel(x.astype(np.float32).reshape(1, -1))
    assert y32.dtype == np.float32
    assert np.allclose(y32, expected.reshape(1, -1), rtol=1e-6, atol=1e-6)


def test_leaky_relu_slope_and_gelu_tanh():
    x = rng(15).standard_normal((2, 50)) * 3
    close(activation.leaky_relu(x, 0.2), np.where(x > 0, x, 0.2 * x))
    expected = [[0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))) for v in row] for row in x]
    close(activation.gelu(x, "tanh"), expected, 1e-12)


def test_prelu_elu_softplus_arguments():
    x = rng(17).standard_normal((2, 3, 4, 5)) * 3
    slopes = np.array([0.1, -0.5, 2.0])
    expected = np.array([[[[v if v >= 0 else slopes[c] * v for v in row] for row in plane]
                          for c, plane in enumerate(sample)] for sample in x])
    close(activation.prelu(x, slopes), expected, 1e-12)
    close(activation.prelu(x, np.array([0.25])), np.where(x >= 0, x, 0.25 * x), 1e-12)
    close(activation.elu(x, 0.5), [[[[v if v > 0 else 0.5 * math.expm1(v) for v in row] for row in plane]
                                    for plane in sample] for sample in x], 1e-12)
    # beta 2, threshold 1: x itself where 2x > 1, log(1 + exp(2x))/2 below
    close(activation.softplus(x, 2.0, 1.0), [[[[v if 2 * v > 1 else math.log1p(math.exp(2 * v)) / 2 for v in row]
                                               for row in plane] for plane in sample] for sample in x], 1e-12)


def test_new_activations_match_torch_when_installed():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.concatenate([rng(18).standard_normal(300) * 6, [0.0, -0.0, 10.0, 10.5, 30.0, -30.0]]).reshape(2, 3, -1)
    t = torch.from_numpy(x)
    close(activation.elu(x, 0.7), F.elu(t, 0.7).numpy(), 1e-12)
    close(activation.selu(x), F.selu(t).numpy(), 1e-12)
    close(activation.softplus(x, 2.0, 20.0), F.softplus(t, 2.0, 20.0).numpy(), 1e-12)
    close(activation.softplus(x, 0.5, 3.0), F.softplus(t, 0.5, 3.0).numpy(), 1e-12)
    slopes = np.array([0.1, -0.5, 2.0])
    close(activation.prelu(x, slopes), F.prelu(t, torch.from_numpy(slopes)).numpy(), 1e-12)


def test_inplace_kernels_write_into_their_input():
    for name in ("relu", "relu6", "tanh"):
        x = rng(16).standard_normal((2, 5))
        expected = getattr(activation, name)(x.copy())
        result = getattr(activation, name)(x, inplace=True)
        assert result is x
        close(x, expected, 0)


def test_erf_is_accurate_to_float64():
    xs = np.concatenate([np.linspace(-7, 7, 40001), [0.0, 1e-300, -1e-12, 0.999999, 1.0, 2.5, 4.0, 5.99, 6.0, 1e300]])
    expected = np.array([math.erf(v) for v in xs])
    error = np.max(np.abs(activation.erf(xs) - expected))
    assert error < 1e-14, error
    tiny = np.array([1e-10, -3e-8])
    assert np.allclose(activation.erf(tiny), [math.erf(v) for v in tiny], rtol=1e-13, atol=0)
    assert np.isnan(activation.erf(np.array([np.nan]))[0])


@pytest.mark.parametrize("dim", [1, 2, -1])
def test_softmax(dim):
    x = rng(17).standard_normal((2, 3, 4)) * 5
    axis = dim % 3
    expected = np.empty_like(x)
    for index in positions(x.shape):
        line = [index[:axis] + (j,) + index[axis + 1:] for j in range(x.shape[axis])]
        denominator = sum(math.exp(x[i]) for i in line)
        expected[index] = math.exp(x[index]) / denominator
    close(activation.softmax(x, dim), expected, 1e-12)
    assert np.all(np.isfinite(activation.softmax(x * 1000, dim)))


# ------------------------------------------------------------ merge, reshape


def test_add_and_mul_broadcasting():
    r = rng(18)
    a, b, c = r.standard_normal((2, 3, 4, 5)), r.standard_normal((2, 3, 4, 5)), r.standard_normal((2, 3, 1, 1))
    sum_expected = np.empty_like(a)
    product = np.empty_like(a)
    for n, ch, i, j in positions(a.shape):
        sum_expected[n, ch, i, j] = a[n, ch, i, j] + b[n, ch, i, j] + a[n, ch, i, j]
        product[n, ch, i, j] = a[n, ch, i, j] * c[n, ch, 0, 0]
    close(merge.add(a, b, a), sum_expected, 1e-12)
    close(merge.mul(a, c), product, 1e-12)
    close(merge.mul(c, a), product, 1e-12)
    target = a.copy()
    assert merge.add(target, b, inplace=True) is target
    close(target, a + b, 0)
    small = c.copy()
    assert merge.mul(small, a, inplace=True).shape == a.shape  # no room in [2, 3, 1, 1]: a new array
    close(small, c, 0)


def test_add_with_a_fused_activation():
    r = rng(34)
    a, b = r.standard_normal((2, 3, 4, 5)), r.standard_normal((2, 3, 4, 5))
    close(merge.add(a, b, activation="relu"), np.maximum(a + b, 0), 0)
    close(merge.add(a * 4, b * 4, a * 4, activation="relu6"), np.clip(a * 8 + b * 4, 0, 6), 1e-12)
    target = channels_last(a)
    assert merge.add(target, b, inplace=True, activation="relu") is target
    close(target, np.maximum(a + b, 0), 0)


def test_relu_keeps_nan_and_negative_zero_as_pytorch():
    """torch 2.13: F.relu(tensor([-0., nan, -1., 2.])) == [-0., nan, 0., 2.] (relu6 alike)."""
    x = np.array([-0.0, np.nan, -1.0, 2.0, 7.0])
    for kernel, top in ((activation.relu, 7.0), (activation.relu6, 6.0)):
        y = kernel(x)
        assert np.signbit(y[0]) and np.isnan(y[1]) and y[2] == 0 and not np.signbit(y[2])
        assert y[3] == 2.0 and y[4] == top


def test_concat_narrow_flatten():
    r = rng(19)
    a, b = r.standard_normal((2, 3, 4, 5)), r.standard_normal((2, 2, 4, 5))
    joined = merge.concat(a, b, dim=1)
    assert joined.shape == (2, 5, 4, 5)
    close(joined[:, :3], a, 0)
    close(joined[:, 3:], b, 0)
    close(merge.concat(channels_last(a), channels_last(b), dim=1), joined, 0)
    close(merge.concat(a, a, dim=-1), np.concatenate([a, a], axis=3), 0)
    close(reshape.narrow(joined, 1, 3, 2), b, 0)
    flat = reshape.flatten(channels_last(a))
    expected = [[a[n, c, i, j] for c in range(3) for i in range(4) for j in range(5)] for n in range(2)]
    close(flat, expected, 0)
    assert reshape.flatten(a, 2, 3).shape == (2, 3, 20)
    assert reshape.identity(a) is a and reshape.dropout(a, 0.5) is a


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_channel_shuffle(groups):
    x = rng(20).standard_normal((2, 6, 3, 2))
    per = 6 // groups
    expected = np.empty_like(x)
    for g in range(groups):
        for j in range(per):
            expected[:, j * groups + g] = x[:, g * per + j]
    close(reshape.channel_shuffle(x, groups), expected, 0)
    close(reshape.channel_shuffle(channels_last(x), groups), expected, 0)


def pad_source(i, before, size, mode):
    """Where output index i (in the padded axis) reads from, per F.pad's modes."""
    j = i - before
    if 0 <= j < size:
        return j
    if mode == "constant":
        return None
    if mode == "replicate":
        return min(max(j, 0), size - 1)
    if mode == "circular":
        return j % size
    return -j if j < 0 else 2 * (size - 1) - j  # reflect: mirror without repeating the edge


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (2, 1, 0, 3), (1, 1, 2, 2, 1, 0)])
def test_pad(mode, pad):
    x = rng(21).standard_normal((2, 3, 4, 5))
    pairs = [(0, 0)] * (4 - len(pad) // 2) + [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    shape = [s + a + b for s, (a, b) in zip(x.shape, pairs)]
    expected = np.empty(shape)
    for index in positions(shape):
        source = [pad_source(i, a, s, mode) for i, (a, _), s in zip(index, pairs, x.shape)]
        expected[index] = 1.5 if None in source else x[tuple(source)]
    close(reshape.pad(x, pad, mode, 1.5), expected, 0)


def test_pad_negative_crops():
    x = rng(22).standard_normal((1, 2, 5, 6))
    close(reshape.pad(x, (-1, 2, 1, -2)), np.pad(x[:, :, :3, 1:], ((0, 0), (0, 0), (1, 0), (0, 2))), 0)


# ------------------------------------------------------------ interpolation


def source_linear(dst, in_size, out_size, align_corners, scale_factor):
    """PyTorch's area_pixel_compute_source_index (non-cubic)."""
    if align_corners:
        return dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    scale = 1 / scale_factor if scale_factor else in_size / out_size
    return max(scale * (dst + 0.5) - 0.5, 0.0)


def linear_taps(dst, in_size, out_size, align_corners, scale_factor):
    if out_size == in_size and not align_corners:
        return [(dst, 1.0)]
    src = source_linear(dst, in_size, out_size, align_corners, scale_factor)
    i0 = min(int(math.floor(src)), in_size - 1)
    lam = min(max(src - i0, 0.0), 1.0)
    return [(i0, 1 - lam), (min(i0 + 1, in_size - 1), lam)]


def cubic_taps(dst, in_size, out_size, align_corners, scale_factor):
    """Keys' cubic convolution, A = -0.75, indices clamped (PyTorch's bicubic)."""
    if align_corners:
        src = dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        scale = 1 / scale_factor if scale_factor else in_size / out_size
        src = scale * (dst + 0.5) - 0.5
    i0 = math.floor(src)
    t = src - i0
    a = -0.75

    def weight(d):
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        if d < 2:
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return 0.0

    return [(min(max(i0 - 1 + j, 0), in_size - 1), weight(t - (j - 1))) for j in range(4)]


def nearest_taps(dst, in_size, out_size, scale_factor):
    """PyTorch's 'nearest': src = min(floor(dst·scale), I-1), float32 arithmetic."""
    scale = np.float32(1 / scale_factor) if scale_factor else np.float32(in_size) / np.float32(out_size)
    return [(min(int(np.floor(np.float32(dst) * scale)), in_size - 1), 1.0)]


def interpolate_direct(x, outs, factors, mode, align_corners):
    dims = x.ndim - 2
    taps_of = {
        "nearest": lambda d, o: nearest_taps(o, x.shape[2 + d], outs[d], factors[d]),
        "bicubic": lambda d, o: cubic_taps(o, x.shape[2 + d], outs[d], align_corners, factors[d]),
    }.get(mode, lambda d, o: linear_taps(o, x.shape[2 + d], outs[d], align_corners, factors[d]))
    y = np.zeros((*x.shape[:2], *outs))
    for p in positions(outs):
        per_dim = [taps_of(d, p[d]) for d in range(dims)]
        for combination in itertools.product(*per_dim):
            weight = math.prod(w for _, w in combination)
            y[(slice(None), slice(None), *p)] += weight * x[(slice(None), slice(None), *(i for i, _ in combination))]
    return y


INTERPOLATE_CASES = [
    # (dims, mode, align_corners, size, scale_factor)
    (1, "nearest", None, 7, None), (1, "nearest", None, None, 1.5), (1, "nearest", None, None, 0.6),
    (2, "nearest", None, None, 2.0), (2, "nearest", None, (3, 7), None), (3, "nearest", None, None, 2.0),
    (1, "linear", False, 7, None), (1, "linear", True, 7, None), (1, "linear", False, None, 2.3),
    (2, "bilinear", False, None, 2.0), (2, "bilinear", True, None, 2.0), (2, "bilinear", False, (3, 7), None),
    (2, "bilinear", True, (1, 6), None), (2, "bilinear", False, None, 0.5),
    (2, "bicubic", False, (4, 5), None), (2, "bicubic", True, None, 2.0), (2, "bicubic", False, None, 1.5),
    (3, "trilinear", False, None, 2.0), (3, "trilinear", True, (2, 5, 3), None),
]


@pytest.mark.parametrize("dims, mode, align_corners, size, scale_factor", INTERPOLATE_CASES)
def test_interpolate(dims, mode, align_corners, size, scale_factor):
    x = rng(23).standard_normal((2, 2, *(5, 4, 3)[:dims]))
    if size is not None:
        outs = size if isinstance(size, tuple) else (size,) * dims
        factors = (None,) * dims
    else:
        factors = (scale_factor,) * dims
        outs = tuple(int(math.floor(s * scale_factor)) for s in x.shape[2:])
    expected = interpolate_direct(x, outs, factors, mode, align_corners)
    close(resize.interpolate(x, size, scale_factor, mode, align_corners), expected, 1e-12)
    close(resize.interpolate(channels_last(x), size, scale_factor, mode, align_corners), expected, 1e-12)


RECORDED_1D = {  # torch 2.13, F.interpolate(torch.arange(5.).reshape(1, 1, 5), ...); linear in float32
    ("nearest", "size", 7): [0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 4.0],
    ("nearest", "scale_factor", 1.5): [0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 4.0],
    ("nearest", "scale_factor", 0.6): [0.0, 1.0, 3.0],
    ("nearest", "scale_factor", 2.3): [0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0],
    ("linear", "size", 7): [0.0, 0.571428596973, 1.285714387894, 2.0, 2.714285850525, 3.428571462631, 4.0],
    ("linear", "scale_factor", 1.5): [0.0, 0.5, 1.16666674614, 1.83333337307, 2.5, 3.16666674614, 3.833333492279],
    ("linear", "scale_factor", 0.6): [0.333333313465, 2.0, 3.666666507721],
    ("linear", "scale_factor", 2.3): [0.0, 0.152173891664, 0.586956501007, 1.021739125252, 1.456521630287,
                                      1.891304254532, 2.326086759567, 2.760869503021, 3.195652008057,
                                      3.630434751511, 4.0],
}


@pytest.mark.parametrize("mode, argument, value", sorted(RECORDED_1D, key=str))
def test_interpolate_matches_recorded_pytorch_values(mode, argument, value):
    x = np.arange(5.0, dtype=np.float32).reshape(1, 1, 5)
    result = resize.interpolate(x, **{argument: value}, mode=mode)
    close(result.ravel(), RECORDED_1D[mode, argument, value], 1e-6)


def test_bicubic_matches_recorded_pytorch_values():
    x = (np.arange(9.0) ** 1.5).reshape(1, 1, 3, 3)
    close(resize.interpolate(x, size=(4, 5), mode="bicubic", align_corners=False).ravel(), [
        -0.45653638141, -0.159862579093, 0.49755859375, 1.619847301445, 2.395162491499, 2.083907990564,
        2.885574192327, 4.321748869665, 6.0546681984, 7.161871485675, 8.867180148674, 10.234241433374,
        12.56003480125, 15.044292691231, 16.574513743135, 15.004816045435, 16.59021488103, 19.275375436771,
        22.110216732145, 23.84973129225], 1e-9)
    close(resize.interpolate(x, scale_factor=2.0, mode="bicubic", align_corners=True)[0, 0, 1],
          [1.332050545563, 1.798519809746, 2.45280007453, 3.517062411266, 4.474826568303, 5.24477972474], 1e-9)


def test_gelu_float32_in_blocks_and_any_layout():
    """Exact GELU in float32 (tanh of a fitted polynomial, |error| < 1.5e-7·max(1, |x|))
    over several blocks and a partial one, channels-last memory kept."""
    x = (rng(40).standard_normal((2, 70, 130, 5)) * 4).astype(np.float32).transpose(0, 3, 1, 2)
    expected = np.vectorize(lambda v: v * phi(v))(x.astype(np.float64))
    y = activation.gelu(x)
    assert y.dtype == np.float32 and y.strides == x.strides
    assert np.all(np.abs(y - expected) <= 1e-6 + 1e-6 * np.abs(expected))


def test_gelu_float32_accuracy_on_a_dense_grid():
    """The float32 GELU against x·Phi(x) by math.erf, every 2e-4 over [-12, 12] and
    at extremes: absolute error at most 1.5e-7·max(1, |x|) (PyTorch's float32 erf is
    accurate to 1.5e-7), results rounded to float32 included; saturation far out."""
    x = np.concatenate([np.linspace(-12, 12, 120_001), [0.0, -0.0, 5.0, -5.0, 7.5, -7.5, 1e4, -1e4, 3e38, -3e38]])
    x = x.astype(np.float32)
    wide = x.astype(np.float64)
    expected = np.array([v * phi(v) for v in wide])
    y = activation.gelu(x).astype(np.float64)
    assert np.all(np.abs(y - expected) <= 1.5e-7 * np.maximum(1.0, np.abs(wide)))
    assert y[-4] == 1e4 and y[-3] == 0.0 and y[-2] == np.float32(3e38) and y[-1] == 0.0
    assert np.isnan(activation.gelu(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_in_place_equals_the_new_array_even_on_a_strided_view(dtype, approximate):
    """``inplace=True`` writes the result into ``x`` (a non-dense view included:
    the rest of its base untouched), bit for bit the array ``inplace=False`` returns."""
    base = (rng(41).standard_normal((6, 40)) * 3).astype(dtype)
    expected = activation.gelu(base[::2, 5:30], approximate)
    x = base.copy()
    view = x[::2, 5:30]
    assert activation.gelu(view, approximate, inplace=True) is view
    np.testing.assert_array_equal(view, expected)
    np.testing.assert_array_equal(x[1::2], base[1::2])
    np.testing.assert_array_equal(x[::2, :5], base[::2, :5])
    np.testing.assert_array_equal(x[::2, 30:], base[::2, 30:])
    dense = base.copy()
    assert activation.gelu(dense, approximate, inplace=True) is dense
    np.testing.assert_array_equal(dense, activation.gelu(base, approximate))


def test_gelu_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = rng(42).standard_normal((3, 5000)) * 4
    for dtype, tol in ((np.float32, 2e-6), (np.float64, 1e-12)):
        theirs = torch.nn.functional.gelu(torch.from_numpy(x.astype(dtype))).numpy()
        close(activation.gelu(x.astype(dtype)), theirs, tol)
