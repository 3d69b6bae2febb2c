"""``archdsl export --to onnx``: a model as an ONNX graph.

Each op declares its own lowering next to its other facets
(``OpSpec.to_onnx``, ``OpSpec.onnx_ops``); this module is the small
builder those lowerings call (:class:`OnnxGraph`) and a thin walker that
visits the nodes in topological order and asks each op for its lowering.

What the file holds:

- opset :data:`DEFAULT_OPSET` of the default domain (``--opset`` chooses
  another in :data:`OPSETS`) and the lowest IR version that opset needs
  (``onnx.helper.find_min_ir_version_for``: IR 9 for opset 20);
- initializers named by state_dict key (``layer1.0.conv1.weight``), but
  for a node's unnamed tensor (``scale``: the key is the node's name, which
  is already its value's) ``<key>/parameter`` (:data:`UNNAMED_SUFFIX`); the
  constants a lowering needs (a Reshape's shape, Clip's bounds) are
  ``Constant`` nodes, so the initializers are exactly the weights used;
- graph inputs and outputs named as the model's, with full shapes, the
  batch a number or the symbol ``batch`` (``dynamic_batch``); every
  archdsl node's value has its name and a ``value_info`` shape;
- ONNX node names equal to archdsl node names (the helper nodes of a
  lowering into several are ``<node>/<OpType>``), and the op's source
  location in ``doc_string``.

Model text reaches the file only as protobuf strings (names, doc strings),
never as code.  Serialisation is deterministic, and the file is written
atomically; a model over 2 GB keeps its weights in one external data file
beside it.  ``onnx`` is imported only here, inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic
from ..graph import Model, Node
from ..ops.base import NoOnnxLowering, OpSpec, Shape, state_key

#: The opsets the lowerings are written for: 18 brings Resize's ``axes``
#: and ReduceMean's ``axes`` input, 19 Pad's ``wrap``, 20 ``Gelu``.
OPSETS = range(18, 23)
DEFAULT_OPSET = 20
#: Appended to the state_dict key of a node's unnamed tensor (``scale``'s)
#: to name its initializer: the key itself is the node's, hence its value's, name.
UNNAMED_SUFFIX = "/parameter"
#: Protobuf cannot serialise a message over 2 GiB; past this many weight
#: bytes they go to an external data file (with room for the graph itself).
EXTERNAL_DATA_BYTES = 2**31 - 2**26
#: The symbolic batch dimension of ``dynamic_batch``.
BATCH_SYMBOL = "batch"
INSTALL_HINT = "pip install 'archdsl[onnx]'"


class OnnxUnavailable(ImportError):
    """The ``onnx`` package is not installed."""


class OnnxExportError(Exception):
    """The model cannot be written as ONNX; ``diagnostics`` say where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(f"{d.span}: {d.code}: {d.message}" for d in diagnostics))
        self.diagnostics = diagnostics


