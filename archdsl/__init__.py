"""archdsl: a textual CNN architecture language with static analysis.

>>> import archdsl
>>> program = archdsl.loads('''
... model Tiny {
...     input image: [3, 32, 32]
...     image -> conv1: conv2d(16, 3, padding=1) -> relu
... }''')
>>> program.ok, list(program.model().nodes)
(True, ['image', 'conv1', 'relu_1'])

``loads``/``load`` elaborate; shape errors, lint rules and ``expect``
statements come from analysis.  :func:`check` does all of it, as
``archdsl check`` does:

>>> [d.code for d in archdsl.check("model M { input x: [3, 4, 4]  x -> conv2d(8, 7) }").diagnostics]
['E401']
"""

from .analysis import Analysis, analyze
from .checking import FileReport, check
from .diagnostics import Diagnostic, Severity
from .elaborate import Limits, Program, load, loads
from .graph import BlockInstance, Model, Node

__version__ = "0.1.0"

__all__ = ["Analysis", "analyze", "BlockInstance", "check", "compile", "Diagnostic", "FileReport", "Limits", "Model",
           "Node", "Program", "Severity", "load", "loads"]


def compile(model, **options):
    """A runnable NumPy model: ``archdsl.compile(model)(x)``.  See
    :func:`archdsl.runtime.compile` for the options (``inputs``, ``dtype``,
    ``seed``, ``weights``).  NumPy is imported only when this is called."""
    from .runtime import compile as compile_model

    return compile_model(model, **options)
