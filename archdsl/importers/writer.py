"""The imported network, and its .cnn text.

Both importers build a :class:`Network`: inputs, then layers in the source's
order, each with the node label it gets (the source's layer name, made a
legal name), the op call as .cnn text, its producers, and the figures the
importer computed from the source's own rules (output shape, learnable
parameters, multiply-adds of convolutions and inner products).  Those
figures become the file's ``expect`` lines, so ``archdsl check`` confirms
that archdsl reads the written model as the source format does.

The text is readable: a run of layers each feeding only the next is one
chain, every other value is named after the layer that made it, and
repeated structures found in the labels are blocks called by label or by
``repeat`` (:func:`find_blocks`; ``to_cnn(flat=True)`` writes every layer
in place).
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
        return value_names([*self.inputs, *self._by_label])

    def to_cnn(self, flat: bool = False) -> str:
        """The .cnn text; repeated structures as blocks (see :func:`find_blocks`)
        unless ``flat``, and only when that file is shorter than the flat one
        and elaborates to exactly its graph (same node names, specs and
        inputs, hence the same state_dict keys and figures)."""
        flat_text = self._text([])
        if flat:
            return flat_text
        groups = find_blocks(self.layers, self.shape, {label for _, label in self.outputs})
        if not groups:
            return flat_text
        structured = self._text(groups)
        shorter = len(structured.splitlines()) < len(flat_text.splitlines())
        return structured if shorter and _same_graph(flat_text, structured) else flat_text

    def _text(self, groups: list[list[Instance]]) -> str:
        lines = [f"# {line}".rstrip() for line in self.header]
        if self.notes:
            lines += ["#", "# Import notes:"] + [f"#   {note}" for note in self.notes]
        layers: list[Layer] = self.layers
        renamed: dict[str, str] = {}
        if groups:
            definitions, layers, renamed = _blocks_text(self.layers, groups, self.shape)
            lines += [""] + definitions
        names = value_names([*self.inputs, *(layer.label for layer in layers)])
        lines += ["", f"model {self.name} {{"]
        lines += [f"    input {name}: {_shape(shape)}" for name, shape in self.inputs.items()]
        lines.append("")
        outputs = [(name, renamed.get(label, label)) for name, label in self.outputs]
        lines += statements(layers, names, {label for _, label in outputs})
        lines.append("")
        for name, label in outputs:
            lines.append(f"    output {name}" if name == names[label] else f"    output {name} = {names[label]}")
        lines += ["", "    # Figures computed by the importer from the source's own rules."]
        lines.append(f"    expect params == {_int(self.params)}")
        lines.append(f"    expect macs == {_int(self.macs)}")
        for name, label in self.outputs:
            lines.append(f"    expect output {name}: {_shape(self.shape(label))}")
        lines.append("}")
        return "\n".join(lines) + "\n"


def value_names(labels: list[str]) -> dict[str, str]:
    """Each label's value name: itself when it is a plain name, else with
    ``_`` for the dots and other characters (made unique)."""
    names = {label: label for label in labels if _plain_name(label)}
    taken = set(names)
    for label in labels:
        if label not in names:
            base = legal_name(label.replace(".", "_"))
            name, n = base, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            names[label] = name
            taken.add(name)
    return names


# ---------------------------------------------------------------- repeated structures


@dataclass(frozen=True)
class Instance:
    """Layers ``start`` to ``end`` (exclusive) of a network, all labelled
    ``prefix.<something>``: one call of a block."""

    prefix: str
    start: int
    end: int


def _instance(layers: list[Layer], prefix: str, indices: list[int], outputs: set[str]) -> Instance | None:
    """The layers under ``prefix`` as a block call, if they can be one: a
    contiguous run of at least two layers, read from outside through exactly
    one value, and read by the rest of the network (or a graph output) only
    through the last layer's value."""
    start, end = indices[0], indices[-1] + 1
    if len(indices) < 2 or end - start != len(indices):
        return None
    inside = {layer.label for layer in layers[start:end]}
    external = {p for layer in layers[start:end] for p in layer.inputs if p not in inside}
    if len(external) != 1:
        return None
    last = layers[end - 1].label
    read_outside = {p for layer in layers[:start] + layers[end:] for p in layer.inputs if p in inside}
    if read_outside - {last} or (inside - {last}) & outputs:
        return None
    return Instance(prefix, start, end)


def signature(layers: list[Layer], instance: Instance, shape_of) -> tuple:
    """What two instances must share to be calls of one block: each layer's
    label relative to the prefix, op, merge arguments, output shape and
    inputs (``in`` for the one read from outside), and the input's shape."""
    inside = layers[instance.start:instance.end]
    cut = len(instance.prefix) + 1
    labels = {layer.label for layer in inside}
    external = next(p for layer in inside for p in layer.inputs if p not in labels)
    rows = tuple((layer.label[cut:], layer.op, layer.merge_args, layer.shape,
                  tuple("in" if p == external else p[cut:] for p in layer.inputs)) for layer in inside)
    return (shape_of(external), rows)


