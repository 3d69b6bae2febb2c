"""Rules about window geometry: strides, kernels and padding."""

from __future__ import annotations

from collections.abc import Iterator

from ..graph import Node
from ..ops.base import Shape, SlidingWindow, show_sizes
from ..ops.merge import Add, Concat
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


#: W201 speaks when the unread border is a real part of the input: one
#: row of 224 (SqueezeNet 1.0's stem, torchvision's) or one sample of 1981
#: (M5) is the price of a stride, not a mistake; one row of 32 is 3%.
MIN_DROPPED_SHARE = 0.02


def _axis_names(rank: int) -> tuple[str, ...]:
    """What the last N input positions of each spatial axis are called."""
    return {1: ("samples",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}.get(rank, ("positions",) * rank)


def _count(n: int, plural: str) -> str:
    return f"{n} {plural if n != 1 else plural[:-1]}"


def dropped_pixels(context: LintContext) -> Iterator[Finding]:
    """W201: the last window ends before the last real input pixels, and the
    unread part is at least MIN_DROPPED_SHARE of the axis."""
    for node, window, sizes in windowed(context):
        if window.ceil_mode:
            continue
        output = context.shape_of(node.name)[1:]
        names = _axis_names(len(sizes))
        lost = []
        for axis, (size, kernel, stride, padding, out) in enumerate(
                zip(sizes, window.extent, window.stride, window.padding, output)):
            if stride > kernel:
                continue  # W202 says more
            last_read = (out - 1) * stride + kernel - 1  # in padded coordinates
            dropped = padding + size - 1 - last_read
            if dropped > 0 and dropped >= size * MIN_DROPPED_SHARE:
                remainder = (size + 2 * padding - kernel) % stride
                lost.append(f"the last {_count(dropped, names[axis])} of {size} "
                            f"(({size} + {padding}·2 − {kernel}) mod {stride} = {remainder})")
        if lost:
            yield Finding(
                context.span_of(node),
                f"{node.spec.op} never reads {' and '.join(lost)} of its {show_sizes(sizes)} input",
                hint="adjust padding or kernel so that (I + 2P − K) is a multiple of the stride",
            )


def _feeds_a_merge(context: LintContext, node: Node) -> bool:
    """Whether ``node``'s output reaches an add or concat through layers
    that keep positions (normalisation, activations): a shortcut, whose
    merge partner reads the pixels this branch skips."""
    current: Node | None = node
    while current is not None:
        reader = context.only_consumer(current)
        if reader is None:
            return False
        if isinstance(reader.spec, (Add, Concat)):
            return True
        if reader.spec.geometry() is not None or len(reader.inputs) != 1:
            return False
        if context.shape_of(reader.name)[1:] != context.shape_of(current.name)[1:]:
            return False
        current = reader
    return False


def stride_exceeds_kernel(context: LintContext) -> Iterator[Finding]:
    """W202: windows that do not touch leave pixels unread.  A 1x1 strided
    projection on a shortcut (ResNet's, RegNet's downsample) is exempt: the
    residual branch it is added to reads every pixel."""
    for node, window, _ in windowed(context):
        if any(s > k for s, k in zip(window.stride, window.extent)):
            if all(k == 1 for k in window.extent) and _feeds_a_merge(context, node):
                continue
            yield Finding(
                context.span_of(node, "stride"),
                f"{node.spec.op}: stride {show_sizes(window.stride)} is larger than the kernel "
                f"{show_sizes(window.extent)}, so pixels between windows are never read and no other "
                "branch reads them",
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

