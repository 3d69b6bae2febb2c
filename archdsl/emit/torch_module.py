"""``archdsl export --to torch``: a model as one readable PyTorch module.

The file defines an ``nn.Module`` whose submodules sit where the model's
node names put them (``layer1.0.conv1`` is ``self.layer1["0"]["conv1"]``),
so its ``state_dict()`` keys are the NumPy runtime's, which are
torchvision's for the zoo's torchvision models.  ``forward`` is one line per
node, in the plan's order, each with a comment naming its ``.cnn`` file and
line.  What each line calls comes from the op's ``to_torch`` facet
(``archdsl/ops/*.py``); this module only walks the graph.

archdsl does not import torch: the exporter writes text, and only the
generated file imports torch.

Nothing a user writes reaches the generated code unescaped: node names are
written only through ``repr`` (as dictionary keys, so any string, dots
aside, is a valid state_dict key component), input names become sanitised
identifiers, file and model names in comments and docstrings are escaped,
and argument values are ``repr`` of validated specs.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..files import write_atomic
from ..graph import Model
from ..ops.base import OpSpec, Shape
from ..ops.torch_lowering import NoTorchLowering, TorchLowering
from ..runtime.interpreter import Plan, make_plan
from ..source import Span
from .numpy_module import identifier, text

#: Names of the generated file and of nn.Module that variables and attributes must not take.
_FILE_NAMES = {"torch", "nn", "F", "Branch", "attach", "self"}
#: Public attributes of ``torch.nn.Module`` (2.x): a child registered as ``self.<name> = ...``
#: must not shadow one (tests/test_export_torch.py checks the list against the installed torch).
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
})
#: Submodule names PyTorch cannot hold: ``nn.Module.train()`` assigns ``training`` on every
#: module (tests/test_export_torch.py checks every other nn.Module attribute name works).
REFUSED_NAMES = frozenset({"training"})
#: Names for intermediate values, then t5, t6, ...
_VARIABLES = ("x", "y", "z", "u", "v")


class TorchExportError(ValueError):
    """The model cannot be written as a PyTorch module: ``span`` locates the
    node at fault."""

    def __init__(self, span: Span, node: str, message: str) -> None:
        super().__init__(f"{span}: {node}: {message}")
        self.span = span
        self.node = node
        self.message = message


@dataclass
class _Slot:
    """One component of the module tree: a node's module (``constructor``),
    a plain container (``constructor`` None), or both, with children."""

    constructor: str | None = None
    children: dict[str, _Slot] = field(default_factory=dict)
    #: The constructor builds an ``nn.Parameter`` (held by the parent module), not a module.
    parameter: bool = False


def _plain(name: str) -> bool:
    """Whether ``name`` can be an attribute of the model class as it is."""
    return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and name not in MODULE_ATTRIBUTES and name not in _FILE_NAMES)


def _lowerings(plan: Plan) -> dict[str, TorchLowering]:
    """Every step's lowering, or a located error naming the op."""
    model = plan.model
    found = {}
    for step in plan.steps:
        spec: OpSpec = model.nodes[step.node].spec
        shapes = [plan.shapes[source] for source in step.inputs]
        try:
            lowering = spec.to_torch(shapes)
        except NoTorchLowering as error:
            raise TorchExportError(step.span, step.node, str(error)) from None
        if (spec.parameter_shapes(shapes) or spec.buffer_shapes(shapes)) and lowering.module is None:
            raise TorchExportError(step.span, step.node, f"{spec.kind()}'s PyTorch lowering has no module "
                                                         "for its weights")
        found[step.node] = lowering
    return found


def _tree(plan: Plan, lowerings: Mapping[str, TorchLowering]) -> _Slot:
    """The module tree: each module-holding node at the path its name spells
    (a located error for a name PyTorch cannot hold)."""
    root = _Slot()
    for step in plan.steps:
        constructor = lowerings[step.node].module
        if constructor is None:
            continue
        slot = root
        for component in step.node.split("."):
            if component in REFUSED_NAMES:
                raise TorchExportError(step.span, step.node, f"a PyTorch submodule cannot be named {component!r} "
                                                             "(nn.Module.train() sets that attribute); rename the node")
            if slot.parameter:
                raise TorchExportError(step.span, step.node, "a node cannot be named below a learnable tensor's "
                                                             "node (a parameter holds no submodules); rename it")
            slot = slot.children.setdefault(component, _Slot())
        if lowerings[step.node].parameter and slot.children:
            raise TorchExportError(step.span, step.node, "a learnable tensor's node cannot have nodes named "
                                                         "below it (a parameter holds no submodules); rename them")
        slot.constructor = constructor.format()
        slot.parameter = lowerings[step.node].parameter
    return root


