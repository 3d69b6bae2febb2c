"""``archdsl export``: a model as one readable, standalone NumPy module.

The module holds, verbatim, the source of the kernels it calls
(``archdsl/runtime/kernels.py``), of the seeded initialisation
(``runtime/init.py``) and of the weight-handling base class
(``runtime/module.py``): one source of truth, so the exported module and
``archdsl.compile`` compute the same thing.  Then comes a class whose
``forward`` is one line per layer, each with a comment pointing back to its
``.cnn`` file and line, in the order (and with the in-place writes) of the
interpreter's plan.

Nothing a user writes reaches the generated code unescaped: node and input
names become sanitised identifiers (and are otherwise only written through
``repr``), file names in comments and docstrings are escaped, and argument
values are literals produced by ``repr`` from validated specs.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
from collections.abc import Iterable, Mapping
from types import CodeType, FunctionType

from .. import __version__
from ..graph import Model
from ..ops.base import Shape
from ..runtime import init as init_source
from ..runtime import kernels as kernels_source
from ..runtime import module as module_source
from ..runtime.interpreter import Plan, make_plan

#: Where embedded definitions come from, in the order they are written.
_SOURCES = (kernels_source, init_source, module_source)
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


# ------------------------------------------------------- embedded definitions


def _code_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _code_names(constant)
    return names


def _referenced(obj) -> set[str]:
    if isinstance(obj, FunctionType):
        return _code_names(obj.__code__)
    names: set[str] = set()
    for member in vars(obj).values():
        function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if isinstance(function, FunctionType):
            names |= _code_names(function.__code__)
    return names


def _definitions() -> dict[str, tuple[int, int, object]]:
    """Every function and class of the runtime source modules: name ->
    (module position, line, object)."""
    found: dict[str, tuple[int, int, object]] = {}
    for position, module in enumerate(_SOURCES):
        for name, obj in vars(module).items():
            if isinstance(obj, (FunctionType, type)) and obj.__module__ == module.__name__:
                found[name] = (position, inspect.getsourcelines(obj)[1], obj)
    return found


def embedded_names(roots: Iterable[str]) -> list[str]:
    """``roots`` and every runtime definition they use, in source order."""
    definitions = _definitions()
    needed: set[str] = set()
    pending = [name for name in roots]
    while pending:
        name = pending.pop()
        if name in needed or name not in definitions:
            continue
        needed.add(name)
        pending += sorted(_referenced(definitions[name][2]) & set(definitions))
    return sorted(needed, key=lambda name: definitions[name][:2])


def embedded_source(roots: Iterable[str]) -> str:
    definitions = _definitions()
    parts = []
    current = None
    for name in embedded_names(roots):
        position, _, obj = definitions[name]
        if position != current:
            current = position
            module = _SOURCES[position]
            parts.append(f"# {'-' * 68}\n# From archdsl/runtime/{module.__name__.rsplit('.', 1)[-1]}.py "
                         f"(archdsl {__version__}), verbatim.\n")
        parts.append(inspect.getsource(obj))
    return "\n\n".join(parts)


# ------------------------------------------------------------------ the module


def _shape_words(shape: Shape) -> str:
    return "[N, " + ", ".join(str(d) for d in shape) + "]"


def export(model: Model, *, inputs: Mapping[str, Shape] | None = None, plan: Plan | None = None) -> str:
    """The source text of a standalone NumPy module running ``model``.

    ``inputs`` overrides input shapes as in :func:`archdsl.analyze`.  Raises
    :class:`archdsl.runtime.CompileError` if the model has errors.  The text
    depends only on the model (the same input gives the same bytes).
    """
    plan = plan or make_plan(model, inputs)
    kernels_used = sorted({step.kernel for step in plan.steps})
    packs = sorted({layer[1] for layer in plan.layers.values() if layer[1]})
    roots = [*kernels_used, *packs, "NumpyModel"]
    module_names = set(embedded_names(roots)) | {"np"}
    reserved = module_names | set(dir(builtins)) | {"self", "t"}

    class_name = identifier(model.name, set(reserved))
    taken = set(reserved) | {class_name}
    parameters = {name: identifier(name, taken) for name in plan.inputs}
    pool = [name for name in _VARIABLES if name not in taken]

    # Each value lives in a variable; a value's variable is reused once the value is dead.
    variable: dict[str, str] = dict(parameters)
    free: list[str] = []
    counter = len(_VARIABLES)
    last_use = {}
    for index, step in enumerate(plan.steps):
        for source in step.inputs:
            last_use[source] = index
    outputs = set(plan.outputs.values())

    def fresh() -> str:
        nonlocal counter
        if free:
            return free.pop(0)
        if pool:
            return pool.pop(0)
        while True:
            name = f"t{counter}"
            counter += 1
            if name not in taken:
                taken.add(name)
                return name

    lines = []
    for index, step in enumerate(plan.steps):
        where = f"{text(step.span.file)}:{step.span.line}"
        if step.value_of is not None:  # folded or fused: its value is an input's
            if step.folded_into is not None:
                note = f"batch_norm folded into the weights of {text(step.folded_into)}"
            elif step.kernel == "add":
                note = f"add done by {text(step.fused_into)} (residual=)"
            else:
                note = f"{step.kernel} applied by {text(step.fused_into)}"
            lines.append(f"        # {where} {text(step.node)}: {note}")
            variable[step.node] = variable[step.value_of]
            for source in dict.fromkeys(step.inputs):  # other inputs read for the last time
                if source != step.value_of and last_use.get(source) == index and source not in outputs \
                        and source not in parameters and variable[source] != variable[step.node]:
                    free.append(variable[source])
            free.sort(key=lambda name: (len(name), name))
            continue
        dying = [source for source in dict.fromkeys(step.inputs)
                 if last_use.get(source) == index and source not in outputs and source not in parameters]
        target = variable[step.inputs[0]] if step.inputs[0] in dying else None
        arguments = [variable[source] for source in step.inputs]
        if step.has_tensors:
            arguments.append(f"**t[{step.node!r}]")
        if step.residual is not None:
            arguments.append(f"residual={variable[step.residual]}")
        signature = inspect.signature(getattr(kernels_source, step.kernel)).parameters
        for name, value in step.arguments.items():
            value = _simplify(name, value)
            default = signature[name].default
            if default is not inspect.Parameter.empty and type(default) is type(value) and default == value:
                continue
            arguments.append(f"{name}={literal(value)}")
        if step.inplace:
            arguments.append("inplace=True")
        for source in dying:
            if variable[source] != target:
                free.append(variable[source])
        free.sort(key=lambda name: (len(name), name))
        target = target or fresh()
        variable[step.node] = target
        lines.append(f"        {target} = {step.kernel}({', '.join(arguments)})  # {where} {text(step.node)}")
        if step.node not in outputs and last_use.get(step.node, -1) < index:
            free.append(target)  # never read: its variable is free again

    output_items = list(plan.outputs.items())
    if len(output_items) == 1:
        result = f"np.ascontiguousarray({variable[output_items[0][1]]})"
    else:
        result = "{" + ", ".join(f"{name!r}: np.ascontiguousarray({variable[node]})"
                                 for name, node in output_items) + "}"

    shapes_in = ", ".join(f"{text(name)} {_shape_words(shape)}" for name, shape in plan.inputs.items())
    shapes_out = ", ".join(f"{text(name)} {_shape_words(plan.shapes[node])}" for name, node in output_items)
    parameter_count = sum(_count(shape) for key, shape, _, _ in plan.parameters if key not in plan.buffers)
    buffer_count = sum(_count(shape) for key, shape, _, _ in plan.parameters if key in plan.buffers)
    source_file = text(model.span.file)
    usage_args = ", ".join(parameters.values())

    usage_lines = [(f"model = {class_name}(seed=0)", "PyTorch's default initialisation, seeded"),
                   ('model.load("weights.npz")', "or model.load_state_dict({key: array})"),
                   (f"result = model({usage_args})", "")]
    width = max(len(code) for code, _ in usage_lines) + 2
    usage = "\n".join(f"    {code:<{width}}# {note}" if note else f"    {code}" for code, note in usage_lines)
    header = f'''"""{text(model.name)}: a standalone NumPy model, written by archdsl {__version__} from {source_file}.

