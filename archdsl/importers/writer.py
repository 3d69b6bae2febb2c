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
A label may be a dotted path (``layer1.0.conv1``, from an ONNX initializer
or a PyTorch module path): the step is then written inside labelled groups,
``layer1: (0: (conv1: conv2d(...) -> bn1: batchnorm2d))``, which give the
node exactly that name, and the value is named with ``_`` for the dots.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..syntax import RESERVED_WORDS

Shape = tuple[int, ...]

_ILLEGAL = re.compile(r"[^A-Za-z0-9_]")


_INDEX = re.compile(r"0|[1-9][0-9]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def legal_component(part: str) -> bool:
    """Whether ``part`` can be one component of a node name as the importers
    write it: what the language accepts as a label (``label_problem`` in
    archdsl/elaborate.py: no ``.``, whitespace, control character or brace,
    so ``block1-0`` is one), less ``/`` and ``:``, which ONNX exporters use
    in generated names (``layer1.0/Add``, ``onnx::Conv_12``: not keys), and
    the quotes and backslash a quoted label would have to escape."""
    from ..elaborate import label_problem

    return label_problem(part) is None and not any(ch in part for ch in "/:\\\"'")


def legal_path(raw: str) -> bool:
    """Whether ``raw`` is a dotted path of legal label components, which
    groups can spell as a node name (state_dict keys keep their names)."""
    return all(legal_component(part) for part in raw.split("."))


def _label_text(part: str) -> str:
    """One component of a label as .cnn text: a name or an index as it is,
    anything else (a reserved word, ``block1-0``, ``010``) quoted."""
    if (_NAME.fullmatch(part) and part not in RESERVED_WORDS) or _INDEX.fullmatch(part):
        return part
    return f'"{part}"'


def _plain_name(label: str) -> bool:
    """Whether a label is a legal value name as it is."""
    return bool(_NAME.fullmatch(label)) and label not in RESERVED_WORDS


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
        return self.merge_args != "" or self.op in ("add", "mul", "sub", "concat")


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

    def fresh_path(self, raw: str, fallback: str = "layer") -> str:
        """``raw`` itself when it is a legal dotted path not used yet (the
        state_dict key prefix a weight needs); else as :meth:`fresh_label`."""
        if legal_path(raw) and raw not in self._labels \
                and not any(label.startswith(raw + ".") or raw.startswith(label + ".") for label in self._labels):
            return raw
        return self.fresh_label(raw, fallback)

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

    def variables(self) -> dict[str, str]:
        """The name each node's value has in the text: its label, or for a
        dotted or quoted label the label with ``_`` for the dots and other
        characters (made unique)."""
        names = {label: label for label in (*self.inputs, *self._by_label) if _plain_name(label)}
        taken = set(names)
        for label in self._by_label:
            if label not in names:
                base = legal_name(label.replace(".", "_"))
                name, n = base, 2
                while name in taken:
                    name, n = f"{base}_{n}", n + 1
                names[label] = name
                taken.add(name)
        return names

    def to_cnn(self) -> str:
        names = self.variables()
        lines = [f"# {line}".rstrip() for line in self.header]
        if self.notes:
            lines += ["#", "# Import notes:"] + [f"#   {note}" for note in self.notes]
        lines += ["", f"model {self.name} {{"]
        lines += [f"    input {name}: {_shape(shape)}" for name, shape in self.inputs.items()]
        lines.append("")
        lines += self._statements(names)
        lines.append("")
        for name, label in self.outputs:
            lines.append(f"    output {name}" if name == names[label] else f"    output {name} = {names[label]}")
        lines += ["", "    # Figures computed by the importer from the source's own rules."]
        lines.append(f"    expect params == {_int(self.params)}")
        lines.append(f"    expect macs == {_int(self.macs)}")
        for name, label in self.outputs:
            lines.append(f"    expect output {name}: {_shape(self.shape(label))}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _statements(self, names: dict[str, str]) -> list[str]:
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
            lines += _chain_text(chain, names)
        return lines


def _chain_text(chain: list[Layer], names: dict[str, str]) -> list[str]:
    first = chain[0]
    result = names[chain[-1].label]
    if first.is_merge:
        arguments = ", ".join([*(names[p] for p in first.inputs), *([first.merge_args] if first.merge_args else [])])
        lines = [_with_comment(f"    {result} = {_label_text(first.label)}: {first.op}({arguments})", first)]
        rest = chain[1:]
    else:
        lines = [f"    {result} = {names[first.inputs[0]]}"]
        rest = chain
    i = 0
    while i < len(rest):  # a run of steps under one dotted prefix shares its groups
        prefix = rest[i].label.rpartition(".")[0]
        run = [rest[i]]
        while prefix and i + len(run) < len(rest) and rest[i + len(run)].label.rpartition(".")[0] == prefix:
            run.append(rest[i + len(run)])
        i += len(run)
        lines += _run_text(prefix, run)
    return lines


def _run_text(prefix: str, run: list[Layer]) -> list[str]:
    """``-> a: (0: (x: op -> y: op))`` for steps labelled ``a.0.x``, ``a.0.y``."""
    parts = prefix.split(".") if prefix else []
    opening = "".join(f"{_label_text(part)}: (" for part in parts)
    closing = ")" * len(parts)
    lines = []
    for j, layer in enumerate(run):
        name = _label_text(layer.label.rpartition(".")[2])
        step = f"{name}: {layer.op}" + (closing if j == len(run) - 1 else "")
        text = f"        -> {opening}{step}" if j == 0 else f"        {' ' * len(opening)}   -> {step}"
        lines.append(_with_comment(text, layer))
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