def _access(path: list[str], root: _Slot) -> str:
    """The expression reaching the module at ``path`` from ``self``."""
    slot = root
    expression = "self"
    for depth, component in enumerate(path):
        if slot.children[component].parameter:  # held by its parent (or the model) as a parameter
            return expression + (f".{component}" if _plain(component) else f"._parameters[{component!r}]")
        if depth == 0:
            expression += f".{component}" if _plain(component) else f"._modules[{component!r}]"
        elif slot.constructor is None:
            expression += f"[{component!r}]"
        else:
            expression += f"._modules[{component!r}]"
        slot = slot.children[component]
    return expression


def _constructor(slot: _Slot, indent: str) -> str:
    """Source building ``slot``'s module and its children."""
    if not slot.children:
        assert slot.constructor is not None
        return slot.constructor
    inner = indent + "    "
    items = "".join(f"{inner}{name!r}: {_constructor(child, inner)},\n" for name, child in slot.children.items())
    children = "{\n" + items + indent + "}"
    if slot.constructor is None:
        return f"Branch({children})"
    return f"attach({slot.constructor}, {children})"


def _holder(slot: _Slot) -> str:
    """The nn.Module dict that holds ``slot`` under a name that is not an identifier."""
    return "_parameters" if slot.parameter else "_modules"


def _uses(slot: _Slot) -> tuple[bool, bool]:
    """Whether the tree below ``slot`` needs ``Branch`` and ``attach`` (which ``Branch`` calls)."""
    branch = bool(slot.children) and slot.constructor is None
    attached = bool(slot.children)
    for child in slot.children.values():
        b, a = _uses(child)
        branch, attached = branch or b, attached or a
    return branch, attached


_BRANCH = '''

class Branch(nn.Module):
    """Submodules by name: the components of the state_dict keys, any string
    (a node name need not be a Python identifier)."""

    def __init__(self, children: dict[str, nn.Module | nn.Parameter]) -> None:
        super().__init__()
        attach(self, children)

    def __getitem__(self, name: str) -> nn.Module:
        module = self._modules[name]
        assert module is not None
        return module
'''

_ATTACH = '''

def attach(module: nn.Module, children: dict[str, nn.Module | nn.Parameter]) -> nn.Module:
    """``module`` with submodules (or learnable tensors) under it (a node named
    ``conv.extra`` below a node ``conv``; a ``scale`` node's parameter)."""
    for name, child in children.items():
        if isinstance(child, nn.Parameter):
            module._parameters[name] = child
        else:
            module._modules[name] = child
    return module
'''


def _shape_words(shape: Shape) -> str:
    return "[N, " + ", ".join(str(d) for d in shape) + "]"


def _forward_lines(plan: Plan, lowerings: Mapping[str, TorchLowering], root: _Slot,
                   variable: dict[str, str], taken: set[str]) -> list[str]:
    """One line per step; values live in variables, reused once dead."""
    last_use: dict[str, int] = {}
    for index, step in enumerate(plan.steps):
        for source in step.inputs:
            last_use[source] = index
    keep = set(plan.outputs.values()) | set(plan.inputs)
    pool = [name for name in _VARIABLES if name not in taken]
    free: list[str] = []
    counter = len(_VARIABLES)

    def fresh() -> str:
        nonlocal counter
        if free:
            return free.pop(0)
        if pool:
            return pool.pop(0)
        while f"t{counter}" in taken:
            counter += 1
        taken.add(f"t{counter}")
        return f"t{counter}"

    lines = []
    for index, step in enumerate(plan.steps):
        arguments = [variable[source] for source in step.inputs]
        lowering = lowerings[step.node]
        module = _access(step.node.split("."), root) if lowering.module is not None else ""
        expression = lowering.call.format(*arguments, module=module, inputs=", ".join(arguments))
        dying = [variable[source] for source in dict.fromkeys(step.inputs)
                 if last_use[source] == index and source not in keep]
        first = variable[step.inputs[0]] if step.inputs else None
        target = first if first in dying else None
        free.extend(name for name in dying if name != target)
        free.sort(key=lambda name: (len(name), name))
        target = target or fresh()
        variable[step.node] = target
        lines.append(f"        {target} = {expression}  # {text(step.span.file)}:{step.span.line} {text(step.node)}")
        if step.node not in keep and step.node not in last_use:
            free.append(target)  # never read: its variable is free again
    return lines


