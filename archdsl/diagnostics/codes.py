"""Every diagnostic code, once: its stable name, default severity and doc.

Codes are grouped by hundreds: E1xx syntax, E2xx names and structure,
E3xx op arguments, E4xx shapes and channels, E5xx failed expectations,
E6xx files read by ``archdsl import``, E7xx export, E9xx resource limits;
W1xx language warnings, W2xx lint warnings, I3xx lint information.
``docs/rules.md`` is generated from this table
(``python -m archdsl rules --markdown``) and a test keeps the two in sync.
The lint checks themselves live in ``archdsl/lint/``, registered by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str
    example: str = ""
    #: Why it matters (lint rules): one paragraph.
    rationale: str = ""


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

CODES: tuple[Code, ...] = (
    Code("E101", "syntax-error", _E,
         "The text does not follow the grammar; the message lists what could come next.",
         "conv2d(64 3)   # a comma is missing"),
    Code("E102", "invalid-token", _E,
         "A character that starts no token of the language, or an unterminated string.",
         'x -> conv2d(64, 3, padding="same)'),
    Code("E103", "invalid-encoding", _E,
         "The file is not valid UTF-8.",
         "a file saved as Latin-1 with 'é' in a comment"),
    Code("E201", "unknown-op", _E,
         "A chain step names neither an op nor a block in scope.",
         "x -> conv2(64, 3)   # did you mean conv2d?"),
    Code("E202", "unknown-name", _E,
         "An expression names no value, parameter, loop index or builtin in scope.",
         "x -> conv2d(widht, 3)"),
    Code("E203", "duplicate-name", _E,
         "A block, model, input, value or node name is defined twice.",
         "conv1: conv2d(64, 3) -> conv1: conv2d(64, 3)"),
    Code("E204", "recursive-block", _E,
         "A block instantiates itself, directly or through other blocks.",
         "block A() { return in -> A() }"),
    Code("E205", "import-not-found", _E,
         "An imported file does not exist or cannot be read.",
         'import "blocks/missing.cnn"'),
    Code("E206", "import-cycle", _E,
         "Files import each other in a cycle.",
         'a.cnn: import "b.cnn"; b.cnn: import "a.cnn"'),
    Code("E207", "missing-input", _E,
         "An op or block that needs an input tensor has none: it starts a chain, or "
         "'in' is used outside a block or in a block called without input.",
         "y = conv2d(64, 3) -> relu"),
    Code("E208", "missing-output", _E,
         "A block has no 'return', a model has no output, or 'return' appears in a model.",
         "block B() { x = in -> relu }"),
    Code("E209", "type-mismatch", _E,
         "A tensor is used where a compile-time value is expected, or the reverse.",
         "x -> conv2d(in, 3)"),
    Code("E210", "invalid-expression", _E,
         "A compile-time expression cannot be evaluated: wrong operand types, "
         "division by zero, a bad repeat count or input dimension.",
         "repeat -1 { relu }"),
    Code("E211", "missing-model-input", _E,
         "A model declares no input.",
         "model M { x = conv2d(8, 3) }"),
    Code("E212", "misplaced-statement", _E,
         "A statement or label where it has no meaning: 'return' in a model, 'input' "
         "or 'output' in a block, a label on a plain value.",
         "model M { input x: [3, 8, 8]  return x }"),
    Code("E213", "invalid-attribute", _E,
         "An attribute a value does not have: only tensors have attributes (their shape: channels, "
         "shape, rank, length, depth, height, width), and the spatial ones only at a rank that has them.",
         "input x: [3, 100]  y = x -> conv1d(x.height, 3)   # [C, L] has a length, not a height"),
    Code("E214", "index-out-of-range", _E,
         "An index past either end of a tuple or list.",
         "cfg = (16, 32)  x -> conv2d(cfg[2], 3)"),
    Code("E215", "unpack-mismatch", _E,
         "A repeat takes each item of a list apart into names, but an item has another number of "
         "parts (or the repeat counts instead of iterating over a list).",
         "repeat [(3, 16), (5, 24, 2)] as (k, c) { conv2d(c, k) }"),
    Code("E301", "unknown-argument", _E,
         "A keyword argument the op or block does not take.",
         "conv2d(64, 3, strid=2)"),
    Code("E302", "missing-argument", _E,
         "A required argument of an op or block is not given, or a builtin function gets too few.",
         "conv2d(kernel_size=3)"),
    Code("E303", "invalid-argument", _E,
         "An argument has the wrong type or an out-of-range value.",
         "conv2d(64, 0)   # kernel_size must be positive"),
    Code("E304", "too-many-arguments", _E,
         "More positional arguments than the op, block or builtin function takes, or a positional "
         "argument after a keyword argument.",
         "relu(1)"),
    Code("E305", "duplicate-argument", _E,
         "The same argument is given twice, by position and keyword or twice by keyword.",
         "conv2d(64, 3, out_channels=32)"),
    Code("E306", "wrong-arity", _E,
         "A merge op gets fewer than two inputs, or a single-input op gets several.",
         "add(x)"),
    Code("E401", "spatial-collapse", _E,
         "A window does not fit: the kernel is larger than the padded input, so the "
         "output would have zero or negative size.",
         "input x: [3, 3, 3]  x -> conv2d(8, 5)"),
    Code("E402", "channel-mismatch", _E,
         "A declared in_channels, num_features, in_features or normalized_shape "
         "disagrees with the incoming tensor.",
         "x -> conv2d(64, 3) -> conv2d(32, 3, in_channels=128)"),
    Code("E403", "groups-mismatch", _E,
         "groups does not divide the input channels (grouped convolution, channel shuffle).",
         "input x: [30, 8, 8]  x -> conv2d(64, 3, groups=4)"),
    Code("E404", "merge-shape-mismatch", _E,
         "add needs equal shapes; mul needs broadcastable shapes.",
         "add(x -> conv2d(64, 3, stride=2), x)"),
    Code("E405", "concat-mismatch", _E,
         "concat inputs disagree in a dimension other than the concatenation dim.",
         "concat(x, x -> maxpool2d(2))"),
    Code("E406", "needs-flatten", _E,
         "linear is applied to a feature map instead of a flat vector.",
         "x -> conv2d(8, 3) -> linear(10)"),
    Code("E407", "wrong-rank", _E,
         "An op gets a tensor of the wrong rank (conv2d on [C, L], bilinear on 1-d).",
         "input x: [3, 100]  x -> conv2d(8, 3)"),
    Code("E408", "invalid-dim", _E,
         "A dim argument (concat, softmax, flatten) or per-dim list does not fit the input's rank.",
         "x -> softmax(dim=5)"),
    Code("E409", "unknown-shape", _E,
         "A compile-time expression reads the shape of a tensor whose shape is unknown because of a "
         "shape error upstream (reported once, at the first such use; the shape error is reported too).",
         "y = x -> conv2d(8, 99)  z = y -> conv2d(y.channels, 1)"),
    Code("E901", "limit-exceeded", _E,
         "A resource limit was reached: file size, bracket nesting, node count, repeat "
         "expansion, block or import nesting, number of imports, integer or dimension "
         "magnitude. Limits are set with archdsl.Limits.",
         "repeat 10_000_000 { relu }"),
    Code("E501", "expectation-failed", _E,
         "An 'expect' statement in the model does not hold: a budget is exceeded or "
         "an output has another shape.",
         "expect params <= 10M   # the model has 25.6M"),
    Code("E502", "budget-exceeded", _E,
         "A budget set in [tool.archdsl] of pyproject.toml is exceeded.",
         '[[tool.archdsl.budgets]]\nparams = "10M"'),
    Code("E601", "import-syntax-error", _E,
         "A file given to 'archdsl import' (Caffe prototxt, Darknet cfg) does not follow its format's syntax.",
         'layer { name: "conv1" type: "Convolution"    # the closing brace is missing'),
    Code("E602", "import-unknown-layer", _E,
         "A layer type (Caffe) or section (Darknet) that the importer does not know.",
         "[convolutionl]   # misspelt [convolutional]"),
    Code("E603", "import-unsupported", _E,
         "A known layer, or a setting of one, that archdsl has no op for (PReLU, Eltwise MAX, "
         "a Scale layer on its own, Darknet's reorg).",
         'layer { name: "relu1" type: "PReLU" bottom: "conv1" top: "conv1" }'),
    Code("E604", "import-missing-input", _E,
         "A layer reads a blob no earlier layer wrote (Caffe bottom), or a layer index outside the "
         "network (Darknet route and shortcut).",
         "[route]\nlayers = -40   # only 12 layers before it"),
    Code("E605", "import-invalid-value", _E,
         "A layer parameter is missing, has the wrong type, or is out of range (no num_output, "
         "a zero stride, input dimensions that are not positive).",
         'convolution_param { kernel_size: 3 }   # num_output is required'),
    Code("E606", "import-invalid-weights", _E,
         "A weights file does not fit the network: a bad header, too few or too many numbers.",
         "yolov3.weights given with yolov3-tiny.cfg"),
    Code("E701", "export-unsupported", _E,
         "An op, or these arguments of it, has no lowering to the chosen export target "
         "(archdsl export --to onnx); the message names the op and why.",
         'pad(1, mode="circular") exported with --opset 18 (ONNX Pad mode wrap needs 19)'),
    Code("W101", "unused-value", _W,
         "A value is computed but never used: a named value that is not an output, or a "
         "chain whose result is dropped (a dead branch).",
         "unused = x -> conv2d(8, 3)",
         "Dead branches cost nothing at run time in most frameworks but are almost always a "
         "wiring mistake: the branch was meant to be merged or returned."),
    Code("W201", "dropped-pixels", _W,
         "A strided window never covers the last rows, columns or samples of its input: "
         "(I + 2P - K) mod S leaves real input positions unread, at least 2% of the axis.",
         "input x: [3, 32, 32]  x -> conv2d(8, 4, stride=3)   # the last row is never read",
         "The output silently ignores part of the image, which shifts features towards the "
         "top-left and breaks the symmetry that augmentation and skip connections assume. "
         "Pick padding, kernel or input size so that (I + 2P - D(K-1) - 1) is a multiple of S. "
         "One row of 224 (SqueezeNet 1.0's stem) is the price of a stride and is not reported."),
    Code("W202", "stride-exceeds-kernel", _W,
         "A convolution or pooling window's stride is larger than its (dilated) kernel, so "
         "pixels between windows are never read; a 1x1 strided projection on a shortcut "
         "(ResNet's downsample) is exempt.",
         "x -> maxpool2d(2, stride=3)",
         "Skipped pixels are information thrown away before any layer can use it; usually the "
         "kernel should be at least the stride. A 1x1 strided projection that is added to (or "
         "concatenated with) a branch reading every pixel loses nothing: that is ResNet's and "
         "RegNet's design, and the rule stays silent on it."),
    Code("W203", "bias-before-batchnorm", _W,
         "A convolution or linear layer with a bias feeds straight into batch normalisation, "
         "which subtracts the mean and so cancels the bias; one warning per model, naming the "
         "layers and the parameters wasted.",
         "x -> conv2d(64, 3) -> batchnorm2d   # write conv2d(64, 3, bias=false)",
         "The bias parameters are trained but have no effect: wasted parameters and memory. "
         "Set bias=false on the layer before a batchnorm."),
    Code("W204", "double-activation", _W,
         "Two activation functions in a row.",
         "x -> relu -> relu",
         "Stacked activations are either redundant (relu after relu) or distort each other; "
         "it is usually a copy-paste mistake."),
    Code("W205", "dropout-before-batchnorm", _W,
         "Dropout feeds batch normalisation.",
         "x -> dropout(0.5) -> batchnorm1d",
         "Dropout changes the variance between training and inference, so the running "
         "statistics batchnorm learns in training do not match inference (Li et al., "
         "'Understanding the Disharmony between Dropout and Batch Normalization', CVPR 2019). "
         "Put dropout after the normalisation."),
    Code("W206", "activation-after-softmax", _W,
         "An activation or another softmax follows a softmax.",
         "x -> linear(10) -> softmax -> relu",
         "Softmax produces probabilities; a further activation squashes them into something "
         "that is no longer a distribution, and loss functions that expect logits get "
         "probabilities twice transformed."),
    Code("W207", "even-kernel-same-padding", _W,
         'padding="same" with an even (dilated) kernel pads one side more than the other.',
         'x -> conv2d(16, 4, padding="same")',
         "The asymmetric padding shifts the feature map by half a pixel at every such layer, "
         "which accumulates through a network and misaligns skip connections."),
    Code("W208", "collapsed-spatial-map", _W,
         "A spatial convolution or pooling runs on a map that is already 1x1 (or 1 long).",
         "... -> global_avgpool -> conv2d(64, 3, padding=1)",
         "On a 1x1 map only the centre tap of the kernel sees data; the rest of the weights "
         "multiply padding. Use a 1x1 convolution or linear layer, or keep more resolution."),
    Code("W209", "misaligned-merge", _W,
         "Branches merged by add or concat sample the input at different strides or "
         "different centres, so equal positions do not correspond.",
         "add(x -> conv2d(8, 3, stride=2, padding=1), x -> conv2d(8, 2, stride=2))",
         "A misaligned skip connection adds features from different image locations; the "
         "network can still train but learns a shifted, blurred combination. Match the "
         "strides and paddings of the branches. A branch that was upsampled (FPN, U-Net, "
         "YOLO's route) is only aligned to within its coarse jump; centres that differ by less "
         "are the upsampling's rounding and are not reported."),
    Code("I301", "limited-receptive-field", _I,
         "A model output's receptive field is smaller than 90% of the input: no output can see "
         "the whole image. Shown with --infos.",
         "a few 3x3 convs on 224x224, then flatten -> linear",
         "For classification the decision should depend on the whole image; add depth, "
         "strides, dilation or global pooling. (Dense prediction may want this.)"),
    Code("I302", "dominant-layer", _I,
         "In a model of at least 8 convolutions and linear layers, one layer holds more than "
         "half of the trainable parameters. Shown with --infos.",
         "VGG-16: classifier.0 holds 102.8M of 138.4M",
         "Such a layer dominates memory and overfitting risk (AlexNet's and VGG's first fully "
         "connected layers); global pooling before the classifier usually removes it."),
)

BY_CODE: dict[str, Code] = {c.code: c for c in CODES}


def lookup(code: str) -> Code:
    return BY_CODE[code]


def markdown() -> str:
    """docs/rules.md, generated from the table above."""
    lines = [
        "# Diagnostics and lint rules",
        "",
        "Generated by `python -m archdsl rules --markdown`; do not edit by hand.",
        "Errors (E) come from parsing, elaboration and shape inference and cannot be",
        "suppressed. Warnings (W) and information (I) can be selected, ignored or",
        "re-graded in `[tool.archdsl]` and suppressed inline with",
        "`# archdsl: ignore[CODE]` (see docs/ci.md). Information is counted but shown only",
        "with `archdsl check --infos` (or `--select I...`). `archdsl rules CODE` prints one",
        "section of this page.",
        "",
        "| code | name | severity | what |",
        "|---|---|---|---|",
    ]
    lines += [f"| [{c.code}](#{c.code.lower()}) | `{c.name}` | {c.severity.value} | {c.summary} |" for c in CODES]
    lines.append("")
    for c in CODES:
        lines += _section(c)
    return "\n".join(lines)


def _section(c: Code) -> list[str]:
    lines = [f"## {c.code}", "", f"`{c.name}`, {c.severity.value}.", "", f"**What it does.** {c.summary}", ""]
    if c.rationale:
        lines += [f"**Why.** {c.rationale}", ""]
    if c.example:
        lines += ["**Example.**", "", "```", c.example, "```", ""]
    return lines


def describe(c: Code) -> str:
    """``archdsl rules CODE``: the code's section of docs/rules.md."""
    return "\n".join(_section(c))
