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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis import analyze
from ..diagnostics import Diagnostic, Severity
from ..elaborate import Limits
from ..graph import Model, Node
from ..ops import Input
from ..ops.base import KernelCall, OpSpec, Shape, state_key
from ..source import Span
from .budget import oversized_arguments
from .kernels import activation, merge, norm
from .kernels import conv as conv_kernels
from .kernels.shared import _product
from .module import NumpyModel
from .profile import NodeTime, Profile
from .schedule import PartsChoice, batch_parts, get_num_threads, head_start, one_blas_thread, run_parts, spans


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
    kernel: Callable[..., Any]
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
    #: The op kind (``conv2d``, ``silu``, ...), for profiles.
    kind: str = ""


@dataclass(frozen=True)
class Layer:
    """A layer's prepared tensors, as :class:`NumpyModel` takes them."""

    #: Kernel tensor argument -> state_dict key (None: the kernel gets None).
    tensors: dict[str, str | None]
    #: The kernel packing the weight once per weight load, or None.
    pack: Callable[..., Any] | None
    groups: int
    #: A batchnorm folded into the weights: ((weight, bias, running_mean,
    #: running_var keys), eps), or None.
    fold: tuple[tuple[str | None, ...], float] | None

    def row(self) -> tuple[dict[str, str | None], Callable[..., Any] | None, int,
                           tuple[tuple[str | None, ...], float] | None]:
        """The ``NumpyModel.LAYERS`` entry."""
        return self.tensors, self.pack, self.groups, self.fold


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
    #: Each value's last reader: its step index; ``len(steps)`` for a model
    #: output; -1 for a value nothing reads.
    last_use: dict[str, int]
    #: Multiply-accumulates per image (batch 1), from the static analysis.
    macs_per_image: int = 0
    #: The index of the head's first step (``schedule.head_start``): a batch
    #: cut into parts is joined before it.
    head: int = 0


def _fan_in(shape: Shape) -> int:
    """PyTorch's fan_in of a weight: ``shape[1]·prod(shape[2:])``."""
    return int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else int(shape[0])


def _accepts_inplace(kernel: Callable[..., Any]) -> bool:
    return "inplace" in inspect.signature(kernel).parameters


def _runs(call: KernelCall | None, *kernels_: Callable[..., Any]) -> bool:
    """Whether ``call`` calls one of ``kernels_``."""
    return call is not None and any(call.kernel is kernel for kernel in kernels_)


#: Activations that a convolution or an add applies itself, with the
#: ``activation=`` argument that asks for them.
_FUSABLE: dict[Callable[..., Any], str] = {
    kernel: kernel.__name__ for kernel in (activation.relu, activation.relu6, activation.silu, activation.sigmoid,
                                           activation.hardswish, activation.hardsigmoid)}
#: Kernels that take ``activation=``.
_FUSING = (conv_kernels.conv, merge.add)


@dataclass(frozen=True)
class Fusions:
    """What the optimised plan computes inside other kernels."""

    #: batchnorm -> the convolution whose weights it is folded into.
    folds: dict[str, str] = field(default_factory=dict)
    #: add -> (its input from a convolution, that convolution, which adds the other input).
    adds: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: activation -> the convolution or add that applies it.
    activations: dict[str, str] = field(default_factory=dict)

    def fused_into(self) -> dict[str, str]:
        return {**{add: target for add, (_, target) in self.adds.items()}, **self.activations}

    def value_of(self, node: str, inputs: tuple[str, ...]) -> str:
        """The input whose value a folded or fused ``node``'s value is (or
        the one a kernel may overwrite in place)."""
        return self.adds[node][0] if node in self.adds else inputs[0]