def find_blocks(layers: list[Layer], shape_of, outputs: set[str]) -> list[list[Instance]]:
    """Repeated structures: groups of at least two instances (see
    :func:`_instance`) with one :func:`signature`, outermost first, none
    inside another; in the order of their first layer.  A pure function of
    the layers: labels decide the candidates (``layer1.0`` and ``layer1.1``
    for ``layer1.0.conv1``, ...), so a block call labelled with the prefix
    names every node exactly as before."""
    by_prefix: dict[str, list[int]] = {}
    for index, layer in enumerate(layers):
        parts = layer.label.split(".")
        for depth in range(1, len(parts)):
            by_prefix.setdefault(".".join(parts[:depth]), []).append(index)
    taken: list[Instance] = []
    groups: list[list[Instance]] = []
    for depth in sorted({prefix.count(".") for prefix in by_prefix}):
        found: dict[tuple, list[Instance]] = {}
        for prefix, indices in by_prefix.items():
            if prefix.count(".") != depth:
                continue
            instance = _instance(layers, prefix, indices, outputs)
            if instance is None or any(t.start <= instance.start < t.end for t in taken):
                continue
            found.setdefault(signature(layers, instance, shape_of), []).append(instance)
        for group in found.values():
            if len(group) >= 2:
                taken += group
                groups.append(sorted(group, key=lambda i: i.start))
    return sorted(groups, key=lambda group: group[0].start)


def _block_name(prefix: str, used: set[str]) -> str:
    """``layer1.0`` -> ``Layer1Block``: the last component that is not an index."""
    parts = [p for p in prefix.split(".") if not _INDEX.fullmatch(p)] or ["repeated"]
    base = "".join(word[:1].upper() + word[1:] for word in legal_name(parts[-1]).split("_") if word) + "Block"
    name, n = base, 2
    while name in used or name in RESERVED_WORDS:
        name, n = f"{base}{n}", n + 1
    used.add(name)
    return name


def _blocks_text(layers: list[Layer], groups: list[list[Instance]], shape_of) \
        -> tuple[list[str], list[Layer], dict[str, str]]:
    """The block definitions, the layers with each instance replaced by one
    call (labelled with its prefix), and the instances' last labels -> prefixes."""
    from ..ops import CALLABLE

    used = set(CALLABLE)
    definitions: list[str] = []
    calls: dict[int, Instance] = {}
    op_of: dict[int, str] = {}
    for group in groups:
        first = group[0]
        name = _block_name(first.prefix, used)
        inside = layers[first.start:first.end]
        cut = len(first.prefix) + 1
        labels = {layer.label for layer in inside}
        relative = [Layer(layer.label[cut:], layer.op, tuple("in" if p not in labels else p[cut:]
                                                              for p in layer.inputs), layer.shape,
                          merge_args=layer.merge_args, params=layer.params, macs=layer.macs, note=layer.note,
                          kind=layer.kind) for layer in inside]
        names = value_names(["in", *(layer.label for layer in relative)])
        body = statements(relative, names, {relative[-1].label})
        prefixes = ", ".join(instance.prefix for instance in group)
        definitions += [f"# {len(group)} calls: {prefixes}"[:110], f"block {name}() {{", *body,
                        f"    return {names[relative[-1].label]}", "}", ""]
        for instance in group:
            calls[instance.start] = instance
            op_of[instance.start] = f"{name}()"
    result: list[Layer] = []
    renamed: dict[str, str] = {}
    index = 0
    while index < len(layers):
        call = calls.get(index)
        if call is None:
            result.append(_renamed(layers[index], renamed))
            index += 1
            continue
        instance = call
        inside = layers[instance.start:instance.end]
        labels = {layer.label for layer in inside}
        external = next(p for layer in inside for p in layer.inputs if p not in labels)
        result.append(Layer(instance.prefix, op_of[index], (renamed.get(external, external),), inside[-1].shape,
                            params=sum(layer.params for layer in inside), macs=sum(layer.macs for layer in inside),
                            kind="block"))
        renamed[inside[-1].label] = instance.prefix
        index = instance.end
    return definitions[:-1], result, renamed


def _renamed(layer: Layer, renamed: dict[str, str]) -> Layer:
    if not any(p in renamed for p in layer.inputs):
        return layer
    return Layer(layer.label, layer.op, tuple(renamed.get(p, p) for p in layer.inputs), layer.shape,
                 merge_args=layer.merge_args, params=layer.params, macs=layer.macs, note=layer.note, kind=layer.kind)


