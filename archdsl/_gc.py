"""Pausing Python's cyclic garbage collector around the pipeline.

Parsing, elaboration and analysis allocate a great many small objects
(tokens, syntax nodes, layer nodes, shapes) and keep nearly all of them:
they make no garbage cycles worth collecting.  The collector does not know
that; it scans the young objects every few hundred allocations and,
periodically, the whole heap, which made a 100k-layer model take nearly
twice as long and scale worse than linearly.  The collector is paused for
the duration of one call and put back as it was after it, whether the call
returns or raises (calls nest: only the outermost one turns it back on);
the garbage it would have found is collected then.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector is off inside the block and, on leaving
    it by any road, exactly as on and off as it was on entering it (an
    application that turned it off keeps it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def paused_gc(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Runs ``function`` inside :func:`gc_paused`."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with gc_paused():
            return function(*args, **kwargs)

    return wrapper