It needs only NumPy.  Weights use PyTorch's state_dict names and layouts, so
a PyTorch state_dict saved with NumPy loads as it is.

{usage}

Inputs:  {shapes_in} (float32 by default; {class_name}(dtype="float64") for float64)
Outputs: {shapes_out}{" (a dict by output name)" if len(output_items) > 1 else ""}
Weights: {parameter_count:,} parameters, {buffer_count:,} buffer elements

Layout NCHW at the boundary; convolutions and pooling keep channels-last
memory inside.  Each line of forward() names the .cnn line it comes from.
"""

import numpy as np

'''
    table_parameters = "\n".join(f"        ({key!r}, {literal(tuple(shape))}, {rule!r}, {fan_in!r}),"
                                 for key, shape, rule, fan_in in plan.parameters)
    table_layers = "\n".join(
        f"        {node!r}: ({{{', '.join(f'{a!r}: {k!r}' for a, k in keys.items())}}}, {pack or 'None'}, {groups}, "
        f"{literal(fold)}),"
        for node, (keys, pack, groups, fold) in plan.layers.items())
    inputs_table = ", ".join(f"{name!r}: {literal(tuple(shape))}" for name, shape in plan.inputs.items())
    outputs_table = ", ".join(f"{name!r}: {node!r}" for name, node in output_items)
    checks = "\n".join(f"        {parameter} = self.check_input({name!r}, {parameter})"
                       for name, parameter in parameters.items())

    body = f'''

# {"-" * 68}
# The model.


class {class_name}(NumpyModel):
    """{text(model.name)} from {source_file}: {shapes_in} -> {shapes_out}."""

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
        return {result}
'''
    return header + embedded_source(roots) + body


def _count(shape: Shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total
