"""Running a model: the plan (what each node calls, when each value dies,
where a kernel may write in place) and the interpreter, a plain loop over
the nodes in topological order.

>>> import archdsl, numpy as np
>>> model = archdsl.loads('''
... model Tiny {
...     input image: [3, 8, 8]
...     image -> conv: conv2d(4, 3, padding=1) -> relu -> global_avgpool -> flatten -> fc: linear(2)
... }''').model()
>>> net = archdsl.compile(model, seed=0)
>>> net(np.zeros((5, 3, 8, 8), np.float32)).shape
(5, 2)
>>> sorted(net.state_dict())
['conv.bias', 'conv.weight', 'fc.bias', 'fc.weight']
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import analyze
from ..diagnostics import Diagnostic, Severity
from ..graph import Model
from ..ops import Input
from ..ops.base import KernelCall, Shape
from ..source import Span
from . import kernels
from .module import NumpyModel


class CompileError(ValueError):
    """The model cannot run: its static analysis found errors."""

    def __init__(self, model: str, diagnostics: list[Diagnostic]) -> None:
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        lines = [f"{d.span}: {d.code}: {d.message}" for d in errors[:5]]
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        super().__init__(f"model {model} cannot run:\n  " + "\n  ".join(lines) + more)
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Step:
    """One node's kernel call."""

    node: str
    kernel: str
    inputs: tuple[str, ...]
    arguments: dict[str, Any]
    #: Whether the kernel takes tensors (``model.layers[node]``).
    has_tensors: bool
    #: The kernel overwrites its first input (dead afterwards).
    inplace: bool
    #: Values whose last use is this step: dropped right after it.
    release: tuple[str, ...]
    span: Span
    shape: Shape
    #: A batchnorm folded into this convolution's weights: the step does
    #: nothing, its value is the convolution's.
    folded_into: str | None = None
    #: An add or activation fused into the convolution (or add) that computes
    #: it (``residual=...``, ``activation=...``): the step does nothing, its
    #: value is that node's.
    fused_into: str | None = None
    #: For a folded or fused step: the input whose value is this step's.
    value_of: str | None = None
    #: For a convolution: the value its kernel adds to its output (the other
    #: input of an add fused into it), passed as ``residual=``.
    residual: str | None = None


#: A layer's prepared tensors: ({kernel argument: state_dict key or None}, pack kernel name or None,
#: groups, batchnorm folded in: ((weight, bias, running_mean, running_var keys), eps) or None).
Layer = tuple[dict[str, str | None], str | None, int, tuple[tuple[str | None, ...], float] | None]


@dataclass(frozen=True)
class Plan:
    """What running ``model`` at ``inputs`` shapes takes, decided once."""

    model: Model
    inputs: dict[str, Shape]
    outputs: dict[str, str]
    shapes: dict[str, Shape]
    steps: tuple[Step, ...]
    #: (state_dict key, shape, initialisation, fan_in), in state_dict order.
    parameters: tuple[tuple[str, Shape, str, int | None], ...]
    #: The keys of ``parameters`` that are buffers (batchnorm running statistics).
    buffers: frozenset[str]
    layers: dict[str, Layer]
    calls: dict[str, KernelCall]
    optimized: bool


def _fan_in(shape: Shape) -> int:
    """PyTorch's fan_in of a weight: ``shape[1]·prod(shape[2:])``."""
    return int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else int(shape[0])


def _accepts_inplace(kernel: str) -> bool:
    return "inplace" in inspect.signature(getattr(kernels, kernel)).parameters


def _foldable(model: Model, consumers: dict[str, list[str]], calls: dict[str, KernelCall]) -> dict[str, str]:
    """Batchnorms (with running statistics) that are the only reader of a
    convolution's output, which is no model output: batchnorm -> conv."""
    outputs = set(model.outputs.values())
    folds = {}
    for node in model.nodes.values():
        call = calls.get(node.name)
        if call is None or call.kernel != "batch_norm" or call.tensors.get("running_mean") is None:
            continue
        source = node.inputs[0]
        if calls.get(source) is not None and calls[source].kernel == "conv" and consumers[source] == [node.name] \
                and source not in outputs:
            folds[node.name] = source
    return folds


