"""Hints and notes shared by every stage: a misspelt name's closest
candidate, and the chain of block uses that led to a mistake."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..source import Span
from .model import Label


def did_you_mean(name: str, candidates: Iterable[str], fits: Callable[[str], bool] | None = None,
                 why: str = "") -> str | None:
    """The hint "did you mean 'relu'?" for the closest candidate, if one is close enough.

    With ``fits``, a close candidate that fits the use is preferred to a
    closer one that does not (``batchnorm`` on a [C, H, W] input is
    ``batchnorm2d``, not the equally close ``batchnorm1d``); ``why`` says what it
    fits ("(the input is [16, 8, 8])") when the use ruled out a close one."""
    import difflib  # only when there is a mistake to explain

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=8, cutoff=0.6)
    if not close:
        return None
    if fits is not None:
        fitting = [candidate for candidate in close if fits(candidate)]
        if fitting and len(fitting) < len(close):  # the use decided: say why
            return f"did you mean '{fitting[0]}'{' ' + why if why else ''}?"
        if fitting:
            return f"did you mean '{fitting[0]}'?"
    return f"did you mean '{close[0]}'?"


def block_uses(uses: Iterable[tuple[str, Span]], primary: Span | None = None) -> list[Label]:
    """One label per block use that led to a mistake in a block's body,
    innermost first: "in this use of block Up" at ``Up(64, skip=e1)``, then
    the use of the block that wrote that call, and so on out to the model.
    ``uses`` runs innermost first; a use at the mistake's own span is left out."""
    return [Label(span, f"in this use of block {block}") for block, span in uses if span != primary]
