"""Darknet .cfg -> :class:`Network`, following darknet's parser (src/parser.c
of pjreddie/darknet and AlexeyAB/darknet) and its layers' output-size rules.

Darknet layers have no names: node labels are the layer's kind and its
index in the cfg, as darknet prints them (``conv0``, ``bn0``, ``leaky0``,
``maxpool1``...).  See docs/import.md.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from ..source import SourceFile, Span
from .writer import Layer, Network, legal_name, numel

_SECTION = re.compile(r"\[([^\]]*)\]")

#: darknet activation name -> archdsl op (None: no node).  Darknet's leaky
#: slope is 0.1 (activations.h leaky_activate).
ACTIVATIONS: dict[str, str | None] = {
    "linear": None, "logistic": "sigmoid", "leaky": "leaky_relu(0.1)", "relu": "relu", "tanh": "tanh",
    "mish": "mish", "swish": "silu", "relu6": "relu6",
}
KNOWN_UNSUPPORTED = frozenset({
    "reorg", "reorg3d", "crop", "local", "deconvolutional", "deconv", "rnn", "gru", "lstm", "crnn", "conv_lstm",
    "sam", "scale_channels", "implicit_add", "implicit_mul", "contrastive", "empty", "silence", "detection",
    "gaussian_yolo", "batchnorm", "normalization", "lrn", "l2norm", "local_avg", "avg",
})
IGNORED = frozenset({"cost"})


def fail(code: str, message: str, span: Span | None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error(code, message, span, hint=hint)])


@dataclass
class Section:
    kind: str
    span: Span
    options: dict[str, tuple[str, Span]] = field(default_factory=dict)

    def text(self, key: str, default: str | None = None) -> str | None:
        return self.options[key][0] if key in self.options else default

    def int(self, key: str, default: int) -> int:
        if key not in self.options:
            return default
        value, span = self.options[key]
        try:
            return int(value)
        except ValueError:
            raise fail("E605", f"[{self.kind}] {key}={value}: expected an integer", span) from None

    def float(self, key: str, default: float) -> float:
        if key not in self.options:
            return default
        value, span = self.options[key]
        try:
            return float(value)
        except ValueError:
            raise fail("E605", f"[{self.kind}] {key}={value}: expected a number", span) from None

    def ints(self, key: str) -> list[builtins.int]:
        value, span = self.options[key]
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise fail("E605", f"[{self.kind}] {key}={value}: expected integers separated by commas", span) from None

    def span_of(self, key: str) -> Span:
        return self.options[key][1] if key in self.options else self.span

    def require_absent(self, *keys: str, allowed: tuple[str, ...] = ("0", "none", "")) -> None:
        for key in keys:
            if key in self.options and self.options[key][0] not in allowed:
                raise fail("E603", f"[{self.kind}] {key}={self.options[key][0]} has no archdsl equivalent",
                           self.options[key][1])


def parse_cfg(source: SourceFile) -> list[Section]:
    """Sections in order.  As darknet's read_cfg: lines starting with #, ;
    or nothing are skipped; whitespace inside a line does not count."""
    sections: list[Section] = []
    offset = 0
    for line in source.text.splitlines(keepends=True):
        start, body = offset, line.rstrip("\r\n")
        offset += len(line)
        stripped = body.strip()
        lead = start + len(body) - len(body.lstrip())
        if not stripped or stripped[0] in "#;":
            continue
        span = source.span(lead, start + len(body.rstrip()))
        if stripped[0] == "[":
            match = _SECTION.fullmatch(stripped)
            if match is None:
                raise fail("E601", f"malformed section header {stripped!r}", span, hint="write it as [name]")
            sections.append(Section(match.group(1).strip().lower(), span))
            continue
        if "=" not in stripped:
            raise fail("E601", f"expected key=value, found {stripped!r}", span)
        if not sections:
            raise fail("E601", "an option before the first [section]", span)
        key, _, value = stripped.partition("=")
        sections[-1].options["".join(key.split())] = ("".join(value.split()), span)
    if not sections or sections[0].kind not in ("net", "network"):
        raise fail("E601", "a Darknet cfg starts with a [net] section",
                   sections[0].span if sections else source.span(0, 0))
    return sections


class _Importer:
    def __init__(self, source: SourceFile, sections: list[Section]) -> None:
        self.source = source
        self.sections = sections
        self.net = Network(name=legal_name(Path(source.name).stem, "Net"), source=Path(source.name).name)
        self.outs: list[str] = []        # label of each darknet layer's output, by index
        self.heads: list[str] = []

    def run(self) -> Network:
        net_section = self.sections[0]
        w, h, c = net_section.int("width", 0), net_section.int("height", 0), net_section.int("channels", 0)
        if min(w, h, c) <= 0:
            raise fail("E605", "[net] needs positive width, height and channels", net_section.span)
        self.outs_input = self.net.add_input("image", (c, h, w))
        for index, section in enumerate(self.sections[1:]):
            self.layer(index, section)
        if not self.net.outputs:
            self.net.outputs.append((self.outs[-1], self.outs[-1]))
        return self.net

    def previous(self, index: int) -> str:
        return self.outs[index - 1] if index else self.outs_input

    def resolve(self, index: int, raw: int, section: Section, key: str) -> str:
        target = index + raw if raw < 0 else raw
        if not 0 <= target < index:
            raise fail("E604", f"[{section.kind}] layer {index}: {key} index {raw} points at layer {target}, "
                       f"outside layers 0..{index - 1}", section.span_of(key))
        return self.outs[target]

    def add(self, label: str, op: str, inputs: tuple[str, ...], shape, *, kind: str = "", params: int = 0,
            macs: int = 0, merge_args: str = "", note: str = "") -> str:
        self.net.add(Layer(label, op, inputs, tuple(shape), merge_args=merge_args, params=params, macs=macs,
                           kind=kind, note=note))
        return label

    def activation(self, index: int, section: Section, default: str, label_input: str) -> str:
        name = section.text("activation", default) or default
        if name not in ACTIVATIONS:
            raise fail("E603", f"[{section.kind}] activation={name} has no archdsl op", section.span_of("activation"))
        op = ACTIVATIONS[name]
        if op is None:
            return label_input
        return self.add(f"{name}{index}", op, (label_input,), self.net.shape(label_input), kind="activation")

    def layer(self, index: int, section: Section) -> None:
        handler = _HANDLERS.get(section.kind)
        if handler is None:
            if section.kind in IGNORED:
                self.outs.append(self.previous(index))
                self.net.notes.append(f"layer {index} [{section.kind}] is training-only and was left out")
                return
            code = "E603" if section.kind in KNOWN_UNSUPPORTED else "E602"
            what = "has no archdsl op" if code == "E603" else "is not a Darknet layer type the importer knows"
            raise fail(code, f"layer {index}: [{section.kind}] {what}", section.span)
        self.outs.append(handler(self, index, section))

    def image(self, index: int, section: Section) -> tuple[str, int, int, int]:
        label = self.previous(index)
        shape = self.net.shape(label)
        if len(shape) != 3:
            raise fail("E605", f"layer {index} [{section.kind}] needs an image input, it gets {list(shape)}",
                       section.span)
        return label, shape[0], shape[1], shape[2]


def _convolutional(self: _Importer, index: int, section: Section) -> str:
    section.require_absent("stride_x", "stride_y", "antialiasing", "binary", "xnor", "share_index", "sway",
                           "rotate", "stretch", "stretch_sway", "coordconv", "deform", "assisted_excitation")
    bottom, c, h, w = self.image(index, section)
    n, size, stride = section.int("filters", 1), section.int("size", 1), section.int("stride", 1)
    groups, dilation = section.int("groups", 1), section.int("dilation", 1)
    if size == 1:
        dilation = 1  # parser.c: if (size == 1) dilation = 1;
    padding = size // 2 if section.int("pad", 0) else section.int("padding", 0)
    bn = section.int("batch_normalize", 0) != 0
    if min(n, size, stride, groups, dilation) <= 0 or padding < 0:
        raise fail("E605", f"layer {index} [convolutional]: filters, size, stride, groups and dilation must be "
                   "positive", section.span)
    if c % groups or n % groups:
        raise fail("E605", f"layer {index} [convolutional]: groups={groups} must divide the input channels ({c}) "
                   f"and filters ({n})", section.span_of("groups"))
    # convolutional_layer.c: out = (in + 2·pad - dilation·(size-1) - 1) / stride + 1
    oh, ow = ((i + 2 * padding - dilation * (size - 1) - 1) // stride + 1 for i in (h, w))
    if oh <= 0 or ow <= 0:
        raise fail("E605", f"layer {index} [convolutional]: a {size}x{size} kernel does not fit {h}x{w}",
                   section.span)
    args = [str(n), str(size)]
    args += [f"stride={stride}"] if stride != 1 else []
    args += [f"padding={padding}"] if padding else []
    args += [f"dilation={dilation}"] if dilation != 1 else []
    args += [f"groups={groups}"] if groups != 1 else []
    args += ["bias=false"] if bn else []
    taps = (c // groups) * size * size
    conv = self.add(f"conv{index}", f"conv2d({', '.join(args)})", (bottom,), (n, oh, ow), kind="conv",
                    params=n * taps + (0 if bn else n), macs=n * oh * ow * taps)
    out, bn_label = conv, None
    if bn:
        bn_label = out = self.add(f"bn{index}", "batchnorm2d", (conv,), (n, oh, ow), kind="batchnorm", params=2 * n)
    self.net.weight_plan.append(("conv", conv, bn_label, (n, c // groups, size, size)))
    return self.activation(index, section, "logistic", out)


def _maxpool(self: _Importer, index: int, section: Section) -> str:
    section.require_absent("stride_x", "stride_y", "maxpool_depth", "antialiasing", "out_channels")
    bottom, c, h, w = self.image(index, section)
    stride = section.int("stride", 1)
    size = section.int("size", stride)
    padding = section.int("padding", size - 1)
    if min(size, stride) <= 0 or padding < 0:
        raise fail("E605", f"layer {index} [maxpool]: size and stride must be positive", section.span)
    # maxpool_layer.c: out = (in + padding - size) / stride + 1; windows start
    # at -padding/2, so padding/2 goes before and the rest after.
    sizes = [(i + padding - size) // stride + 1 for i in (h, w)]
    if min(sizes) <= 0:
        raise fail("E605", f"layer {index} [maxpool]: a {size}-wide window does not fit {h}x{w}", section.span)
    before = padding // 2
    # Padding after the image that some window reads.
    after = [max(0, (o - 1) * stride + size - before - i) for o, i in zip(sizes, (h, w))]
    args = [str(size)] + ([f"stride={stride}"] if stride != size else [])
    if before == after[0] == after[1] and before <= size // 2:
        args += [f"padding={before}"] if before else []
        source = bottom
    else:
        if max(before, *after) >= size:
            raise fail("E603", f"layer {index} [maxpool]: padding={padding} leaves windows that read only padding",
                       section.span_of("padding"))
        # Darknet skips positions outside the image; repeating the edge is the
        # same for a max, since every window also covers the edge pixel.
        pads = (before, after[1], before, after[0])
        source = self.add(f"pad{index}", f'pad({pads}, mode="replicate")', (bottom,),
                          (c, h + before + after[0], w + before + after[1]), kind="pad")
    return self.add(f"maxpool{index}", f"maxpool2d({', '.join(args)})", (source,), (c, *sizes), kind="maxpool")


def _route(self: _Importer, index: int, section: Section) -> str:
    if "layers" not in section.options:
        raise fail("E605", f"layer {index} [route] needs layers=", section.span)
    sources = [self.resolve(index, raw, section, "layers") for raw in section.ints("layers")]
    groups, group_id = section.int("groups", 1), section.int("group_id", 0)
    if groups <= 0 or not 0 <= group_id < groups:
        raise fail("E605", f"layer {index} [route]: group_id must be in 0..groups-1", section.span)
    shapes = [self.net.shape(s) for s in sources]
    if len({s[1:] for s in shapes}) != 1:
        raise fail("E605", f"layer {index} [route]: inputs of different sizes {[list(s) for s in shapes]}",
                   section.span_of("layers"))
    parts = []
    for k, (label, shape) in enumerate(zip(sources, shapes)):
        if groups == 1:
            parts.append(label)
            continue
        if shape[0] % groups:
            raise fail("E605", f"layer {index} [route]: groups={groups} does not divide {shape[0]} channels",
                       section.span_of("groups"))
        part = shape[0] // groups
        suffix = f"_{k}" if len(sources) > 1 else ""
        parts.append(self.add(f"route{index}{suffix}", f"narrow({part * group_id}, {part})", (label,),
                              (part, *shape[1:]), kind="slice"))
    if len(parts) == 1:
        return parts[0]
    channels = sum(self.net.shape(p)[0] for p in parts)
    label = f"route{index}" if groups == 1 else f"route{index}_concat"
    return self.add(label, "concat", tuple(parts), (channels, *shapes[0][1:]), kind="concat")


def _shortcut(self: _Importer, index: int, section: Section) -> str:
    section.require_absent("weights_type", "weights_normalization")
    if "from" not in section.options:
        raise fail("E605", f"layer {index} [shortcut] needs from=", section.span)
    previous = self.previous(index)
    others = [self.resolve(index, raw, section, "from") for raw in section.ints("from")]
    shapes = {self.net.shape(x) for x in (previous, *others)}
    if len(shapes) != 1:
        raise fail("E603", f"layer {index} [shortcut]: adding maps of different shapes {sorted(shapes)} "
                   "(darknet adds the overlap) has no archdsl op", section.span_of("from"))
    added = self.add(f"shortcut{index}", "add", (previous, *others), shapes.pop(), kind="shortcut")
    return self.activation(index, section, "linear", added)


def _upsample(self: _Importer, index: int, section: Section) -> str:
    bottom, c, h, w = self.image(index, section)
    stride = section.int("stride", 2)
    if stride <= 0 or section.float("scale", 1.0) != 1.0:
        raise fail("E603", f"layer {index} [upsample]: only a positive stride and scale=1 are supported",
                   section.span)
    return self.add(f"upsample{index}", f"upsample({stride})", (bottom,), (c, h * stride, w * stride),
                    kind="upsample")


def _avgpool(self: _Importer, index: int, section: Section) -> str:
    bottom, c, _, _ = self.image(index, section)
    return self.add(f"avgpool{index}", "global_avgpool", (bottom,), (c, 1, 1), kind="avgpool")


def _connected(self: _Importer, index: int, section: Section) -> str:
    section.require_absent("batch_normalize")
    bottom = self.previous(index)
    shape = self.net.shape(bottom)
    out = section.int("output", 1)
    if len(shape) > 1:
        bottom = self.add(f"flatten{index}", "flatten", (bottom,), (numel(shape),), kind="flatten")
    features = numel(shape)
    fc = self.add(f"fc{index}", f"linear({out})", (bottom,), (out,), kind="linear", params=out * features + out,
                  macs=out * features)
    self.net.weight_plan.append(("connected", fc, None, (out, features)))
    return self.activation(index, section, "logistic", fc)


def _softmax(self: _Importer, index: int, section: Section) -> str:
    bottom = self.previous(index)
    shape = self.net.shape(bottom)
    if section.int("groups", 1) != 1 or numel(shape) != shape[0]:
        raise fail("E603", f"layer {index} [softmax]: only a softmax over a vector of scores is supported",
                   section.span)
    return self.add(f"softmax{index}", "softmax", (bottom,), shape, kind="softmax")


def _dropout(self: _Importer, index: int, section: Section) -> str:
    bottom = self.previous(index)
    p = section.float("probability", 0.5)
    return self.add(f"dropout{index}", f"dropout({p!r})", (bottom,), self.net.shape(bottom), kind="dropout")


def _head(self: _Importer, index: int, section: Section) -> str:
    bottom = self.previous(index)
    name = f"{section.kind}{index}"
    self.net.outputs.append((name, bottom))
    details = ", ".join(f"{key}={section.options[key][0]}" for key in ("mask", "anchors", "classes", "num", "coords")
                        if key in section.options)
    self.net.notes.append(f"output {name} is the input of layer {index} [{section.kind}] (raw, before its "
                          f"decoding): {details}")
    return bottom


_HANDLERS = {
    "convolutional": _convolutional, "conv": _convolutional,
    "maxpool": _maxpool, "max": _maxpool,
    "route": _route,
    "shortcut": _shortcut,
    "upsample": _upsample,
    "avgpool": _avgpool,
    "connected": _connected,
    "softmax": _softmax, "soft": _softmax,
    "dropout": _dropout,
    "yolo": _head, "region": _head,
}


def import_darknet(source: SourceFile) -> Network:
    """The network of a Darknet cfg; raises DiagnosticError (E6xx)."""
    net = _Importer(source, parse_cfg(source)).run()
    net.header = [
        f"{net.name}, imported from the Darknet file {net.source} by 'archdsl import'.",
        "",
        "Node labels are darknet's layer kind and index (conv0, bn0, leaky0, maxpool1, ...).",
        f"Figures: {net.params:,} learnable parameters; {net.macs:,} multiply-adds of",
        f"convolutional and connected layers; darknet prints {2 * _conv_macs(net) / 1e9:.3f} BFLOPs",
        "(2 x the convolutions' multiply-adds; 'archdsl summary --convention' gives the others).",
    ]
    return net


def _conv_macs(net: Network) -> int:
    return sum(layer.macs for layer in net.layers if layer.kind == "conv")