#: Activations that a convolution or an add applies itself (``activation=``).
_FUSABLE = {"relu", "relu6"}
#: Kernels that take ``activation=``.
_FUSING = {"conv", "add"}


def _through_fold(name: str, consumers: dict[str, list[str]], folds: dict[str, str], outputs: set[str]) -> str | None:
    """The node computing ``name``'s value: ``name`` itself, or the
    convolution a batchnorm ``name`` is folded into when the batchnorm alone
    reads it (None otherwise)."""
    target = folds.get(name, name)
    if target != name and (consumers[target] != [name] or target in outputs):
        return None
    return target


def _fusable_adds(model: Model, consumers: dict[str, list[str]], calls: dict[str, KernelCall], folds: dict[str, str],
                  shapes: dict[str, Shape], position: dict[str, int]) -> dict[str, tuple[str, str]]:
    """Adds of two tensors of one shape where one is a convolution's output
    (batchnorm folded or not) that the add alone reads, no model output, and
    the other exists before that convolution runs: add -> (the input from the
    convolution, the convolution).  The convolution adds the other input
    itself (``residual=``); of two candidates, the later one."""
    outputs = set(model.outputs.values())
    fused = {}
    for node in model.nodes.values():
        call = calls.get(node.name)
        if call is None or call.kernel != "add" or len(node.inputs) != 2 or node.inputs[0] == node.inputs[1] \
                or any(shapes[source] != shapes[node.name] for source in node.inputs):
            continue
        best = None
        for index, source in enumerate(node.inputs):
            other = node.inputs[1 - index]
            if consumers[source] != [node.name] or source in outputs:
                continue
            target = _through_fold(source, consumers, folds, outputs)
            if target is None or calls.get(target) is None or calls[target].kernel != "conv" \
                    or position.get(other, -1) >= position[target]:
                continue
            if best is None or position[target] > position[best[1]]:
                best = (source, target)
        if best is not None:
            fused[node.name] = best
    return fused


