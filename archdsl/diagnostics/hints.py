"""Hints shared by every stage that reports a misspelt name."""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The hint "did you mean 'relu'?" for the closest candidate, if one is close enough."""
    import difflib  # only when there is a mistake to explain

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