def _foldable(model: Model, consumers: dict[str, list[str]], calls: dict[str, KernelCall]) -> dict[str, str]:
    """Batchnorms (with running statistics) that are the only reader of a
    convolution's output, which is no model output: batchnorm -> conv."""
    outputs = set(model.outputs.values())
    folds = {}
    for node in model.nodes.values():
        call = calls.get(node.name)
        if call is None or not _runs(call, norm.batch_norm) or call.tensors.get("running_mean") is None:
            continue
        source = node.inputs[0]
        if _runs(calls.get(source), conv_kernels.conv) and consumers[source] == [node.name] and source not in outputs:
            folds[node.name] = source
    return folds


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
        if not _runs(calls.get(node.name), merge.add) or len(node.inputs) != 2 or node.inputs[0] == node.inputs[1] \
                or any(shapes[source] != shapes[node.name] for source in node.inputs):
            continue
        best = None
        for index, source in enumerate(node.inputs):
            other = node.inputs[1 - index]
            if consumers[source] != [node.name] or source in outputs:
                continue
            target = _through_fold(source, consumers, folds, outputs)
            if target is None or not _runs(calls.get(target), conv_kernels.conv) \
                    or position.get(other, -1) >= position[target]:
                continue
            if best is None or position[target] > position[best[1]]:
                best = (source, target)
        if best is not None:
            fused[node.name] = best
    return fused


