"""What an op's ``to_torch`` facet returns: its PyTorch lowering as text.

The PyTorch exporter (``archdsl/emit/torch_module.py``) writes a module
that imports torch; archdsl itself never does.  Each op says, next to its
other facets, which ``nn.Module`` holds its weights (a constructor
expression, or none for a stateless op) and what its line of ``forward``
calls.  Argument values reach that text only through :func:`literal`, the
``repr`` of validated values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class NoTorchLowering(Exception):
    """The op (with these arguments) has no PyTorch equivalent; the exporter
    reports it at the node's location."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(f"{op} has no PyTorch lowering: {reason}")
        self.op = op
        self.reason = reason


@dataclass(frozen=True)
class TorchLowering:
    """An op in a PyTorch module.

    ``call`` is a :meth:`str.format` template of the ``forward`` expression:
    ``{0}``, ``{1}``... are the inputs' variables, ``{inputs}`` all of them
    comma-separated, ``{module}`` the node's submodule (``self.layer1["0"]["conv1"]``).
    ``module`` is the submodule's constructor (``nn.Conv2d(3, 64, kernel_size=7)``),
    or None when the op is a stateless function call.  With ``parameter``,
    ``module`` builds an ``nn.Parameter`` that the parent module holds
    directly under the node's last name component (the op's unnamed tensor,
    whose state_dict key is the node's name).  Literal braces in either are
    doubled (:func:`literal` does it), so the templates format cleanly.
    """

    call: str
    module: str | None = None
    parameter: bool = False


def literal(value: Any) -> str:
    """Python source for a validated argument value, braces doubled for
    :meth:`str.format`: bools, ints, finite or infinite floats, strings,
    None and tuples of them."""
    if isinstance(value, float) and not math.isfinite(value):
        text = f"float({str(value)!r})"
    elif isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(value)
    elif isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    else:
        raise TypeError(f"cannot write {value!r} as a literal")
    return text.replace("{", "{{").replace("}", "}}")


#: Arguments PyTorch takes as an int or one value per spatial dimension.
_PER_DIMENSION = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size", "size",
                            "scale_factor"})


def keywords(values: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """``name=value, ...`` for the values that differ from PyTorch's
    ``defaults`` (a uniform per-dimension tuple such as ``(3, 3)`` is written as ``3``)."""
    defaults = defaults or {}
    parts = []
    for name, value in values.items():
        if name in _PER_DIMENSION and isinstance(value, tuple) and value and all(v == value[0] for v in value):
            value = value[0]
        if name in defaults and type(defaults[name]) is type(value) and defaults[name] == value:
            continue
        parts.append(f"{name}={literal(value)}")
    return ", ".join(parts)


def call(function: str, *positional: str, defaults: dict[str, Any] | None = None, **values: Any) -> str:
    """``function({0}, name=value, ...)``: a stateless call on the op's
    inputs (``positional`` are template fields such as ``"{0}"``), leaving
    out the values equal to the function's ``defaults``."""
    arguments = [*positional, keywords(values, defaults)] if values else list(positional)
    return f"{function}({', '.join(a for a in arguments if a)})"
