"""ONNX model -> :class:`Network` (and its weights), following ONNX's own rules.

The figures written as ``expect`` lines come from the ONNX side, not from
archdsl's ops: every value's shape from ONNX's shape inference (run on a
copy without the file's own ``value_info``, the batch fixed at 1 when it is
symbolic), learnable parameters as the elements of the initializers that
Conv, ConvTranspose, Gemm/MatMul(+Add) and BatchNormalization's scale and
bias read, and multiply-adds of convolutions and matrix products from the
operators' definitions.  ``archdsl check`` on the written file then proves
that archdsl reads the graph as ONNX defines it.

Constants are folded first: ``Constant`` nodes, ``Shape`` of a value whose
shape is static, and cheap operators (Gather, Unsqueeze, Concat, Cast...)
whose inputs are all constant, evaluated by ONNX's reference
implementation: so the ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``
chain PyTorch writes for ``flatten`` becomes a constant Reshape.  Then each
remaining node maps to an op, some patterns to one op (``x * sigmoid(x)``
is ``silu``; ``Reshape/Transpose/Reshape`` over channels is
``channel_shuffle``; a zero ``Pad`` before an ``AveragePool`` that does not
count padding is ``avgpool(count_include_pad=true)``; ``Transpose/MatMul/
Transpose`` by an averaging matrix is ``adaptive_avgpool``; ``MatMul`` then
``Add`` of a constant is ``linear``; ``Transpose/LayerNormalization/
Transpose`` over the channels is ``layernorm2d``; ``x * hardsigmoid(x)`` is
``hardswish``; PyTorch's erf form of GELU is ``gelu``).  See docs/import.md.

ONNX has no line numbers: a problem names the node by its index in
``graph.node`` (from 0), its name and its operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from .writer import Layer, Network, Shape, legal_name, legal_path, numel

#: Operators evaluated when all their inputs are constant (cheap: the cost
#: is bounded by the output's size, itself bounded by MAX_FOLDED).
FOLDABLE = frozenset({
    "Identity", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape", "Transpose", "Flatten",
    "Add", "Sub", "Mul", "Div", "Neg", "Floor", "Ceil", "Sqrt", "ConstantOfShape", "Range", "Equal", "Where",
    "Expand", "Max", "Min", "ReduceProd", "Size", "Dropout",
})
#: The largest constant the importer computes (elements).
MAX_FOLDED = 1 << 24
LOCATION_NOTE = "ONNX files have no line numbers: the node is named by its index in graph.node (from 0)"


def fail(code: str, message: str, hint: str | None = None, *, at_node: bool = False) -> DiagnosticError:
    notes = [LOCATION_NOTE] if at_node else []
    return DiagnosticError([Diagnostic.error(code, message, None, hint=hint, notes=notes)])


@dataclass
class OnnxImport:
    """The imported network and its weights (npz keys: state_dict keys)."""

    net: Network
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _number(value: float) -> str:
    """A float attribute as the shortest text that reads back as the same float32."""
    text = str(np.float32(value))
    return text if any(c in text for c in ".en") else text + ".0"


def _sizes(values: list[int] | tuple[int, ...]) -> str:
    """``3`` when every dimension agrees, else ``(3, 1)``."""
    values = [int(v) for v in values]
    if len(set(values)) == 1:
        return str(values[0])
    return "(" + ", ".join(map(str, values)) + ")"


def _call(op: str, positional: list[str], keywords: dict[str, str]) -> str:
    arguments = positional + [f"{key}={value}" for key, value in keywords.items()]
    return f"{op}({', '.join(arguments)})" if arguments else op


def torch_pooled(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """PyTorch's pooling output size (its ceil mode drops a last window that
    would start in the right padding)."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def adaptive_average_matrix(size: int, out: int) -> np.ndarray:
    """PyTorch's adaptive average pooling along one axis as a [size, out]
    matrix: window j is [floor(j·size/out), ceil((j+1)·size/out))."""
    matrix = np.zeros((size, out))
    for j in range(out):
        start, end = (j * size) // out, -(-((j + 1) * size) // out)
        matrix[start:end, j] = 1 / (end - start)
    return matrix