def _fusable(model: Model, consumers: dict[str, list[str]], calls: dict[str, KernelCall],
             folds: dict[str, str], adds: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Activations (those of ``_FUSABLE``) that are the only reader of a convolution's
    or an add's output (batchnorm folded, add fused into a convolution, or
    neither), which is no model output: activation -> the node that applies
    it."""
    outputs = set(model.outputs.values())
    fused: dict[str, str] = {}
    for node in model.nodes.values():
        call = calls.get(node.name)
        if call is None or call.kernel not in _FUSABLE or len(node.inputs) != 1:
            continue
        source = node.inputs[0]
        if consumers[source] != [node.name] or source in outputs:
            continue
        target = adds[source][1] if source in adds else _through_fold(source, consumers, folds, outputs)
        if target is not None and _runs(calls.get(target), *_FUSING) and target not in fused.values():
            fused[node.name] = target
    return fused


def _fusions(model: Model, calls: dict[str, KernelCall], shapes: dict[str, Shape],
             position: dict[str, int]) -> Fusions:
    """Folding, then the adds fused into convolutions, then the activations
    fused into convolutions and adds (each step sees the ones before)."""
    consumers = model.consumers()
    folds = _foldable(model, consumers, calls)
    adds = _fusable_adds(model, consumers, calls, folds, shapes, position)
    return Fusions(folds, adds, _fusable(model, consumers, calls, folds, adds))


def _liveness(model: Model, nodes: list[Node]) -> dict[str, int]:
    """Each value's last reader (step index), ``len(nodes)`` for model
    outputs, -1 for values nothing reads."""
    last_use: dict[str, int] = {name: -1 for name in model.nodes}
    for index, node in enumerate(nodes):
        for source in node.inputs:
            last_use[source] = index
    for name in model.outputs.values():
        last_use[name] = len(nodes)
    return last_use


def _inplace_writes(model: Model, nodes: list[Node], shapes: dict[str, Shape], calls: dict[str, KernelCall],
                    fusions: Fusions, last_use: dict[str, int]) -> set[str]:
    """The nodes whose kernel may overwrite its first input: the kernel
    supports it, the input has the output's shape, and no value sharing the
    input's memory (alias group: views, earlier in-place results, folded and
    fused values) is read later, is a model output or is a model input."""
    group: dict[str, int] = {}
    #: The last step that reads any member of an alias group (linear time:
    #: a long chain of in-place steps is one group).
    last_read: dict[int, int] = {}
    for index, name in enumerate(model.inputs):
        group[name] = -1 - index
        last_read[-1 - index] = last_use[name]
    fused = fusions.fused_into()
    writes = set()
    for index, node in enumerate(nodes):
        call = calls[node.name]
        folded = node.name in fusions.folds or node.name in fused
        first = fusions.value_of(node.name, node.inputs)
        writes_here = (not folded and _accepts_inplace(call.kernel) and shapes[node.inputs[0]] == shapes[node.name]
                       and group[first] >= 0 and last_read[group[first]] <= index)
        if writes_here:
            writes.add(node.name)
        if writes_here or call.view or folded:
            group[node.name] = group[first]
            last_read[group[first]] = max(last_read[group[first]], last_use[node.name])
        else:
            group[node.name] = index
            last_read[index] = last_use[node.name]
    return writes


def _layer_tensors(nodes: list[Node], shapes: dict[str, Shape], calls: dict[str, KernelCall], folds: dict[str, str]
                   ) -> tuple[tuple[tuple[str, Shape, str, int | None], ...], frozenset[str], dict[str, Layer]]:
    """Every parameter and buffer (state_dict order), which are buffers, and
    each layer's tensor arguments (a folded batchnorm's go to its convolution)."""
    parameters: list[tuple[str, Shape, str, int | None]] = []
    buffers: set[str] = set()
    layers: dict[str, Layer] = {}
    folded_by = {conv: bn for bn, conv in folds.items()}

    def keys(name: str) -> dict[str, str | None]:
        return {argument: None if tensor is None else state_key(name, tensor)
                for argument, tensor in calls[name].tensors.items()}

    for node in nodes:
        input_shapes = [shapes[source] for source in node.inputs]
        call = calls[node.name]
        spec: OpSpec = node.spec
        buffer_shapes = spec.buffer_shapes(input_shapes)
        buffers |= {state_key(node.name, tensor) for tensor in buffer_shapes}
        tensors_shapes = {**spec.parameter_shapes(input_shapes), **buffer_shapes}
        weight_shape = tensors_shapes.get("weight")
        for tensor, shape in tensors_shapes.items():
            rule = call.init[tensor]
            fan_in = _fan_in(weight_shape) if rule.endswith("uniform") and weight_shape is not None else None
            parameters.append((state_key(node.name, tensor), tuple(shape), rule, fan_in))
        if call.tensors and node.name not in folds:
            fold = None
            if node.name in folded_by:
                bn = folded_by[node.name]
                bn_keys = keys(bn)
                fold = (tuple(bn_keys[a] for a in ("weight", "bias", "running_mean", "running_var")),
                        float(calls[bn].arguments["eps"]))
            layers[node.name] = Layer(keys(node.name), call.pack, int(call.arguments.get("groups", 1)), fold)
    return tuple(parameters), frozenset(buffers), layers


def _kernel_call(spec: OpSpec, inputs: list[Shape]) -> KernelCall:
    return spec.kernel_call(inputs)


def _analysed(model: Model, inputs: Mapping[str, Shape] | None) -> tuple[dict[str, Shape], int]:
    """Every value's shape and the multiply-accumulates per image."""
    analysis = analyze(model, inputs=inputs)
    if not analysis.ok or any(d.severity is Severity.ERROR for d in analysis.diagnostics):
        raise CompileError(model.name, analysis.diagnostics)
    return {name: shape for name, shape in analysis.shapes.items() if shape is not None}, int(analysis.totals.macs)


