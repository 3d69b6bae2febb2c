"""The imported network, and its .cnn text.

Both importers build a :class:`Network`: inputs, then layers in the source's
order, each with the node label it gets (the source's layer name, made a
legal name), the op call as .cnn text, its producers, and the figures the
importer computed from the source's own rules (output shape, learnable
parameters, multiply-adds of convolutions and inner products).  Those
figures become the file's ``expect`` lines, so ``archdsl check`` confirms
that archdsl reads the written model as the source format does.

The text is flat but readable: a run of layers each feeding only the next
is one chain, every other value is named after the layer that made it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..syntax import RESERVED_WORDS

Shape = tuple[int, ...]

_ILLEGAL = re.compile(r"[^A-Za-z0-9_]")


def legal_name(raw: str, fallback: str = "layer") -> str:
    """``raw`` as a .cnn name: other characters become ``_``; a leading
    digit or a reserved word gets a prefix or suffix."""
    name = _ILLEGAL.sub("_", raw) or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if name in RESERVED_WORDS:
        name += "_"
    return name


@dataclass
class Layer:
    label: str
    op: str                      # ``conv2d(64, 3)``; for a merge, its name (``add``)
    inputs: tuple[str, ...]      # producer labels
    shape: Shape
    merge_args: str = ""         # keyword arguments of a merge: ``dim=1``
    params: int = 0
    macs: int = 0
    note: str = ""               # a comment written after the step
    kind: str = ""               # the source's layer type, for conventions and notes

    @property
    def is_merge(self) -> bool:
        return self.merge_args != "" or self.op in ("add", "mul", "concat")


@dataclass
class Network:
    name: str
    source: str                                  # the file name, without folders
    inputs: dict[str, Shape] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (output name, producer label)
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: What a weights file holds, in its order (Darknet): see darknet_weights.py.
    weight_plan: list[tuple] = field(default_factory=list)
    _labels: set[str] = field(default_factory=set)
    _by_label: dict[str, Layer] = field(default_factory=dict)

    def fresh_label(self, raw: str, fallback: str = "layer") -> str:
        """A legal label not used yet; a renamed source name is noted."""
        base = legal_name(raw, fallback)
        label, n = base, 2
        while label in self._labels:
            label, n = f"{base}_{n}", n + 1
        return label

    def add_input(self, raw: str, shape: Shape) -> str:
        label = self.fresh_label(raw, "input")
        self._labels.add(label)
        self.inputs[label] = shape
        return label

    def add(self, layer: Layer) -> Layer:
        if layer.label in self._labels:
            raise ValueError(f"label {layer.label} used twice")  # fresh_label prevents it
        self._labels.add(layer.label)
        self._by_label[layer.label] = layer
        self.layers.append(layer)
        return layer

    def shape(self, label: str) -> Shape:
        if label in self.inputs:
            return self.inputs[label]
        return self._by_label[label].shape

    def layer(self, label: str) -> Layer | None:
        return self._by_label.get(label)

    def consumers(self) -> dict[str, int]:
        counts = {label: 0 for label in (*self.inputs, *self._by_label)}
        for layer in self.layers:
            for producer in layer.inputs:
                counts[producer] += 1
        return counts

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    # ------------------------------------------------------------ text

    def to_cnn(self) -> str:
        lines = [f"# {line}".rstrip() for line in self.header]
        if self.notes:
            lines += ["#", "# Import notes:"] + [f"#   {note}" for note in self.notes]
        lines += ["", f"model {self.name} {{"]
        lines += [f"    input {name}: {_shape(shape)}" for name, shape in self.inputs.items()]
        lines.append("")
        lines += self._statements()
        lines.append("")
        for name, label in self.outputs:
            lines.append(f"    output {name}" if name == label else f"    output {name} = {label}")
        lines += ["", "    # Figures computed by the importer from the source's own rules."]
        lines.append(f"    expect params == {_int(self.params)}")
        lines.append(f"    expect macs == {_int(self.macs)}")
        for name, label in self.outputs:
            lines.append(f"    expect output {name}: {_shape(self.shape(label))}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _statements(self) -> list[str]:
        consumers = self.consumers()
        output_labels = {label for _, label in self.outputs}
        lines: list[str] = []
        i = 0
        while i < len(self.layers):
            chain = [self.layers[i]]
            while (i + 1 < len(self.layers) and not self.layers[i + 1].is_merge
                   and self.layers[i + 1].inputs == (chain[-1].label,)
                   and consumers[chain[-1].label] == 1 and chain[-1].label not in output_labels):
                i += 1
                chain.append(self.layers[i])
            i += 1
            lines += _chain_text(chain)
        return lines


def _chain_text(chain: list[Layer]) -> list[str]:
    first = chain[0]
    steps: list[tuple[str, Layer]] = []
    if first.is_merge:
        arguments = ", ".join([*first.inputs, *([first.merge_args] if first.merge_args else [])])
        head = f"    {chain[-1].label} = {first.label}: {first.op}({arguments})"
        steps.append((head, first))
        rest = chain[1:]
    else:
        head = f"    {chain[-1].label} = {first.inputs[0]}"
        rest = chain
    lines = [] if first.is_merge else [head]
    for text, layer in steps:
        lines.append(_with_comment(text, layer))
    for layer in rest:
        lines.append(_with_comment(f"        -> {layer.label}: {layer.op}", layer))
    return lines


def _with_comment(text: str, layer: Layer) -> str:
    comment = _shape(layer.shape) + (f"  {layer.note}" if layer.note else "")
    return f"{text:<72} # {comment}"


def _shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _int(value: int) -> str:
    return f"{value:_}"


def numel(shape: Shape) -> int:
    return math.prod(shape)
