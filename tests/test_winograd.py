"""The 3x3 convolutions' Winograd path (archdsl/runtime/kernels/winograd.py):
its result against an independent float64 reference (a plain sum over the
nine taps of the zero-padded input, written here from the definition of
``torch.nn.functional.conv2d``) and against the im2col path, for odd and
even sizes, every padding the path takes, with bias, residual and each
fused activation, in float32 and float64; the selection rule
(``use_winograd``, ``conv_packing``) picking and declining as its docstring
says; and ResNet-18 with Winograd against the same model run without it."""

import numpy as np
import pytest

import archdsl
from archdsl.runtime.kernels import conv as conv_kernels
from archdsl.runtime.kernels import winograd

ACTIVATIONS = {  # the activations conv fuses, from their definitions (PyTorch's formulas)
    None: lambda v: v,
    "relu": lambda v: np.maximum(v, 0),
    "relu6": lambda v: np.minimum(np.maximum(v, 0), 6),
    "silu": lambda v: v / (1 + np.exp(-v)),
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "hardswish": lambda v: v * np.minimum(np.maximum(v + 3, 0), 6) / 6,
    "hardsigmoid": lambda v: np.minimum(np.maximum(v + 3, 0), 6) / 6,
}


def reference(x, w, b, pairs, residual=None, activation=None):
    """``y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] · x_pad[n, c, i + p, j + q]``
    in float64, then ``+ residual`` and the activation."""
    (top, bottom), (left, right) = pairs
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    height, width = padded.shape[2] - 2, padded.shape[3] - 2
    y = np.zeros((x.shape[0], w.shape[0], height, width))
    for p in range(3):
        for q in range(3):
            y += np.einsum("ncij,oc->noij", padded[:, :, p:p + height, q:q + width], w[:, :, p, q].astype(np.float64))
    if b is not None:
        y += b.astype(np.float64)[:, None, None]
    if residual is not None:
        y += residual
    return ACTIVATIONS[activation](y)


