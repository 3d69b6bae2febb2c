"""Sliding-window arithmetic, once for every conv and pool (PyTorch's rules):
the shape rules and the NumPy kernels both use these functions, and
``archdsl export`` embeds this module's source.  So it imports nothing and
uses only integer arithmetic (the functions also take NumPy integer arrays).

>>> conv_output_size(50, kernel=3, stride=1, padding=1, dilation=1)
50
>>> pool_output_size(6, kernel=3, stride=2, padding=0, dilation=1, ceil_mode=True)
3
>>> transposed_output_size(7, kernel=3, stride=2, padding=1, dilation=1, output_padding=1)
14
"""


def effective_kernel(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``D(K-1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_size(size: int, *, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """``O = floor((I + 2P - D(K-1) - 1) / S) + 1``; may be <= 0 (caller reports)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, *, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """As conv, rounding up with ``ceil_mode``; then, as PyTorch does, a last
    window that would start in the right padding is dropped."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return numerator // stride + 1
    out = -(-numerator // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's padding="same": total ``D(K-1)``, the odd one at the end."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def transposed_output_size(size: int, *, kernel: int, stride: int, padding: int, dilation: int,
                           output_padding: int) -> int:
    """``O = (I - 1)S - 2P + D(K-1) + output_padding + 1``"""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def adaptive_range(index, size, out):
    """The input positions ``[start, end)`` that output ``index`` of adaptive
    pooling from ``size`` to ``out`` averages: ``[floor(i·I/O), ceil((i+1)·I/O))``
    (``index`` may be an integer array)."""
    return (index * size) // out, -(-(index + 1) * size // out)