def require_onnx() -> Any:
    """The ``onnx`` module, or :class:`OnnxUnavailable` saying what to install."""
    try:
        import onnx
    except ImportError:
        raise OnnxUnavailable(f"the ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


@dataclass
class _Record:
    """One ONNX node before it becomes a NodeProto (renamable until then)."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, Any]
    name: str
    doc: str


@dataclass
class OnnxGraph:
    """The builder an op's ``to_onnx`` calls.

    ``node`` adds an ONNX node and returns its output's name; ``weight``
    names one of the current archdsl node's tensors (state_dict key) as an
    initializer; ``constant`` adds a ``Constant`` node.  ``opset`` is the
    target opset, for lowerings that depend on it.
    """

    opset: int
    state: Mapping[str, np.ndarray]
    #: Every node's output shape (batch excluded), from the analysis.
    shapes: Mapping[str, Shape]
    records: list[_Record] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: list[tuple[str, Shape]] = field(default_factory=list)
    _current: Node | None = None
    _first_record: int = 0
    _taken: set[str] = field(default_factory=set)

    # ---------------------------------------------------------- for the ops

    @property
    def current(self) -> Node:
        assert self._current is not None, "the builder is used outside a node"
        return self._current

    def node(self, op_type: str, inputs: Sequence[str], **attributes: Any) -> str:
        """Adds ``op_type(inputs)`` with ``attributes`` (None values dropped);
        returns the name of its single output."""
        output = self._fresh(f"{self.current.name}/{op_type}")
        attributes = {key: value for key, value in attributes.items() if value is not None}
        self.records.append(_Record(op_type, list(inputs), [output], attributes, output, self._doc()))
        return output

    def weight(self, tensor: str) -> str:
        """The initializer of the current node's ``tensor`` (``weight``,
        ``running_mean``...), named by its state_dict key (``<key>/parameter``
        for the unnamed tensor, whose key names the node's value)."""
        key = state_key(self.current.name, tensor)
        name = key if tensor else key + UNNAMED_SUFFIX
        if name not in self.initializers:
            self.initializers[name] = np.ascontiguousarray(self.state[key], dtype=np.float32)
        self._taken.add(name)
        return name

    def constant(self, hint: str, value: Any, dtype: Any = np.float32) -> str:
        """A ``Constant`` node holding ``value`` (float32 unless ``dtype``)."""
        onnx = require_onnx()
        array = np.ascontiguousarray(value, dtype=dtype)
        name = self._fresh(f"{self.current.name}/{hint}")
        tensor = onnx.numpy_helper.from_array(array, name)
        self.records.append(_Record("Constant", [], [name], {"value": tensor}, name, self._doc()))
        return name

    def ints(self, hint: str, values: Sequence[int]) -> str:
        """A 1-d int64 ``Constant`` (shapes, axes, pads)."""
        return self.constant(hint, list(values), np.int64)

    def graph_input(self) -> str:
        """Declares the current node as a graph input (of the analysed shape)."""
        self.inputs.append((self.current.name, self.shapes[self.current.name]))
        self._taken.add(self.current.name)
        return self.current.name

    # ------------------------------------------------------- for the walker

    def begin(self, node: Node) -> None:
        self._current = node
        self._first_record = len(self.records)

    def finish(self, value: str) -> None:
        """Names the current node's value after the node: the last ONNX node
        the lowering added takes the archdsl node's name (its value too);
        a lowering that added none gets an Identity."""
        name = self.current.name
        if value == name:
            return
        produced = {output: record for record in self.records[self._first_record:] for output in record.outputs}
        if value not in produced or produced[value].op_type == "Constant":
            self.records.append(_Record("Identity", [value], [name], {}, name, self._doc()))
        else:
            record = produced[value]
            record.outputs = [name if output == value else output for output in record.outputs]
            record.name = name
            for later in self.records[self._first_record:]:
                later.inputs = [name if item == value else item for item in later.inputs]
        self._taken.add(name)
        self._current = None

    def _fresh(self, base: str) -> str:
        candidate, index = base, 1
        while candidate in self._taken:
            index += 1
            candidate = f"{base}_{index}"
        self._taken.add(candidate)
        return candidate

    def _doc(self) -> str:
        node = self.current
        return f"{node.span}: {node.op}"


def _lowering_error(node: Node, error: NoOnnxLowering) -> Diagnostic:
    return Diagnostic.make("E701", f"{node.op} cannot be exported to ONNX: {error}", node.span,
                           hint=error.hint or "use an op with an ONNX lowering (docs/export.md lists them)")


def _value_info(onnx: Any, name: str, shape: Shape, batch: int | str) -> Any:
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [batch, *shape])


def build(model: Model, shapes: Mapping[str, Shape], state: Mapping[str, np.ndarray], *,
          opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, batch: int = 1) -> Any:
    """The ``onnx.ModelProto`` of ``model`` at input ``shapes`` (every node's
    shape, from the analysis) with the weights ``state`` (by state_dict key).
    Raises :class:`OnnxExportError` naming every node that cannot lower."""
    onnx = require_onnx()
    from .. import __version__

    if opset not in OPSETS:
        raise ValueError(f"opset {opset} is not one of {OPSETS.start}..{OPSETS.stop - 1}")
    batch_dim: int | str = BATCH_SYMBOL if dynamic_batch else batch
    graph = OnnxGraph(opset, state, shapes)
    graph._taken.update(model.nodes)
    problems: list[Diagnostic] = []
    for node in model.order():
        graph.begin(node)
        try:
            spec: OpSpec = node.spec
            value = spec.to_onnx(graph, list(node.inputs), [shapes[source] for source in node.inputs])
        except NoOnnxLowering as error:
            problems.append(_lowering_error(node, error))
            graph._current = None
            continue
        graph.finish(value)
    if problems:
        raise OnnxExportError(problems)
    outputs = []
    for output, source in model.outputs.items():
        if output != source:
            if output in model.nodes:
                message = f"output {output} names another node's value; ONNX needs one name per value"
                raise OnnxExportError([Diagnostic.make("E701", message, model.span)])
            graph.records.append(_Record("Identity", [source], [output], {}, f"output/{output}",
                                         f"{model.nodes[source].span}: output {output}"))
        outputs.append(_value_info(onnx, output, shapes[source], batch_dim))
    helper = onnx.helper
    nodes = [helper.make_node(r.op_type, r.inputs, r.outputs, name=r.name, doc_string=r.doc, **r.attributes)
             for r in graph.records]
    inputs = [_value_info(onnx, name, shape, batch_dim) for name, shape in graph.inputs]
    graph_outputs = {info.name for info in outputs} | {name for name, _ in graph.inputs}
    value_info = [_value_info(onnx, name, shapes[name], batch_dim) for name in model.nodes
                  if name not in graph_outputs]
    initializers = [onnx.numpy_helper.from_array(array, key) for key, array in graph.initializers.items()]
    proto = helper.make_graph(nodes, model.name, inputs, outputs, initializer=initializers, value_info=value_info,
                              doc_string=f"{model.span}: model {model.name}")
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(proto, opset_imports=opsets, producer_name="archdsl", producer_version=__version__,
                             ir_version=helper.find_min_ir_version_for(opsets))


