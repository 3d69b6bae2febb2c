"""Rules about window geometry: strides, kernels and padding."""

from __future__ import annotations

from collections.abc import Iterator

from ..graph import Node
from ..ops.base import Shape, SlidingWindow, show_sizes
from .base import Finding, LintContext


def windowed(context: LintContext) -> list[tuple[Node, SlidingWindow, Shape]]:
    """(node, geometry, input spatial sizes) of every sliding-window node
    (convolution, pooling); computed once for the rules that use it."""
    return context.shared(_windowed_nodes)


def _windowed_nodes(context: LintContext) -> list[tuple[Node, SlidingWindow, Shape]]:
    found = []
    for node in context.nodes():
        window = node.spec.geometry()
        if window is not None:
            found.append((node, window, context.shape_of(node.inputs[0])[1:]))
    return found


def dropped_pixels(context: LintContext) -> Iterator[Finding]:
    """W201: the last window ends before the last real input pixel."""
    for node, window, sizes in windowed(context):
        if window.ceil_mode:
            continue
        output = context.shape_of(node.name)[1:]
        for size, kernel, stride, padding, out in zip(sizes, window.extent, window.stride, window.padding, output):
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
    for node, window, _ in windowed(context):
        if any(s > k for s, k in zip(window.stride, window.extent)):
            yield Finding(
                context.span_of(node, "stride"),
                f"{node.spec.op}: stride {show_sizes(window.stride)} is larger than the kernel "
                f"{show_sizes(window.extent)}, so pixels between windows are never read",
                hint="use a kernel at least as large as the stride",
            )


def even_kernel_same_padding(context: LintContext) -> Iterator[Finding]:
    """W207: "same" with an even dilated kernel pads asymmetrically."""
    for node, window, _ in windowed(context):
        if window.same:
            kernel = window.extent
            if any(k % 2 == 0 for k in kernel):
                yield Finding(
                    context.span_of(node, "padding"),
                    f'{node.spec.op}: padding="same" with the even kernel {show_sizes(kernel)} pads one more '
                    "row/column at the end than at the start",
                    hint="use an odd kernel, or explicit padding",
                )


def collapsed_spatial_map(context: LintContext) -> Iterator[Finding]:
    """W208: a spatial kernel on a 1x1 map."""
    for node, window, sizes in windowed(context):
        if sizes and all(s == 1 for s in sizes) and any(k > 1 for k in window.extent):
            yield Finding(
                context.span_of(node),
                f"{node.spec.op} with a {show_sizes(window.extent)} window runs on a "
                f"{show_sizes(sizes)} map: only the centre tap sees data",
                hint="use a 1x1 convolution or a linear layer here, or keep more resolution",
            )

