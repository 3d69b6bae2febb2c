"""``archdsl export``: a model as one readable, standalone NumPy module.

The module holds, verbatim but for their imports, the source of the kernel
modules it calls (``archdsl/runtime/kernels/``), of the modules these use
(the output-size arithmetic ``archdsl/ops/arith.py``, shared helpers), of
the seeded initialisation (``runtime/init.py``) and of the weight-handling
base class (``runtime/module.py``), in dependency order: one source of
truth, so the exported module and ``archdsl.compile`` compute the same
thing.  Then comes a class whose
``forward`` is one line per layer, each with a comment pointing back to its
``.cnn`` file and line, in the order (and with the in-place writes) of the
interpreter's plan.

Nothing a user writes reaches the generated code unescaped: node and input
names become sanitised identifiers (and are otherwise only written through
``repr``), file names in comments and docstrings are escaped, and argument
values are literals produced by ``repr`` from validated specs.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .. import __version__
from ..graph import Model
from ..ops.base import Shape
from ..runtime import module as module_base
from ..runtime.interpreter import Plan, Step, make_plan
from ..runtime.kernels.merge import add as add_kernel

#: Arguments given as one value per spatial dimension: uniform tuples are written as one int.
_PER_DIMENSION = {"stride", "padding", "dilation", "kernel_size", "output_padding", "output_size", "size",
                  "scale_factor"}
#: Names for intermediate values, then t5, t6, ...
_VARIABLES = ("x", "y", "z", "u", "v")


# ------------------------------------------------------------------ escaping


def text(value: str) -> str:
    """``value`` safe inside a comment or a triple-quoted docstring: no line
    breaks, no quotes that end the string, only valid escapes."""
    return value.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def identifier(name: str, taken: set[str]) -> str:
    """A Python identifier for ``name`` (ASCII letters, digits, ``_``), not a
    keyword and not in ``taken``; added to ``taken``."""
    base = re.sub(r"\W", "_", name, flags=re.ASCII) or "_"
    if base[0].isdigit():
        base = "_" + base
    candidate = base
    while keyword.iskeyword(candidate) or keyword.issoftkeyword(candidate) or candidate in taken:
        candidate += "_"
    taken.add(candidate)
    return candidate


def literal(value) -> str:
    """Python source for a constant argument (``repr`` of validated values)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"cannot write {value!r} as a literal")


def _simplify(name: str, value):
    """``(3, 3)`` as ``3``; symmetric (before, after) padding pairs as ints."""
    if name not in _PER_DIMENSION or not isinstance(value, tuple) or not value:
        return value
    if all(isinstance(v, tuple) and len(v) == 2 and v[0] == v[1] for v in value):
        value = tuple(v[0] for v in value)
    if all(not isinstance(v, tuple) and v == value[0] for v in value):
        return value[0]
    return value


# ------------------------------------------------------- embedded modules


def _tree(module: ModuleType) -> ast.Module:
    return ast.parse(inspect.getsource(module))


def _imported_modules(module: ModuleType) -> list[ModuleType]:
    """The archdsl modules ``module`` imports (its package-relative imports)."""
    found = []
    for node in _tree(module).body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            name = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__)
            found.append(importlib.import_module(name))
    return found


def embedded_modules(kernels: list[Callable[..., Any]]) -> list[ModuleType]:
    """The modules whose source a module calling ``kernels`` holds: theirs,
    the weight-handling base class's, and every module these import,
    each after the modules it imports (ties by name)."""
    roots = {importlib.import_module(kernel.__module__) for kernel in kernels} | {module_base}
    ordered: list[ModuleType] = []

    def visit(module: ModuleType) -> None:
        if module in ordered:
            return
        for dependency in sorted(_imported_modules(module), key=lambda m: m.__name__):
            visit(dependency)
        ordered.append(module)

    for root in sorted(roots, key=lambda m: m.__name__):
        visit(root)
    return ordered


def _is_dropped(node: ast.stmt) -> bool:
    """Statements an embedded module loses: its docstring, ``from __future__``,
    its package-relative imports (the names they bring are embedded too) and
    ``import numpy as np`` (imported once at the top).  Any other import is
    an error: the modules must need nothing but NumPy."""
    if isinstance(node, ast.ImportFrom):
        if node.level > 0 or node.module == "__future__":
            return True
        raise ValueError(f"an embedded module imports {node.module}")
    if isinstance(node, ast.Import):
        if [(alias.name, alias.asname) for alias in node.names] == [("numpy", "np")]:
            return True
        raise ValueError(f"an embedded module imports {ast.unparse(node)}")
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def module_source(module: ModuleType) -> str:
    """``module``'s source, verbatim but for the statements :func:`_is_dropped` drops."""
    lines = inspect.getsource(module).splitlines(keepends=True)
    for node in reversed(_tree(module).body):
        if _is_dropped(node):
            assert node.end_lineno is not None
            del lines[node.lineno - 1:node.end_lineno]
    return "".join(lines).strip("\n") + "\n"


