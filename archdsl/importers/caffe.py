"""Caffe deploy .prototxt -> :class:`Network`, following Caffe's own rules.

Shapes, parameter counts and multiply-adds are computed here from Caffe's
layer definitions (caffe/src/caffe/layers/*.cpp), independently of
archdsl's ops; the written file states them as ``expect`` lines, so
``archdsl check`` proves the two agree.  See docs/import.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from ..source import SourceFile, Span
from . import prototxt
from .prototxt import Message
from .writer import Layer, Network, Shape, legal_name, numel

#: Layers that only matter in training: dropped, with a note.
TRAIN_ONLY = frozenset({
    "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "Accuracy", "SoftmaxWithLoss",
    "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss", "ContrastiveLoss",
    "MultinomialLogisticLoss", "Silence", "HDF5Output",
})
#: Caffe layer types archdsl has no op for (E603, not E602).
UNSUPPORTED = frozenset({
    "PReLU", "Deconvolution", "Scale", "Bias", "Power", "Exp", "Log", "AbsVal", "BNLL", "ELU", "Crop", "Slice",
    "Reshape", "Permute", "Normalize", "PriorBox", "DetectionOutput", "Interp", "Upsample", "ShuffleChannel",
    "ConvolutionDepthwise", "ArgMax", "Threshold", "MVN", "Embed", "Reduction", "Tile", "SPP", "LSTM", "RNN",
    "Python", "Im2col", "Filter", "Parameter", "Clip", "Swish", "Axpy",
})


def fail(code: str, message: str, span: Span | None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error(code, message, span, hint=hint)])


class _Importer:
    def __init__(self, source: SourceFile, net: Message) -> None:
        self.source = source
        self.net_message = net
        name = net.string("name") or Path(source.name).stem
        self.net = Network(name=legal_name(name, "Net"), source=Path(source.name).name)
        self.blobs: dict[str, str] = {}      # blob name -> label of the node that last wrote it
        self.dropped: list[str] = []

    # ------------------------------------------------------------ inputs

    def read_inputs(self) -> None:
        names = self.net_message.all("input")
        dims = self.net_message.ints("input_dim")
        shapes = self.net_message.messages("input_shape")
        if dims and len(dims) != 4 * len(names):
            raise fail("E605", f"{len(names)} input(s) need {4 * len(names)} input_dim values, found {len(dims)}",
                       self.net_message.all("input_dim")[0].span)
        for i, f in enumerate(names):
            if not isinstance(f.value, str):
                raise fail("E605", "'input' must be a quoted blob name", f.span)
            if dims:
                shape = tuple(dims[4 * i: 4 * i + 4])
            elif i < len(shapes):
                shape = tuple(shapes[i].ints("dim"))
            else:
                raise fail("E605", f"input '{f.value}' has no input_dim or input_shape", f.span)
            self._declare_input(f.value, shape, f.span)

    def _declare_input(self, blob: str, shape: tuple[int, ...], span: Span) -> None:
        if len(shape) < 2 or min(shape) <= 0:
            raise fail("E605", f"input '{blob}' needs positive dimensions N, C, ... (found {list(shape)})", span)
        self.blobs[blob] = self.net.add_input(blob, shape[1:])

    # ------------------------------------------------------------ layers

    def reject_v1(self) -> None:
        if self.net_message.all("layers"):
            raise fail("E603", "this is Caffe's legacy V1 format ('layers { type: CONVOLUTION }'), which the "
                       "importer does not read", self.net_message.all("layers")[0].span,
                       hint="upgrade it with Caffe's tools/upgrade_net_proto_text, then import the result")

    def read_layers(self) -> None:
        for layer in self.net_message.messages("layer"):
            self.read_layer(layer)
        if not self.net.inputs:
            raise fail("E605", "the network declares no input (input:/input_shape, or an Input layer)",
                       self.net_message.span)
        consumed = {p for layer in self.net.layers for p in layer.inputs}
        for label in dict.fromkeys(self.blobs.values()):
            if label not in consumed and label not in self.net.inputs:
                self.net.outputs.append((label, label))
        if not self.net.outputs:
            raise fail("E605", "the network has no layers that produce an output", self.net_message.span)

    def read_layer(self, layer: Message) -> None:
        kind = layer.string("type") or ""
        name = layer.string("name") or kind
        if kind in TRAIN_ONLY or _train_phase_only(layer):
            self.dropped.append(f"{name} ({kind})")
            return
        if kind == "Input":
            param = layer.message("input_param")
            tops = layer.strings("top")
            shapes = param.messages("shape") if param else []
            for i, top in enumerate(tops):
                dims = shapes[min(i, len(shapes) - 1)].ints("dim") if shapes else []
                self._declare_input(top, tuple(dims), layer.span)
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            where = (layer.first("type") or layer.first("name"))
            span = where.span if where else layer.span
            if kind in UNSUPPORTED:
                raise fail("E603", f"layer '{name}': archdsl has no op for Caffe's {kind} layer", span)
            raise fail("E602", f"layer '{name}': unknown Caffe layer type '{kind}'", span)
        handler(self, layer, name)

    def bottoms(self, layer: Message, name: str, count: int | None = 1) -> list[str]:
        fields = layer.all("bottom")
        if count is not None and len(fields) != count:
            raise fail("E605", f"layer '{name}' needs {count} bottom blob(s), found {len(fields)}", layer.span)
        if not fields:
            raise fail("E605", f"layer '{name}' has no bottom blob", layer.span)
        labels = []
        for f in fields:
            if f.value not in self.blobs:
                raise fail("E604", f"layer '{name}' reads blob '{f.value}', which no earlier layer writes", f.span,
                           hint=f"known blobs: {', '.join(sorted(self.blobs))}" if self.blobs else None)
            labels.append(self.blobs[str(f.value)])
        return labels

    def emit(self, layer: Message, name: str, op: str, inputs: list[str], shape: Shape, *, merge_args: str = "",
             params: int = 0, macs: int = 0, kind: str = "", label: str | None = None) -> str:
        label = label or self.net.fresh_label(name)
        note = "" if legal_name(name) == label else f'Caffe "{name}"'
        self.net.add(Layer(label, op, tuple(inputs), shape, merge_args=merge_args, params=params, macs=macs,
                           note=note, kind=kind))
        self.write_tops(layer, label)
        return label

    def write_tops(self, layer: Message, label: str) -> None:
        for top in layer.strings("top"):
            self.blobs[top] = label


def _train_phase_only(layer: Message) -> bool:
    """``include { phase: TRAIN }`` or ``exclude { phase: TEST }``."""
    include = [m.enum("phase", "") for m in layer.messages("include")]
    exclude = [m.enum("phase", "") for m in layer.messages("exclude")]
    return "TRAIN" in include or "TEST" in exclude


# ---------------------------------------------------------------- geometry


def _spatial(param: Message, name: str, *, default: int | None, span: Span, what: str) -> tuple[int, int]:
    """Caffe's ``kernel_size`` / ``kernel_h``+``kernel_w`` (likewise pad, stride)."""
    repeated = param.ints(what + ("_size" if what == "kernel" else ""))
    h, w = param.int(what + "_h"), param.int(what + "_w")
    if h is not None or w is not None:
        if h is None or w is None:
            raise fail("E605", f"layer '{name}': {what}_h and {what}_w go together", span)
        return h, w
    if len(repeated) == 1:
        return repeated[0], repeated[0]
    if len(repeated) == 2:
        return repeated[0], repeated[1]
    if not repeated and default is not None:
        return default, default
    raise fail("E605", f"layer '{name}': expected one or two {what} values, found {len(repeated)}", span)


