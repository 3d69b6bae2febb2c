"""Running models with NumPy: kernels (the single implementation of every
op), seeded initialisation, the weight-handling base class and the graph
interpreter.  ``archdsl.compile(model)`` is the entry point;
``archdsl export`` writes the same thing as a standalone module
(``archdsl/emit/numpy_module.py``)."""

from .interpreter import CompiledModel, CompileError, Plan, Step, compile, make_plan
from .module import NumpyModel
from .schedule import get_num_threads, set_num_threads

__all__ = ["CompiledModel", "CompileError", "NumpyModel", "Plan", "Step", "compile", "get_num_threads", "make_plan",
           "set_num_threads"]