def top_level_names(module: ModuleType) -> set[str]:
    """The names ``module`` defines (functions, classes, constants)."""
    names = set()
    for node in _tree(module).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def embedded_source(modules: list[ModuleType]) -> str:
    """The modules' source, one after the other, each under a comment naming
    its file.  Raises ValueError if two define one name (they share the
    exported module's namespace)."""
    seen: dict[str, str] = {}
    parts = []
    for module in modules:
        for name in top_level_names(module):
            if name in seen:
                raise ValueError(f"{name} is defined by both {seen[name]} and {module.__name__}")
            seen[name] = module.__name__
        path = module.__name__.replace(".", "/") + ".py"
        parts.append(f"# {'-' * 68}\n# From {path} (archdsl {__version__}), verbatim but its imports.\n\n\n"
                     + module_source(module))
    return "\n\n".join(parts)


# ------------------------------------------------------------------ the module


def _shape_words(shape: Shape) -> str:
    return "[N, " + ", ".join(str(d) for d in shape) + "]"


@dataclass
class _Variables:
    """Each value lives in a Python variable; a dead value's variable is reused."""

    taken: set[str]
    variable: dict[str, str]
    free: list[str] = field(default_factory=list)
    counter: int = len(_VARIABLES)
    pool: list[str] = field(default_factory=list)

    def fresh(self) -> str:
        if self.free:
            return self.free.pop(0)
        if self.pool:
            return self.pool.pop(0)
        while True:
            name = f"t{self.counter}"
            self.counter += 1
            if name not in self.taken:
                self.taken.add(name)
                return name

    def release(self, names: list[str]) -> None:
        self.free += names
        self.free.sort(key=lambda name: (len(name), name))


def _call_arguments(step: Step, variables: _Variables) -> list[str]:
    """The arguments of a step's kernel call, defaults left out."""
    arguments = [variables.variable[source] for source in step.inputs]
    if step.has_tensors:
        arguments.append(f"**t[{step.node!r}]")
    if step.residual is not None:
        arguments.append(f"residual={variables.variable[step.residual]}")
    signature = inspect.signature(step.kernel).parameters
    for name, value in step.arguments.items():
        value = _simplify(name, value)
        default = signature[name].default
        if default is not inspect.Parameter.empty and type(default) is type(value) and default == value:
            continue
        arguments.append(f"{name}={literal(value)}")
    if step.inplace:
        arguments.append("inplace=True")
    return arguments


def _forward_lines(plan: Plan, variables: _Variables, inputs: set[str]) -> list[str]:
    """The body of ``forward``: one line per step, in the plan's order, each
    value in a variable freed after the value's last use (the plan's)."""
    last_use = plan.last_use
    lines = []
    for index, step in enumerate(plan.steps):
        where = f"{text(step.span.file)}:{step.span.line}"
        dying = [source for source in dict.fromkeys(step.inputs) if last_use[source] == index and source not in inputs]
        if step.value_of is not None:  # folded or fused: its value is an input's
            if step.folded_into is not None:
                note = f"batch_norm folded into the weights of {text(step.folded_into)}"
            elif step.kernel is add_kernel:
                note = f"add done by {text(step.fused_into or '')} (residual=)"
            else:
                note = f"{step.kernel.__name__} applied by {text(step.fused_into or '')}"
            lines.append(f"        # {where} {text(step.node)}: {note}")
            variables.variable[step.node] = variables.variable[step.value_of]
            variables.release([variables.variable[source] for source in dying if source != step.value_of
                               and variables.variable[source] != variables.variable[step.node]])
            continue
        arguments = _call_arguments(step, variables)
        target = variables.variable[step.inputs[0]] if step.inputs[0] in dying else None
        variables.release([variables.variable[source] for source in dying if variables.variable[source] != target])
        target = target or variables.fresh()
        variables.variable[step.node] = target
        lines.append(f"        {target} = {step.kernel.__name__}({', '.join(arguments)})  # {where} {text(step.node)}")
        if last_use[step.node] < index:
            variables.release([target])  # never read: its variable is free again
    return lines


def export(model: Model, *, inputs: Mapping[str, Shape] | None = None, plan: Plan | None = None) -> str:
    """The source text of a standalone NumPy module running ``model``.

    ``inputs`` overrides input shapes as in :func:`archdsl.analyze`.  Raises
    :class:`archdsl.runtime.CompileError` if the model has errors.  The text
    depends only on the model (the same input gives the same bytes).
    """
    plan = plan or make_plan(model, inputs)
    kernels = [step.kernel for step in plan.steps if step.value_of is None]
    kernels += [layer.pack for layer in plan.layers.values() if layer.pack is not None]
    modules = embedded_modules(kernels)
    reserved = set().union(*(top_level_names(module) for module in modules)) | {"np"} | set(dir(builtins)) \
        | {"self", "t"}

    class_name = identifier(model.name, set(reserved))
    taken = set(reserved) | {class_name}
    parameters = {name: identifier(name, taken) for name in plan.inputs}
    variables = _Variables(taken, dict(parameters), pool=[name for name in _VARIABLES if name not in taken])
    lines = _forward_lines(plan, variables, set(parameters))
    return _header(model, plan, class_name, parameters) + embedded_source(modules) \
        + _class(model, plan, class_name, parameters, variables.variable, lines)