class _Importer:
    def __init__(self, model: Any, name: str, source: str) -> None:
        import onnx

        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.net = Network(name=legal_name(model.graph.name or Path(source).stem, "Net"), source=source)
        self.arrays: dict[str, np.ndarray] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.values: dict[str, str] = {}            # ONNX value -> producer label
        self.users: dict[str, list[int]] = {}       # ONNX value -> indices of the nodes reading it
        self.done: set[int] = set()                 # nodes taken by a pattern
        self.avg_padding: dict[int, list[int]] = {}  # AveragePool index -> padding of a Pad before it
        self.adaptive: dict[str, list[int]] = {}    # label -> output size of an adaptive pool it writes
        self.origin: dict[str, str] = {}            # folded constant -> the initializer it rearranges
        self.index = 0
        self.node: Any = None

    # ------------------------------------------------------------ helpers

    def where(self) -> str:
        return f"node #{self.index} '{self.node.name}' ({self.node.op_type})"

    def fail(self, code: str, message: str, hint: str | None = None) -> DiagnosticError:
        return fail(code, f"{self.where()}: {message}", hint, at_node=True)

    def attr(self, name: str, default: Any = None) -> Any:
        for attribute in self.node.attribute:
            if attribute.name == name:
                value = self.onnx.helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.fail("E603", f"its {what} ('{name}') is computed at run time; the importer needs a constant")
        return self.consts[name]

    def optional_const(self, position: int) -> np.ndarray | None:
        inputs = self.node.input
        if position >= len(inputs) or inputs[position] == "":
            return None
        return self.const(inputs[position], f"input {position}")

    def value(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            raise self.fail("E603", f"its input '{name}' is a constant; archdsl's ops read values from the network")
        raise self.fail("E604", f"reads '{name}', which no node, input or initializer produces")

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def single_user(self, name: str, op_type: str) -> int | None:
        """The index of the only node reading ``name``, if it is ``op_type``
        and ``name`` is not a graph output."""
        users = self.users.get(name, [])
        if len(users) != 1 or name in self.output_names:
            return None
        return users[0] if self.graph.node[users[0]].op_type == op_type else None

    def label(self, fallback: str, weight: str | None = None) -> str:
        """The node's label: the state_dict prefix of its weight's name
        (``layer1.0.conv1.weight``), else its module path (PyTorch's
        ``/layer1/layer1.0/relu/Relu``, archdsl's ``layer1.0.relu``), else
        its name made legal, else ``fallback``."""
        weight = self.origin.get(weight, weight) if weight is not None else None
        if weight is not None and weight.endswith(".weight"):
            prefix = weight[: -len(".weight")]
            if legal_path(prefix):
                return self.net.fresh_path(prefix, fallback)
        path = module_path(self.node.name)
        if path:
            return self.net.fresh_path(path, fallback)
        return self.net.fresh_label(fallback, fallback)

    def emit(self, label: str, op: str, inputs: list[str], output: str, *, params: int = 0, macs: int = 0,
             merge_args: str = "", note: str = "") -> Layer:
        shape = self.shape(output)[1:]
        layer = self.net.add(Layer(label, op, tuple(inputs), shape, merge_args=merge_args, params=params, macs=macs,
                                   note=note, kind=self.node.op_type))
        self.values[output] = label
        return layer

    def simple(self, op: str, fallback: str | None = None) -> None:
        """A one-input op with the node's output."""
        x = self.value(self.node.input[0])
        self.emit(self.label(fallback or op.split("(")[0]), op, [x], self.node.output[0])

    # ------------------------------------------------------------ reading

    def run(self) -> OnnxImport:
        self.output_names = {output.name for output in self.graph.output}
        self.read_constants()
        self.read_inputs()
        dynamic = self.fold()
        for i in dynamic:
            for name in self.graph.node[i].input:
                if name:
                    self.users.setdefault(name, []).append(i)
        for i in dynamic:
            if i in self.done:
                continue
            self.index, self.node = i, self.graph.node[i]
            handler = HANDLERS.get(self.node.op_type) if self.node.domain in ("", "ai.onnx") else None
            if handler is None:
                raise self.unknown()
            handler(self)
        self.read_outputs()
        return OnnxImport(self.net, self.arrays)

    def unknown(self) -> DiagnosticError:
        node = self.node
        if node.domain not in ("", "ai.onnx") or not self.onnx.defs.has(node.op_type):
            domain = f" of domain '{node.domain}'" if node.domain else ""
            return self.fail("E602", f"unknown operator {node.op_type}{domain}")
        return self.fail("E603", f"archdsl has no op for ONNX's {node.op_type} here",
                         hint="docs/import.md lists the operators the importer reads")

    def read_constants(self) -> None:
        numpy_helper = self.onnx.numpy_helper
        for tensor in self.graph.initializer:
            try:
                self.consts[tensor.name] = numpy_helper.to_array(tensor)
            except Exception as error:  # a malformed tensor is the file's problem
                raise fail("E606", f"initializer '{tensor.name}' cannot be read: {error}") from None

    def read_inputs(self) -> None:
        for info in self.graph.input:
            if info.name in self.consts:
                continue  # IR < 4 lists initializers as inputs
            shape = self.shapes.get(info.name)
            if shape is None or len(shape) < 2:
                raise fail("E605", f"graph input '{info.name}' needs a static shape [N, C, ...] (found {shape})")
            label = self.net.add_input(info.name, shape[1:])
            self.values[info.name] = label

    def fold(self) -> list[int]:
        """Evaluates the constant part of the graph; returns the indices of the other nodes."""
        dynamic = []
        for i, node in enumerate(self.graph.node):
            self.index, self.node = i, node
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.consts[node.output[0]] = self.constant_value()
            elif node.op_type == "Shape" and node.input[0] in self.shapes and node.domain in ("", "ai.onnx"):
                shape = self.shapes[node.input[0]]
                start, end = self.attr("start", 0), self.attr("end", len(shape))
                self.consts[node.output[0]] = np.array(shape[slice(start, end)], np.int64)
            elif node.op_type in FOLDABLE and all(name == "" or name in self.consts for name in node.input) \
                    and node.domain in ("", "ai.onnx") and node.input:
                self.evaluate()
            else:
                dynamic.append(i)
        return dynamic

    def constant_value(self) -> np.ndarray:
        attribute = self.node.attribute[0] if len(self.node.attribute) == 1 else None
        if attribute is None:
            raise self.fail("E605", "a Constant needs exactly one value attribute")
        value = self.onnx.helper.get_attribute_value(attribute)
        if attribute.name in ("value", "sparse_value") and hasattr(value, "dims"):
            if attribute.name == "sparse_value":
                raise self.fail("E603", "sparse constants are not read")
            return self.onnx.numpy_helper.to_array(value)
        if attribute.name in ("value_float", "value_floats"):
            return np.array(value, np.float32)
        if attribute.name in ("value_int", "value_ints"):
            return np.array(value, np.int64)
        raise self.fail("E603", f"a Constant's {attribute.name} is not read")

    def evaluate(self) -> None:
        from onnx.reference import ReferenceEvaluator

        for output in self.node.output:
            shape = self.shapes.get(output)
            if output and (shape is None or math.prod(shape) > MAX_FOLDED):
                raise self.fail("E603", f"its constant output '{output}' is too large to compute, or of unknown size")
        feeds = {name: self.consts[name] for name in self.node.input if name}
        try:
            results = ReferenceEvaluator(self.node).run(None, feeds)
        except Exception as error:
            raise self.fail("E605", f"cannot be evaluated on its constant inputs: {error}") from None
        for output, result in zip(self.node.output, results):
            if output:
                self.consts[output] = np.asarray(result)
        if self.node.op_type in ("Transpose", "Identity", "Cast") and self.node.input:
            # linear's exported weight is Transpose(fc.weight): its label is still fc's
            source = self.node.input[0]
            self.origin[self.node.output[0]] = self.origin.get(source, source)

    def read_outputs(self) -> None:
        for info in self.graph.output:
            if info.name not in self.values:
                raise fail("E603", f"graph output '{info.name}' is a constant or a graph input, not a computed value")
            label = self.values[info.name]
            if label in self.net.inputs:
                raise fail("E603", f"graph output '{info.name}' is the graph input itself")
            name = legal_name(info.name, "output")
            taken = {n for n, _ in self.net.outputs} | set(self.net.inputs)
            if name != label and (name in taken or self.net.layer(name) is not None):
                name = label if "." not in label else self.net.fresh_label(name, "output")
            self.net.outputs.append((name, label))


def module_path(name: str) -> str:
    """The module path a node name spells: PyTorch's ``/layer1/layer1.0/relu/Relu``
    is ``layer1.0.relu``; a name that is already a legal path is itself."""
    if name.startswith("/"):
        path = ""
        for part in [p for p in name.split("/") if p][:-1]:
            path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
        return path if path and legal_path(path) else ""
    return name if name and legal_path(name) else ""


# ---------------------------------------------------------------- handlers


def _window_pads(self: _Importer, rank: int, kernel: list[int], stride: list[int], dilation: list[int],
                 size: tuple[int, ...]) -> list[tuple[int, int]]:
    """(begin, end) per spatial axis, ``auto_pad`` resolved (ONNX's rule)."""
    auto = self.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(self.attr("pads", [0] * 2 * rank))
        return list(zip(pads[:rank], pads[rank:]))
    if auto == "VALID":
        return [(0, 0)] * rank
    pairs = []
    for i, k, s, d in zip(size, kernel, stride, dilation):
        total = max((-(-i // s) - 1) * s + d * (k - 1) + 1 - i, 0)
        small = total // 2
        pairs.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    return pairs


def _weighted(self: _Importer) -> tuple[Any, str, np.ndarray, np.ndarray | None, int, Shape, int]:
    """What Conv and ConvTranspose read alike: the node, its input value,
    weight, optional bias, spatial rank, input shape and ``group``."""
    node = self.node
    weight = self.const(node.input[1], "weight")
    return (node, self.value(node.input[0]), weight, self.optional_const(2), weight.ndim - 2,
            self.shape(node.input[0]), int(self.attr("group", 1)))


def _emit_weighted(self: _Importer, label: str, op: str, x: str, weight: np.ndarray, bias: np.ndarray | None,
                   macs: int) -> None:
    """The layer of a Conv or ConvTranspose, and its weight and bias arrays
    under the label's state_dict keys."""
    self.emit(label, op, [x], self.node.output[0], params=weight.size + (bias.size if bias is not None else 0),
              macs=macs)
    self.arrays[f"{label}.weight"] = weight.astype(np.float32)
    if bias is not None:
        self.arrays[f"{label}.bias"] = bias.reshape(-1).astype(np.float32)


def _conv(self: _Importer) -> None:
    node, x, weight, bias, rank, in_shape, groups = _weighted(self)
    if not 1 <= rank <= 3 or len(in_shape) != rank + 2 or weight.shape[1] * groups != in_shape[1]:
        raise self.fail("E605", f"weight {list(weight.shape)} with group {groups} does not fit input {list(in_shape)}")
    kernel = list(self.attr("kernel_shape", weight.shape[2:]))
    stride = list(self.attr("strides", [1] * rank))
    dilation = list(self.attr("dilations", [1] * rank))
    pairs = _window_pads(self, rank, kernel, stride, dilation, in_shape[2:])
    label = self.label(f"conv{rank}d", node.input[1])
    keywords: dict[str, str] = {}
    if any(b != e for b, e in pairs):
        if all(s == 1 and b + e == d * (k - 1) and e - b in (0, 1)
               for (b, e), s, d, k in zip(pairs, stride, dilation, kernel)):
            keywords["padding"] = '"same"'
        else:  # uneven padding (TensorFlow's SAME with a stride): an explicit pad first
            flat = [v for b, e in reversed(pairs) for v in (b, e)]
            pad_label = self.net.fresh_label(label.replace(".", "_") + "_pad")
            self.net.add(Layer(pad_label, f"pad(({', '.join(map(str, flat))}))", (x,), _padded(in_shape[1:], pairs),
                               kind="Pad"))
            x = pad_label
    elif any(b for b, _ in pairs):
        keywords["padding"] = _sizes([b for b, _ in pairs])
    if any(s != 1 for s in stride):
        keywords["stride"] = _sizes(stride)
    if any(d != 1 for d in dilation):
        keywords["dilation"] = _sizes(dilation)
    if groups != 1:
        keywords["groups"] = str(groups)
    if bias is None:
        keywords["bias"] = "false"
    keywords = {key: keywords[key] for key in ("stride", "padding", "dilation", "groups", "bias") if key in keywords}
    out = self.shape(node.output[0])
    op = _call(f"conv{rank}d", [str(weight.shape[0]), _sizes(kernel)], keywords)
    _emit_weighted(self, label, op, x, weight, bias, numel(out[1:]) * weight.shape[1] * math.prod(kernel))


def _padded(shape: tuple[int, ...], pairs: list[tuple[int, int]]) -> Shape:
    channels, *spatial = shape
    return (channels, *(s + b + e for s, (b, e) in zip(spatial, pairs)))


def _conv_transpose(self: _Importer) -> None:
    node, x, weight, bias, rank, in_shape, groups = _weighted(self)
    if not 1 <= rank <= 3 or weight.shape[0] != in_shape[1] or self.attr("output_shape") is not None \
            or self.attr("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise self.fail("E603", "only explicit pads (no output_shape, no auto_pad) and a weight matching the input "
                        "are read")
    kernel = list(self.attr("kernel_shape", weight.shape[2:]))
    stride = list(self.attr("strides", [1] * rank))
    dilation = list(self.attr("dilations", [1] * rank))
    pads = list(self.attr("pads", [0] * 2 * rank))
    extra = list(self.attr("output_padding", [0] * rank))
    if pads[:rank] != pads[rank:]:
        raise self.fail("E603", f"uneven pads {pads} have no PyTorch equivalent")
    keywords = {"stride": _sizes(stride), "padding": _sizes(pads[:rank]), "output_padding": _sizes(extra),
                "dilation": _sizes(dilation), "groups": str(groups), "bias": "false"}
    keywords = {k: v for k, v in keywords.items() if v not in ("1", "0") or k == "bias"}
    if bias is not None:
        keywords.pop("bias")
    out_channels = weight.shape[1] * groups
    label = self.label(f"conv_transpose{rank}d", node.input[1])
    op = _call(f"conv_transpose{rank}d", [str(out_channels), _sizes(kernel)], keywords)
    _emit_weighted(self, label, op, x, weight, bias, numel(in_shape[1:]) * weight.shape[1] * math.prod(kernel))


def _batch_norm(self: _Importer) -> None:
    node = self.node
    x = self.value(node.input[0])
    scale, shift = self.const(node.input[1], "scale"), self.const(node.input[2], "bias")
    mean, var = self.const(node.input[3], "mean"), self.const(node.input[4], "variance")
    if self.attr("training_mode", 0) or len([o for o in node.output if o]) > 1:
        raise self.fail("E603", "training-mode batch normalisation is not read (export the model in eval mode)")
    rank = len(self.shape(node.input[0]))
    op = {2: "batchnorm1d", 3: "batchnorm1d", 4: "batchnorm2d", 5: "batchnorm3d"}.get(rank)
    if op is None:
        raise self.fail("E603", f"batch normalisation of a rank-{rank} tensor")
    eps = float(self.attr("epsilon", 1e-5))
    if not math.isclose(eps, 1e-5, rel_tol=1e-6):
        op = f"{op}(eps={_number(eps)})"
    label = self.label(op.split("(")[0], node.input[1])
    self.emit(label, op, [x], node.output[0], params=scale.size + shift.size)
    for key, array in (("weight", scale), ("bias", shift), ("running_mean", mean), ("running_var", var)):
        self.arrays[f"{label}.{key}"] = array.astype(np.float32)
    self.arrays[f"{label}.num_batches_tracked"] = np.zeros((), np.int64)


def _sigmoid(self: _Importer) -> None:
    """``x * sigmoid(x)`` (PyTorch's and archdsl's SiLU) is one ``silu``."""
    if not _gated(self, "silu"):
        self.simple("sigmoid")


def _leaky_relu(self: _Importer) -> None:
    self.simple(f"leaky_relu({_number(self.attr('alpha', 0.01))})", "leaky_relu")


def _hard_sigmoid(self: _Importer) -> None:
    """PyTorch's hardsigmoid; ``x * hardsigmoid(x)`` is one ``hardswish``."""
    alpha, beta = self.attr("alpha", 0.2), self.attr("beta", 0.5)
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5)):
        raise self.fail("E603", f"HardSigmoid with alpha {alpha}, beta {beta}: archdsl's hardsigmoid is "
                        "PyTorch's (alpha 1/6, beta 0.5)")
    if not _gated(self, "hardswish"):
        self.simple("hardsigmoid")


def _gated(self: _Importer, op: str) -> bool:
    """``x * f(x)``, with the current node ``f(x)`` read only by that ``Mul``,
    is emitted as the one op ``op`` (SiLU from Sigmoid, hardswish from
    HardSigmoid); False when the node is not so gated."""
    node = self.node
    mul = self.single_user(node.output[0], "Mul")
    if mul is None or sorted(self.graph.node[mul].input) != sorted([node.input[0], node.output[0]]):
        return False
    x = self.value(node.input[0])
    self.done.add(mul)
    self.node, self.index = self.graph.node[mul], mul
    self.emit(self.label(op), op, [x], self.node.output[0])
    return True


def _gelu(self: _Importer) -> None:
    self.simple("gelu" if self.attr("approximate", "none") == "none" else 'gelu(approximate="tanh")', "gelu")


def _clip(self: _Importer) -> None:
    if self.opset < 11:
        low, high = self.attr("min", -math.inf), self.attr("max", math.inf)
    else:
        low_array, high_array = self.optional_const(1), self.optional_const(2)
        low = -math.inf if low_array is None or not low_array.size else float(low_array.reshape(-1)[0])
        high = math.inf if high_array is None or not high_array.size else float(high_array.reshape(-1)[0])
    if low == 0 and high == 6:
        self.simple("relu6")
    elif low == 0 and high == math.inf:
        self.simple("relu")
    else:
        raise self.fail("E603", f"Clip to [{low}, {high}]: archdsl has relu (0, inf) and relu6 (0, 6)")


def _softmax(self: _Importer) -> None:
    rank = len(self.shape(self.node.input[0]))
    axis = self.attr("axis", -1 if self.opset >= 13 else 1) % rank
    if axis == 0 or (self.opset < 13 and axis != rank - 1):
        raise self.fail("E603", f"Softmax over axis {axis} (before opset 13 ONNX flattens from the axis on)")
    self.simple(f"softmax(dim={axis})", "softmax")


def _pool_geometry(self: _Importer, rank: int) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    kernel = list(self.attr("kernel_shape"))
    stride = list(self.attr("strides", [1] * rank))
    dilation = list(self.attr("dilations", [1] * rank))
    size = self.shape(self.node.input[0])[2:]
    return kernel, stride, dilation, _window_pads(self, rank, kernel, stride, dilation, size)


def _pool(self: _Importer) -> None:
    """MaxPool / AveragePool; end padding beyond the begin's is PyTorch's
    ceil mode when it gives the same windows (the output sizes agree)."""
    node = self.node
    x = self.value(node.input[0])
    if len(node.output) > 1 and node.output[1] and node.output[1] in self.users:
        raise self.fail("E603", "MaxPool's indices output is not read")
    in_shape, out_shape = self.shape(node.input[0]), self.shape(node.output[0])
    rank = len(in_shape) - 2
    kernel, stride, dilation, pairs = _pool_geometry(self, rank)
    average = node.op_type == "AveragePool"
    include = bool(self.attr("count_include_pad", 0)) if average else False
    begins = [b for b, _ in pairs]
    if self.index in self.avg_padding:  # a zero Pad before a pool that counts only what is there
        if include or any(begins):
            raise self.fail("E603", "a Pad before an AveragePool that also pads")
        begins, include = self.avg_padding[self.index], True
        pairs = [(p, p + e) for p, (_, e) in zip(begins, pairs)]
    ceil = bool(self.attr("ceil_mode", 0)) or any(e > b for b, e in pairs)
    if any(e < b for b, e in pairs) or (average and include and any(e > b for b, e in pairs)
                                         and self.index not in self.avg_padding):
        raise self.fail("E603", f"pads {pairs} (begin, end) have no PyTorch pooling equivalent")
    geometry = list(zip(in_shape[2:], kernel, stride, begins, dilation))
    expected = [torch_pooled(*axis, ceil) for axis in geometry]
    if tuple(expected) != out_shape[2:] or any(2 * b > k for b, k in zip(begins, kernel)):
        raise self.fail("E603", f"output {list(out_shape[2:])} (ONNX's rule) differs from PyTorch's {expected} for "
                        "these windows, or the padding exceeds half the kernel")
    keywords = {"stride": _sizes(stride) if stride != kernel else "", "padding": _sizes(begins) if any(begins) else "",
                "dilation": _sizes(dilation) if any(d != 1 for d in dilation) else "",
                "ceil_mode": "true" if expected != [torch_pooled(*axis, False) for axis in geometry] else ""}
    if average:
        if dilation != [1] * rank:
            raise self.fail("E603", "dilated average pooling")
        keywords["count_include_pad"] = "false" if not include and (any(begins) or keywords["ceil_mode"]) else ""
    keywords = {k: v for k, v in keywords.items() if v}
    kind = f"{'avg' if average else 'max'}pool{rank}d"
    self.emit(self.label(kind), _call(kind, [_sizes(kernel)], keywords), [x], node.output[0])


def _global_average(self: _Importer) -> None:
    self.simple("global_avgpool")


def _gemm(self: _Importer) -> None:
    node = self.node
    x = self.value(node.input[0])
    b = self.const(node.input[1], "weight")
    c = self.optional_const(2)
    if self.attr("transA", 0) or self.attr("alpha", 1.0) != 1 or self.attr("beta", 1.0) != 1 or b.ndim != 2:
        raise self.fail("E603", "only Gemm(A, B, C) with transA 0, alpha 1, beta 1 and a constant B is read")
    weight = b if self.attr("transB", 0) else b.T
    _linear(self, x, weight, c, node.input[1], node.output[0])


def _linear(self: _Importer, x: str, weight: np.ndarray, bias: np.ndarray | None, weight_name: str,
            output: str) -> None:
    out_features, in_features = weight.shape
    if self.shape(output)[-1] != out_features or (bias is not None and bias.size not in (1, out_features)):
        raise self.fail("E605", f"weight {list(weight.shape)} and bias do not fit the output "
                        f"{list(self.shape(output))}")
    label = self.label("linear", weight_name)
    keywords = {"bias": "false" if bias is None else "",
                "in_features": str(in_features) if len(self.shape(output)) > 2 else ""}  # at every position
    op = _call("linear", [str(out_features)], {k: v for k, v in keywords.items() if v})
    macs = numel(self.shape(output)[1:-1]) * in_features * out_features
    self.emit(label, op, [x], output, params=weight.size + (out_features if bias is not None else 0), macs=macs)
    self.arrays[f"{label}.weight"] = np.ascontiguousarray(weight, np.float32)
    if bias is not None:
        self.arrays[f"{label}.bias"] = np.broadcast_to(bias.reshape(-1), (out_features,)).astype(np.float32)


def _matmul(self: _Importer) -> None:
    """``MatMul(x, W)`` (+ ``Add(b)``) is ``linear``."""
    node = self.node
    x = self.value(node.input[0])
    weight = self.const(node.input[1], "weight")
    if weight.ndim != 2:
        raise self.fail("E603", "MatMul by a constant that is not a matrix")
    add = self.single_user(node.output[0], "Add")
    bias, output = None, node.output[0]
    if add is not None:
        other = [name for name in self.graph.node[add].input if name != node.output[0]]
        if len(other) == 1 and other[0] in self.consts and self.consts[other[0]].size == weight.shape[1]:
            bias, output = self.consts[other[0]], self.graph.node[add].output[0]
            self.done.add(add)
    _linear(self, x, weight.T, bias, node.input[1], output)


def _transpose(self: _Importer) -> None:
    """``Transpose/LayerNormalization/Transpose`` over the channels is
    ``layernorm2d``; ``Transpose/MatMul/Transpose`` by an averaging matrix is
    adaptive average pooling on one axis; any other Transpose that keeps the
    batch first is ``permute``."""
    perm = [int(p) for p in self.attr("perm", [])] or list(reversed(range(len(self.shape(self.node.input[0])))))
    if _layer_norm_2d(self, perm) or _adaptive_average(self, perm):
        return
    if perm[0] != 0:
        raise self.fail("E603", f"a Transpose {perm} that moves the batch (archdsl's permute keeps it first)")
    self.simple(f"permute(({', '.join(map(str, perm))}))", "permute")


def _layer_norm_2d(self: _Importer, perm: list[int]) -> bool:
    """Channels last, ``LayerNormalization`` over the last axis, channels first
    again (archdsl's lowering of ``layernorm2d``, torchvision's LayerNorm2d)."""
    node = self.node
    rank = len(perm)
    if rank < 3 or perm != [0, *range(2, rank), 1]:
        return False
    norm = self.single_user(node.output[0], "LayerNormalization")
    if norm is None or int(_attr(self, self.graph.node[norm], "axis") or -1) % rank != rank - 1 \
            or self.graph.node[norm].input[0] != node.output[0]:
        return False
    back = self.single_user(self.graph.node[norm].output[0], "Transpose")
    if back is None or [int(p) for p in _attr(self, self.graph.node[back], "perm") or []] != \
            [0, rank - 1, *range(1, rank - 1)]:
        return False
    x = self.value(node.input[0])
    self.done.update({norm, back})
    self.index, self.node = norm, self.graph.node[norm]
    op, params, tensors = _layer_norm_call(self, "layernorm2d", 1)
    label = self.label("layernorm2d", self.node.input[1])
    self.node, self.index = self.graph.node[back], back
    self.emit(label, op, [x], self.node.output[0], params=params)
    self.arrays.update({f"{label}.{key}": array for key, array in tensors.items()})
    return True


def _layer_norm_call(self: _Importer, kind: str, count: int) -> tuple[str, int, dict[str, np.ndarray]]:
    """The op text, parameter count and tensors of the current
    LayerNormalization over its last ``count`` axes."""
    node = self.node
    shape = self.shape(node.input[0])
    scale, bias = self.const(node.input[1], "scale"), self.optional_const(2)
    normalized = shape[len(shape) - count:]
    if scale.size != numel(normalized) or (bias is not None and bias.size != scale.size):
        raise self.fail("E605", f"scale {list(scale.shape)} does not fit the normalised dims {list(normalized)}")
    eps = float(self.attr("epsilon", 1e-5))
    keywords = {"eps": _number(eps) if not math.isclose(eps, 1e-5, rel_tol=1e-6) else ""}
    if bias is None:
        keywords["bias"] = "false"
    positional = [] if kind == "layernorm2d" else \
        [str(normalized[0]) if count == 1 else "(" + ", ".join(map(str, normalized)) + ")"]
    op = _call(kind, positional, {k: v for k, v in keywords.items() if v})
    tensors = {"weight": scale.reshape(normalized).astype(np.float32)}
    if bias is not None:
        tensors["bias"] = bias.reshape(normalized).astype(np.float32)
    return op, scale.size + (bias.size if bias is not None else 0), tensors


def _layer_norm(self: _Importer) -> None:
    """``LayerNormalization`` from ``axis`` to the end is ``layernorm`` over those dims."""
    node = self.node
    rank = len(self.shape(node.input[0]))
    axis = int(self.attr("axis", -1)) % rank
    if axis == 0:
        raise self.fail("E603", "LayerNormalization over the batch")
    if len([o for o in node.output if o]) > 1 and any(o in self.users for o in node.output[1:] if o):
        raise self.fail("E603", "LayerNormalization's mean and inverse deviation outputs are not read")
    x = self.value(node.input[0])
    op, params, tensors = _layer_norm_call(self, "layernorm", rank - axis)
    label = self.label("layernorm", node.input[1])
    self.emit(label, op, [x], node.output[0], params=params)
    self.arrays.update({f"{label}.{key}": array for key, array in tensors.items()})


def _adaptive_average(self: _Importer, perm: list[int]) -> bool:
    """``Transpose/MatMul/Transpose`` by an averaging matrix (archdsl's lowering
    of adaptive average pooling to a size that does not divide the input's)."""
    node = self.node
    shape = self.shape(node.input[0])
    rank = len(shape)
    matmul = self.single_user(node.output[0], "MatMul")
    swapped = [a for a in range(rank) if perm[a] != a] or [rank - 1, rank - 1]  # the last axis: no swap
    if matmul is None or len(swapped) != 2 or swapped[1] != rank - 1 or swapped[0] < 2:
        return False
    matrix = self.consts.get(self.graph.node[matmul].input[1])
    back = self.single_user(self.graph.node[matmul].output[0], "Transpose")
    axis, size = swapped[0], shape[swapped[0]]
    if matrix is None or back is None or matrix.ndim != 2 or matrix.shape[0] != size \
            or list(_attr(self, self.graph.node[back], "perm")) != perm \
            or not np.allclose(matrix, adaptive_average_matrix(size, matrix.shape[1]), rtol=1e-6, atol=1e-7):
        return False
    x = self.value(node.input[0])
    self.done.update({matmul, back})
    self.node, self.index = self.graph.node[back], back
    sizes = list(shape[2:])
    sizes[axis - 2] = matrix.shape[1]
    previous = self.net.layer(x)
    if previous is not None and x in self.adaptive and self.net.consumers()[x] == 1 and x not in self.output_names:
        sizes = [min(a, b) for a, b in zip(sizes, self.adaptive[x])]  # the two axes' pools are one
        previous.op = f"adaptive_avgpool{rank - 2}d({_sizes(sizes)})"
        previous.shape = self.shape(self.node.output[0])[1:]
        self.values[self.node.output[0]] = x
        self.adaptive[x] = sizes
        return True
    label = self.label(f"adaptive_avgpool{rank - 2}d")
    self.emit(label, f"adaptive_avgpool{rank - 2}d({_sizes(sizes)})", [x], self.node.output[0])
    self.adaptive[label] = sizes
    return True


def _attr(self: _Importer, node: Any, name: str) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return self.onnx.helper.get_attribute_value(attribute)
    return None


def _flatten(self: _Importer) -> None:
    rank = len(self.shape(self.node.input[0]))
    if self.attr("axis", 1) % rank != 1 if rank > 1 else True:
        raise self.fail("E603", "Flatten other than at axis 1 mixes the batch into the features")
    self.simple("flatten")


def _reshape(self: _Importer) -> None:
    node = self.node
    self.const(node.input[1], "shape")
    before, after = self.shape(node.input[0]), self.shape(node.output[0])
    if before[0] != after[0]:
        raise self.fail("E603", f"Reshape {list(before)} -> {list(after)} changes the batch dimension")
    if _channel_shuffle(self, before, after):
        return
    x = self.value(node.input[0])
    if before == after:
        self.values[node.output[0]] = x
        return
    for start in range(1, len(before)):
        for end in range(start, len(before)):
            if after == (*before[:start], math.prod(before[start:end + 1]), *before[end + 1:]):
                op = "flatten" if (start, end) == (1, len(before) - 1) else f"flatten({start}, {end})"
                self.emit(self.label("flatten"), op, [x], node.output[0])
                return
    raise self.fail("E603", f"Reshape {list(before[1:])} -> {list(after[1:])} is not a flatten of adjacent dims")


def _channel_shuffle(self: _Importer, before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    """``Reshape [N, g, C/g, *S] -> Transpose (1 2) -> Reshape [N, C, *S]``."""
    node = self.node
    if len(after) != len(before) + 1 or after[1] * after[2] != before[1] or after[3:] != before[2:]:
        return False
    transpose = self.single_user(node.output[0], "Transpose")
    if transpose is None or list(_attr(self, self.graph.node[transpose], "perm") or []) != \
            [0, 2, 1, *range(3, len(after))]:
        return False
    back = self.single_user(self.graph.node[transpose].output[0], "Reshape")
    if back is None or self.shape(self.graph.node[back].output[0]) != before:
        return False
    x = self.value(node.input[0])
    self.done.update({transpose, back})
    self.node, self.index = self.graph.node[back], back
    self.emit(self.label("channel_shuffle"), f"channel_shuffle({after[1]})", [x], self.node.output[0])
    return True


def _merge(op: str) -> Callable[[_Importer], None]:
    def handler(self: _Importer) -> None:
        node = self.node
        inputs = [self.value(name) for name in node.input]
        if len(inputs) < 2:
            self.values[node.output[0]] = inputs[0]
            return
        rank = {len(self.shape(name)) for name in node.input}
        if len(rank) != 1:
            raise self.fail("E603", "operands of different ranks (archdsl broadcasts equal ranks only)")
        self.emit(_merge_label(self, op), op, inputs, node.output[0])
    return handler


def _merge_label(self: _Importer, op: str) -> str:
    """A merge's label: its module path (archdsl's ``layer1.0.add_1``), for
    PyTorch's ``/layer1/layer1.0/Add`` the module's path and the operator
    (``layer1.0.add``), so that it sits in its block with the layers around it."""
    name = self.node.name
    path = module_path(name)
    if path and name.startswith("/"):
        path = f"{path}.{legal_name(name.rsplit('/', 1)[-1].lower(), op)}"
    return self.net.fresh_path(path, op) if path else self.net.fresh_label(op)


def _concat(self: _Importer) -> None:
    node = self.node
    rank = len(self.shape(node.output[0]))
    axis = int(self.attr("axis")) % rank
    if axis == 0:
        raise self.fail("E603", "Concat along the batch")
    inputs = [self.value(name) for name in node.input]
    self.emit(_merge_label(self, "concat"), "concat", inputs, node.output[0], merge_args=f"dim={axis}")


def _alias(self: _Importer) -> None:
    node = self.node
    if len(node.output) > 1 and node.output[1] and node.output[1] in self.users:
        raise self.fail("E603", "Dropout's mask output is not read")
    self.values[node.output[0]] = self.value(node.input[0])


def _pad(self: _Importer) -> None:
    node = self.node
    rank = len(self.shape(node.input[0]))
    pads = list(self.attr("pads")) if self.opset < 11 else [int(v) for v in self.const(node.input[1], "pads")]
    axes_array = self.optional_const(3)
    axes = [int(a) % rank for a in axes_array] if axes_array is not None else list(range(rank))
    value_array = self.optional_const(2) if self.opset >= 11 else None
    value = float(self.attr("value", 0.0))
    if value_array is not None and value_array.size:
        value = float(value_array.reshape(-1)[0])
    pairs = {a: (pads[i], pads[i + len(axes)]) for i, a in enumerate(axes)}
    full = [pairs.get(a, (0, 0)) for a in range(rank)]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(
        self.attr("mode", "constant"))
    if full[0] != (0, 0) or mode is None:
        raise self.fail("E603", "padding the batch, or an unknown mode")
    pool = self.single_user(node.output[0], "AveragePool")
    spatial = full[2:]
    if pool is not None and mode == "constant" and value == 0 and full[1] == (0, 0) \
            and all(b == e for b, e in spatial) and not _attr(self, self.graph.node[pool], "count_include_pad"):
        self.avg_padding[pool] = [b for b, _ in spatial]
        self.values[node.output[0]] = self.value(node.input[0])
        return
    flat = [v for b, e in reversed(full[1:]) for v in (b, e)]
    keywords = {"mode": f'"{mode}"' if mode != "constant" else "", "value": _number(value) if value else ""}
    op = _call("pad", ["(" + ", ".join(map(str, flat)) + ")"], {k: v for k, v in keywords.items() if v})
    self.simple(op, "pad")


def _resize(self: _Importer) -> None:
    node = self.node
    rank = len(self.shape(node.input[0]))
    scales = self.optional_const(2 if self.opset >= 11 else 1)
    sizes = self.optional_const(3) if self.opset >= 11 else None
    axes = [int(a) % rank for a in self.attr("axes", list(range(rank)))]
    if scales is not None and scales.size:
        full = dict(zip(axes, [float(s) for s in scales]))
        factors = [full.get(a, 1.0) for a in range(rank)]
        if factors[:2] != [1.0, 1.0]:
            raise self.fail("E603", "resizing the batch or the channels")
        spatial = factors[2:]
        argument = "scale_factor=" + (_number(spatial[0]) if len(set(spatial)) == 1
                                      else "(" + ", ".join(map(_number, spatial)) + ")")
    elif sizes is not None and sizes.size:
        argument = f"size={_sizes(list(self.shape(node.output[0])[2:]))}"
    else:
        raise self.fail("E605", "Resize without scales or sizes")
    mode = self.attr("mode", "nearest")
    coordinates = self.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest" and coordinates == "asymmetric" and self.attr("nearest_mode", "round_prefer_floor") == "floor":
        op = f"upsample({argument})"
    elif mode in ("linear", "cubic") and coordinates in ("half_pixel", "pytorch_half_pixel", "align_corners") \
            and (mode == "linear" or (math.isclose(self.attr("cubic_coeff_a", -0.75), -0.75)
                                      and not self.attr("exclude_outside", 0))):
        name = "bicubic" if mode == "cubic" else {3: "linear", 4: "bilinear", 5: "trilinear"}[rank]
        op = f'upsample({argument}, mode="{name}", align_corners={str(coordinates == "align_corners").lower()})'
    else:
        raise self.fail("E603", f"Resize mode {mode} with {coordinates} coordinates has no PyTorch equivalent")
    self.simple(op, "upsample")


def _lrn(self: _Importer) -> None:
    size = int(self.attr("size"))
    if size % 2 == 0:
        raise self.fail("E603", "LRN with an even size: ONNX's window is PyTorch's shifted by one channel")
    alpha, beta, bias = self.attr("alpha", 1e-4), self.attr("beta", 0.75), self.attr("bias", 1.0)
    self.simple(f"local_response_norm({size}, alpha={_number(alpha)}, beta={_number(beta)}, k={_number(bias)})",
                "local_response_norm")


def _depth_to_space(self: _Importer) -> None:
    if self.attr("mode", "DCR") != "CRD":
        raise self.fail("E603", "DepthToSpace in DCR mode (PyTorch's pixel_shuffle is CRD)")
    self.simple(f"pixel_shuffle({int(self.attr('blocksize'))})", "pixel_shuffle")


def _slice(self: _Importer) -> None:
    node = self.node
    shape = self.shape(node.input[0])
    starts = self.const(node.input[1], "starts")
    self.const(node.input[2], "ends")  # the output's shape (ONNX's inference) gives the length
    axes_array, steps = self.optional_const(3), self.optional_const(4)
    axes = [int(a) % len(shape) for a in (axes_array if axes_array is not None else range(len(starts)))]
    if steps is not None and any(int(s) != 1 for s in steps):
        raise self.fail("E603", "a Slice with steps other than 1")
    after = self.shape(node.output[0])
    cut = [a for a in axes if after[a] != shape[a]]
    if len(cut) > 1 or (cut and cut[0] == 0):
        raise self.fail("E603", "a Slice along several axes, or the batch")
    x = self.value(node.input[0])
    if not cut:
        self.values[node.output[0]] = x
        return
    axis = cut[0]
    start = int(starts[axes.index(axis)])
    start = max(0, min(start + shape[axis] if start < 0 else start, shape[axis]))
    self.emit(self.label("narrow"), f"narrow({start}, {after[axis]}, dim={axis})", [x], node.output[0])


def _constant_operand(self: _Importer) -> tuple[str, str] | None:
    """(value, constant) when one of a binary node's two inputs is a constant."""
    a, b = self.node.input[0], self.node.input[1]
    if a in self.consts and b not in self.consts:
        return b, a
    if b in self.consts and a not in self.consts:
        return a, b
    return None


def _mul(self: _Importer) -> None:
    """``Mul`` of values is ``mul``; by an initializer that broadcasts to the
    input (ConvNeXt's layer scale), ``scale``, whose tensor is the
    initializer (its state_dict key the initializer's name when that is a
    key, else the node's module path)."""
    node = self.node
    operands = _constant_operand(self) if len(node.input) == 2 else None
    if operands is None:
        _merge("mul")(self)
        return
    value, constant = operands
    shape = self.shape(value)
    tensor = self.consts[constant]
    initializers = {t.name for t in self.graph.initializer}
    if constant not in initializers and self.origin.get(constant) not in initializers:
        raise self.fail("E603", f"a product with the computed constant '{constant}': archdsl's scale holds a "
                        "learnable tensor (an initializer)")
    if tensor.ndim > len(shape) or (tensor.ndim == len(shape) and tensor.shape[0] != 1) \
            or np.broadcast_shapes(tensor.shape, shape) != shape:
        raise self.fail("E603", f"a constant {list(tensor.shape)} that does not broadcast to {list(shape)} "
                        "without the batch")
    rank = len(shape) - 1
    kept = tuple(tensor.shape[len(tensor.shape) - min(tensor.ndim, rank):])
    scale_shape = (1,) * (rank - len(kept)) + kept
    name = self.origin.get(constant, constant)
    path = name if "." in name and legal_path(name) else module_path(node.name)
    label = self.net.fresh_path(path, "scale") if path else self.net.fresh_label("scale")
    x = self.value(value)
    dims = ", ".join(map(str, scale_shape)) + ("," if rank == 1 else "")
    self.emit(label, f"scale(({dims}))", [x], node.output[0], params=tensor.size)
    self.arrays[label] = tensor.reshape(scale_shape).astype(np.float32)


def _sub(self: _Importer) -> None:
    """``Sub`` of two values is ``sub``; archdsl's ops take no constant operand."""
    if len(self.node.input) == 2 and _constant_operand(self) is not None:
        raise self.fail("E603", "a difference with a constant: archdsl's sub takes two values of the network "
                        "(no op subtracts a constant)")
    x, y = self.value(self.node.input[0]), self.value(self.node.input[1])
    if len(self.shape(self.node.input[0])) != len(self.shape(self.node.input[1])):
        raise self.fail("E603", "operands of different ranks (archdsl broadcasts equal ranks only)")
    self.emit(_merge_label(self, "sub"), "sub", [x, y], self.node.output[0])


def _div(self: _Importer) -> None:
    """Only as the start of ``x * 0.5 * (1 + erf(x / √2))`` (``gelu`` as
    PyTorch exports it before opset 20); archdsl has no division op."""
    if not _erf_gelu(self):
        raise self.fail("E603", "archdsl has no division op (Div of values, or by a constant that is not folded)",
                        hint="a division that only normalises the input can be done before the network")


def _scalar(self: _Importer, node: Any, other: str, value: float) -> bool:
    """Whether ``node`` is binary with ``other`` and a constant equal to ``value``."""
    names = list(node.input)
    if len(names) != 2 or other not in names:
        return False
    constant = self.consts.get(names[1 - names.index(other)])
    return constant is not None and constant.size == 1 and math.isclose(float(constant.reshape(-1)[0]), value,
                                                                        rel_tol=1e-6)


def _erf_gelu(self: _Importer) -> bool:
    """``Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(0.5)`` (either order of the last two)."""
    div = self.node
    x = div.input[0]
    if not _scalar(self, div, x, math.sqrt(2)):
        return False
    erf = self.single_user(div.output[0], "Erf")
    add = self.single_user(self.graph.node[erf].output[0], "Add") if erf is not None else None
    if erf is None or add is None or not _scalar(self, self.graph.node[add], self.graph.node[erf].output[0], 1.0):
        return False
    first = self.single_user(self.graph.node[add].output[0], "Mul")
    if first is None:
        return False
    second = self.single_user(self.graph.node[first].output[0], "Mul")
    inputs = list(self.graph.node[first].input)
    if second is None or not (
            (x in inputs and _scalar(self, self.graph.node[second], self.graph.node[first].output[0], 0.5))
            or (_scalar(self, self.graph.node[first], self.graph.node[add].output[0], 0.5)
                and x in self.graph.node[second].input)):
        return False
    value = self.value(x)
    self.done.update({erf, add, first, second})
    self.node, self.index = self.graph.node[second], second
    self.emit(self.label("gelu"), "gelu", [value], self.node.output[0])
    return True


def _split(self: _Importer) -> None:
    """``Split`` (torch.chunk / torch.split) is one ``narrow`` per output read."""
    node = self.node
    shape = self.shape(node.input[0])
    axis = int(self.attr("axis", 0)) % len(shape)
    if axis == 0:
        raise self.fail("E603", "a Split along the batch")
    x = self.value(node.input[0])
    start = 0
    for output in node.output:
        length = self.shape(output)[axis]
        if output and output in self.users or output in self.output_names:
            op = f"narrow({start}, {length}, dim={axis})"
            self.emit(self.label("narrow"), op, [x], output)
        start += length


HANDLERS: dict[str, Callable[[_Importer], None]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batch_norm,
    "Relu": lambda self: self.simple("relu"), "Tanh": lambda self: self.simple("tanh"),
    "Sigmoid": _sigmoid, "LeakyRelu": _leaky_relu, "HardSigmoid": _hard_sigmoid,
    "HardSwish": lambda self: self.simple("hardswish"), "Mish": lambda self: self.simple("mish"),
    "Gelu": _gelu, "Clip": _clip, "Softmax": _softmax,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_average,
    "Gemm": _gemm, "MatMul": _matmul, "Transpose": _transpose, "LayerNormalization": _layer_norm,
    "Flatten": _flatten, "Reshape": _reshape, "Concat": _concat,
    "Add": _merge("add"), "Sum": _merge("add"), "Mul": _mul, "Sub": _sub, "Div": _div, "Split": _split,
    "Identity": _alias, "Dropout": _alias, "Pad": _pad, "Resize": _resize, "LRN": _lrn,
    "DepthToSpace": _depth_to_space, "Slice": _slice,
}


# ---------------------------------------------------------------- entry


def _static_shapes(onnx: Any, model: Any) -> dict[str, tuple[int, ...]]:
    """Every value's shape by ONNX's shape inference on a copy without the
    file's ``value_info`` and output shapes, a symbolic batch fixed at 1."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.value_info[:]
    for info in copy.graph.output:
        info.type.tensor_type.ClearField("shape")
    initializers = {tensor.name for tensor in copy.graph.initializer}
    for info in copy.graph.input:
        dims = info.type.tensor_type.shape.dim
        if info.name not in initializers and dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    try:
        inferred = onnx.shape_inference.infer_shapes(copy, check_type=True, strict_mode=True, data_prop=True)
    except Exception as error:
        raise fail("E605", f"ONNX's shape inference rejects the graph: {str(error).strip()[:2000]}") from None
    shapes: dict[str, tuple[int, ...]] = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in tensor_type.shape.dim):
            shapes[info.name] = tuple(int(d.dim_value) for d in tensor_type.shape.dim)
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def load_model(data: bytes, name: str, directory: Path | None = None) -> Any:
    """The checked ``ModelProto`` of ``data``; external data only from
    ``directory`` (ONNX refuses locations outside it)."""
    from .. import emit  # noqa: F401  (archdsl.emit.onnx's install hint)
    from ..emit.onnx import require_onnx

    onnx = require_onnx()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:
        raise fail("E601", f"{name} is not an ONNX model: {error}") from None
    external = onnx.external_data_helper
    if any(external.uses_external_data(t) for t in model.graph.initializer):
        if directory is None:
            raise fail("E606", "the weights are in an external data file, and no folder was given to read it from")
        try:
            external.load_external_data_for_model(model, str(directory))
        except Exception as error:
            raise fail("E606", f"the external weights cannot be read: {error}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise fail("E601", f"{name} fails the ONNX checker: {str(error).strip()[:2000]}") from None
    return model


def import_onnx(data: bytes, name: str, directory: Path | None = None) -> OnnxImport:
    """The network and weights of an ONNX model; raises DiagnosticError (E6xx)."""
    model = load_model(data, name, directory)
    import onnx

    importer = _Importer(model, Path(name).stem, Path(name).name)
    importer.shapes = _static_shapes(onnx, model)
    result = importer.run()
    net = result.net
    producer = f"{model.producer_name} {model.producer_version}".strip() or "an unnamed producer"
    net.header = [f"Imported from {net.source} by archdsl import (ONNX opset {importer.opset}, written by "
                  f"{producer}).", "Labels are the initializers' state_dict prefixes or the nodes' module paths; "
                  "shapes are ONNX's", "shape inference, without the batch dimension."]
    return result


__all__ = ["OnnxImport", "adaptive_average_matrix", "import_onnx", "load_model", "module_path", "torch_pooled"]