def serialize(proto: Any) -> bytes:
    """The model's bytes, deterministically (the same model, the same bytes)."""
    return proto.SerializeToString(deterministic=True)


def weight_bytes(proto: Any) -> int:
    return sum(len(tensor.raw_data) for tensor in proto.graph.initializer)


def write(proto: Any, path: str | Path, *, external_threshold: int = EXTERNAL_DATA_BYTES) -> list[Path]:
    """Writes ``proto`` to ``path`` atomically; with more than
    ``external_threshold`` weight bytes, the weights go to ``<path>.data``
    beside it (ONNX external data, one file), written first.  Returns the
    paths written."""
    onnx = require_onnx()
    from ..files import write_atomic

    path = Path(path)
    if weight_bytes(proto) <= external_threshold:
        write_atomic(path, serialize(proto))
        return [path]
    data_name = f"{path.name}.data"
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    external = onnx.external_data_helper
    external.convert_model_to_external_data(model, all_tensors_to_one_file=True, location=data_name,
                                            size_threshold=0, convert_attribute=False)
    # Lay the tensors out in the data file ourselves (deterministic offsets),
    # then write the data file and the model, each atomically.
    offset = 0
    chunks: list[bytes] = []
    for tensor in external._get_initializer_tensors(model):
        if not external.uses_external_data(tensor) or not tensor.HasField("raw_data"):
            continue
        raw = tensor.raw_data
        padding = -offset % 4096
        chunks.append(b"\0" * padding)
        offset += padding
        external.set_external_data(tensor, location=data_name, offset=offset, length=len(raw))
        chunks.append(raw)
        offset += len(raw)
        tensor.ClearField("raw_data")
    data_path = path.with_name(data_name)
    _write_chunks(data_path, chunks)
    write_atomic(path, serialize(model))
    return [data_path, path]


def _write_chunks(path: Path, chunks: list[bytes]) -> None:
    """``write_atomic`` for data given in pieces (no 2 GB concatenation)."""
    from ..files import write_atomic

    write_atomic(path, chunks)


def mapping_table() -> str:
    """The op -> ONNX operators table of docs/export.md, from the registry."""
    from ..ops import OPS

    lines = ["| archdsl op | ONNX operators |", "|---|---|"]
    for op in OPS:
        names = ", ".join(f"`{name}`" for name in op.onnx_ops) or "none"
        lines.append(f"| `{op.kind()}` | {names} |")
    return "\n".join(lines) + "\n"


def spatial_pads(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """ONNX ``pads`` from (before, after) pairs: all the begins, then all the ends."""
    return [before for before, _ in pairs] + [after for _, after in pairs]


def ceil_free_pairs(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                    dilation: Sequence[int], outputs: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) pads that make floor-mode pooling produce ``outputs``
    windows: ceil_mode as extra end padding.  ONNX's ceil_mode output size
    keeps a last window that starts in the right padding where PyTorch drops
    it (onnx shape inference and onnxruntime then disagree); extra end
    padding says exactly what PyTorch does.  The extra padding stays under
    the kernel's extent, as onnxruntime requires, because PyTorch's last
    window starts inside the input."""
    pairs = []
    for i, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, outputs):
        needed = (o - 1) * s + d * (k - 1) + 1 - i - p
        pairs.append((p, max(p, needed)))
    return pairs


__all__ = ["DEFAULT_OPSET", "OPSETS", "OnnxExportError", "OnnxGraph", "OnnxUnavailable", "build", "ceil_free_pairs",
           "mapping_table", "require_onnx", "serialize", "spatial_pads", "write"]