def _header(model: Model, plan: Plan, class_name: str, parameters: dict[str, str]) -> str:
    shapes_in = ", ".join(f"{text(name)} {_shape_words(shape)}" for name, shape in plan.inputs.items())
    shapes_out = ", ".join(f"{text(name)} {_shape_words(plan.shapes[node])}" for name, node in plan.outputs.items())
    parameter_count = sum(_count(shape) for key, shape, _, _ in plan.parameters if key not in plan.buffers)
    buffer_count = sum(_count(shape) for key, shape, _, _ in plan.parameters if key in plan.buffers)
    usage_lines = [(f"model = {class_name}(seed=0)", "PyTorch's default initialisation, seeded"),
                   ('model.load("weights.npz")', "or model.load_state_dict({key: array})"),
                   (f"result = model({', '.join(parameters.values())})", "")]
    width = max(len(code) for code, _ in usage_lines) + 2
    usage = "\n".join(f"    {code:<{width}}# {note}" if note else f"    {code}" for code, note in usage_lines)
    source_file = text(model.span.file)
    return f'''"""{text(model.name)}: a standalone NumPy model, written by archdsl {__version__} from {source_file}.

It needs only NumPy.  Weights use PyTorch's state_dict names and layouts, so
a PyTorch state_dict saved with NumPy loads as it is.

{usage}

Inputs:  {shapes_in} (float32 by default; {class_name}(dtype="float64") for float64)
Outputs: {shapes_out}{" (a dict by output name)" if len(plan.outputs) > 1 else ""}
Weights: {parameter_count:,} parameters, {buffer_count:,} buffer elements

Layout NCHW at the boundary; convolutions and pooling keep channels-last
memory inside.  Each line of forward() names the .cnn line it comes from.
"""

import numpy as np

'''


def _class(model: Model, plan: Plan, class_name: str, parameters: dict[str, str], variable: dict[str, str],
           lines: list[str]) -> str:
    output_items = list(plan.outputs.items())
    if len(output_items) == 1:
        result = f"np.ascontiguousarray({variable[output_items[0][1]]})"
    else:
        result = "{" + ", ".join(f"{name!r}: np.ascontiguousarray({variable[node]})"
                                 for name, node in output_items) + "}"
    shapes_in = ", ".join(f"{text(name)} {_shape_words(shape)}" for name, shape in plan.inputs.items())
    shapes_out = ", ".join(f"{text(name)} {_shape_words(plan.shapes[node])}" for name, node in output_items)
    table_parameters = "\n".join(f"        ({key!r}, {literal(tuple(shape))}, {rule!r}, {fan_in!r}),"
                                 for key, shape, rule, fan_in in plan.parameters)
    table_layers = "\n".join(
        f"        {node!r}: ({{{', '.join(f'{a!r}: {k!r}' for a, k in layer.tensors.items())}}}, "
        f"{layer.pack.__name__ if layer.pack else 'None'}, {layer.groups}, {literal(layer.fold)}),"
        for node, layer in plan.layers.items())
    inputs_table = ", ".join(f"{name!r}: {literal(tuple(shape))}" for name, shape in plan.inputs.items())
    outputs_table = ", ".join(f"{name!r}: {node!r}" for name, node in output_items)
    checks = "\n".join(f"        {parameter} = self.check_input({name!r}, {parameter})"
                       for name, parameter in parameters.items())
    return f'''

# {"-" * 68}
# The model.


class {class_name}(NumpyModel):
    """{text(model.name)} from {text(model.span.file)}: {shapes_in} -> {shapes_out}."""

    NAME = {model.name!r}
    INPUTS = {{{inputs_table}}}
    OUTPUTS = {{{outputs_table}}}
    #: (state_dict key, shape, initialisation, fan_in)
    PARAMETERS = (
{table_parameters}
    )
    #: node -> ({{kernel tensor argument: state_dict key}}, packing function, groups,
    #:          batchnorm folded in: ((weight, bias, running_mean, running_var keys), eps))
    LAYERS = {{
{table_layers}
    }}

    def forward(self, {", ".join(parameters.values())}):
        """{shapes_in} -> {shapes_out}"""
{checks}
        t = self.layer_arguments()
{chr(10).join(lines)}
        self.release_arguments(t)
        return {result}
'''


def _count(shape: Shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total
