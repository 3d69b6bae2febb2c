"""Where a forward pass's time goes: the time of each node's kernel call and
the totals per op kind, as ``torch.profiler``'s ``key_averages()`` table.

>>> import archdsl, numpy as np
>>> net = archdsl.compile(archdsl.loads('''
... model Tiny {
...     input image: [3, 8, 8]
...     image -> conv: conv2d(4, 3) -> bn: batchnorm2d -> relu -> flatten -> fc: linear(2)
... }''').model())
>>> profile = net.profile(np.zeros((1, 3, 8, 8), np.float32))
>>> [row.node for row in profile.nodes]
['conv', 'bn', 'relu_1', 'flatten_1', 'fc']
>>> [row.done_by for row in profile.nodes]
[None, 'conv', 'conv', None, None]
>>> profile.output.shape
(1, 2)

A node whose work another node's kernel does (a batchnorm folded into a
convolution's weights, an add or activation fused into it) takes no time
of its own and names that node (``done_by``); its kind is counted with
zero time and no call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeTime:
    """One node of a profiled forward pass."""

    node: str
    #: The op kind (``conv2d``, ``silu``, ...).
    kind: str
    #: Seconds spent in its kernel call (0 when another node does its work).
    seconds: float
    #: The node whose kernel does this node's work (folded or fused), or None.
    done_by: str | None = None


@dataclass(frozen=True)
class KindTime:
    """The totals of one op kind."""

    kind: str
    seconds: float
    #: Kernel calls (fused or folded nodes make none).
    calls: int
    #: Nodes of this kind, calls included.
    nodes: int


@dataclass(frozen=True)
class Profile:
    """The time of one forward pass: per node in execution order, and the
    pass as a whole (``total``: input checks, the kernels, the interpreter's
    own bookkeeping and the outputs made contiguous)."""

    nodes: tuple[NodeTime, ...]
    total: float
    #: What the forward pass returned (an array, or a dict by output name).
    output: Any

    @property
    def kernel_seconds(self) -> float:
        """The time inside kernel calls (the rest of ``total`` is overhead)."""
        return sum(row.seconds for row in self.nodes)

    def by_kind(self) -> list[KindTime]:
        """Totals per op kind, most time first."""
        totals: dict[str, list[float]] = {}
        for row in self.nodes:
            entry = totals.setdefault(row.kind, [0.0, 0, 0])
            entry[0] += row.seconds
            entry[1] += row.done_by is None
            entry[2] += 1
        kinds = [KindTime(kind, seconds, int(calls), int(count)) for kind, (seconds, calls, count) in totals.items()]
        return sorted(kinds, key=lambda k: (-k.seconds, k.kind))

    def table(self, limit: int | None = 20) -> str:
        """Two tables as text: op kinds (time, share of the forward pass,
        calls, nodes, time per call), then the ``limit`` slowest nodes (all
        with None), each sorted by time, and a last line with the totals."""
        total = self.total if self.total > 0 else 1.0
        lines = [f"{'op kind':<24} {'ms':>9} {'share':>6} {'calls':>6} {'nodes':>6} {'ms/call':>8}"]
        for kind in self.by_kind():
            per_call = kind.seconds / kind.calls * 1e3 if kind.calls else 0.0
            lines.append(f"{kind.kind:<24} {kind.seconds * 1e3:>9.3f} {kind.seconds / total:>6.1%} "
                         f"{kind.calls:>6} {kind.nodes:>6} {per_call:>8.3f}")
        ranked = sorted(self.nodes, key=lambda row: -row.seconds)
        shown = ranked if limit is None else ranked[:limit]
        width = max((len(row.node) for row in shown), default=4)
        lines += ["", f"{'node':<{width}} {'op kind':<20} {'ms':>9} {'share':>6}"]
        for row in shown:
            note = f"  (done by {row.done_by})" if row.done_by else ""
            lines.append(f"{row.node:<{width}} {row.kind:<20} {row.seconds * 1e3:>9.3f} "
                         f"{row.seconds / total:>6.1%}{note}")
        if len(shown) < len(ranked):
            rest = sum(row.seconds for row in ranked[len(shown):])
            lines.append(f"... {len(ranked) - len(shown)} more nodes, {rest * 1e3:.3f} ms")
        lines += ["", f"forward {self.total * 1e3:.3f} ms: kernels {self.kernel_seconds * 1e3:.3f} ms, "
                      f"other {(self.total - self.kernel_seconds) * 1e3:.3f} ms"]
        return "\n".join(lines)