def _same_graph(flat: str, structured: str) -> bool:
    """Whether both texts elaborate to one graph: node names, specs, inputs."""
    import archdsl

    def graph(text: str) -> dict | None:
        program = archdsl.loads(text, "imported.cnn")
        if not program.ok or len(program.models) != 1:
            return None
        return {name: (node.spec, node.inputs) for name, node in program.models[0].nodes.items()}

    flat_graph = graph(flat)
    return flat_graph is not None and flat_graph == graph(structured)


# ---------------------------------------------------------------- statements


def statements(layers: list[Layer], names: dict[str, str], output_labels: set[str]) -> list[str]:
    """The layers as statements: a run of layers each feeding only the next
    (and not an output) is one chain."""
    consumers: dict[str, int] = {}
    for layer in layers:
        for producer in layer.inputs:
            consumers[producer] = consumers.get(producer, 0) + 1
    lines: list[str] = []
    i = 0
    while i < len(layers):
        chain = [layers[i]]
        while (i + 1 < len(layers) and not layers[i + 1].is_merge
               and layers[i + 1].inputs == (chain[-1].label,)
               and consumers.get(chain[-1].label, 0) == 1 and chain[-1].label not in output_labels):
            i += 1
            chain.append(layers[i])
        i += 1
        lines += _chain_text(chain, names)
    return lines


def _chain_text(chain: list[Layer], names: dict[str, str]) -> list[str]:
    first = chain[0]
    result = names[chain[-1].label]
    if first.is_merge and "." not in first.label:
        arguments = ", ".join([*(names[p] for p in first.inputs), *([first.merge_args] if first.merge_args else [])])
        lines = [_with_comment(f"    {result} = {_label_text(first.label)}: {first.op}({arguments})", first)]
        rest = chain[1:]
    else:  # a merge labelled with a path is a step on its first input: a -> layer1: (0: (add: add(b)))
        lines = [f"    {result} = {names[first.inputs[0]]}"]
        rest = chain
    i = 0
    while i < len(rest):  # a run of steps under one dotted prefix shares its groups
        prefix = rest[i].label.rpartition(".")[0]
        run = [rest[i]]
        while prefix and i + len(run) < len(rest) and rest[i + len(run)].label.rpartition(".")[0] == prefix:
            run.append(rest[i + len(run)])
        i += len(run)
        lines += _run_text(prefix, run, names)
    return lines


def _step_op(layer: Layer, names: dict[str, str]) -> str:
    """A layer's op as a step: a merge takes its other inputs as arguments."""
    if not layer.is_merge:
        return layer.op
    arguments = [*(names[p] for p in layer.inputs[1:]), *([layer.merge_args] if layer.merge_args else [])]
    return f"{layer.op}({', '.join(arguments)})"


def _repeats(run: list[Layer]) -> list[tuple[int, int]]:
    """(start, count) of the runs of two or more calls of one block whose
    labels are their positions in the group (what ``repeat`` numbers them)."""
    found, j = [], 0
    while j < len(run):
        k = j
        while k < len(run) and run[k].kind == "block" and run[k].op == run[j].op \
                and run[k].label.rpartition(".")[2] == str(k):
            k += 1
        if k - j >= 2:
            found.append((j, k - j))
            j = k
        else:
            j += 1
    return found


def _run_text(prefix: str, run: list[Layer], names: dict[str, str]) -> list[str]:
    """``-> a: (0: (x: op -> y: op))`` for steps labelled ``a.0.x``, ``a.0.y``;
    calls of one block numbered as a group numbers them, ``repeat``."""
    parts = prefix.split(".") if prefix else []
    repeats = dict(_repeats(run)) if parts else {}
    if repeats == {0: len(run)}:  # the whole group: "a: repeat n { Block() }"
        opening = "".join(f"{_label_text(part)}: (" for part in parts[:-1]) + f"{_label_text(parts[-1])}: "
        text = f"        -> {opening}repeat {len(run)} {{ {run[0].op} }}" + ")" * (len(parts) - 1)
        return [_with_comment(text, run[-1])]
    opening = "".join(f"{_label_text(part)}: (" for part in parts)
    closing = ")" * len(parts)
    lines: list[str] = []
    j = 0
    while j < len(run):
        layer = run[j]
        count = repeats.get(j, 1)
        if count > 1:
            step = f"repeat {count} {{ {layer.op} }}"
            layer = run[j + count - 1]
        else:
            step = f"{_label_text(layer.label.rpartition('.')[2])}: {_step_op(layer, names)}"
        j += count
        step += closing if j == len(run) else ""
        text = f"        -> {opening}{step}" if not lines else f"        {' ' * len(opening)}   -> {step}"
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
