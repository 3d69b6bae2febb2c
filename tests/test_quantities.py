"""SI quantities ("4.2G") as budgets and the language write them.  Golden
values are the decimal SI prefixes (K = 10^3 ... T = 10^12), by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archdsl import syntax
from archdsl.config import ConfigError, parse_quantity
from archdsl.quantities import si_quantity


@pytest.mark.parametrize(("text", "expected"), [
    ("4.2G", 4_200_000_000), ("64M", 64_000_000), ("25_557K", 25_557_000), ("1T", 10**12), ("0.5K", 500),
])
def test_whole_quantities_are_exact_ints(text, expected):
    value = si_quantity(text)
    assert value == expected and isinstance(value, int)


def test_fractional_quantities_are_floats():
    assert si_quantity("0.0001K") == pytest.approx(0.1)
    assert isinstance(si_quantity("0.0001K"), float)


@pytest.mark.parametrize("text", ["xK", "K", "1..2M"])
def test_not_a_number_raises(text):
    with pytest.raises((ValueError, ZeroDivisionError)):
        si_quantity(text)


def test_budgets_use_it():
    assert parse_quantity("4.2G", "budget.macs") == 4_200_000_000
    with pytest.raises(ConfigError):
        parse_quantity("4.2Q", "budget.macs")


# Until syntax.py imports si_quantity, the language's own copy must agree.
@given(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
       st.sampled_from("KMGT"))
def test_the_language_reads_quantities_the_same_way(number, suffix):
    text = f"{number}{suffix}"
    assert si_quantity(text) == syntax._quantity(text)
