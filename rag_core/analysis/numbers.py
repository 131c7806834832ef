"""Turn the numbers people and dashboards write into floats.

TikTok dashboards, partner JSON and OCR all write numbers for humans:
``￥1,234,567``, ``12.3万``, ``3.4億``, ``12.5%``, ``1:23:45``, ``12分30秒``,
full-width digits, ``12.5K``, ``1.2M``. The old service turned these into 0
silently; here every form is understood, and anything else raises
``NumberFormatError`` so the caller can reject or null the field with a reason.

This is the one number grammar of the project: the screenshot reader, the
overlay reader and the JSON paths all parse with :func:`parse_number`, and
OCR engines are limited to :data:`COUNT_CHARS` / :data:`VALUE_CHARS`, which
hold every character the grammar accepts (a whitelist without ``K`` turns
``1.7K`` into ``1.7`` and then into 17).
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal
from typing import Literal

NumberKind = Literal["number", "money", "percent", "duration"]

# Every character a count/amount may be written with, as OCR sees it (NFKC-folded, so full-width
# digits arrive as ASCII): digits, separators, multipliers and the "+" of a capped "1万+".
COUNT_CHARS = "0123456789,.万億千兆KkMmBb+"
# ... and of any dashboard value: currency marks, percent, the unit words and duration forms.
VALUE_CHARS = COUNT_CHARS + "%¥￥$円人件個回時間分秒:-"
# Whole numbers (counts, yen) without a multiplier: "1.234" is a misread or European "1,234".
_DOT_THOUSANDS = re.compile(r"(?<=\d)\.(?=\d{3}(?!\d))")

_EMPTY = {"", "-", "--", "—", "–", "n/a", "na", "none", "null", "なし", "ー"}
_UNIT_WORDS = re.compile(r"(円|jpy|yen|usd|人|名|件|個|回|点|枚|本|つ|pcs|views?|likes?)$", re.IGNORECASE)
_CURRENCY_PREFIX = re.compile(r"^(¥|\$|jpy|usd|€)\s*", re.IGNORECASE)
# Decimal arithmetic: "12345.6万" must be exactly 123456000, which float multiplication misses.
_MULTIPLIERS = {
    k: Decimal(10) ** e for k, e in (("千", 3), ("万", 4), ("億", 8), ("兆", 12), ("k", 3), ("m", 6), ("b", 9))
}
_NUMBER = r"[+-]?\d+(?:\.\d+)?"
_COMPOUND = re.compile(rf"({_NUMBER})\s*(千|万|億|兆|[kKmMbB])?")
_CLOCK = re.compile(r"^(\d+):([0-5]?\d)(?::([0-5]?\d))?$")
_JP_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)\s*(?:時間|h|hr|hours?))?\s*(?:(\d+(?:\.\d+)?)\s*(?:分|m|min|mins|minutes?))?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*(?:秒|s|sec|secs|seconds?))?$",
    re.IGNORECASE,
)


class NumberFormatError(ValueError):
    """The text is not a number in any form we understand."""


def _clean(text: str) -> str:
    # NFKC folds full-width digits, ％, ，, and ￥ (U+FFE5 -> ¥ is not folded, so map it).
    s = unicodedata.normalize("NFKC", text).replace("￥", "¥").replace("\u00a5", "¥")
    s = s.strip().replace(" ", "").replace("\u3000", "")
    s = s.replace(",", "").replace("、", "")
    return s


def _parse_duration(s: str) -> float | None:
    m = _CLOCK.match(s)
    if m:
        a, b, c = m.groups()
        if c is None:  # mm:ss
            return int(a) * 60 + int(b)
        return int(a) * 3600 + int(b) * 60 + int(c)
    m = _JP_DURATION.match(s)
    if m and any(m.groups()):
        h, mi, se = (float(g) if g else 0.0 for g in m.groups())
        return h * 3600 + mi * 60 + se
    return None


def parse_number(value: object, kind: NumberKind = "number", *, whole: bool = False) -> float | None:
    """Parse ``value`` into a float (``None`` for empty markers such as ``-`` or ``""``).

    ``whole`` says the value is a count or a yen amount, never a fraction: then, when no
    multiplier follows, a ``.`` before exactly three digits is a thousands separator (OCR
    reads a small comma as a point: ``1.887`` -> 1887), while ``1.7K`` stays 1700.
    ``kind`` only changes what extra forms are accepted: ``percent`` returns the
    percentage itself (``"12.5%"`` -> 12.5), ``duration`` returns seconds
    (``"1:23:45"`` -> 5025, ``"12分30秒"`` -> 750, and a bare ``"83"`` is 83 seconds,
    as the number 83 is). Raises NumberFormatError otherwise, also for a result
    too large to be finite (``"9" * 400``).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise NumberFormatError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise NumberFormatError(f"not a finite number: {value!r}")
        return f
    if not isinstance(value, str):
        raise NumberFormatError(f"not a number: {value!r}")

    s = _clean(value)
    if s.lower() in _EMPTY:
        return None
    if kind == "duration" or _CLOCK.match(s) or re.search(r"[時分秒]", s):
        seconds = _parse_duration(s)
        if seconds is not None:
            return float(seconds)
        if kind == "duration" and not re.fullmatch(_NUMBER, s):
            raise NumberFormatError(f"not a duration: {value!r}")

    s = _CURRENCY_PREFIX.sub("", s)
    s = s.removesuffix("%")
    if whole and not re.search(r"[千万億兆kKmMbB]", s):
        s = _DOT_THOUSANDS.sub("", s)
    while True:  # "150000円", "3200人", "12.5万人"
        stripped = _UNIT_WORDS.sub("", s)
        if stripped == s:
            break
        s = stripped
    s = s.removesuffix("+")  # "1万+" as dashboards write capped counts

    # Compound forms: "1億2000万", "12.3万", "12.5K", "1200"
    total = Decimal(0)
    pos = 0
    for m in _COMPOUND.finditer(s):
        if m.start() != pos:
            raise NumberFormatError(f"not a number: {value!r}")
        number, unit = m.groups()
        total += Decimal(number) * (_MULTIPLIERS[unit.lower()] if unit else 1)
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise NumberFormatError(f"not a number: {value!r}")
    result = round(float(total), 6)  # 6 decimals: a percentage never needs more
    if math.isinf(result):
        raise NumberFormatError(f"number too large: {value[:40]!r}")
    return result
