"""Tolerant matching of free-text final answers: case, currency formatting, surrounding words."""

from __future__ import annotations

import re

_MONEY = re.compile(r"(?P<dollar>\$\s*)?(?P<num>\d[\d,]*(?:\.\d+)?)")


def normalize_text(text: str) -> str:
    """Lower-case, punctuation (but not decimal points) to spaces, whitespace collapsed."""
    text = text.casefold()
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[^\w.]+|_", " ", text)
    return " ".join(text.split())


def mentions(answer: str, expected: str) -> bool:
    """Whether `expected` occurs in `answer` as whole words, after normalising both."""
    return _position(normalize_text(answer), normalize_text(expected)) >= 0


def mentions_number(answer: str, expected: float) -> bool:
    """Whether any number written in `answer` equals `expected` (so `4` matches `4.0`)."""
    return any(float(n.replace(",", "")) == expected for n in re.findall(r"\d[\d,]*(?:\.\d+)?", answer))


def first_mention(answer: str, options: list[str]) -> str | None:
    """The option mentioned earliest in `answer` (whole words), or None if none is."""
    text = normalize_text(answer)
    positions = [(pos, option) for option in options if (pos := _position(text, normalize_text(option))) >= 0]
    return min(positions)[1] if positions else None


def _position(text: str, phrase: str) -> int:
    if not phrase:
        return -1
    match = re.search(rf"(?<![\w.]){re.escape(phrase)}(?![\w]|\.\d)", text)
    return match.start() if match else -1


def money_amounts(answer: str) -> set[int]:
    """Amounts in cents written like money (`$12.50`, `12.50`, `USD 1,234.5`)."""
    amounts = set()
    for match in _MONEY.finditer(answer):
        number = match.group("num").replace(",", "")
        if match.group("dollar") or "." in number:
            amounts.add(round(float(number) * 100))
    return amounts


def matches_price(answer: str, expected_cents: int) -> bool:
    """Whether the answer states exactly this price and no other amount of money.

    A bare integer (`12`) counts only when no amount is written like money.
    """
    amounts = money_amounts(answer)
    if amounts:
        return amounts == {expected_cents}
    integers = {int(n.replace(",", "")) * 100 for n in re.findall(r"\d[\d,]*", answer)}
    return integers == {expected_cents}