def make_plan(model: Model, inputs: Mapping[str, Shape] | None = None, *, optimize: bool = True) -> Plan:
    """The plan of ``model`` (input shapes as declared, or ``inputs``).

    Raises :class:`CompileError` when the static analysis finds errors.
    With ``optimize``:

    - a batchnorm that alone reads a convolution's output is folded into the
      convolution's weights (``kernels.norm.fold_batch_norm``, once per
      weight load), as inference engines do;
    - an add of two tensors, one a convolution's output that only the add
      reads, is done by the convolution (``residual=...``, added to each
      block of the output while it is in cache) when the other tensor
      exists by then;
    - a relu, relu6, silu, sigmoid, hardswish or hardsigmoid that alone
      reads a convolution's or an add's output
      (batchnorm folded, add fused, or not) is applied by that kernel
      (``activation=...``), on each block of the output while it is in
      cache;
    - kernels write in place where it is safe (:func:`_inplace_writes`; the
      caller's arrays are never written).
    """
    oversized = oversized_arguments(model, Limits().max_dimension)
    if oversized:
        raise CompileError(model.name, oversized)
    shapes, macs = _analysed(model, inputs)
    nodes = [node for node in model.nodes.values() if not isinstance(node.spec, Input)]
    calls = {node.name: _kernel_call(node.spec, [shapes[source] for source in node.inputs]) for node in nodes}
    position = {node.name: index for index, node in enumerate(nodes)}
    fusions = _fusions(model, calls, shapes, position) if optimize else Fusions()
    last_use = _liveness(model, nodes)
    inplace = _inplace_writes(model, nodes, shapes, calls, fusions, last_use) if optimize else set()
    parameters, buffers, layers = _layer_tensors(nodes, shapes, calls, fusions.folds)
    fused_into = fusions.fused_into()
    activation_of = {target: _FUSABLE[calls[act].kernel] for act, target in fusions.activations.items()}
    residual_of = {target: next(s for s in model.nodes[add].inputs if s != source)
                   for add, (source, target) in fusions.adds.items()}
    steps = []
    for index, node in enumerate(nodes):
        call = calls[node.name]
        folded = node.name in fusions.folds or node.name in fused_into
        release = tuple(source for source in dict.fromkeys(node.inputs) if last_use[source] == index)
        if last_use[node.name] < index:  # never used, not an output
            release += (node.name,)
        arguments = dict(call.arguments)
        if node.name in activation_of:
            arguments["activation"] = activation_of[node.name]
        steps.append(Step(node=node.name, kernel=call.kernel, inputs=node.inputs, arguments=arguments,
                          has_tensors=bool(call.tensors) and not folded, inplace=node.name in inplace,
                          release=release, span=node.span, shape=shapes[node.name],
                          folded_into=fusions.folds.get(node.name), fused_into=fused_into.get(node.name),
                          value_of=fusions.value_of(node.name, node.inputs) if folded else None,
                          residual=residual_of.get(node.name), kind=node.spec.kind()))
    return Plan(model=model, inputs={name: shapes[name] for name in model.inputs}, outputs=dict(model.outputs),
                shapes=shapes, steps=tuple(steps), parameters=parameters, buffers=buffers,
                layers=layers, calls=calls, optimized=optimize, last_use=last_use, macs_per_image=macs,
                head=head_start([_product(shapes[node.name]) for node in nodes]))


