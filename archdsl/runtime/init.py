"""Deterministic initial weights: PyTorch's default initialisation, seeded.

Each tensor draws from its own generator, seeded by the model seed and the
tensor's state_dict key, so a tensor's initial values depend on nothing
else: adding a layer does not change the others.  The source of these
functions is copied into modules written by ``archdsl export``, so the
library and an exported module give identical weights for one seed.
"""

import numpy as np


def tensor_rng(seed, key):
    """The random generator of the tensor named ``key`` under ``seed``."""
    data = key.encode("utf-8")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(len(data), *data)))


def initial_tensor(key, shape, rule, fan_in, seed, dtype):
    """One parameter or buffer as PyTorch's layers initialise it:

    - ``kaiming_uniform`` (conv, transposed conv, linear weight):
      ``U(-b, b)`` with ``b = gain·sqrt(3/fan_in)``, ``gain = sqrt(2/(1 + a^2))``,
      ``a = sqrt(5)``, that is ``b = 1/sqrt(fan_in)``
      (``torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))``);
    - ``fan_in_uniform`` (their bias): ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
      with the weight's fan_in (``weight.shape[1]·prod(weight.shape[2:])``);
    - ``ones``, ``zeros``: normalisation weight and bias, running_var and
      running_mean;
    - ``count``: ``num_batches_tracked``, an int64 zero;
    - ``constant=<v>``: every element ``v`` (PReLU's slopes, 0.25; a layer
      scale's initial value).

    Values are drawn in float64 and rounded to ``dtype``.
    """
    if rule == "count":
        return np.zeros(shape, np.int64)
    if rule == "ones":
        return np.ones(shape, dtype)
    if rule == "zeros":
        return np.zeros(shape, dtype)
    if rule.startswith("constant="):
        return np.full(shape, float(rule[len("constant="):]), dtype)
    if rule in ("kaiming_uniform", "fan_in_uniform"):
        bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
        return tensor_rng(seed, key).uniform(-bound, bound, size=shape).astype(dtype)
    raise ValueError(f"unknown initialisation {rule!r} for {key}")


def initial_state(parameters, seed=0, dtype="float32"):
    """Every tensor of ``parameters`` (``(key, shape, rule, fan_in)`` rows)
    initialised, in order: a state dict."""
    dtype = np.dtype(dtype)
    return {key: initial_tensor(key, tuple(shape), rule, fan_in, seed, dtype)
            for key, shape, rule, fan_in in parameters}


def trained_like(state, seed=0):
    """``state`` (a state dict) with weights at a trained network's scale,
    for tests and benchmarks: He-normal conv and linear weights
    (``N(0, 2/fan_in)``, which keeps signals alive through deep nets),
    normalisation weights ``1 + N(0, 0.1)``, biases and running means
    ``N(0, 0.1)``, running variances ``U(0.5, 1.5)``.  PyTorch's default
    initialisation shrinks activations layer after layer, so a deep net's
    output would be just its last bias: a weak check, and unlike real
    inference.  Values keep each tensor's dtype."""
    generator = np.random.default_rng(seed)
    result = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            result[key] = value
        elif key.endswith("running_var"):
            result[key] = generator.uniform(0.5, 1.5, value.shape)
        elif value.ndim > 1:
            result[key] = generator.normal(0.0, np.sqrt(2.0 / np.prod(value.shape[1:])), value.shape)
        else:
            result[key] = generator.normal(0.0, 0.1, value.shape) + (1.0 if key.endswith(".weight") else 0.0)
    return {key: np.asarray(value, dtype=state[key].dtype) for key, value in result.items()}
