import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracewheel.agent.tasks.answers import first_mention, matches_price, mentions, mentions_number
from tracewheel.agent.tasksite.catalog import format_price


@pytest.mark.parametrize(
    "answer", ["$121.49", "It costs $ 121.49.", "121.49 USD", "The price is USD 121.49 each", "$121.490"]
)
def test_price_accepted(answer: str) -> None:
    assert matches_price(answer, 12149)


@pytest.mark.parametrize("answer", ["$12.49", "$121.49 or $99.00", "about 121", "", "1,214.90"])
def test_price_rejected(answer: str) -> None:
    assert not matches_price(answer, 12149)


def test_price_thousands_and_whole_dollars() -> None:
    assert matches_price("$1,200.50", 120050)
    assert matches_price("It is 12 dollars", 1200)


def test_mentions_is_whole_word_and_case_insensitive() -> None:
    assert mentions("The SKU is tw-5968.", "TW-5968")
    assert mentions("rating: 3.8 of 5", "3.8")
    assert not mentions("13.8", "3.8")
    assert not mentions("3.85", "3.8")
    assert mentions("22 left", "22")
    assert not mentions("122 left", "22")


def test_first_mention() -> None:
    options = ["Blue Oak Kettle", "Red Oak Kettle"]
    assert first_mention("red oak kettle, it is cheaper than the Blue Oak Kettle", options) == "Red Oak Kettle"
    assert first_mention("neither", options) is None


def test_mentions_number() -> None:
    assert mentions_number("It is rated 4 of 5", 4.0)
    assert mentions_number("4.0", 4.0)
    assert not mentions_number("14 left", 4.0)
    assert not mentions_number("none", 4.0)


@given(st.integers(min_value=0, max_value=10**8))
def test_a_formatted_price_always_matches_itself_only(cents: int) -> None:
    assert matches_price(format_price(cents), cents)
    assert matches_price(f"It costs {format_price(cents)}.", cents)
    assert not matches_price(format_price(cents + 1), cents)
