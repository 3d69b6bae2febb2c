"""Activation kernels (elementwise), and :func:`_finish`, the bias /
residual / activation epilogue that the convolution and add kernels apply
to each block of their output."""

import numpy as np


def _finish(y, bias, activation, residual=None, work=None):
    """``y += bias``, ``y += residual``, then the fused ``activation``
    (``"relu"``, ``"relu6"``, ``"silu"``, ``"sigmoid"``, ``"hardswish"``,
    ``"hardsigmoid"`` or None), in place: the same operations, in the same
    order, as the separate kernels.  ``work``: an array of ``y``'s size
    that the activations needing a second operand may overwrite (else one
    is allocated)."""
    if bias is not None:
        y += bias
    if residual is not None:
        y += residual
    if activation is not None:
        _activate(y, activation, work)


def _activate(y, activation, work=None):
    """The elementwise ``activation`` applied to ``y`` in place (see
    :func:`_finish`); ``work`` as there."""
    if activation == "relu":
        relu(y, inplace=True)
    elif activation == "relu6":
        relu6(y, inplace=True)
    elif activation == "hardsigmoid":
        y += 3
        y.clip(0, 6, out=y)
        y /= 6
    elif activation in ("silu", "sigmoid", "hardswish"):
        work = np.empty_like(y) if work is None else work.reshape(-1)[:y.size].reshape(y.shape)
        if activation == "hardswish":
            np.add(y, 3, out=work)
            work.clip(0, 6, out=work)
            y *= work
            y /= 6
        else:
            np.negative(y, out=work)
            with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88 (float32): the result is then 0 or -0
                np.exp(work, out=work)
            work += 1
            np.divide(y if activation == "silu" else 1, work, out=y)
    else:
        raise ValueError(f"unknown activation {activation!r}")


def _elementwise(x, activation, inplace):
    """``activation`` (a name :func:`_activate` knows) of ``x``: into ``x``
    itself with ``inplace``, else into a new array of ``x``'s memory layout."""
    y = x if inplace else np.array(x, order="K")
    _activate(y, activation)
    return y


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


def sigmoid(x, inplace=False):
    """``1 / (1 + exp(-x))``, as ``torch.sigmoid`` (the formula of its CPU
    kernel): ``exp(-x)`` overflows to infinity below -88 (float32) and the
    result is then 0, as PyTorch's."""
    return _elementwise(x, "sigmoid", inplace)


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


def gelu(x, approximate="none", inplace=False):
    """GELU, as ``torch.nn.functional.gelu``: ``x · Phi(x) = x/2 · (1 +
    erf(x/sqrt(2)))`` (exact, :func:`erf`), or with ``approximate="tanh"``
    ``x/2 · (1 + tanh(sqrt(2/pi) · (x + 0.044715 x^3)))``.  Exact GELU in
    float32 is :func:`_gelu_float32` (to 1.5e-7, as PyTorch's float32
    kernel computes it).  With ``inplace`` the result goes into ``x`` (the
    interpreter asks for it when ``x`` is dead afterwards: no new array,
    whose first writing costs page faults)."""
    if approximate != "tanh" and x.dtype == np.float32:
        return _gelu_float32(x, inplace)
    if approximate == "tanh":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    else:
        y = 0.5 * x * (1 + erf(x / np.sqrt(2.0)))
    if inplace:
        x[...] = y
        return x
    return y.astype(x.dtype, copy=False)


