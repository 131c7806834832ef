"""rag_core.analysis.numbers.parse_number: every form dashboards, partner JSON and OCR write, and what it refuses."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_core.analysis.numbers import COUNT_CHARS, VALUE_CHARS, NumberFormatError, NumberKind, parse_number


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        # money: currency marks (half- and full-width yen), separators, 円, 万 / 億
        ("¥1,234,567", "money", 1_234_567),
        ("￥1,234,567", "money", 1_234_567),
        ("￥12.3万", "money", 123_000),
        ("¥123.4万", "money", 1_234_000),
        ("150000円", "money", 150_000),
        ("1,234円", "money", 1_234),
        ("JPY 150000", "money", 150_000),
        ("$12.50", "money", 12.5),
        ("3.4億", "money", 340_000_000),
        ("1億2000万", "money", 120_000_000),
        ("5千", "money", 5_000),
        ("1.13万", "money", 11_300),
        # counts: 万, K / M / B, unit words, capped counts
        ("1.2万", "number", 12_000),
        ("12.5K", "number", 12_500),
        ("12.5k", "number", 12_500),
        ("1.2M", "number", 1_200_000),
        ("2B", "number", 2_000_000_000),
        ("3,200人", "number", 3_200),
        ("1.2万人", "number", 12_000),
        ("1万+", "number", 10_000),
        ("42件", "number", 42),
        ("7個", "number", 7),
        ("1200", "number", 1_200),
        ("+5", "number", 5),
        # full-width digits, separators and signs
        ("１２０", "number", 120),
        ("３，２００人", "number", 3_200),
        ("１２.５％", "percent", 12.5),
        ("\u3000１２３\u3000", "number", 123),
        ("￥１，２３４，５６７", "money", 1_234_567),
        ("１.２万", "number", 12_000),
        ("３.４億", "money", 340_000_000),
        ("１２.５Ｋ", "number", 12_500),
        ("１.２Ｍ", "number", 1_200_000),
        ("１：２３：４５", "duration", 5_025),
        ("１２分３０秒", "duration", 750),
        # percent stays in percent units
        ("12.5%", "percent", 12.5),
        ("0.91%", "percent", 0.91),
        ("0.125", "percent", 0.125),
        ("0.1234567%", "percent", 0.123457),
        # durations become seconds
        ("1:23:45", "duration", 5_025),
        ("12:30", "duration", 750),
        ("01:23", "duration", 83),
        ("12分30秒", "duration", 750),
        ("3分0秒", "duration", 180),
        ("52秒", "duration", 52),
        ("1時間5分", "duration", 3_900),
        ("2時間44分", "duration", 9_840),
        ("1h 5m", "duration", 3_900),
        ("83", "duration", 83),
        ("12分30秒", "number", 750),  # a duration is recognised whatever the kind
    ],
)
def test_forms(text: str, kind: NumberKind, expected: float) -> None:
    assert parse_number(text, kind) == expected


@pytest.mark.parametrize("text", ["", "  ", "-", "--", "—", "–", "n/a", "N/A", "na", "none", "null", "なし", "ー"])
def test_empty_markers_are_none(text: str) -> None:
    assert parse_number(text, "number") is None
    assert parse_number(text, "money") is None


def test_none_and_numbers_pass_through() -> None:
    assert parse_number(None) is None
    assert parse_number(42) == 42.0
    assert parse_number(3.5, "percent") == 3.5
    assert parse_number(83, "duration") == 83.0


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("abc", "number"),
        ("12..5", "number"),
        ("1,2a", "number"),
        ("万", "number"),
        ("¥", "money"),
        ("12万万", "number"),
        ("1.2.3", "number"),
        ("%", "percent"),
        ("12%", "duration"),
        ("abc", "duration"),
        ("9" * 400, "number"),  # would be float('inf')
        (True, "number"),
        (False, "number"),
        (math.nan, "number"),
        (math.inf, "money"),
        ([1], "number"),
        ({"v": 1}, "number"),
        (b"12", "number"),
    ],
)
def test_garbage_raises(value: object, kind: NumberKind) -> None:
    with pytest.raises(NumberFormatError):
        parse_number(value, kind)


def test_error_is_a_value_error() -> None:
    """Callers that catch ValueError (pydantic validators) keep working."""
    assert issubclass(NumberFormatError, ValueError)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans()))
def test_never_crashes_otherwise(value: object) -> None:
    for kind in ("number", "money", "percent", "duration"):
        try:
            result = parse_number(value, kind)  # type: ignore[arg-type]
        except NumberFormatError:
            continue
        assert result is None or math.isfinite(result)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_formatted_integers_round_trip(n: int) -> None:
    assert parse_number(f"{n:,}") == n
    assert parse_number(f"¥{n:,}", "money") == n
    assert parse_number(f"￥{n:,}", "money") == n
    assert parse_number(f"{n:,}円", "money") == n
    assert parse_number(f"{n}万", "number") == n * 10_000
    # one decimal of 万, as dashboards abbreviate: 1234.5万 == 12,345,000 exactly
    assert parse_number(f"{n // 10}.{n % 10}万", "number") == n * 1_000
    fullwidth = f"{n:,}".translate(str.maketrans("0123456789,", "０１２３４５６７８９，"))
    assert parse_number(fullwidth) == n


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=9), st.booleans())
def test_one_decimal_with_a_suffix_round_trips(whole: int, tenth: int, fullwidth: bool) -> None:
    """12.5K, 1.2M, 3.4億, 12.3万 and 12.5% at any size, in half- or full-width digits, are exact."""
    text = f"{whole}.{tenth}"
    if fullwidth:
        text = text.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))
    tenths = whole * 10 + tenth
    assert parse_number(f"{text}K") == tenths * 100
    assert parse_number(f"{text}M") == tenths * 100_000
    assert parse_number(f"{text}万") == tenths * 1_000
    assert parse_number(f"￥{text}万", "money") == tenths * 1_000
    assert parse_number(f"{text}億", "money") == tenths * 10_000_000
    assert parse_number(f"{text}%", "percent") == float(f"{whole}.{tenth}")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=59), st.integers(0, 59))
def test_durations_round_trip(hours: int, minutes: int, seconds: int) -> None:
    """Clock and Japanese durations give seconds, whatever kind the caller asked for."""
    total = hours * 3600 + minutes * 60 + seconds
    assert parse_number(f"{hours}:{minutes:02d}:{seconds:02d}", "duration") == total
    assert parse_number(f"{hours}:{minutes:02d}:{seconds:02d}", "number") == total
    assert parse_number(f"{minutes}分{seconds}秒", "duration") == minutes * 60 + seconds
    assert parse_number(f"{hours}時間{minutes}分{seconds}秒", "number") == total


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.887", 1_887),  # a comma read as a point: counts and yen are whole
        ("1.234.567", 1_234_567),
        ("¥12.345", 12_345),
        ("1.7K", 1_700),  # with a multiplier the point is a decimal point (the 100x overlay bug)
        ("45.4K", 45_400),
        ("1.2万", 12_000),
        ("12.5", 12.5),  # not three digits after the point: left alone
    ],
)
def test_whole_numbers_read_a_point_before_three_digits_as_a_separator(text: str, expected: float) -> None:
    assert parse_number(text, "number", whole=True) == expected
    assert parse_number("1.887", "number") == 1.887  # only when the caller says the value is whole


@pytest.mark.parametrize(
    "text",
    [
        "1,234",
        "1.2万",
        "3億",
        "12.5K",
        "1.2M",
        "１，２３４",
        "¥1,234",
        "￥1,234",
        "1,234円",
        "1万+",
        "2B",
        "5千",
        "1兆",
    ],
)
def test_ocr_character_sets_hold_every_notation(text: str) -> None:
    """An OCR whitelist from COUNT_CHARS / VALUE_CHARS can write every notation the grammar reads."""
    folded = unicodedata.normalize("NFKC", text)
    assert set(folded) <= set(VALUE_CHARS), set(folded) - set(VALUE_CHARS)
    if not any(mark in folded for mark in "¥￥円"):
        assert set(folded) <= set(COUNT_CHARS), set(folded) - set(COUNT_CHARS)
    assert parse_number(text, "money" if "¥" in folded or "円" in folded else "number") is not None
