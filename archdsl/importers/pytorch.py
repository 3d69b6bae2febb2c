"""A PyTorch ``nn.Module`` -> :class:`Network` (and its weights), through torch.fx.

``archdsl import torchvision.models:resnet18 -o r18.cnn`` imports the module
``torchvision.models`` (which runs its code, as any import does), calls
``resnet18()``, traces the result with ``torch.fx.symbolic_trace`` (in eval
mode) and maps every node of the graph to an archdsl op.  The mapping is the
inverse of the ops' ``to_torch`` lowerings (``archdsl/ops/*.py``), written
as tables in one place below: which modules, functions and methods are
which op, and how their arguments become the op's.

The figures written as ``expect`` lines come from PyTorch, not from
archdsl's ops: every value's shape from the module's own forward on a zero
input (``torch.fx.passes.shape_prop``), the parameters from the modules'
tensors (``p.numel()``), the multiply-adds of convolutions and linear layers
from their attributes and those shapes.  A node calling a module is
labelled with the module's path (``layer1.0.conv1``), so the state_dict keys
of the written model are the module's own, and ``--weights`` writes the
module's state_dict under them.

torch is imported only here, and only when a PyTorch model is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import operator
import re
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic
from ..diagnostics.model import DiagnosticError
from ..ops import OPS
from ..ops.base import OpSpec
from ..source import SourceFile, Span
from .writer import Layer, Network, legal_name, legal_path

INSTALL_HINT = "pip install 'archdsl[torch]'"
_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_MODULE_SPEC = re.compile(rf"(?P<module>{_IDENTIFIERS}):(?P<callable>{_IDENTIFIERS})")
_FILE_SPEC = re.compile(rf"(?P<file>.+\.py):(?P<callable>{_IDENTIFIERS})")


class TorchUnavailable(ImportError):
    """torch is not installed (a usage problem: the optional extra is missing)."""


class SpecError(ValueError):
    """The source is not ``module.path:callable`` or ``file.py:callable``."""


def require_torch() -> Any:
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:
        raise TorchUnavailable(f"importing a PyTorch model needs torch: {INSTALL_HINT}") from None
    return torch


def is_torch_spec(text: str) -> bool:
    """Whether ``text`` reads as a PyTorch source (``module.path:callable``
    or ``path/to/file.py:callable``) rather than a file name."""
    return bool(_MODULE_SPEC.fullmatch(text) or _FILE_SPEC.fullmatch(text))


@dataclass(frozen=True)
class Spec:
    module: str | None      # a dotted module path, or
    file: Path | None       # a .py file
    callable: str           # a dotted attribute path in it

    @property
    def name(self) -> str:
        return self.callable.rpartition(".")[2]


def parse_spec(text: str) -> Spec:
    match = _MODULE_SPEC.fullmatch(text)
    if match:
        return Spec(match["module"], None, match["callable"])
    match = _FILE_SPEC.fullmatch(text)
    if match:
        return Spec(None, Path(match["file"]), match["callable"])
    raise SpecError(f"{text}: a PyTorch model is named as module.path:callable (torchvision.models:resnet18) "
                    "or path/to/file.py:callable")


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` JSON: an object whose members are the callable's keyword arguments."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(f"--kwargs: not JSON: {error}") from None
    if not isinstance(value, dict):
        raise SpecError("--kwargs: give a JSON object of keyword arguments, such as '{\"num_classes\": 10}'")
    return value


# ---------------------------------------------------------------- locations


def _user_frame(frames: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """The innermost frame in the user's code: not torch's, not archdsl's,
    not the import machinery's."""
    torch_dir = str(Path(sys.modules["torch"].__file__ or "").parent) if "torch" in sys.modules else "\0"
    archdsl_dir = str(Path(__file__).resolve().parent.parent)
    found = None
    for frame in frames:
        name = frame.filename
        if name.startswith((torch_dir, archdsl_dir)) or name.startswith("<frozen"):
            continue
        found = frame
    return found


def _span(frame: traceback.FrameSummary | None) -> Span | None:
    if frame is None or frame.lineno is None:
        return None
    width = len(frame.line or "") + 1
    return Span(frame.filename, frame.lineno, 1, frame.lineno, max(width, 2))


def _error_span(error: BaseException) -> Span | None:
    return _span(_user_frame(traceback.extract_tb(error.__traceback__)))


def _trace_span(stack_trace: str | None) -> Span | None:
    """The user's line from an fx node's recorded stack trace."""
    frames = [traceback.FrameSummary(file, int(line), function, line=(code or "").strip() or None)
              for file, line, function, code in re.findall(r'File "([^"]*)", line (\d+), in (\S+)\n(?:    (.*))?',
                                                           stack_trace or "")]
    return _span(_user_frame(frames))


