"""Numbers written with an SI suffix, as budgets and ``expect`` take them:
``4.2G``, ``64M``, ``25_557K``."""

from __future__ import annotations

from fractions import Fraction

#: The suffixes a quantity may end with.
SI_SUFFIXES = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def si_quantity(text: str) -> int | float:
    """``4.2G`` -> 4200000000: exact (an int) when the result is whole.
    Raises ValueError (or ZeroDivisionError) when the number part is not one."""
    value = Fraction(text[:-1].replace("_", "")) * SI_SUFFIXES[text[-1]]
    return int(value) if value.denominator == 1 else float(value)
