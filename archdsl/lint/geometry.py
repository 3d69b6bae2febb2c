"""Rules about window geometry: strides, kernels and padding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..ops.base import show_sizes
from ..ops.conv import _Conv
from ..ops.pool import _Pool
from .base import Finding, LintContext


@dataclass(frozen=True)
class _Geometry:
    kernel: tuple[int, ...]  # dilated extent
    stride: tuple[int, ...]
    padding: tuple[int, ...]  # leading


def _windowed(context: LintContext) -> list[tuple]:
    """(node, geometry, input spatial sizes) of every conv and pool node;
    computed once for the rules that use it."""
    return context.shared(_windowed_nodes)


def _windowed_nodes(context: LintContext) -> list[tuple]:
    found = []
    for node in context.nodes():
        if not isinstance(node.spec, (_Conv, _Pool)):
            continue
        kernel, stride, padding, dilation = node.spec._geometry()
        extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        found.append((node, _Geometry(extent, tuple(stride), tuple(padding)), context.shapes[node.inputs[0]][1:]))
    return found


def dropped_pixels(context: LintContext) -> Iterator[Finding]:
    """W201: the last window ends before the last real input pixel."""
    for node, window, sizes in _windowed(context):
        if isinstance(node.spec, _Pool) and node.spec.ceil_mode:
            continue
        output = context.shapes[node.name][1:]
        for size, kernel, stride, padding, out in zip(sizes, window.kernel, window.stride, window.padding, output):
            if stride > kernel:
                continue  # W202 says more
            last_read = (out - 1) * stride + kernel - 1  # in padded coordinates
            dropped = padding + size - 1 - last_read
            if dropped > 0:
                yield Finding(
                    context.span_of(node),
                    f"{node.spec.op} never reads the last {dropped} row(s)/column(s) of its "
                    f"{show_sizes(sizes)} input: ({size} + {padding}·2 − {kernel}) mod {stride} = "
                    f"{(size + 2 * padding - kernel) % stride}",
                    hint="adjust padding or kernel so that (I + 2P − K) is a multiple of the stride",
                )
                break


def stride_exceeds_kernel(context: LintContext) -> Iterator[Finding]:
    """W202: windows that do not touch leave pixels unread."""
    for node, window, sizes in _windowed(context):
        if any(s > k for s, k in zip(window.stride, window.kernel)):
            yield Finding(
                context.span_of(node, "stride"),
                f"{node.spec.op}: stride {show_sizes(window.stride)} is larger than the kernel "
                f"{show_sizes(window.kernel)}, so pixels between windows are never read",
                hint="use a kernel at least as large as the stride",
            )


def even_kernel_same_padding(context: LintContext) -> Iterator[Finding]:
    """W207: "same" with an even dilated kernel pads asymmetrically."""
    for node in context.nodes():
        spec = node.spec
        if isinstance(spec, _Conv) and spec.padding == "same":
            kernel = [d * (k - 1) + 1 for k, d in zip(_tuple(spec.kernel_size, spec.spatial_dims),
                                                      _tuple(spec.dilation, spec.spatial_dims))]
            if any(k % 2 == 0 for k in kernel):
                yield Finding(
                    context.span_of(node, "padding"),
                    f'{spec.op}: padding="same" with the even kernel {show_sizes(kernel)} pads one more '
                    "row/column at the end than at the start",
                    hint="use an odd kernel, or explicit padding",
                )


def collapsed_spatial_map(context: LintContext) -> Iterator[Finding]:
    """W208: a spatial kernel on a 1x1 map."""
    for node, window, sizes in _windowed(context):
        if sizes and all(s == 1 for s in sizes) and any(k > 1 for k in window.kernel):
            yield Finding(
                context.span_of(node),
                f"{node.spec.op} with a {show_sizes(window.kernel)} window runs on a "
                f"{show_sizes(sizes)} map: only the centre tap sees data",
                hint="use a 1x1 convolution or a linear layer here, or keep more resolution",
            )


def _tuple(value, n):
    return value if isinstance(value, tuple) else (value,) * n