def sources_for(diagnostics: list[Diagnostic]) -> dict[str, SourceFile]:
    """The Python files the diagnostics point at, for their snippets."""
    sources: dict[str, SourceFile] = {}
    for d in diagnostics:
        if d.span is not None and d.span.file not in sources:
            try:
                sources[d.span.file] = SourceFile(d.span.file, Path(d.span.file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
    return sources


def fail(code: str, message: str, span: Span | None = None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError([Diagnostic.error(code, message, span, hint=hint)])


# ---------------------------------------------------------------- loading


def _import(spec: Spec, directory: Path) -> Any:
    if spec.file is not None:
        name = f"archdsl_import_{uuid.uuid4().hex}"
        loader_spec = importlib.util.spec_from_file_location(name, spec.file)
        if loader_spec is None or loader_spec.loader is None:
            raise fail("E601", f"cannot load {spec.file} as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    assert spec.module is not None
    sys.path.insert(0, str(directory))  # as ``python -m``: modules in the current directory are found
    try:
        return importlib.import_module(spec.module)
    finally:
        sys.path.remove(str(directory))


def load_module(spec: Spec, kwargs: dict[str, Any], directory: Path) -> Any:
    """Imports the module (running its code), calls the callable with
    ``kwargs`` and returns the ``nn.Module`` it gives; E601 for any failure."""
    torch = require_torch()
    where = str(spec.file) if spec.file is not None else spec.module
    try:
        holder = _import(spec, directory)
    except (Exception, SystemExit) as error:
        raise fail("E601", f"cannot import {where}: {type(error).__name__}: {error}", _error_span(error),
                   "the module must be importable from the current directory or sys.path") from None
    target: Any = holder
    for part in spec.callable.split("."):
        if not hasattr(target, part):
            raise fail("E601", f"{where} has no attribute {spec.callable}")
        target = getattr(target, part)
    if not callable(target):
        raise fail("E601", f"{where}:{spec.callable} is not callable (a class or a function building the model)")
    try:
        module = target(**kwargs)
    except (Exception, SystemExit) as error:
        raise fail("E601", f"calling {where}:{spec.callable}({_show_kwargs(kwargs)}) raised "
                   f"{type(error).__name__}: {error}", _error_span(error)) from None
    if not isinstance(module, torch.nn.Module):
        raise fail("E601", f"{where}:{spec.callable}() returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def _show_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


# ---------------------------------------------------------------- op text

_CLASSES: dict[str, type[OpSpec]] = {op.kind(): op for op in OPS}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):  # (8) is 8 in .cnn: a one-element tuple is written as its element
        return _value_text(value[0]) if len(value) == 1 else "(" + ", ".join(_value_text(v) for v in value) + ")"
    raise TypeError(f"cannot write {value!r}")


def _plain(value: Any) -> Any:
    """Torch's argument values as archdsl's: lists as tuples, one-element
    per-dimension tuples as ints, torch.Size as a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


class Unsupported(Exception):
    """A node archdsl has no op for (or not with these arguments)."""


def op_text(kind: str, **arguments: Any) -> str:
    """The .cnn call of op ``kind`` with ``arguments`` (validated by the
    op's own class): arguments equal to the op's defaults left out, a
    uniform per-dimension tuple written as one number."""
    cls = _CLASSES[kind]
    values = {name: _plain(value) for name, value in arguments.items()}
    for name in cls.per_dimension:
        value = values.get(name)
        if isinstance(value, tuple) and value and all(v == value[0] for v in value):
            values[name] = value[0]
    try:
        spec = cls(**values)
        spec.check()
    except Exception as error:  # pydantic's ValidationError or the op's own ArgumentError
        raise Unsupported(f"archdsl's {kind} does not take these arguments: {error}") from None
    written = {}
    for name, info in cls.model_fields.items():
        if name == "op" or name not in values:
            continue
        value = getattr(spec, name)
        if not info.is_required() and type(value) is type(info.default) and value == info.default:
            continue
        written[name] = value
    parts, positional = [], True
    for i, name in enumerate(cls.positional):
        required = cls.model_fields[name].is_required()
        if not positional or name not in written or (i > 0 and not required):
            break
        parts.append(_value_text(written.pop(name)))
    parts += [f"{name}={_value_text(value)}" for name, value in written.items()]
    return f"{kind}({', '.join(parts)})" if parts else kind


# ---------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Elementwise:
    """An op applied to one tensor, with arguments of the same names in
    archdsl and PyTorch (``negative_slope``, ``approximate``, ``dim``...)."""

    op: str
    modules: tuple[str, ...]            # nn classes, by name
    functions: tuple[str, ...]          # ``F.relu``, ``torch.relu``
    methods: tuple[str, ...] = ()       # ``x.relu()``
    arguments: tuple[str, ...] = ()     # after the input, in the function's order

#: The inverse of the activations' ``to_torch`` (archdsl/ops/activation.py).
ELEMENTWISE = (
    Elementwise("relu", ("ReLU",), ("F.relu", "torch.relu"), ("relu",)),
    Elementwise("relu6", ("ReLU6",), ("F.relu6",)),
    Elementwise("leaky_relu", ("LeakyReLU",), ("F.leaky_relu",), arguments=("negative_slope",)),
    Elementwise("sigmoid", ("Sigmoid",), ("torch.sigmoid", "F.sigmoid"), ("sigmoid",)),
    Elementwise("tanh", ("Tanh",), ("torch.tanh", "F.tanh"), ("tanh",)),
    Elementwise("gelu", ("GELU",), ("F.gelu",), arguments=("approximate",)),
    Elementwise("silu", ("SiLU",), ("F.silu",)),
    Elementwise("mish", ("Mish",), ("F.mish",)),
    Elementwise("hardswish", ("Hardswish",), ("F.hardswish",)),
    Elementwise("hardsigmoid", ("Hardsigmoid",), ("F.hardsigmoid",)),
    Elementwise("elu", ("ELU",), ("F.elu",), arguments=("alpha",)),
    Elementwise("selu", ("SELU",), ("F.selu", "torch.selu")),
    Elementwise("softplus", ("Softplus",), ("F.softplus",), arguments=("beta", "threshold")),
    Elementwise("softmax", ("Softmax",), ("F.softmax", "torch.softmax"), ("softmax",), arguments=("dim",)),
    Elementwise("dropout", ("Dropout",), ("F.dropout",), arguments=("p",)),
    Elementwise("dropout2d", ("Dropout2d",), ("F.dropout2d",), arguments=("p",)),
)

#: Functions whose positional parameters (after the input) the table binds, by name.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "F.max_pool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "F.avg_pool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "F.adaptive_avg_pool1d": ("output_size",), "F.adaptive_max_pool1d": ("output_size", "return_indices"),
    "torch.flatten": ("start_dim", "end_dim"), "torch.narrow": ("dim", "start", "length"),
    "torch.permute": ("dims",), "torch.cat": ("dim",), "torch.concat": ("dim",),
    "torch.add": ("other", "alpha"), "torch.sub": ("other", "alpha"), "torch.mul": ("other",),
    "torch.mean": ("dim", "keepdim"),
    "F.interpolate": ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"),
    "F.pad": ("pad", "mode", "value"), "F.pixel_shuffle": ("upscale_factor",),
    "F.pixel_unshuffle": ("downscale_factor",), "F.local_response_norm": ("size", "alpha", "beta", "k"),
    "F.layer_norm": ("normalized_shape", "weight", "bias", "eps"),
    "F.group_norm": ("num_groups", "weight", "bias", "eps"),
    "F.instance_norm": ("running_mean", "running_var", "weight", "bias", "use_input_stats", "momentum", "eps"),
    "F.batch_norm": ("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    **{name: elementwise.arguments for elementwise in ELEMENTWISE for name in elementwise.functions},
}
SIGNATURES.update({f"F.{pool}{n}d": SIGNATURES[f"F.{pool}1d"] for n in (2, 3)
                   for pool in ("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool")})
#: Methods: ``x.flatten(1)`` binds as ``torch.flatten(x, 1)``.
METHOD_SIGNATURES: dict[str, tuple[str, ...]] = {
    "flatten": ("start_dim", "end_dim"), "narrow": ("dim", "start", "length"), "mean": ("dim", "keepdim"),
    "add": ("other", "alpha"), "sub": ("other", "alpha"), "mul": ("other",), "softmax": ("dim",),
}


def _functions(torch: Any) -> dict[Any, str]:
    """The function objects fx records as targets, by the names the tables use."""
    functional = torch.nn.functional
    found: dict[Any, str] = {operator.add: "operator.add", operator.mul: "operator.mul",
                             operator.getitem: "operator.getitem", operator.iadd: "operator.add",
                             operator.imul: "operator.mul",
                             operator.sub: "operator.sub", operator.isub: "operator.sub"}
    for name in [*SIGNATURES, "torch.sigmoid", "torch.tanh"]:
        holder, _, attribute = name.partition(".")
        obj = getattr(functional if holder == "F" else torch, attribute, None)
        if obj is not None:
            found.setdefault(obj, name)
    return found


# ---------------------------------------------------------------- the importer


@dataclass
class TorchImport:
    """The imported network and its weights (npz keys: state_dict keys)."""

    net: Network
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class _Importer:
    def __init__(self, torch: Any, root: Any, graph: Any, name: str, source: str) -> None:
        self.torch = torch
        self.root = root
        self.graph = graph
        self.net = Network(name=legal_name(name, "Net"), source=source)
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[Any, str] = {}         # fx node -> producer label
        self.done: set[Any] = set()               # nodes taken by a pattern
        self.used_modules: dict[str, str] = {}    # module path -> label (a module with weights is used once)
        self.scope_counts: dict[tuple[str, str], int] = {}  # (module path, function) -> calls labelled so far
        self.names = _functions(torch)
        self.elementwise_modules = {m: e for e in ELEMENTWISE for m in e.modules}
        self.elementwise_functions = {f: e for e in ELEMENTWISE for f in e.functions}
        self.elementwise_methods = {m: e for e in ELEMENTWISE for m in e.methods}
        self.node: Any = None

    # ------------------------------------------------------------ helpers

    def where(self, node: Any = None) -> str:
        node = node if node is not None else self.node
        if node.op == "call_module":
            what = f"{type(self.root.get_submodule(node.target)).__name__} '{node.target}'"
        elif node.op == "call_function":
            what = str(self.names.get(node.target) or getattr(node.target, "__name__", node.target))
        else:
            what = str(node.target)
        return f"fx node '{node.name}' ({node.op} {what})"

    def fail(self, code: str, message: str, hint: str | None = None, node: Any = None) -> DiagnosticError:
        node = node if node is not None else self.node
        return fail(code, f"{self.where(node)}: {message}", _trace_span(node.stack_trace), hint)

    def shape(self, node: Any) -> tuple[int, ...]:
        shape = node.meta.get(SHAPE)
        if shape is None:
            raise self.fail("E603", f"'{node.name}' is not a tensor archdsl can follow")
        return tuple(shape)

    def is_tensor(self, node: Any) -> bool:
        return node.meta.get(SHAPE) is not None

    def value(self, node: Any) -> str:
        fx = self.torch.fx
        if isinstance(node, fx.Node) and node in self.values:
            return self.values[node]
        if isinstance(node, fx.Node):
            raise self.fail("E603", f"it reads '{node.name}' ({node.op} {node.target}), which is not a tensor "
                            "computed by an op archdsl reads")
        raise self.fail("E603", f"it reads the constant {node!r}; archdsl's ops read values from the network")

    def constant(self, value: Any, what: str) -> Any:
        fx = self.torch.fx
        if isinstance(value, fx.Node) or (isinstance(value, (list, tuple))
                                          and any(isinstance(v, fx.Node) for v in value)):
            raise self.fail("E603", f"its {what} is computed at run time; the importer needs a constant")
        return value

    def bind(self, names: tuple[str, ...], *, skip: int = 1) -> dict[str, Any]:
        """The node's arguments after the first ``skip`` by name."""
        args = self.node.args[skip:]
        bound = dict(zip(names, args))
        bound.update({k: v for k, v in self.node.kwargs.items() if k not in ("input", "self")})
        return bound

    def users(self, node: Any) -> list[Any]:
        return list(node.users)

    def single_user(self, node: Any) -> Any | None:
        users = self.users(node)
        return users[0] if len(users) == 1 and not self.is_output(node) else None

    def is_output(self, node: Any) -> bool:
        return any(user.op == "output" for user in node.users)

    def emit(self, label: str, op: str, inputs: list[str], *, node: Any = None, params: int = 0, macs: int = 0,
             merge_args: str = "", note: str = "") -> str:
        node = node if node is not None else self.node
        layer = Layer(label, op, tuple(inputs), self.shape(node)[1:], merge_args=merge_args, params=params,
                      macs=macs, note=note, kind=str(node.target))
        self.net.add(layer)
        self.values[node] = label
        return label

    def label(self, raw: str, fallback: str = "layer") -> str:
        return self.net.fresh_path(raw, fallback)

    def function_label(self, node: Any, fallback: str, suffix: str = "") -> str:
        """The label of a function or method call: inside a module's forward,
        the module's path and the function's name numbered per module
        (``layer1.0.add``, ``layer1.0.relu_1``), so that every instance of a
        block labels its calls alike and the writer can find the block;
        at the top level, fx's own node name."""
        stack = node.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack)) if stack else ""
        if not isinstance(scope, str) or not legal_path(scope):
            return self.net.fresh_label(node.name + suffix, fallback)
        name = legal_name(getattr(node.target, "__name__", str(node.target)), fallback) + suffix
        count = self.scope_counts.setdefault((scope, name), 0)
        self.scope_counts[(scope, name)] = count + 1
        return self.label(f"{scope}.{name}" + (f"_{count}" if count else ""), fallback)

    def simple(self, text: str) -> None:
        """A one-input op with no weights, labelled with the node's name."""
        x = self.value(self.node.args[0] if self.node.args else self.node.kwargs.get("input"))
        self.emit(self.function_label(self.node, "op"), text, [x])

    def alias(self, source: Any) -> None:
        self.values[self.node] = self.value(source)

    # ------------------------------------------------------------ reading

    def run(self, shapes: list[tuple[int, ...]]) -> TorchImport:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        for node, shape in zip(placeholders, shapes):
            self.values[node] = self.net.add_input(node.name, shape)
        for node in self.graph.nodes:
            self.node = node
            if node in self.done or node.op in ("placeholder", "get_attr"):
                continue
            if node.op == "output":
                self.read_outputs(node.args[0])
            elif node.op != "call_module" and not self.is_tensor(node):
                continue  # x.size(0), a shape tuple: read by the ops that use them (view), never a value
            else:
                self.read(node)
        return TorchImport(self.net, self.arrays)

    def read(self, node: Any) -> None:
        try:
            if node.op == "call_module":
                self.read_module(node)
            elif node.op == "call_function":
                self.read_function(node)
            else:
                self.read_method(node)
        except Unsupported as error:
            raise self.fail("E603", str(error)) from None

    def read_outputs(self, result: Any) -> None:
        if isinstance(result, dict):
            items = [(str(key), value) for key, value in result.items()]
        elif isinstance(result, (list, tuple)):
            items = [(f"out{i}", value) for i, value in enumerate(result)]
        else:
            items = [("out", result)]
        taken = set(self.net.inputs) | set(self.net.variables().values())
        for raw, node in items:
            label = self.value(node)
            if label in self.net.inputs:
                raise self.fail("E603", f"output '{raw}' is the input itself")
            name = legal_name(raw, "output")
            base, n = name, 2
            while name in taken and name != label:
                name, n = f"{base}_{n}", n + 1
            taken.add(name)
            self.net.outputs.append((name, label))

    # ------------------------------------------------------------ modules

    def read_module(self, node: Any) -> None:
        module = self.root.get_submodule(node.target)
        kind = type(module).__name__
        weights = {k: v for k, v in module.state_dict().items()}
        if weights and node.target in self.used_modules:
            raise self.fail("E603", f"the module '{node.target}' is called a second time: archdsl has no "
                            "weights shared between nodes")
        handler = MODULE_HANDLERS.get(kind)
        elementwise = self.elementwise_modules.get(kind)
        if handler is None and elementwise is None:
            raise self.fail("E603", f"archdsl has no op for {kind}",
                            "docs/import.md lists the modules, functions and methods the importer reads")
        if type(module).__module__.split(".")[:2] != ["torch", "nn"]:
            raise self.fail("E603", f"{kind} is not torch.nn's own {kind}")
        if elementwise is not None:
            text: str | None = op_text(elementwise.op, **{a: getattr(module, a) for a in elementwise.arguments})
        else:
            assert handler is not None
            text = handler(self, module)
        if text is None:  # Identity and the like: the value passes through
            self.alias(node.args[0])
            return
        x = self.value(node.args[0])
        label = self.label(node.target, legal_name(kind.lower()))
        note = f"(module {node.target})" if label != node.target else ""
        params = sum(p.numel() for p in module.parameters())
        self.emit(label, text, [x], params=params, macs=self.module_macs(module, node), note=note)
        self.used_modules[node.target] = label
        for key, tensor in weights.items():
            self.arrays[f"{label}.{key}"] = tensor.detach().cpu().numpy()

    def module_macs(self, module: Any, node: Any) -> int:
        """Multiply-adds from the module's own attributes and PyTorch's shapes."""
        nn = self.torch.nn
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return math.prod(self.shape(node)[1:]) * (module.in_channels // module.groups) \
                * math.prod(module.kernel_size)
        if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            return math.prod(self.shape(node.args[0])[1:]) * (module.out_channels // module.groups) \
                * math.prod(module.kernel_size)
        if isinstance(module, nn.Linear):
            return module.in_features * module.out_features * math.prod(self.shape(node)[1:-1])
        return 0

    # ------------------------------------------------------------ functions and methods

    def read_function(self, node: Any) -> None:
        name = self.names.get(node.target)
        elementwise = self.elementwise_functions.get(name or "")
        if elementwise is not None:
            bound = self.bind(SIGNATURES[name or ""])
            arguments = {a: self.constant(bound[a], a) for a in elementwise.arguments if bound.get(a) is not None}
            self.simple(op_text(elementwise.op, **arguments))
            return
        handler = FUNCTION_HANDLERS.get(name or "")
        if handler is None:
            raise self.fail("E603", "archdsl has no op for this function",
                            "docs/import.md lists the modules, functions and methods the importer reads")
        handler(self, self.bind(SIGNATURES.get(name or "", ())))

    def read_method(self, node: Any) -> None:
        name = node.target
        elementwise = self.elementwise_methods.get(name)
        if elementwise is not None:
            bound = self.bind(elementwise.arguments)
            self.simple(op_text(elementwise.op, **{a: self.constant(bound[a], a) for a in elementwise.arguments
                                                   if bound.get(a) is not None}))
            return
        handler = METHOD_HANDLERS.get(name)
        if handler is None:
            raise self.fail("E603", f"archdsl has no op for the tensor method {name}",
                            "docs/import.md lists the modules, functions and methods the importer reads")
        handler(self, self.bind(METHOD_SIGNATURES.get(name, ())))


# ---------------------------------------------------------------- module handlers

ModuleHandler = Callable[[_Importer, Any], "str | None"]


def _conv(self: _Importer, m: Any) -> str:
    padding = m.padding
    if m.padding_mode != "zeros":
        if isinstance(padding, str):
            raise Unsupported(f"padding '{padding}' with padding_mode '{m.padding_mode}'")
        mode = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[m.padding_mode]
        flat = tuple(p for pad in reversed(padding) for p in (pad, pad))
        x = self.value(self.node.args[0])
        pad_label = self.net.fresh_label(f"{self.node.target}_pad")
        self.emit(pad_label, op_text("pad", padding=flat, mode=mode), [x], node=self.node.args[0])
        self.values[self.node.args[0]] = pad_label
        padding = 0
    return op_text(f"conv{len(m.kernel_size)}d", out_channels=m.out_channels, kernel_size=m.kernel_size,
                   stride=m.stride, padding=padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None)


def _conv_transpose(self: _Importer, m: Any) -> str:
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode '{m.padding_mode}' (PyTorch allows only zeros)")
    return op_text(f"conv_transpose{len(m.kernel_size)}d", out_channels=m.out_channels, kernel_size=m.kernel_size,
                   stride=m.stride, padding=m.padding, output_padding=m.output_padding, dilation=m.dilation,
                   groups=m.groups, bias=m.bias is not None)


def _batch_norm(self: _Importer, m: Any) -> str:
    if m.momentum is None:
        raise Unsupported("momentum=None (a cumulative average): archdsl's batch norms take a momentum")
    rank = type(m).__name__[-2]
    return op_text(f"batchnorm{rank}d", eps=m.eps, momentum=m.momentum, affine=m.affine,
                   track_running_stats=m.track_running_stats)


def _instance_norm(self: _Importer, m: Any) -> str:
    rank = type(m).__name__[-2]
    return op_text(f"instancenorm{rank}d", eps=m.eps, momentum=m.momentum, affine=m.affine,
                   track_running_stats=m.track_running_stats)


def _layer_norm(self: _Importer, m: Any) -> str:
    return op_text("layernorm", normalized_shape=m.normalized_shape, eps=m.eps,
                   elementwise_affine=m.elementwise_affine, bias=getattr(m, "bias", None) is not None)


def _linear(self: _Importer, m: Any) -> str:
    """On a map (``[H, W, C]``) archdsl's linear states ``in_features``."""
    on_map = len(self.shape(self.node.args[0])) > 2
    return op_text("linear", out_features=m.out_features, bias=m.bias is not None,
                   in_features=m.in_features if on_map else None)


def _pool(self: _Importer, kind: str, arguments: dict[str, Any]) -> str:
    if arguments.pop("return_indices", False):
        raise Unsupported("return_indices=True (archdsl's pools return the values only)")
    if arguments.pop("divisor_override", None) is not None:
        raise Unsupported("divisor_override")
    rank = len(self.shape(self.node.args[0] if self.node.args else self.node.kwargs["input"])) - 2
    if arguments.get("stride") in (None, ()) or _plain(arguments.get("stride")) == _plain(arguments["kernel_size"]):
        arguments.pop("stride", None)
    return op_text(f"{kind}{rank}d", **arguments)


def _max_pool_module(self: _Importer, m: Any) -> str:
    return _pool(self, "maxpool", dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                       dilation=m.dilation, ceil_mode=m.ceil_mode, return_indices=m.return_indices))


def _avg_pool_module(self: _Importer, m: Any) -> str:
    return _pool(self, "avgpool", dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                       ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad,
                                       divisor_override=m.divisor_override))


def _adaptive(self: _Importer, kind: str, output_size: Any) -> str:
    """``adaptive_avgpool(1)`` is ``global_avgpool`` (what archdsl's lowering of that writes)."""
    shape = self.shape(self.node)
    sizes = tuple(shape[2:])
    if all(s == 1 for s in sizes):
        return "global_avgpool" if kind == "avg" else "global_maxpool"
    del output_size  # None entries keep the input's size: PyTorch's output shape says what they are
    return op_text(f"adaptive_{kind}pool{len(sizes)}d", output_size=sizes)


def _flatten_module(self: _Importer, m: Any) -> str:
    return _flatten_text(self, m.start_dim, m.end_dim)


def _flatten_text(self: _Importer, start: int, end: int) -> str:
    rank = len(self.shape(self.node.args[0] if self.node.args else self.node.kwargs["input"]))
    if start % rank == 0:
        raise Unsupported("flattening the batch dimension into the features")
    return op_text("flatten", start_dim=start, end_dim=end)


def _upsample(self: _Importer, arguments: dict[str, Any]) -> str:
    if arguments.get("antialias") or arguments.get("recompute_scale_factor"):
        raise Unsupported("antialias or recompute_scale_factor")
    size, scale = arguments.get("size"), arguments.get("scale_factor")
    mode = arguments.get("mode", "nearest")
    return op_text("upsample", **({"size": size} if size is not None else {"scale_factor": scale}), mode=mode,
                   **({"align_corners": arguments["align_corners"]}
                      if arguments.get("align_corners") is not None else {}))


def _pad_module(self: _Importer, m: Any) -> str:
    name = type(m).__name__
    mode = ("reflect" if name.startswith("Reflection") else "replicate" if name.startswith("Replication")
            else "circular" if name.startswith("Circular") else "constant")
    return op_text("pad", padding=tuple(m.padding), mode=mode, value=float(getattr(m, "value", 0.0)))


MODULE_HANDLERS: dict[str, ModuleHandler] = {
    **{f"Conv{n}d": _conv for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv_transpose for n in (1, 2, 3)},
    **{f"BatchNorm{n}d": _batch_norm for n in (1, 2, 3)},
    **{f"InstanceNorm{n}d": _instance_norm for n in (1, 2, 3)},
    **{f"MaxPool{n}d": _max_pool_module for n in (1, 2, 3)},
    **{f"AvgPool{n}d": _avg_pool_module for n in (1, 2, 3)},
    **{f"AdaptiveAvgPool{n}d": lambda self, m: _adaptive(self, "avg", m.output_size) for n in (1, 2, 3)},
    **{f"AdaptiveMaxPool{n}d": lambda self, m: _adaptive(self, "max", m.output_size) for n in (1, 2, 3)},
    **{f"{kind}Pad{n}d": _pad_module for n in (1, 2, 3)
       for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")},
    "LayerNorm": _layer_norm,
    "GroupNorm": lambda self, m: op_text("groupnorm", num_groups=m.num_groups, eps=m.eps, affine=m.affine),
    "LocalResponseNorm": lambda self, m: op_text("local_response_norm", size=m.size, alpha=float(m.alpha),
                                                 beta=float(m.beta), k=float(m.k)),
    "Linear": _linear,
    "PReLU": lambda self, m: op_text("prelu", num_parameters=m.num_parameters, init=float(m.init)),
    "Flatten": _flatten_module,
    "Upsample": lambda self, m: _upsample(self, {"size": m.size, "scale_factor": m.scale_factor, "mode": m.mode,
                                                 "align_corners": m.align_corners}),
    "PixelShuffle": lambda self, m: op_text("pixel_shuffle", upscale_factor=m.upscale_factor),
    "PixelUnshuffle": lambda self, m: op_text("pixel_unshuffle", downscale_factor=m.downscale_factor),
    "ChannelShuffle": lambda self, m: op_text("channel_shuffle", groups=m.groups),
    "Identity": lambda self, m: None,
}

# ---------------------------------------------------------------- function handlers

FunctionHandler = Callable[[_Importer, dict[str, Any]], None]


def _merge(op: str) -> FunctionHandler:
    """``a + b``, ``torch.add(a, b)``, ``a * b``: both operands computed
    tensors of one rank; ``x * p`` with a learnable tensor ``p`` is ``scale``."""
    def handler(self: _Importer, arguments: dict[str, Any]) -> None:
        node = self.node
        a, b = node.args[0], arguments.get("other", node.args[1] if len(node.args) > 1 else None)
        if arguments.get("alpha", 1) != 1:
            raise Unsupported(f"{op} with alpha other than 1")
        if op == "mul" and _scale(self, a, b):
            return
        inputs = [self.value(a), self.value(b)]
        if len(self.shape(a)) != len(self.shape(b)):
            raise Unsupported("operands of different ranks (archdsl broadcasts equal ranks only)")
        self.emit(self.function_label(node, op), op, inputs)
    return handler


def _scale(self: _Importer, a: Any, b: Any) -> bool:
    """``x * self.layer_scale``: archdsl's ``scale`` op, labelled with the parameter's path."""
    attribute, tensor = (b, a) if getattr(b, "op", None) == "get_attr" else (a, b)
    if getattr(attribute, "op", None) != "get_attr":
        return False
    parameter = self.root.get_parameter(attribute.target) if _is_parameter(self, attribute.target) else None
    if parameter is None:
        raise Unsupported(f"a product with the buffer or constant '{attribute.target}' (only a learnable tensor "
                          "is archdsl's scale)")
    shape = tuple(parameter.shape)
    if len(shape) != len(self.shape(tensor)) - 1:
        raise Unsupported(f"'{attribute.target}' {list(shape)} does not have the input's rank without the batch")
    x = self.value(tensor)
    label = self.label(attribute.target, "scale")
    self.emit(label, op_text("scale", shape=shape), [x], params=parameter.numel())
    self.arrays[label] = parameter.detach().cpu().numpy()
    return True


def _is_parameter(self: _Importer, target: str) -> bool:
    try:
        self.root.get_parameter(target)
    except AttributeError:
        return False
    return True


def _cat(self: _Importer, arguments: dict[str, Any]) -> None:
    tensors = self.node.args[0] if self.node.args else self.node.kwargs["tensors"]
    dim = int(self.constant(arguments.get("dim", 0), "dim"))
    rank = len(self.shape(self.node))
    if dim % rank == 0:
        raise Unsupported("concatenating along the batch")
    inputs = [self.value(t) for t in tensors]
    self.emit(self.function_label(self.node, "concat"), "concat", inputs, merge_args=f"dim={dim % rank}")


def _pool_function(kind: str) -> FunctionHandler:
    def handler(self: _Importer, arguments: dict[str, Any]) -> None:
        self.simple(_pool(self, kind, {k: self.constant(v, k) for k, v in arguments.items()}))
    return handler


def _adaptive_function(kind: str) -> FunctionHandler:
    def handler(self: _Importer, arguments: dict[str, Any]) -> None:
        if arguments.get("return_indices"):
            raise Unsupported("return_indices=True")
        self.simple(_adaptive(self, kind, arguments.get("output_size")))
    return handler


def _flatten_function(self: _Importer, arguments: dict[str, Any]) -> None:
    start, end = (int(self.constant(arguments.get(k, d), k)) for k, d in (("start_dim", 0), ("end_dim", -1)))
    self.simple(_flatten_text(self, start, end))


def _narrow(self: _Importer, arguments: dict[str, Any]) -> None:
    dim, start, length = (int(self.constant(arguments[k], k)) for k in ("dim", "start", "length"))
    rank = len(self.shape(self.node))
    size = self.shape(self.node.args[0])[dim % rank]
    self.simple(op_text("narrow", start=start % size if start < 0 else start, length=length, dim=dim % rank))


def _permute(self: _Importer, dims: tuple[int, ...]) -> None:
    rank = len(self.shape(self.node))
    dims = tuple(int(d) % rank for d in dims)
    if dims == tuple(range(rank)):
        self.alias(self.node.args[0])
        return
    self.simple(op_text("permute", dims=dims))


def _mean(self: _Importer, arguments: dict[str, Any]) -> None:
    """The mean over every spatial dim: ``global_avgpool`` (+ ``flatten`` without keepdim)."""
    source = self.node.args[0]
    rank = len(self.shape(source))
    dims = self.constant(arguments.get("dim"), "dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    if rank < 3 or sorted(d % rank for d in dims) != list(range(2, rank)):
        raise Unsupported("a mean other than over every spatial dimension")
    x = self.value(source)
    if arguments.get("keepdim"):
        self.simple("global_avgpool")
        return
    pooled = self.function_label(self.node, "pool", "_pool")
    self.net.add(Layer(pooled, "global_avgpool", (x,), (*self.shape(source)[1:2], *(1,) * (rank - 2)),
                       kind="mean"))
    self.emit(self.function_label(self.node, "mean"), "flatten", [pooled])


def _interpolate(self: _Importer, arguments: dict[str, Any]) -> None:
    self.simple(_upsample(self, {k: self.constant(v, k) for k, v in arguments.items()}))


def _pad_function(self: _Importer, arguments: dict[str, Any]) -> None:
    value = self.constant(arguments.get("value"), "value")
    self.simple(op_text("pad", padding=tuple(self.constant(arguments["pad"], "pad")),
                        mode=arguments.get("mode", "constant"), value=float(value or 0.0)))


def _getitem(self: _Importer, arguments: dict[str, Any]) -> None:
    """``x[:, a:b]``: a slice of one dim (step 1) is ``narrow``."""
    source, index = self.node.args
    if not self.is_tensor(source):
        raise Unsupported(f"it takes item {index!r} of '{source.name}', which is not a tensor (archdsl has no "
                          "op returning several tensors: chunk, split, unbind)")
    shape = self.shape(source)
    index = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, slice) for i in index) or len(index) > len(shape):
        raise Unsupported(f"indexing with {index!r} (only slices, as x[:, a:b])")
    cut = [d for d, s in enumerate(index) if s != slice(None)]
    if len(cut) != 1 or cut[0] == 0 or index[cut[0]].step not in (None, 1):
        raise Unsupported(f"indexing with {index!r} (one slice of one dim after the batch, step 1)")
    dim = cut[0]
    start, stop, _ = index[dim].indices(shape[dim])
    self.simple(op_text("narrow", start=start, length=max(stop - start, 0), dim=dim))


def _stateless_norm(kind: str) -> FunctionHandler:
    """``F.layer_norm`` and the other norms without weights or running
    statistics (the lowering of the ops without them); with tensors they
    would need a module to hold them (E603)."""
    def handler(self: _Importer, arguments: dict[str, Any]) -> None:
        held = [k for k in ("weight", "bias", "running_mean", "running_var") if arguments.get(k) is not None]
        if held:
            raise Unsupported(f"F.{kind.replace('norm', '_norm')} with {', '.join(held)} (archdsl reads a norm with "
                              "tensors from its nn module)")
        rank = len(self.shape(self.node)) - 2
        eps = {"eps": float(arguments["eps"])} if "eps" in arguments else {}
        if kind == "layernorm":
            shape = tuple(self.constant(arguments["normalized_shape"], "normalized_shape"))
            self.simple(op_text(kind, normalized_shape=shape, elementwise_affine=False, **eps))
        elif kind == "groupnorm":
            self.simple(op_text(kind, num_groups=int(self.constant(arguments["num_groups"], "num_groups")),
                                affine=False, **eps))
        elif kind == "batchnorm":
            if not arguments.get("training", False):
                raise Unsupported("F.batch_norm on running statistics it is not given")
            self.simple(op_text(f"batchnorm{rank}d", affine=False, track_running_stats=False,
                                momentum=float(arguments.get("momentum", 0.1)), **eps))
        else:
            self.simple(op_text(f"instancenorm{rank}d", **eps))
    return handler


FUNCTION_HANDLERS: dict[str, FunctionHandler] = {
    "operator.add": _merge("add"), "torch.add": _merge("add"),
    "operator.mul": _merge("mul"), "torch.mul": _merge("mul"),
    "operator.sub": _merge("sub"), "torch.sub": _merge("sub"),
    "torch.cat": _cat, "torch.concat": _cat,
    **{f"F.max_pool{n}d": _pool_function("maxpool") for n in (1, 2, 3)},
    **{f"F.avg_pool{n}d": _pool_function("avgpool") for n in (1, 2, 3)},
    **{f"F.adaptive_avg_pool{n}d": _adaptive_function("avg") for n in (1, 2, 3)},
    **{f"F.adaptive_max_pool{n}d": _adaptive_function("max") for n in (1, 2, 3)},
    "torch.flatten": _flatten_function, "torch.narrow": _narrow,
    "torch.permute": lambda self, arguments: _permute(self, tuple(self.constant(arguments["dims"], "dims"))),
    "torch.mean": _mean, "F.interpolate": _interpolate, "F.pad": _pad_function,
    "F.pixel_shuffle": lambda self, a: self.simple(op_text("pixel_shuffle", upscale_factor=a["upscale_factor"])),
    "F.pixel_unshuffle": lambda self, a: self.simple(op_text("pixel_unshuffle",
                                                             downscale_factor=a["downscale_factor"])),
    "F.local_response_norm": lambda self, a: self.simple(op_text(
        "local_response_norm", **{k: float(v) if k != "size" else v for k, v in a.items()})),
    "operator.getitem": _getitem,
    "F.layer_norm": _stateless_norm("layernorm"), "F.group_norm": _stateless_norm("groupnorm"),
    "F.instance_norm": _stateless_norm("instancenorm"), "F.batch_norm": _stateless_norm("batchnorm"),
}

# ---------------------------------------------------------------- method handlers


def _view(self: _Importer, arguments: dict[str, Any]) -> None:
    """``x.view(N, -1)``, ``x.reshape(...)``, ``x.unflatten(...)``: by the
    shapes PyTorch computed, a flatten of adjacent dims, the channel shuffle
    ``[N, g, C/g, ...] -> transpose(1, 2) -> [N, C, ...]``, or nothing."""
    source = self.node.args[0]
    before, after = self.shape(source), self.shape(self.node)
    if before == after:
        self.alias(source)
        return
    if _channel_shuffle(self, before, after):
        return
    for start in range(1, len(before)):
        for end in range(start + 1, len(before)):
            if after == (*before[:start], math.prod(before[start:end + 1]), *before[end + 1:]):
                self.simple(op_text("flatten", start_dim=start, end_dim=end if end < len(before) - 1 else -1))
                return
    raise Unsupported(f"a reshape {list(before[1:])} -> {list(after[1:])} that is not a flatten of adjacent dims "
                      "(nor part of a channel shuffle)")


def _channel_shuffle(self: _Importer, before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    node = self.node
    if len(after) != len(before) + 1 or after[1] * after[2] != before[1] or after[3:] != before[2:]:
        return False
    transpose = self.single_user(node)
    if transpose is None or not _is_swap_1_2(self, transpose):
        return False
    back = self.single_user(transpose)
    while back is not None and back.op == "call_method" and back.target == "contiguous":
        self.done.add(back)
        back = self.single_user(back)
    if back is None or back.op != "call_method" or back.target not in ("view", "reshape", "flatten") \
            or self.shape(back) != before:
        return False
    x = self.value(node.args[0])
    self.done.update({transpose, back})
    self.emit(self.label(back.name, "channel_shuffle"), op_text("channel_shuffle", groups=after[1]), [x], node=back)
    return True


def _is_swap_1_2(self: _Importer, node: Any) -> bool:
    is_transpose = (node.op == "call_method" and node.target == "transpose") or \
        (node.op == "call_function" and self.names.get(node.target) is None and
         getattr(node.target, "__name__", "") == "transpose")
    if not is_transpose or len(node.args) != 3:
        return False
    rank = len(self.shape(node))
    return sorted(int(d) % rank for d in node.args[1:]) == [1, 2]


def _movedim(self: _Importer, arguments: dict[str, Any]) -> None:
    """``x.movedim(1, -1) -> nn.LayerNorm(C) -> .movedim(-1, 1)`` is
    ``layernorm2d`` (its lowering); any other movedim is a ``permute``."""
    node = self.node
    rank = len(self.shape(node))
    source, destination = (int(self.constant(d, "dims")) % rank for d in node.args[1:3])
    order = [d for d in range(rank) if d != source]
    order.insert(destination, source)
    if (source, destination) == (1, rank - 1) and _layer_norm_2d(self):
        return
    _permute(self, tuple(order))


def _layer_norm_2d(self: _Importer) -> bool:
    norm = self.single_user(self.node)
    if norm is None or norm.op != "call_module" or type(self.root.get_submodule(norm.target)).__name__ != "LayerNorm":
        return False
    module = self.root.get_submodule(norm.target)
    back = self.single_user(norm)
    rank = len(self.shape(self.node))
    if back is None or back.op != "call_method" or back.target != "movedim" \
            or [int(d) % rank for d in back.args[1:3]] != [rank - 1, 1] or len(module.normalized_shape) != 1:
        return False
    x = self.value(self.node.args[0])
    label = self.label(norm.target, "layernorm2d")
    text = op_text("layernorm2d", normalized_shape=module.normalized_shape[0], eps=module.eps,
                   elementwise_affine=module.elementwise_affine, bias=module.bias is not None)
    self.emit(label, text, [x], node=back, params=sum(p.numel() for p in module.parameters()))
    for key, tensor in module.state_dict().items():
        self.arrays[f"{label}.{key}"] = tensor.detach().cpu().numpy()
    self.used_modules[norm.target] = label
    self.done.update({norm, back})
    return True


METHOD_HANDLERS: dict[str, FunctionHandler] = {
    "add": _merge("add"), "mul": _merge("mul"), "sub": _merge("sub"),
    "flatten": lambda self, a: self.simple(_flatten_text(self, int(self.constant(a.get("start_dim", 0), "start_dim")),
                                                          int(self.constant(a.get("end_dim", -1), "end_dim")))),
    "narrow": _narrow, "mean": _mean,
    "view": _view, "reshape": _view, "unflatten": _view,
    "permute": lambda self, a: _permute(self, tuple(self.constant(
        self.node.args[1] if len(self.node.args) == 2 and isinstance(self.node.args[1], (list, tuple))
        else self.node.args[1:], "dims"))),
    "movedim": _movedim,
    "contiguous": lambda self, a: self.alias(self.node.args[0]),
}


# ---------------------------------------------------------------- entry


def trace(module: Any) -> Any:
    """The module's fx graph (eval mode), or E603 at the user's line that fx cannot trace."""
    torch = require_torch()
    module.eval()
    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(module)
    except Exception as error:
        raise fail("E603", f"torch.fx cannot trace {type(module).__name__}: {type(error).__name__}: "
                   f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}", _error_span(error),
                   "symbolic tracing needs a forward without control flow on tensor values "
                   "(an 'if' on a tensor, a loop over its size)") from None
    return torch.fx.GraphModule(tracer.root, graph)


#: Where the importer keeps each fx node's output shape (batch included; None for a non-tensor).
SHAPE = "archdsl_shape"


def _propagate(torch: Any, graph_module: Any, shapes: list[tuple[int, ...]]) -> None:
    """PyTorch's own shapes: the traced module's forward on zero inputs
    (batch 1), node by node, each tensor's shape kept in the node's meta."""
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(shapes):
        raise fail("E605", f"forward takes {len(placeholders)} input(s) ({', '.join(n.name for n in placeholders)}) "
                   f"but {len(shapes)} input shape(s) were given", hint="give --input-shape once per input, in order")

    class Shapes(torch.fx.Interpreter):
        def run_node(self, node: Any) -> Any:
            try:
                result = super().run_node(node)
            except Exception as error:
                shown = ", ".join(str([1, *s]) for s in shapes)
                raise fail("E605", f"fx node '{node.name}': the module's forward on a zero input {shown} fails "
                           f"here: {type(error).__name__}: {str(error).strip()[:500]}", _trace_span(node.stack_trace),
                           "give the input size the model takes with --input-shape C,H,W") from None
            node.meta[SHAPE] = tuple(int(d) for d in result.shape) if isinstance(result, torch.Tensor) else None
            return result

    with torch.no_grad():
        Shapes(graph_module).run(*(torch.zeros((1, *shape)) for shape in shapes))


def import_module(module: Any, shapes: list[tuple[int, ...]], name: str, source: str) -> TorchImport:
    """The network and weights of an ``nn.Module``: raises DiagnosticError (E6xx)."""
    torch = require_torch()
    graph_module = trace(module)
    _propagate(torch, graph_module, shapes)
    importer = _Importer(torch, graph_module, graph_module.graph, name, source)
    result = importer.run(shapes)
    net = result.net
    net.header = [f"Imported from {source} by archdsl import (torch {torch.__version__}, torch.fx symbolic "
                  "trace in eval mode).",
                  "Labels are the modules' paths (their state_dict prefixes); shapes are PyTorch's forward",
                  "of a zero input, without the batch dimension."]
    total = sum(p.numel() for p in module.parameters())
    if total != net.params:
        unused = sorted({key.rpartition(".")[0] for key, _ in module.named_parameters()
                         if key.rpartition(".")[0] not in importer.used_modules and net.layer(key) is None})
        net.notes.append(f"{total - net.params:,} of the module's {total:,} parameters are not used by forward "
                         f"(in eval mode) and are left out: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}")
    return result


def import_torch(spec: Spec, shapes: list[tuple[int, ...]], kwargs: dict[str, Any] | None = None,
                 directory: Path | None = None) -> TorchImport:
    """``archdsl import module.path:callable``: load, call, trace, map."""
    module = load_module(spec, kwargs or {}, directory or Path.cwd())
    source = f"{spec.file if spec.file is not None else spec.module}:{spec.callable}"
    return import_module(module, shapes, spec.name, source)


__all__ = ["INSTALL_HINT", "Spec", "SpecError", "TorchImport", "TorchUnavailable", "import_module", "import_torch",
           "is_torch_spec", "load_module", "op_text", "parse_kwargs", "parse_spec", "require_torch",
           "sources_for", "trace"]