def _fusable(model: Model, consumers: dict[str, list[str]], calls: dict[str, KernelCall],
             folds: dict[str, str], adds: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Activations (relu, relu6) that are the only reader of a convolution's
    or an add's output (batchnorm folded, add fused into a convolution, or
    neither), which is no model output: activation -> the node that applies
    it."""
    outputs = set(model.outputs.values())
    fused = {}
    for node in model.nodes.values():
        call = calls.get(node.name)
        if call is None or call.kernel not in _FUSABLE or len(node.inputs) != 1:
            continue
        source = node.inputs[0]
        if consumers[source] != [node.name] or source in outputs:
            continue
        target = adds[source][1] if source in adds else _through_fold(source, consumers, folds, outputs)
        if target is not None and calls.get(target) is not None and calls[target].kernel in _FUSING \
                and target not in fused.values():
            fused[node.name] = target
    return fused


def make_plan(model: Model, inputs: Mapping[str, Shape] | None = None, *, optimize: bool = True) -> Plan:
    """The plan of ``model`` (input shapes as declared, or ``inputs``).

    Raises :class:`CompileError` when the static analysis finds errors.
    With ``optimize``:

    - a batchnorm that alone reads a convolution's output is folded into the
      convolution's weights (:func:`kernels.fold_batch_norm`, once per
      weight load), as inference engines do;
    - an add of two tensors, one a convolution's output that only the add
      reads, is done by the convolution (``residual=...``, added to each
      block of the output while it is in cache) when the other tensor
      exists by then;
    - a relu or relu6 that alone reads a convolution's or an add's output
      (batchnorm folded, add fused, or not) is applied by that kernel
      (``activation=...``), on each block of the output while it is in
      cache;
    - kernels write in place where it is safe: the kernel supports it, its
      first input has the output's shape, and nothing sharing that input's
      memory (views: narrow, flatten, identity...; earlier in-place results)
      is read later, is a model output, or is a model input (the caller's
      arrays are never written).
    """
    analysis = analyze(model, inputs=inputs)
    if not analysis.ok or any(d.severity is Severity.ERROR for d in analysis.diagnostics):
        raise CompileError(model.name, analysis.diagnostics)
    shapes: dict[str, Shape] = {name: shape for name, shape in analysis.shapes.items() if shape is not None}
    nodes = [node for node in model.nodes.values() if not isinstance(node.spec, Input)]
    calls = {node.name: node.spec.kernel_call([shapes[source] for source in node.inputs]) for node in nodes}
    consumers = model.consumers()
    folds = _foldable(model, consumers, calls) if optimize else {}
    folded_by = {conv: bn for bn, conv in folds.items()}
    position = {node.name: index for index, node in enumerate(nodes)}
    adds = _fusable_adds(model, consumers, calls, folds, shapes, position) if optimize else {}
    activations = _fusable(model, consumers, calls, folds, adds) if optimize else {}
    fusions = {**{add: target for add, (_, target) in adds.items()}, **activations}
    activation_of = {target: calls[act].kernel for act, target in activations.items()}
    residual_of = {target: next(s for s in model.nodes[add].inputs if s != source)
                   for add, (source, target) in adds.items()}
    end = len(nodes)
    last_use: dict[str, int] = {name: -1 for name in model.nodes}
    for node in nodes:
        for source in node.inputs:
            last_use[source] = position[node.name]
    for node_name in model.outputs.values():
        last_use[node_name] = end

    parameters: list[tuple[str, Shape, str, int | None]] = []
    buffers: set[str] = set()
    layers: dict[str, Layer] = {}
    # Alias groups: values that may share one buffer.
    group: dict[str, int] = {}
    members: dict[int, list[str]] = {}
    external: set[int] = set()
    for index, name in enumerate(model.inputs):
        group[name] = -1 - index
        members[-1 - index] = [name]
        external.add(-1 - index)

    steps: list[Step] = []
    for index, node in enumerate(nodes):
        input_shapes = [shapes[source] for source in node.inputs]
        call = calls[node.name]
        buffer_shapes = node.spec.buffer_shapes(input_shapes)
        buffers |= {f"{node.name}.{tensor}" for tensor in buffer_shapes}
        tensors_shapes = {**node.spec.parameter_shapes(input_shapes), **buffer_shapes}
        weight_shape = tensors_shapes.get("weight")
        for tensor, shape in tensors_shapes.items():
            rule = call.init[tensor]
            fan_in = _fan_in(weight_shape) if rule.endswith("uniform") and weight_shape is not None else None
            parameters.append((f"{node.name}.{tensor}", tuple(shape), rule, fan_in))

        def keys(name: str, call: KernelCall = call) -> dict[str, str | None]:
            return {argument: None if tensor is None else f"{name}.{tensor}" for argument, tensor in call.tensors.items()}

        if call.tensors and node.name not in folds:
            fold = None
            if node.name in folded_by:
                bn = folded_by[node.name]
                bn_keys = keys(bn, calls[bn])
                fold = (tuple(bn_keys[a] for a in ("weight", "bias", "running_mean", "running_var")),
                        float(calls[bn].arguments["eps"]))
            layers[node.name] = (keys(node.name), call.pack, int(call.arguments.get("groups", 1)), fold)

        folded = node.name in folds or node.name in fusions
        first = adds[node.name][0] if node.name in adds else node.inputs[0]  # the input whose value it is
        writes = (optimize and not folded and _accepts_inplace(call.kernel)
                  and input_shapes[0] == shapes[node.name] and group[first] not in external
                  and all(last_use[m] <= index for m in members[group[first]]))
        if writes or call.view or folded:
            group[node.name] = group[first]
            members[group[first]].append(node.name)
        else:
            group[node.name] = index
            members[index] = [node.name]
        release = tuple(source for source in dict.fromkeys(node.inputs) if last_use[source] == index)
        if last_use[node.name] < index:  # never used, not an output
            release += (node.name,)
        arguments = dict(call.arguments)
        if node.name in activation_of:
            arguments["activation"] = activation_of[node.name]
        steps.append(Step(node=node.name, kernel=call.kernel, inputs=node.inputs, arguments=arguments,
                          has_tensors=bool(call.tensors) and not folded, inplace=writes, release=release,
                          span=node.span, shape=shapes[node.name], folded_into=folds.get(node.name),
                          fused_into=fusions.get(node.name), value_of=first if folded else None,
                          residual=residual_of.get(node.name)))
    return Plan(model=model, inputs={name: shapes[name] for name in model.inputs}, outputs=dict(model.outputs),
                shapes=shapes, steps=tuple(steps), parameters=tuple(parameters), buffers=frozenset(buffers),
                layers=layers, calls=calls, optimized=optimize)


class CompiledModel(NumpyModel):
    """A model run by the interpreter: ``forward`` calls each node's kernel
    in topological order and drops every value after its last use.

    The same kernels, initialisation and weight handling as a module
    written by ``archdsl export`` (which holds their source).
    """

    def __init__(self, plan: Plan, seed: int = 0, dtype: str = "float32", weights=None) -> None:
        self.plan = plan
        self.NAME = plan.model.name
        self.INPUTS = dict(plan.inputs)
        self.OUTPUTS = dict(plan.outputs)
        self.PARAMETERS = plan.parameters
        self.LAYERS = {node: (keys, None if pack is None else getattr(kernels, pack), groups, fold)
                       for node, (keys, pack, groups, fold) in plan.layers.items()}
        self._functions = {step.kernel: getattr(kernels, step.kernel) for step in plan.steps}
        self._plain: CompiledModel | None = None
        super().__init__(seed=seed, dtype=dtype, weights=weights)

    def forward(self, /, *inputs, **named):
        """Runs the model: one array, or a dict by output name."""
        values = self._run(self.bind_inputs(inputs, named))
        results = {name: np.ascontiguousarray(values[node]) for name, node in self.OUTPUTS.items()}
        return next(iter(results.values())) if len(results) == 1 else results

    def trace(self, /, *inputs, **named) -> dict[str, np.ndarray]:
        """Every node's value (inputs included), by node name, from the plan
        without optimisations: each value is the node's own, unfolded and
        never overwritten."""
        if not self.plan.optimized:
            return self._run(self.bind_inputs(inputs, named), keep=True)
        plain = self._plain
        if plain is None or plain._state is not self._state:
            plain = CompiledModel(make_plan(self.plan.model, self.plan.inputs, optimize=False), dtype=self.dtype,
                                  weights=self._state)
            plain._state = self._state
            self._plain = plain
        return plain.trace(*inputs, **named)

    def _run(self, arrays: list[np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = dict(zip(self.INPUTS, arrays))
        layers = self.layer_arguments()
        for step in self.plan.steps:
            if step.value_of is not None:  # folded or fused: computed by an earlier step
                values[step.node] = values[step.value_of]
            else:
                arguments = step.arguments
                if step.has_tensors:
                    arguments = {**layers[step.node], **arguments}
                if step.inplace:
                    arguments = {**arguments, "inplace": True}
                if step.residual is not None:
                    arguments = {**arguments, "residual": values[step.residual]}
                try:
                    values[step.node] = self._functions[step.kernel](*[values[s] for s in step.inputs], **arguments)
                except Exception as error:
                    raise RuntimeError(f"{step.span}: {step.node} ({step.kernel}) failed: {error}") from error
            if not keep:
                for name in step.release:
                    del values[name]
        return values


def compile(model, *, inputs: Mapping[str, Shape] | None = None, dtype: str = "float32", seed: int = 0,
            weights=None, optimize: bool = True) -> CompiledModel:
    """A runnable NumPy model of ``model`` (a :class:`~archdsl.Model`, or a
    loaded program with one model).

    ``inputs`` overrides input shapes (batch excluded), as in
    :func:`archdsl.analyze`; ``dtype`` is float32 or float64; weights come
    from ``seed`` (PyTorch's default initialisation) unless ``weights`` (a
    state dict or an .npz path) is given.  ``optimize=False`` runs every node
    as written (no batchnorm folding, no in-place writes).  Raises
    :class:`CompileError` when the model has errors.
    """
    if not isinstance(model, Model):
        model = model.model()
    return CompiledModel(make_plan(model, inputs, optimize=optimize), seed=seed, dtype=dtype, weights=weights)