def export_torch(model: Model, *, source_name: str | None = None, inputs: Mapping[str, Shape] | None = None,
                 plan: Plan | None = None) -> str:
    """The source text of a PyTorch module computing ``model``.

    ``source_name`` is the ``.cnn`` file named in the header (default: the
    model's own); ``inputs`` overrides input shapes as in
    :func:`archdsl.analyze` (the module accepts any size the model does; the
    shapes given are the documented ones).  Raises
    :class:`archdsl.runtime.CompileError` if the model has errors and
    :class:`TorchExportError` (located) if a node has no PyTorch lowering.
    The text depends only on the model: the same input gives the same bytes.
    """
    if plan is None or plan.optimized:  # folded and fused steps have no line of their own: every node needs one
        plan = make_plan(model, plan.inputs if plan is not None else inputs, optimize=False)
    lowerings = _lowerings(plan)
    root = _tree(plan, lowerings)
    reserved = _FILE_NAMES | set(dir(builtins))
    class_name = identifier(model.name, set(reserved))
    taken = set(reserved) | {class_name}
    parameters = {name: identifier(name, taken) for name in plan.inputs}
    variable = dict(parameters)
    lines = _forward_lines(plan, lowerings, root, variable, taken)

    output_items = list(plan.outputs.items())
    if len(output_items) == 1:
        result, returns = variable[output_items[0][1]], "torch.Tensor"
    else:
        result = "{" + ", ".join(f"{name!r}: {variable[node]}" for name, node in output_items) + "}"
        returns = "dict[str, torch.Tensor]"
    shapes_in = ", ".join(f"{text(name)} {_shape_words(shape)}" for name, shape in plan.inputs.items())
    shapes_out = ", ".join(f"{text(name)} {_shape_words(plan.shapes[node])}" for name, node in output_items)
    source_file = text(source_name if source_name is not None else model.span.file)
    count = sum(_count(shape) for key, shape, _, _ in plan.parameters if key not in plan.buffers)
    branch, attached = _uses(root)
    children = [
        f"        self.{name} = {_constructor(slot, '        ')}" if _plain(name)
        else f"        self.{_holder(slot)}[{name!r}] = {_constructor(slot, '        ')}"
        for name, slot in root.children.items()
    ]
    signature = ", ".join(f"{parameter}: torch.Tensor" for parameter in parameters.values())
    usage = ", ".join(parameters.values())

    return f'''"""{text(model.name)}: a PyTorch module, written by archdsl {__version__} from {source_file}.

    model = {class_name}()
    model.load_state_dict(state)  # the keys of archdsl's NumPy runtime (and of torchvision's model)
    result = model({usage})

Inputs:  {shapes_in}
Outputs: {shapes_out}{" (a dict by output name)" if len(output_items) > 1 else ""}
Weights: {count:,} parameters

Each line of forward() names the .cnn line it comes from.
"""

import torch
from torch import nn
from torch.nn import functional as F
{_BRANCH if branch else ""}{_ATTACH if attached else ""}

class {class_name}(nn.Module):
    """{text(model.name)} from {source_file}: {shapes_in} -> {shapes_out}."""

    def __init__(self) -> None:
        super().__init__()
{chr(10).join(children) if children else "        pass"}

    def forward(self, {signature}) -> {returns}:
        """{shapes_in} -> {shapes_out}"""
{chr(10).join(lines)}
        return {result}
'''


def write_torch_module(model: Model, path: str | Path, *, source_name: str | None = None,
                       inputs: Mapping[str, Shape] | None = None, plan: Plan | None = None) -> str:
    """Writes :func:`export_torch`'s text to ``path`` atomically (all or
    nothing: the text is complete before the file is replaced) and returns it."""
    source = export_torch(model, source_name=source_name, inputs=inputs, plan=plan)
    write_atomic(path, source)
    return source


def _count(shape: Shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total