def _gelu_float32(x, inplace=False):
    """Exact GELU of a float32 array, in float32, to an absolute error below
    1.5e-7·max(1, |x|) (as PyTorch's float32 kernel, whose erf has an
    absolute error of 1.5e-7: Abramowitz and Stegun 7.1.26), as

        Phi(x) = 1/2 + tanh(x · P(x^2)) / 2,   GELU(x) = x/2 + x/2 · tanh(x · P(x^2))

    with ``P(s) = c_0 + c_1 s + ... + c_6 s^6`` (``polynomial`` below),
    ``x · P(x^2)`` a fit of ``atanh(erf(x/sqrt(2)))`` (the tanh
    approximation's ``sqrt(2/pi) · (x + 0.044715 x^3)`` refined: c_0 is
    ``sqrt(2/pi)`` to 4e-7): weighted least squares in ``s = x^2`` over
    ``0 < x < 5``, weights ``x · sech^2`` (the sensitivity of Phi),
    reweighted towards the minimax error, giving ``|Phi error| < 3e-8``.
    Beyond ``|x| = 5`` the polynomial grows (positive leading term), so the
    tanh saturates to +-1 as Phi does (``1 - Phi(5) = 2.9e-7``; an overflow
    to infinity still gives +-1).  Twelve of its 18 passes over memory are
    the polynomial; the former erf route took 23 (1.6x slower).  Computed
    block by block of 65536 numbers (each pass in cache), into ``x`` itself
    with ``inplace``, else into a new array of ``x``'s layout."""
    polynomial = (0.797884941500255, 0.03633308435461149, -3.2594675407723e-05, -5.5306349769998394e-05,
                  3.964779899001895e-06, -1.322668671748774e-07, 1.756295067165359e-09)
    coefficients = [np.float32(c) for c in polynomial]
    half = np.float32(0.5)
    y = x if inplace else np.empty_like(x)
    source, target = x.ravel(order="K"), y.ravel(order="K")  # views for any dense layout (same for both)
    if not np.may_share_memory(target, y):  # y is not dense (a strided view written in place): ravel copied
        y[...] = _gelu_float32(x)
        return y
    block = min(source.size, 1 << 16)
    work = np.empty(2 * block, np.float32)
    for start in range(0, source.size, block):
        v, result = source[start:start + block], target[start:start + block]
        square, q = work[:v.size], work[block:block + v.size]
        with np.errstate(over="ignore"):  # |x| beyond ~1e6: the polynomial is infinite, its tanh +-1
            np.square(v, out=square)
            np.multiply(square, coefficients[6], out=q)
            for coefficient in coefficients[5:0:-1]:
                q += coefficient
                q *= square
            q += coefficients[0]
            q *= v
        np.tanh(q, out=q)
        np.multiply(v, half, out=square)  # v is not read after this: result may be v
        q *= square
        np.add(q, square, out=result)
    return y


def silu(x, inplace=False):
    """``x · sigmoid(x)`` (swish), as ``torch.nn.functional.silu``, computed
    as its CPU kernel does: ``x / (1 + exp(-x))`` (-0.0 below -88 in
    float32, where ``exp(-x)`` overflows)."""
    return _elementwise(x, "silu", inplace)


def hardsigmoid(x, inplace=False):
    """``relu6(x + 3) / 6``, as ``torch.nn.functional.hardsigmoid``."""
    return _elementwise(x, "hardsigmoid", inplace)


def hardswish(x, inplace=False):
    """``x · relu6(x + 3) / 6``, as ``torch.nn.functional.hardswish``."""
    return _elementwise(x, "hardswish", inplace)


def mish(x):
    """``x · tanh(softplus(x))``, as ``torch.nn.functional.mish``, with
    ``softplus(x) = log(1 + exp(x))`` computed as ``logaddexp(0, x)`` (no
    overflow for large x)."""
    return x * np.tanh(np.logaddexp(x.dtype.type(0), x))


def prelu(x, weight):
    """``x if x >= 0 else a·x``, as ``torch.nn.functional.prelu``: ``weight``
    holds one slope, or one per channel (dim 1)."""
    slope = weight.reshape(-1, *(1,) * (x.ndim - 2)) if weight.size > 1 else weight.reshape(())
    return np.where(x >= 0, x, x * slope.astype(x.dtype))


def elu(x, alpha=1.0):
    """``x if x > 0 else alpha·(exp(x) - 1)``, as ``torch.nn.functional.elu``
    (``expm1`` for accuracy near 0)."""
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * np.asarray(alpha, x.dtype))


def selu(x):
    """``scale·elu(x, alpha)`` with PyTorch's constants ``alpha =
    1.6732632423543772848170429916717``, ``scale =
    1.0507009873554804934193349852946``, as ``torch.nn.functional.selu``."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return (elu(x, alpha) * np.asarray(scale, x.dtype)).astype(x.dtype, copy=False)


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta·x))/beta``, and ``x`` where ``beta·x > threshold``,
    as ``torch.nn.functional.softplus`` (``logaddexp(0, beta·x)``: no
    overflow)."""
    scaled = x * np.asarray(beta, x.dtype)
    soft = np.logaddexp(x.dtype.type(0), scaled) / np.asarray(beta, x.dtype)
    return np.where(scaled > threshold, x, soft).astype(x.dtype, copy=False)


def softmax(x, dim=1):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (the batch is dim 0), as
    ``torch.softmax``; the maximum is subtracted first."""
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    e /= e.sum(axis=dim, keepdims=True)
    return e
