"""A model's totals as other tools print them.

Every tool counts parameters alike (learnable tensors; running statistics
are not parameters) but not operations:

- ``torchvision``: multiply-adds of convolutions and linear layers (its
  documentation's "GFLOPS" are these MACs); archdsl's ``macs``.
- ``caffe``: multiply-adds of Convolution and InnerProduct layers, the
  figures of the Caffe-era papers and model zoos: the same count.
- ``darknet`` (pjreddie/darknet): BFLOPs = 2 x the convolutions'
  multiply-adds (convolutional_layer.c prints ``2·n·size²·c/groups·out_h·out_w``);
  connected layers are not counted.
- ``darknet-alexeyab`` (AlexeyAB/darknet's "Total BFLOPS"): as ``darknet``,
  plus ``size²·c·out_h·out_w`` per max pooling layer (maxpool_layer.c) and
  ``out_w·out_h·out_c·n`` per shortcut with ``n`` added layers
  (shortcut_layer.c).

docs/import.md explains each difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis import Analysis

CONVENTIONS = ("torchvision", "caffe", "darknet", "darknet-alexeyab")

_CONVOLUTIONS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_MAX_POOLS = ("maxpool1d", "maxpool2d", "maxpool3d")


@dataclass(frozen=True)
class ConventionTotals:
    convention: str
    params: int
    operations: int     # in the convention's own unit
    unit: str           # "MACs" or "FLOPs"

    def describe(self) -> str:
        if self.unit == "FLOPs":
            return f"{self.params:,} parameters, {self.operations / 1e9:.3f} BFLOPs ({self.convention})"
        return f"{self.params:,} parameters, {self.operations:,} MACs ({self.convention})"


def convention_totals(analysis: Analysis, convention: str) -> ConventionTotals:
    """Totals of an analysed model under ``convention`` (one of CONVENTIONS),
    from ``archdsl.analyze``'s per-node figures (batch included)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    model, batch = analysis.model, analysis.settings.batch
    params = analysis.totals.params
    if convention in ("torchvision", "caffe"):
        return ConventionTotals(convention, params, analysis.totals.macs, "MACs")
    operations = 0
    for name, node in model.nodes.items():
        cost = analysis.costs.get(name)
        if cost is None:
            continue
        if node.op in _CONVOLUTIONS:
            operations += 2 * cost.macs
        elif convention == "darknet-alexeyab" and (node.op in _MAX_POOLS or node.op == "add"):
            # archdsl counts size² comparisons per output of a max pool and
            # (inputs - 1) adds per output element of an add: darknet's figures.
            operations += cost.flops
    return ConventionTotals(convention, params, batch * operations, "FLOPs")