def draw(rng, batch, c_in, c_out, height, width, dtype):
    x = rng.standard_normal((batch, c_in, height, width)).astype(dtype)
    w = (rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, b


def relative(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def spy_on_winograd(monkeypatch):
    """A list to which each call of the Winograd path appends its input's shape."""
    calls = []
    original = conv_kernels.winograd_conv

    def counted(xc, *arguments, **named):
        calls.append(xc.shape)
        return original(xc, *arguments, **named)

    monkeypatch.setattr(conv_kernels, "winograd_conv", counted)
    return calls


TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("batch, height, width, padding", [
    (1, 8, 8, 1), (3, 7, 9, 1), (1, 5, 6, 0), (3, 6, 5, 2), (1, 3, 3, 0), (3, 1, 1, 1), (1, 9, 4, ((1, 2), (0, 1))),
])
def test_winograd_matches_a_float64_reference_and_im2col(dtype, activation, batch, height, width, padding):
    rng = np.random.default_rng(batch * 100 + height * 10 + width)
    x, w, b = draw(rng, batch, 5, 4, height, width, dtype)
    pairs = conv_kernels._pairs(padding, 2)
    out_shape = (batch, 4, height + sum(pairs[0]) - 2, width + sum(pairs[1]) - 2)
    residual = rng.standard_normal(out_shape).astype(dtype)
    expected = reference(x, w, b, pairs, residual, activation)
    fast = conv_kernels.conv(x, w, b, padding=pairs, packed=conv_kernels.pack_conv_weight_winograd(w, 1, b),
                             scratch={}, activation=activation, residual=residual)
    direct = conv_kernels.conv(x, w, b, padding=pairs, packed=conv_kernels.pack_conv_weight(w, 1, b),
                               scratch={}, activation=activation, residual=residual)
    assert fast.shape == expected.shape and fast.dtype == np.dtype(dtype)
    assert relative(fast, expected) < TOLERANCE[dtype]
    assert relative(fast, direct) < TOLERANCE[dtype]
    # without bias and residual
    plain = conv_kernels.conv(x, w, None, padding=pairs, packed=conv_kernels.pack_conv_weight_winograd(w))
    assert relative(plain, reference(x, w, None, pairs)) < TOLERANCE[dtype]


@pytest.mark.parametrize("rows_per_block", [1, 2, 1000])
def test_every_blocking_gives_the_same_result(monkeypatch, rows_per_block):
    """One tile row per block, two (the last block short), several whole
    images per block; with a scratch dict reused across calls of other shapes."""
    monkeypatch.setattr(winograd, "_winograd_block", lambda *_: rows_per_block)
    rng = np.random.default_rng(rows_per_block)
    scratch: dict = {}
    for batch, size in ((3, 7), (2, 10), (1, 5)):
        x, w, b = draw(rng, batch, 6, 3, size, size + 1, "float64")
        residual = rng.standard_normal((batch, 3, size, size + 1))
        y = conv_kernels.conv(x, w, b, padding=1, packed=conv_kernels.pack_conv_weight_winograd(w, 1, b),
                              scratch=scratch, activation="silu", residual=residual)
        assert relative(y, reference(x, w, b, ((1, 1), (1, 1)), residual, "silu")) < 1e-12


def test_the_bias_comes_from_the_packing_as_with_im2col():
    """A packed weight that holds the bias makes ``bias`` unused, on both paths."""
    rng = np.random.default_rng(1)
    x, w, b = draw(rng, 2, 4, 3, 6, 6, "float64")
    for pack in (conv_kernels.pack_conv_weight_winograd, conv_kernels.pack_conv_weight_both,
                 conv_kernels.pack_conv_weight):
        y = conv_kernels.conv(x, w, None, padding=1, packed=pack(w, 1, b))
        assert relative(y, reference(x, w, b, ((1, 1), (1, 1)))) < 1e-12, pack.__name__


def test_the_weight_transform_is_g_w_g_transposed():
    """``U[4a + b, c, o] = (G w[o, c] G^T)[a, b]`` with Lavin and Gray's G."""
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    w = np.random.default_rng(2).standard_normal((3, 2, 3, 3))
    u = winograd.winograd_weight(w)
    assert u.shape == (16, 2, 3)
    for o in range(3):
        for c in range(2):
            np.testing.assert_allclose(u[:, c, o].reshape(4, 4), g @ w[o, c] @ g.T, rtol=1e-14)
    assert winograd.winograd_weight(w.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("batch, channels, size, picked", [
    (1, 64, 56, True), (8, 64, 56, True), (1, 128, 28, True), (1, 256, 14, True),
    (1, 512, 7, False), (2, 512, 7, False), (4, 512, 7, True), (8, 512, 7, True),
    (8, 32, 56, False),  # fewer than 64 channels: not measured, not taken
    (1, 64, 8, False),  # 16 tiles
])
def test_use_winograd_picks_as_documented(batch, channels, size, picked):
    assert winograd.use_winograd(batch, channels, channels, size, size) is picked


def test_use_winograd_needs_both_channel_counts():
    assert not winograd.use_winograd(8, 64, 32, 56, 56)
    assert not winograd.use_winograd(8, 32, 64, 56, 56)


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, groups, pack", [
    ((64, 56, 56), 64, (3, 3), (1, 1), 1, (1, 1), 1, "pack_conv_weight_winograd"),
    ((512, 7, 7), 512, (3, 3), (1, 1), 1, (1, 1), 1, "pack_conv_weight_both"),  # Winograd from batch 4
    ((16, 56, 56), 16, (3, 3), (1, 1), 1, (1, 1), 1, "pack_conv_weight"),  # never picked
    ((64, 56, 56), 64, (3, 3), (2, 2), 1, (1, 1), 1, "pack_conv_weight"),  # strided
    ((64, 56, 56), 64, (3, 3), (1, 1), 2, (2, 2), 1, "pack_conv_weight"),  # dilated
    ((64, 56, 56), 64, (3, 3), (1, 1), 1, (1, 1), 2, "pack_conv_weight"),  # grouped
    ((64, 56, 56), 64, (5, 5), (1, 1), 2, (1, 1), 1, "pack_conv_weight"),  # 5x5
    ((64, 56), 64, (3,), (1,), 1, (1,), 1, "pack_conv_weight"),  # 1-d
    ((64, 9, 9, 9), 64, (3, 3, 3), (1, 1, 1), 1, (1, 1, 1), 1, "pack_conv_weight"),  # 3-d
])
def test_conv_packing_per_layer(shape, c_out, kernel, stride, padding, dilation, groups, pack):
    assert conv_kernels.conv_packing(shape, c_out, kernel, stride, padding, dilation, groups).__name__ == pack


def test_conv_takes_the_path_the_rule_picks(monkeypatch):
    """With both packings, 512@7x7 runs im2col at batch 2 and Winograd at
    batch 4; an im2col matrix alone never runs Winograd; no packing runs
    what the rule picks."""
    calls = spy_on_winograd(monkeypatch)
    rng = np.random.default_rng(3)
    x, w, b = draw(rng, 4, 512, 512, 7, 7, "float32")
    both = conv_kernels.pack_conv_weight_both(w, 1, b)
    for batch, taken in ((2, False), (4, True)):
        calls.clear()
        y = conv_kernels.conv(x[:batch], w, b, padding=1, packed=both, scratch={})
        assert bool(calls) is taken
        assert relative(y, reference(x[:batch], w, b, ((1, 1), (1, 1)))) < 1e-5
    calls.clear()
    conv_kernels.conv(x, w, b, padding=1, packed=conv_kernels.pack_conv_weight(w, 1, b))
    assert not calls
    conv_kernels.conv(x, w, b, padding=1)
    assert calls == [(4, 7, 7, 512)]


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
def test_resnet18_with_winograd_matches_the_model_without_it(monkeypatch, dtype, tolerance):
    """ResNet-18 at 112x112, batch 2 (layers 1-3 on Winograd: 64@28, 128@14,
    256@7 with 32 tiles; layer 4, 512@4x4, declines) against the same model
    compiled with ``optimize=False`` and the rule turned off (every 3x3 on
    im2col)."""
    model = archdsl.load("models/resnet18.cnn").model()
    x = np.random.default_rng(4).standard_normal((2, 3, 112, 112))
    calls = spy_on_winograd(monkeypatch)
    fast = archdsl.compile(model, inputs={"image": (3, 112, 112)}, dtype=dtype, seed=1)(x)
    # stage 1: 4 convs at 28x28; stage 2: 3 at 14x14 (the first is strided); stage 3: 3 at 7x7
    assert sorted(set(calls)) == [(2, 7, 7, 256), (2, 14, 14, 128), (2, 28, 28, 64)] and len(calls) == 10
    monkeypatch.setattr(conv_kernels, "use_winograd", lambda *_: False)
    calls.clear()
    plain = archdsl.compile(model, inputs={"image": (3, 112, 112)}, dtype=dtype, seed=1, optimize=False)(x)
    assert not calls
    assert relative(fast, plain.astype(np.float64)) < tolerance