def _size_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def _param(layer: Message, key: str) -> Message:
    return layer.message(key) or Message(layer.span)


def _image(self: _Importer, label: str, name: str, span: Span) -> tuple[int, int, int]:
    shape = self.net.shape(label)
    if len(shape) != 3:
        raise fail("E603", f"layer '{name}' needs a [C, H, W] feature map, its bottom is {list(shape)}", span)
    return shape[0], shape[1], shape[2]


# ---------------------------------------------------------------- handlers


def _convolution(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "convolution_param")
    out = p.int("num_output")
    if out is None or out <= 0:
        raise fail("E605", f"layer '{name}': convolution_param needs a positive num_output", p.span)
    if p.int("axis", 1) != 1:
        raise fail("E603", f"layer '{name}': convolution over axis {p.int('axis')} is not supported", p.span)
    kernel = _spatial(p, name, default=None, span=p.span, what="kernel")
    pad = _spatial(p, name, default=0, span=p.span, what="pad")
    stride = _spatial(p, name, default=1, span=p.span, what="stride")
    dilation = _spatial(p, name, default=1, span=p.span, what="dilation") if p.ints("dilation") else (1, 1)
    group = p.int("group", 1) or 1
    bias = p.bool("bias_term", True)
    c, h, w = _image(self, bottom, name, layer.span)
    if min(*kernel, *stride, *dilation) <= 0 or min(pad) < 0:
        raise fail("E605", f"layer '{name}': kernel, stride and dilation must be positive, pad non-negative", p.span)
    if c % group or out % group:
        raise fail("E605", f"layer '{name}': group {group} must divide the input channels ({c}) and "
                   f"num_output ({out})", p.span)
    # conv_layer.cpp compute_output_shape: (I + 2P - (D(K-1)+1)) / S + 1
    oh, ow = ((i + 2 * q - (d * (k - 1) + 1)) // s + 1 for i, q, d, k, s in zip((h, w), pad, dilation, kernel, stride))
    if oh <= 0 or ow <= 0:
        raise fail("E605", f"layer '{name}': the {kernel[0]}x{kernel[1]} kernel does not fit the {h}x{w} input",
                   p.span)
    args = [str(out), _size_text(kernel)]
    if stride != (1, 1):
        args.append(f"stride={_size_text(stride)}")
    if pad != (0, 0):
        args.append(f"padding={_size_text(pad)}")
    if dilation != (1, 1):
        args.append(f"dilation={_size_text(dilation)}")
    if group != 1:
        args.append(f"groups={group}")
    if not bias:
        args.append("bias=false")
    taps = (c // group) * kernel[0] * kernel[1]
    self.emit(layer, name, f"conv2d({', '.join(args)})", [bottom], (out, oh, ow),
              params=out * taps + (out if bias else 0), macs=out * oh * ow * taps, kind="conv")


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """pooling_layer.cpp Reshape: ceil (or floor) of ``(I + 2P - K) / S``, plus
    one; with padding, a last window starting in the right padding is dropped."""
    span = size + 2 * pad - kernel
    pooled = (-(-span // stride) if ceil else span // stride) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def torch_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """PyTorch's pooling output size (aten pooling_output_shape)."""
    span = size + 2 * pad - kernel
    pooled = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def _pooling(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "pooling_param")
    method = p.enum("pool", "MAX")
    if method not in ("MAX", "AVE", "0", "1"):
        raise fail("E603", f"layer '{name}': {method} pooling has no archdsl op", p.span)
    is_max = method in ("MAX", "0")
    c, h, w = _image(self, bottom, name, layer.span)
    if p.bool("global_pooling", False):
        op = "global_avgpool" if not is_max else f"maxpool2d({_size_text((h, w))})"
        self.emit(layer, name, op, [bottom], (c, 1, 1), kind="maxpool" if is_max else "avgpool")
        return
    kernel = _spatial(p, name, default=None, span=p.span, what="kernel")
    pad = _spatial(p, name, default=0, span=p.span, what="pad")
    stride = _spatial(p, name, default=1, span=p.span, what="stride")
    ceil = p.enum("round_mode", "CEIL") in ("CEIL", "0")
    sizes = []
    for i, k, s, q in zip((h, w), kernel, stride, pad):
        if q > k // 2:
            raise fail("E603", f"layer '{name}': pad {q} is more than half the kernel {k}; PyTorch's pooling "
                       "(and archdsl's) does not allow it", p.span)
        caffe = caffe_pooled_size(i, k, s, q, ceil)
        if caffe != torch_pooled_size(i, k, s, q, ceil):
            raise fail("E603", f"layer '{name}': Caffe makes {caffe} windows here, the last one starting outside "
                       f"the {i}-pixel input, which PyTorch's pooling (and archdsl's) never does", p.span)
        if caffe <= 0:
            raise fail("E605", f"layer '{name}': the {k}-wide window does not fit the {i}-pixel input", p.span)
        sizes.append(caffe)
    floor_sizes = [torch_pooled_size(i, k, s, q, False) for i, k, s, q in zip((h, w), kernel, stride, pad)]
    args = [_size_text(kernel)]
    if stride != kernel:
        args.append(f"stride={_size_text(stride)}")
    if pad != (0, 0):
        args.append(f"padding={_size_text(pad)}")
    if sizes != floor_sizes:  # ceil_mode changes nothing when both roundings agree
        args.append("ceil_mode=true")
    op = ("maxpool2d" if is_max else "avgpool2d") + f"({', '.join(args)})"
    self.emit(layer, name, op, [bottom], (c, sizes[0], sizes[1]), kind="maxpool" if is_max else "avgpool")


def _inner_product(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "inner_product_param")
    out = p.int("num_output")
    if out is None or out <= 0:
        raise fail("E605", f"layer '{name}': inner_product_param needs a positive num_output", p.span)
    if p.int("axis", 1) != 1:
        raise fail("E603", f"layer '{name}': an inner product over axis {p.int('axis')} is not supported", p.span)
    bias = p.bool("bias_term", True)
    shape = self.net.shape(bottom)
    if len(shape) > 1:  # Caffe flattens from axis 1, as torch.flatten(x, 1)
        bottom_label = self.net.fresh_label(f"{name}_flatten")
        self.net.add(Layer(bottom_label, "flatten", (bottom,), (numel(shape),), kind="flatten"))
        bottom = bottom_label
    features = numel(shape)
    op = f"linear({out})" if bias else f"linear({out}, bias=false)"
    self.emit(layer, name, op, [bottom], (out,), params=out * features + (out if bias else 0),
              macs=out * features, kind="linear")


def _relu(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    slope = _param(layer, "relu_param").float("negative_slope", 0.0)
    op = "relu" if slope == 0 else f"leaky_relu({slope!r})"
    self.emit(layer, name, op, [bottom], self.net.shape(bottom), kind="activation")


def _elementwise(op: str) -> Callable[[_Importer, Message, str], None]:
    def handler(self: _Importer, layer: Message, name: str) -> None:
        (bottom,) = self.bottoms(layer, name)
        self.emit(layer, name, op, [bottom], self.net.shape(bottom), kind="activation")
    return handler


def _dropout(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    ratio = _param(layer, "dropout_param").float("dropout_ratio", 0.5)
    self.emit(layer, name, f"dropout({ratio!r})", [bottom], self.net.shape(bottom), kind="dropout")


def _softmax(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    axis = _param(layer, "softmax_param").int("axis", 1)
    op = "softmax" if axis == 1 else f"softmax(dim={axis})"
    self.emit(layer, name, op, [bottom], self.net.shape(bottom), kind="softmax")


def _lrn(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "lrn_param")
    if p.enum("norm_region", "ACROSS_CHANNELS") not in ("ACROSS_CHANNELS", "0"):
        raise fail("E603", f"layer '{name}': LRN within channels has no archdsl op", p.span)
    # lrn_layer.cpp: scale = k + alpha/n · sum(x²), as torch's LocalResponseNorm.
    size, alpha, beta, k = p.int("local_size", 5), p.float("alpha", 1.0), p.float("beta", 0.75), p.float("k", 1.0)
    op = f"local_response_norm({size}, alpha={alpha!r}, beta={beta!r}, k={k!r})"
    self.emit(layer, name, op, [bottom], self.net.shape(bottom), kind="norm")


def _batch_norm(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    shape = self.net.shape(bottom)
    eps = _param(layer, "batch_norm_param").float("eps", 1e-5)
    op = {1: "batchnorm1d", 2: "batchnorm1d", 3: "batchnorm2d", 4: "batchnorm3d"}.get(len(shape))
    if op is None:
        raise fail("E603", f"layer '{name}': batch norm of a {len(shape)}-d blob", layer.span)
    args = ["affine=false"] + ([f"eps={eps!r}"] if eps != 1e-5 else [])
    # Caffe's BatchNorm has no scale or shift; a following Scale layer adds
    # them (_scale folds it in).  Its mean, variance and moving-average
    # factor are not learnable.
    self.emit(layer, name, f"{op}({', '.join(args)})", [bottom], shape, kind="batchnorm")


def _scale(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "scale_param")
    producer = self.net.layer(bottom)
    consumers = self.net.consumers()
    if (producer is None or producer.kind != "batchnorm" or "affine=false" not in producer.op
            or consumers[bottom] != 0 or len(layer.all("bottom")) != 1):
        raise fail("E603", f"layer '{name}': archdsl has no op for a Scale layer on its own (only one right after "
                   "a BatchNorm, which becomes that batch norm's affine parameters)", layer.span)
    if not p.bool("bias_term", False) or p.int("axis", 1) != 1 or p.int("num_axes", 1) != 1:
        raise fail("E603", f"layer '{name}': a Scale after BatchNorm folds into it only with bias_term: true "
                   "(gamma and beta per channel)", p.span)
    producer.op = producer.op.replace("affine=false", "").replace("(, ", "(").replace("()", "")
    producer.params = 2 * producer.shape[0]
    producer.note = (producer.note + "  " if producer.note else "") + f'with Caffe Scale "{name}"'
    self.write_tops(layer, producer.label)


def _eltwise(self: _Importer, layer: Message, name: str) -> None:
    bottoms = self.bottoms(layer, name, count=None)
    p = _param(layer, "eltwise_param")
    method = p.enum("operation", "SUM")
    coeffs = p.floats("coeff")
    shapes = {self.net.shape(b) for b in bottoms}
    if len(shapes) != 1:
        raise fail("E605", f"layer '{name}': Eltwise inputs differ in shape: {sorted(shapes)}", layer.span)
    if method in ("SUM", "1") and any(c != 1 for c in coeffs):
        raise fail("E603", f"layer '{name}': Eltwise SUM with coefficients {coeffs} has no archdsl op "
                   "(only coefficients of 1)", p.span)
    ops = {"SUM": "add", "1": "add", "PROD": "mul", "0": "mul"}
    if method not in ops:
        raise fail("E603", f"layer '{name}': Eltwise {method} has no archdsl op", p.span)
    self.emit(layer, name, ops[method], bottoms, shapes.pop(), kind="eltwise")


def _concat(self: _Importer, layer: Message, name: str) -> None:
    bottoms = self.bottoms(layer, name, count=None)
    p = _param(layer, "concat_param")
    shapes = [self.net.shape(b) for b in bottoms]
    rank = len(shapes[0]) + 1
    axis = p.int("concat_dim") if p.first("concat_dim") else p.int("axis", 1)
    assert axis is not None
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank or any(len(s) + 1 != rank for s in shapes):
        raise fail("E605", f"layer '{name}': cannot concatenate {[list(s) for s in shapes]} on axis {axis}", p.span)
    others = {s[: axis - 1] + s[axis:] for s in shapes}
    if len(others) != 1:
        raise fail("E605", f"layer '{name}': inputs {[list(s) for s in shapes]} differ off axis {axis}", layer.span)
    shape = list(shapes[0])
    shape[axis - 1] = sum(s[axis - 1] for s in shapes)
    if len(bottoms) == 1:
        self.write_tops(layer, bottoms[0])
        return
    self.emit(layer, name, "concat", bottoms, tuple(shape), merge_args="" if axis == 1 else f"dim={axis}",
              kind="concat")


def _flatten(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    p = _param(layer, "flatten_param")
    if p.int("axis", 1) != 1 or p.int("end_axis", -1) != -1:
        raise fail("E603", f"layer '{name}': only Flatten from axis 1 to the end is supported", p.span)
    self.emit(layer, name, "flatten", [bottom], (numel(self.net.shape(bottom)),), kind="flatten")


def _split(self: _Importer, layer: Message, name: str) -> None:
    (bottom,) = self.bottoms(layer, name)
    self.write_tops(layer, bottom)  # every top is the bottom itself


_HANDLERS: dict[str, Callable[[_Importer, Message, str], None]] = {
    "Convolution": _convolution,
    "Pooling": _pooling,
    "InnerProduct": _inner_product,
    "ReLU": _relu,
    "Sigmoid": _elementwise("sigmoid"),
    "TanH": _elementwise("tanh"),
    "Dropout": _dropout,
    "Softmax": _softmax,
    "LRN": _lrn,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
    "Eltwise": _eltwise,
    "Concat": _concat,
    "Flatten": _flatten,
    "Split": _split,
}


def import_caffe(source: SourceFile) -> Network:
    """The network of a deploy prototxt; raises DiagnosticError (E6xx)."""
    importer = _Importer(source, prototxt.parse(source))
    importer.reject_v1()
    importer.read_inputs()
    importer.read_layers()
    net = importer.net
    net.header = [
        f"{net.name}, imported from the Caffe file {net.source} by 'archdsl import'.",
        "",
        "Node labels are the Caffe layer names (characters other than letters, digits",
        "and _ become _), so converted weights keep their keys.",
        f"Caffe's figures: {net.params:,} learnable parameters; {net.macs:,} multiply-adds",
        "of Convolution and InnerProduct layers (the Caffe-era convention).",
    ]
    if importer.dropped:
        net.notes.append("training-only layers left out: " + ", ".join(importer.dropped))
    return net