def _done_by(step: Step, steps: Mapping[str, Step]) -> str:
    """The node whose kernel computes a folded or fused ``step``."""
    while step.value_of is not None:
        step = steps[step.folded_into or step.fused_into or step.value_of]
    return step.node


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
        self.LAYERS = {node: layer.row() for node, layer in plan.layers.items()}
        self._plain: CompiledModel | None = None
        self._parts_choice = PartsChoice()
        #: The parts the latest forward pass ran in (1: whole).
        self.last_parts = 1
        super().__init__(seed=seed, dtype=dtype, weights=weights)

    def forward(self, /, *inputs, **named):
        """Runs the model: one array, or a dict by output name."""
        values = self._run(self.bind_inputs(inputs, named))
        results = {name: np.ascontiguousarray(values[node]) for name, node in self.OUTPUTS.items()}
        return next(iter(results.values())) if len(results) == 1 else results

    def profile(self, /, *inputs, **named) -> Profile:
        """Runs the model as :meth:`forward` does, timing each kernel call
        (``time.perf_counter``) and the whole pass: a :class:`Profile`
        (``.table()`` prints it; ``.output`` is what ``forward`` returns).
        Time one pass after a warm-up call: the first pass also allocates
        and touches memory for the first time."""
        started = time.perf_counter()
        times: dict[str, float] = {}
        values = self._run(self.bind_inputs(inputs, named), times=times)
        results = {name: np.ascontiguousarray(values[node]) for name, node in self.OUTPUTS.items()}
        output = next(iter(results.values())) if len(results) == 1 else results
        total = time.perf_counter() - started
        steps = {step.node: step for step in self.plan.steps}
        rows = tuple(NodeTime(step.node, step.kind, times.get(step.node, 0.0),
                              None if step.value_of is None else _done_by(step, steps))
                     for step in self.plan.steps)
        return Profile(rows, total, output)

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

    def _run(self, arrays: list[np.ndarray], keep: bool = False,
             times: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Every value the pass keeps (its outputs; all of them with ``keep``),
        by node.  A forward pass of several images whose batch is worth
        cutting may run as parts on the threads (``schedule``: where that
        measured faster); a traced or profiled pass runs whole."""
        batches = {array.shape[0] for array in arrays}
        if keep or times is not None or len(batches) != 1:
            return self._run_steps(dict(zip(self.INPUTS, arrays)), self.plan.steps, keep, times)
        batch = batches.pop()
        candidate = self.batch_parts(batch)
        parts = self._parts_choice.parts(batch, candidate)
        started = time.perf_counter()
        if parts > 1:
            values = self._run_parts(arrays, parts)
        else:
            values = self._run_steps(dict(zip(self.INPUTS, arrays)), self.plan.steps)
        self._parts_choice.record(batch, candidate, parts, time.perf_counter() - started)
        self.last_parts = parts
        return values

    def batch_parts(self, batch: int) -> int:
        """Into how many parts a forward pass may cut a batch of ``batch``
        images (1: it runs whole), on the threads set now (see ``schedule``;
        whether it does is measured: :meth:`parts_chosen`)."""
        if self.plan.head == 0:  # the head is everything: nothing to run in parts
            return 1
        return batch_parts(batch, self.plan.macs_per_image, get_num_threads())

    def parts_chosen(self, batch: int) -> int | None:
        """The parts that passes of ``batch`` images now run in, once their
        first passes have measured both ways (None before)."""
        return self._parts_choice.chosen(batch, self.batch_parts(batch))

    def _run_parts(self, arrays: list[np.ndarray], parts: int) -> dict[str, np.ndarray]:
        """The steps before the head on ``parts`` parts of the batch at once,
        one thread and one BLAS thread each; their values joined; the head
        on the whole batch."""
        cuts = spans(arrays[0].shape[0], parts)
        body, head = self.plan.steps[:self.plan.head], self.plan.steps[self.plan.head:]

        def run(part: int) -> dict[str, np.ndarray]:
            start, stop = cuts[part]
            return self._run_steps({name: array[start:stop] for name, array in zip(self.INPUTS, arrays)}, body)

        with one_blas_thread():
            results = run_parts(parts, run)
        inputs = dict(zip(self.INPUTS, arrays))
        values = {name: inputs[name] if name in inputs else np.concatenate([result[name] for result in results])
                  for name in results[0]}
        return self._run_steps(values, head) if head else values

    def _run_steps(self, values: dict[str, np.ndarray], steps: tuple[Step, ...], keep: bool = False,
                   times: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        layers = self.layer_arguments()
        for step in steps:
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
                    if times is None:
                        values[step.node] = step.kernel(*[values[s] for s in step.inputs], **arguments)
                    else:
                        started = time.perf_counter()
                        values[step.node] = step.kernel(*[values[s] for s in step.inputs], **arguments)
                        times[step.node] = time.perf_counter() - started
                except Exception as error:
                    raise RuntimeError(f"{step.span}: {step.node} ({step.kernel.__name__}) failed: {error}") from error
            if not keep:
                for name in step.release:
                    del values[name]
        self.release_arguments(layers)
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
