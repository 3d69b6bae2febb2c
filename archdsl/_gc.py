"""Pausing Python's cyclic garbage collector around the pipeline.

Parsing, elaboration and analysis allocate a great many small objects
(tokens, syntax nodes, layer nodes, shapes) and keep nearly all of them:
they make no garbage cycles worth collecting.  The collector does not know
that; it scans the young objects every few hundred allocations and,
periodically, the whole heap, which made a 100k-layer model take nearly
twice as long and scale worse than linearly.  The collector is paused for
the duration of one call and resumed after it (by the outermost call when
they nest); the garbage it would have found is collected then.
"""

from __future__ import annotations

import functools
import gc


def paused_gc(function):
    """Runs ``function`` with the cyclic garbage collector paused."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():  # already paused by an outer call, or by the application
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper
