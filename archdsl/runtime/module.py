"""The base class of runnable models: weights by PyTorch's names, loading
and saving them, checking inputs.

``archdsl.compile`` returns a subclass whose ``forward`` interprets the
layer graph (``interpreter.py``); ``archdsl export`` writes a module that
contains this class's source verbatim and a subclass whose ``forward`` is
one line per layer.  Only NumPy is used.
"""

import numpy as np

from .init import initial_state
from .kernels.norm import fold_batch_norm


class NumpyModel:
    """A model that runs with NumPy alone.

    Weights have PyTorch's state_dict keys and layouts, so a PyTorch
    ``state_dict`` saved with NumPy loads as it is::

        np.savez("w.npz", **{k: v.numpy() for k, v in torch_model.state_dict().items()})
        model.load("w.npz")

    Inputs are ``[N, C, *spatial]`` arrays (any batch size N); with one
    output, ``model(x)`` returns an array, with several a dict by output
    name.
    """

    #: The model's name in its .cnn file.
    NAME = "Model"
    #: Input name -> shape without the batch dimension, in argument order.
    INPUTS: dict = {}
    #: Output name -> the node whose value it is.
    OUTPUTS: dict = {}
    #: (state_dict key, shape, initialisation, fan_in) of every parameter and buffer.
    PARAMETERS: tuple = ()
    #: Node -> ({kernel tensor argument: state_dict key or None}, packing function or None, groups,
    #: batchnorm folded into the weights or None: ((weight, bias, running_mean, running_var keys), eps)).
    LAYERS: dict = {}

    def __init__(self, seed=0, dtype="float32", weights=None):
        """Weights initialised from ``seed`` (PyTorch's default scheme), or
        loaded from ``weights`` (a state dict, or the path of an .npz file);
        ``dtype`` is float32 or float64."""
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, not {dtype}")
        self.dtype = dtype
        #: Scratch dicts of finished passes, for the next ones (see layer_arguments).
        self._free_scratch = []
        if weights is None:
            self._state = initial_state(self.PARAMETERS, seed, dtype)
            self.layers = self._prepare()
        elif isinstance(weights, dict):
            self.load_state_dict(weights)
        else:
            self.load(weights)

    def __repr__(self):
        count = sum(value.size for value in self._state.values())
        return f"<{self.NAME}: {count:,} weights, {self.dtype}>"

    def __call__(self, /, *inputs, **named):
        """Runs the model on its inputs, given in order or by name."""
        if named:
            inputs = self.bind_inputs(inputs, named)
        return self.forward(*inputs)

    def forward(self, /, *inputs):
        raise NotImplementedError

    # ------------------------------------------------------------- weights

    def state_dict(self):
        """A copy of every parameter and buffer, by PyTorch state_dict key."""
        return {key: value.copy() for key, value in self._state.items()}

    def load_state_dict(self, state):
        """Replaces every weight; ``state`` must have exactly the model's keys
        and shapes (values are converted to the model's dtype).  Raises
        ValueError naming every missing, unexpected or misshapen key."""
        expected = {key: (tuple(shape), rule) for key, shape, rule, _ in self.PARAMETERS}
        problems = [f"missing key {key!r} (shape {list(shape)})"
                    for key, (shape, _) in expected.items() if key not in state]
        problems += [f"unexpected key {key!r}" for key in state if key not in expected]
        loaded: dict = {}
        for key, (shape, rule) in expected.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if value.dtype.kind not in "fiu":
                problems.append(f"{key!r} holds {value.dtype} values; numbers are needed")
            elif value.shape != shape:
                problems.append(f"size mismatch for {key!r}: the weights have shape {list(value.shape)}, "
                                f"the model expects {list(shape)}")
            else:
                loaded[key] = np.array(value, dtype=np.int64 if rule == "count" else self.dtype)
        if problems:
            raise ValueError(f"cannot load these weights into {self.NAME}:\n  " + "\n  ".join(problems))
        self._state = loaded
        self.layers = self._prepare()

    def load(self, path):
        """Loads an .npz file of arrays named by state_dict key (read with
        ``allow_pickle=False``); returns the model."""
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise ValueError(f"{path}: not an .npz archive of named arrays")
        with archive:
            state = {}
            for key in archive.files:
                try:
                    state[key] = archive[key]
                except ValueError as error:
                    raise ValueError(f"{path}: cannot read {key!r}: {error}") from None
        self.load_state_dict(state)
        return self

    def save(self, path):
        """Writes every weight to an .npz file (``numpy.savez``), by
        state_dict key."""
        with open(path, "wb") as handle:
            np.savez(handle, **self._state)

    def _prepare(self):
        """Each layer's tensor arguments, computed once per weight load: a
        following batchnorm folded in, weights (and the bias) packed for the
        kernel."""
        layers = {}
        for node, (tensors, pack, groups, fold) in self.LAYERS.items():
            arguments = {name: None if key is None else self._state[key] for name, key in tensors.items()}
            if fold is not None:
                keys, eps = fold
                bn_weight, bn_bias, mean, var = (None if key is None else self._state[key] for key in keys)
                arguments["weight"], arguments["bias"] = fold_batch_norm(
                    arguments["weight"], arguments["bias"], bn_weight, bn_bias, mean, var, eps=eps)
            if pack is not None:
                arguments["packed"] = pack(arguments["weight"], groups, arguments.get("bias"))
            layers[node] = arguments
        return layers

    def layer_arguments(self):
        """The layers' tensor arguments for one forward pass: the convolutions
        share one scratch dict, so one im2col buffer serves them all.  The
        dict is one of the model's free ones (a new one when none is free: one
        per concurrent call, so calls stay independent), which
        :meth:`release_arguments` gives back at the end of the pass: its
        buffers then serve the next pass instead of being allocated, and
        page-faulted in, again (RegNetX-400MF at batch 1: 2,400 page faults,
        some 15% of its time, on every pass)."""
        try:
            scratch = self._free_scratch.pop()
        except IndexError:  # none free (list.pop is atomic: no check-then-pop race)
            scratch = {}
        return {node: {**arguments, "scratch": scratch} if "packed" in arguments else arguments
                for node, arguments in self.layers.items()}

    def release_arguments(self, arguments):
        """Gives the scratch dict of ``arguments`` (from :meth:`layer_arguments`)
        back to the model for the next pass; the pass must not use it again."""
        scratch = next((layer["scratch"] for layer in arguments.values() if "scratch" in layer), None)
        if scratch is not None:
            self._free_scratch.append(scratch)

    # -------------------------------------------------------------- inputs

    def check_input(self, name, value):
        """``value`` as an array of the model's dtype, after checking that it
        is numeric and shaped ``[N, *INPUTS[name]]``."""
        array = np.asarray(value)
        expected = tuple(self.INPUTS[name])
        if array.dtype.kind not in "fiu":
            raise ValueError(f"input {name!r} must hold numbers, not {array.dtype} values")
        if array.shape[1:] != expected or array.ndim != len(expected) + 1 or array.shape[0] < 1:
            hint = " (add the batch dimension: x[None])" if array.shape == expected else ""
            wanted = ", ".join(str(d) for d in expected)
            raise ValueError(f"input {name!r} must have shape [N, {wanted}] with a batch of N >= 1, "
                             f"got {list(array.shape)}{hint}")
        return array.astype(self.dtype, copy=False)

    def bind_inputs(self, inputs, named):
        """Positional and keyword inputs as one checked array per input, in
        ``INPUTS`` order."""
        names = list(self.INPUTS)
        if len(inputs) > len(names):
            raise TypeError(f"{self.NAME} takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}")
        given = dict(zip(names, inputs))
        for name, value in named.items():
            if name not in self.INPUTS:
                raise TypeError(f"{self.NAME} has no input {name!r} (its inputs: {', '.join(names)})")
            if name in given:
                raise TypeError(f"input {name!r} given twice")
            given[name] = value
        missing = [name for name in names if name not in given]
        if missing:
            raise TypeError(f"{self.NAME} is missing input(s) {', '.join(missing)}")
        return [self.check_input(name, given[name]) for name in names]
