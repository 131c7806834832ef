"""What a sales extraction returns, and the checks every source's readings pass through.

Screenshot OCR, the vision model and partner JSON all produce the same thing:
per field, the text that was read and how sure the reader is. This module
turns those readings into the ``Sales`` / ``SetProduct`` models the knowledge
base stores, in one place, so every source gets the same rules:

* a reading below the confidence threshold is returned as null with a warning,
  never guessed;
* text is parsed by :func:`rag_core.analysis.numbers.parse_number` (the one normaliser),
  and for images it must also look like the field's kind (a ``%`` for a rate,
  none for an amount), so a "前回比 +12.3%" under a GMV is refused, not stored;
* negative or absurd values (a 150 % CVR, a ¥10¹² GMV) are refused;
* the dashboard's derived rates are re-derived (CVR = orders / viewers, CTR,
  GPM, and peak ≤ viewers): a mismatch warns and lowers the confidence of the
  fields involved. ``orders ≤ items_sold`` is not assumed (a refund can break it).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from rag_core.analysis.numbers import NumberFormatError, NumberKind, parse_number
from rag_core.analysis.record import Sales, SetProduct

Provider = Literal["local", "azure", "partner_json"]
CROSS_CHECK_PENALTY = 0.5  # confidence factor for the weakly read fields of a failed cross-check
# Three reads agreeing (the local reader), a sure model or the partner's own figures: a failed
# cross-check does not blame such a value (the dashboard may define the rate otherwise).
STRONG_READ = 0.9
CONSISTENT_CONFIDENCE = 0.9  # price × sold = set_revenue to the yen: each of the three is confirmed
_PRODUCT_EQUATION = ("price", "sold", "set_revenue")
_TOLERANCE = 0.03  # relative; dashboards round rates to 0.01 pp
_ABBREVIATED_TOLERANCE = 0.12  # "1.0万" may stand for anything up to 10,999
_MULTIPLIER = re.compile(r"[万億千KkMmBb]")


class SalesExtractionError(Exception):
    """Base of every error the sales extraction raises on purpose."""


class InvalidInputError(SalesExtractionError, ValueError):
    """The caller's input cannot be read at all (a client error: HTTP 4xx)."""


class ImageFormatError(InvalidInputError):
    """Not a PNG/JPEG/WebP, truncated, empty, or too large to decode safely."""


class PartnerJsonError(InvalidInputError):
    """The partner JSON is not an object or holds no sales field at all."""


class VisionResponseError(SalesExtractionError):
    """The vision model answered, but not with the JSON the schema asks for (an upstream error)."""


class VisionRefusalError(VisionResponseError):
    """The vision model refused to read the image; ``refusal`` holds its reason."""

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        super().__init__(f"the vision model refused: {refusal}")


@dataclass(frozen=True)
class FieldSpec:
    """How one field is written and how large it may plausibly be."""

    kind: NumberKind
    limit: float
    minutes: bool = False  # stored in minutes; a duration text ("1時間5分") is converted
    integer: bool = False  # a count: "11.85" can only be a misread "11.8万"
    typical: float | None = None  # what live commerce shows; only decides between disagreeing reads

    @property
    def whole(self) -> bool:
        """Counts and yen amounts are whole: "1.205" is 1,205 (a comma read as a point)."""
        return self.integer or self.kind == "money"


SALES_FIELDS: dict[str, FieldSpec] = {
    "gmv": FieldSpec("money", 1e11),
    "orders": FieldSpec("number", 1e8, integer=True),
    "items_sold": FieldSpec("number", 1e9, integer=True),
    "viewers": FieldSpec("number", 1e9, integer=True),
    "peak_viewers": FieldSpec("number", 1e8, integer=True),
    "avg_watch_time_sec": FieldSpec("duration", 24 * 3600, typical=1800),
    "product_clicks": FieldSpec("number", 1e9, integer=True),
    "ctr": FieldSpec("percent", 100, typical=60),
    "cvr": FieldSpec("percent", 100, typical=40),
    "gpm": FieldSpec("money", 1e8),
    "new_followers": FieldSpec("number", 1e8, integer=True),
    "likes": FieldSpec("number", 1e11, integer=True),
    "comments": FieldSpec("number", 1e9, integer=True),
    "shares": FieldSpec("number", 1e9, integer=True),
    "impressions": FieldSpec("number", 1e11, integer=True),
    "product_impressions": FieldSpec("number", 1e11, integer=True),
    "tap_through_rate": FieldSpec("percent", 100, typical=80),
    "comment_rate": FieldSpec("percent", 100, typical=60),
    "follower_ratio": FieldSpec("percent", 100, typical=40),
    "duration_minutes": FieldSpec("duration", 48 * 60, minutes=True, typical=12 * 60),
}
PRODUCT_FIELDS: dict[str, FieldSpec] = {
    "price": FieldSpec("money", 1e8),
    "original_price": FieldSpec("money", 1e8),
    "discount_rate": FieldSpec("percent", 100),
    "quantity": FieldSpec("number", 1e4, integer=True),
    "sold": FieldSpec("number", 1e8, integer=True),
    "set_revenue": FieldSpec("money", 1e11),
}


class FieldReading(BaseModel):
    """One field as read: its value (null when refused), how sure the reader was, and the text."""

    value: float | str | None
    confidence: float = Field(ge=0, le=1)
    raw_text: str | None
    uncertain: bool = False  # the reads disagreed and nothing decided: value null, raw_text as read


class SalesExtraction(BaseModel):
    """The result of reading one screenshot or partner record.

    ``fields`` is keyed by ``Sales`` field name and ``set_products.<i>.<field>``;
    it holds every field that was read, refused ones included (value null), so
    a caller can show what was seen. ``warnings`` says why anything was refused.
    """

    sales: Sales
    set_products: list[SetProduct] = Field(default_factory=list)
    fields: dict[str, FieldReading] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    provider: Provider


@dataclass(frozen=True)
class Reading:
    """A source's raw reading of one field: the text (or JSON value), its confidence 0-1, and
    what other reads of the same spot said (OCR only; used when arithmetic can decide).
    A ``disputed`` reading is one whose reads gave different values: it is left empty as
    uncertain unless the field's range or another field decides between them."""

    raw: object
    confidence: float
    alternatives: tuple[str, ...] = ()
    disputed: bool = False  # the reads disagree: only evidence, never the vote, may settle it

    @property
    def text(self) -> str | None:
        if self.raw is None:
            return None
        return self.raw if isinstance(self.raw, str) else str(self.raw)


@dataclass
class ProductReading:
    """One product row: its name reading and its number readings by ``SetProduct`` field."""

    name: Reading | None
    numbers: dict[str, Reading]


# A leading sign as OCR writes a comparison's minus too: the em and en dashes, the minus sign, a hyphen.
_SIGNS = "+-−–—‐"


def text_fits_kind(text: str, kind: NumberKind) -> bool:
    """Whether OCR/vision text is written the way a field of ``kind`` is (units, no sign).

    A rate shows ``%``, an amount or count never does, a duration shows 時/分/秒
    or a clock; a leading sign marks a comparison ("前回比 +12%"), not a total.
    """
    s = unicodedata.normalize("NFKC", text).strip()
    if s[:1] and s[:1] in _SIGNS:
        return False
    if kind == "percent":
        return s.endswith("%")
    if "%" in s:
        return False
    if kind == "duration":
        return bool(re.search(r"[時分秒]|\d:\d", s))
    return ":" not in s and not re.search(r"[時分秒]", s)


def _parse(spec: FieldSpec, reading: Reading) -> float | None:
    value = parse_number(reading.raw, spec.kind, whole=spec.whole)
    if value is not None and spec.minutes:
        bare = not isinstance(reading.raw, str) or re.fullmatch(
            r"[\d.,\s]+", unicodedata.normalize("NFKC", reading.raw)
        )
        return value if bare else round(value / 60, 6)
    return value


class _Builder:
    """Accumulates accepted values, field readings and warnings for one extraction."""

    def __init__(self, min_confidence: float, strict_text: bool) -> None:
        self.min_confidence = min_confidence
        self.strict_text = strict_text
        self.fields: dict[str, FieldReading] = {}
        self.warnings: list[str] = []

    def number(self, key: str, spec: FieldSpec, reading: Reading) -> float | None:
        """The accepted value of one reading, or None with a warning saying why."""
        text = reading.text
        confidence = min(1.0, max(0.0, reading.confidence))
        self.fields[key] = FieldReading(value=None, confidence=confidence, raw_text=text)
        if reading.disputed:
            self.fields[key] = FieldReading(value=None, confidence=confidence, raw_text=text, uncertain=True)
            seen = " / ".join(repr(t) for t in (text, *reading.alternatives))
            self.warnings.append(f"{key}: the reads disagree ({seen}) and nothing decides; uncertain, left empty")
            return None
        if confidence < self.min_confidence:
            self.warnings.append(
                f"{key}: read {text!r} with confidence {confidence:.2f} < {self.min_confidence:.2f}; left empty"
            )
            return None
        try:
            value = _parse(spec, reading)
        except NumberFormatError:
            self.warnings.append(f"{key}: {text!r} is not a {spec.kind} value; left empty")
            return None
        if value is None:
            return None
        if self.strict_text and isinstance(reading.raw, str) and not text_fits_kind(reading.raw, spec.kind):
            self.warnings.append(f"{key}: {text!r} is not written like a {spec.kind} value; left empty")
            return None
        if spec.integer and not value.is_integer():
            self.warnings.append(f"{key}: {value:g} is not a whole count; left empty")
            return None
        if value < 0 or value > spec.limit:
            self.warnings.append(f"{key}: {value:g} is out of the plausible range 0-{spec.limit:g}; left empty")
            return None
        self.fields[key] = FieldReading(value=value, confidence=confidence, raw_text=text)
        return value

    def text(self, key: str, reading: Reading) -> str:
        confidence = min(1.0, max(0.0, reading.confidence))
        text = (reading.text or "").strip()
        accepted = confidence >= self.min_confidence
        self.fields[key] = FieldReading(value=text if accepted else None, confidence=confidence, raw_text=text)
        if not accepted:
            self.warnings.append(f"{key}: read {text!r} with confidence {confidence:.2f}; left empty")
            return ""
        return text

    def penalise(self, keys: tuple[str, ...], why: str) -> None:
        self.warnings.append(why)
        for key in keys:
            reading = self.fields[key]
            self.fields[key] = reading.model_copy(update={"confidence": reading.confidence * CROSS_CHECK_PENALTY})

    def doubt(self, keys: tuple[str, ...], values: dict[str, float], why: str) -> None:
        """A failed cross-check: one of ``keys`` was misread, or the dashboard defines the rate
        otherwise. The values read weakly are blamed: their confidence is lowered, and one
        that falls below the threshold is uncertain, taken out of ``values`` (never written as
        fact; its raw text stays). Values read strongly (``STRONG_READ``) stay, with the
        warning: reads that all agree are rarely wrong, while definitions do differ."""
        weak = tuple(k for k in keys if self.fields[k].confidence < STRONG_READ)
        self.penalise(weak, f"{why}; {', '.join(weak)} doubted" if weak else f"{why}; kept, every value read alike")
        for key in weak:
            reading = self.fields[key]
            if reading.confidence < self.min_confidence and values.pop(key, None) is not None:
                self.fields[key] = reading.model_copy(update={"value": None, "uncertain": True})
                self.warnings.append(f"{key}: confidence {reading.confidence:.2f} after the cross-check; left empty")


def _abbreviated(builder: _Builder, keys: tuple[str, ...]) -> bool:
    return any(_MULTIPLIER.search(builder.fields[k].raw_text or "") for k in keys)


def _cross_check(builder: _Builder, values: dict[str, float]) -> None:
    """Re-derive the dashboard's rates; a mismatch warns and doubts the weakly read fields."""
    derived = (
        ("cvr", "orders", 100.0, "orders / viewers × 100"),
        ("ctr", "product_clicks", 100.0, "product_clicks / viewers × 100"),
        ("gpm", "gmv", 1000.0, "gmv / viewers × 1000"),
    )
    for rate, numerator, factor, formula in derived:
        viewers = values.get("viewers")  # per check: a failed one before may have taken it out
        if viewers is None or rate not in values or numerator not in values or viewers == 0:
            continue
        keys = (rate, numerator, "viewers")
        expected = values[numerator] / viewers * factor
        rate_text = builder.fields[rate].raw_text if builder.strict_text else None
        if not _slack(values[rate], expected, rate_text, _abbreviated(builder, keys)):
            builder.doubt(keys, values, f"{rate}: {values[rate]:g} does not match {formula} = {expected:.4g}")
    viewers, peak = values.get("viewers"), values.get("peak_viewers")
    if viewers is not None and peak is not None and peak > viewers:
        builder.doubt(("peak_viewers", "viewers"), values, f"peak_viewers {peak:g} exceeds viewers {viewers:g}")


_SCALES = {"万": 1e4, "億": 1e8, "千": 1e3, "K": 1e3, "M": 1e6, "B": 1e9}
_SHOWN_MULTIPLIER = re.compile(r"\d(?:\.(\d+))?\s*([万億千KkMmBb])")


def _shown_range(value: float, text: str) -> tuple[float, float]:
    """The values a shown count may stand for: itself, or for an abbreviated one ("5.9万") all
    that round or truncate to it (58,500 to 59,999)."""
    found = _SHOWN_MULTIPLIER.search(unicodedata.normalize("NFKC", text))
    if found is None:
        return value, value
    step = 10.0 ** -len(found.group(1) or "") * _SCALES[found.group(2).upper()]
    return value - step / 2, value + step


def _half_unit(rate_text: str) -> float:
    """Half a unit of the last digit ``rate_text`` shows ("0.7%": 0.05); a multiplier's scale
    ("¥5.8万") is not known here, so such a text vouches for nothing finer than the 3 % slack."""
    text = unicodedata.normalize("NFKC", rate_text)
    if _MULTIPLIER.search(text):
        return math.inf
    digits = re.search(r"\.(\d+)", text)
    return 0.5 * 10.0 ** -(len(digits.group(1)) if digits else 0)


def _slack(rate: float, expected: float, rate_text: str | None, abbreviated: bool) -> bool:
    """Whether a shown rate matches the one derived: within 3 % (12 % when a count is abbreviated,
    "1.2万" may stand for up to 12,999) or half a unit of the rate's last shown digit ("0.7%" may
    be 0.74 %)."""
    digits = re.search(r"\.(\d+)", unicodedata.normalize("NFKC", rate_text or ""))
    half_unit = 0.5 * 10.0 ** -(len(digits.group(1)) if digits else 0) if rate_text else 0.01
    tolerance = _ABBREVIATED_TOLERANCE if abbreviated else _TOLERANCE
    return abs(rate - expected) <= max(tolerance * expected, half_unit, 0.01)


_RATIOS = (("cvr", "orders", 100.0), ("ctr", "product_clicks", 100.0), ("gpm", "gmv", 1000.0))
_AT_MOST = (("peak_viewers", "viewers"), ("orders", "viewers"), ("product_clicks", "viewers"))
_BY_RATES, _BY_RANGE = "the other fields' rates confirm", "in the field's plausible range"
_BY_TABLE = "the product table's revenue confirms"
_BY_ZERO = "with a 0 where the others read 6, 8 or 9"
_LOOPED = frozenset("689")
RANGE_CONFIDENCE = 0.7  # a disputed value the only plausible one of its reads: just above the default threshold


def _choices(name: str, reading: Reading) -> dict[float, str]:
    """The distinct values a disputed reading's texts stand for, each a valid value of the field."""
    spec = SALES_FIELDS[name]
    out: dict[float, str] = {}
    for raw in (reading.raw, *reading.alternatives):
        try:
            value = _parse(spec, Reading(raw, reading.confidence))
        except NumberFormatError:
            continue
        if value is None or not isinstance(raw, str) or not text_fits_kind(raw, spec.kind):
            continue
        if (spec.integer and not value.is_integer()) or not 0 <= value <= spec.limit:
            continue
        out.setdefault(value, raw)
    return out


def _agrees(name: str, value: float, text: str, settled: Mapping[str, tuple[float, str]]) -> bool | None:
    """Whether ``value`` of ``name`` (read as ``text``) fits the rates it takes part in (CVR =
    orders / viewers, CTR, GPM); None when no rate can be derived from the other, settled fields.

    A disputed rate itself must fit the derived one to its own shown digits, with an abbreviated
    count standing for the whole range it may round or truncate ("5.9万": 58,500-59,999), and
    only exact counts vouch for it (an abbreviated one can only refute it): within 3 % (12 %
    when abbreviated) of 4.41 % is 4.49 % too, a misread the slack would vouch for (a "4.4%"
    read as "4.49%" and "44%" came back as 4.49 with confidence 0.7)."""
    verdicts = []
    for rate, numerator, factor in _RATIOS:
        keys = (rate, numerator, "viewers")
        if name not in keys or not all(k in settled for k in keys if k != name):
            continue
        values = {k: settled[k][0] for k in keys if k != name} | {name: value}
        texts = [settled[k][1] for k in keys if k != name]
        if values["viewers"] == 0:
            continue
        expected = values[numerator] / values["viewers"] * factor
        rate_text = None if name == rate else settled[rate][1]
        abbreviated = any(_MULTIPLIER.search(t) for t in texts)
        if name == rate:
            top, bottom = _shown_range(*settled[numerator]), _shown_range(*settled["viewers"])
            if bottom[0] > 0:
                low, high = top[0] / bottom[1] * factor, top[1] / bottom[0] * factor
                half = _half_unit(text)
                fits = value + half >= low - 1e-9 and value - half <= high + 1e-9
                if not fits or (top[0] == top[1] and bottom[0] == bottom[1]):
                    verdicts.append(fits)  # an abbreviated count can refute a rate, never vouch for its digits
                continue
        verdicts.append(_slack(values[rate], expected, rate_text, abbreviated))
    return all(verdicts) if verdicts else None


def _plausible(name: str, value: float, settled: Mapping[str, tuple[float, str]]) -> bool:
    """The field's typical range, and the orderings that hold (peak, orders, clicks <= viewers)."""
    typical = SALES_FIELDS[name].typical
    if typical is not None and value > typical:
        return False
    for low, high in _AT_MOST:
        if name == low and high in settled and value > settled[high][0]:
            return False
        if name == high and low in settled and value < settled[low][0]:
            return False
    return True


def _digit_string(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def _digits_shared(text: str, choices: Mapping[float, str]) -> bool:
    """Whether another read has the same digits as ``text`` (``4.4%`` / ``44%``): then only the
    magnitude is in dispute, which the field's plausible range may settle; digits that one read
    alone shows (``4.49%`` beside ``44%``, the ``%`` read as 9) have nothing to back them."""
    return sum(_digit_string(other) == _digit_string(text) for other in choices.values()) > 1


def _zero_choice(choices: Mapping[float, str]) -> tuple[float, str] | None:
    """The one choice whose digits differ from every other's only by a ``0`` where that one reads
    a 6, 8 or 9, if there is exactly one. A thin or compressed zero is read as a looped digit (the
    jpn model reads IPA and VL Gothic's 0 as 6 or 9, the eng model as 8), never the other way
    round: on the dev screenshots every such substitution was a misread 0 (70 of 70), and no
    6, 8 or 9 was ever read as 0, since that means losing a stroke the glyph has."""

    def zero_over_loops(mine: str, other: str) -> bool:
        pairs = [(a, b) for a, b in zip(mine, other, strict=True) if a != b]
        return bool(pairs) and all(a == "0" and b in _LOOPED for a, b in pairs)

    found = [
        (value, text)
        for value, text in choices.items()
        if all(
            len(_digit_string(text)) == len(_digit_string(other))
            and zero_over_loops(_digit_string(text), _digit_string(other))
            for v, other in choices.items()
            if v != value
        )
    ]
    return found[0] if len(found) == 1 else None


def _table_total(rows: list[Mapping[str, Reading]]) -> float | None:
    """The product table's revenue, when every row's revenue was read without dispute (after
    ``price × sold = set_revenue`` settled the rows it could: :func:`_consistent_product`)."""
    total = 0.0
    for numbers in rows:
        reading = numbers.get("set_revenue")
        if reading is None or reading.disputed:
            return None
        try:
            value = _parse(PRODUCT_FIELDS["set_revenue"], reading)
        except NumberFormatError:
            return None
        if value is None:
            return None
        total += value
    return total if rows else None


def _by_table(choices: Mapping[float, str], total: float | None) -> tuple[float, str, float] | None:
    """The one GMV choice the product table's revenue ``total`` confirms, with its confidence.

    A choice equal to the total to the yen is confirmed (``CONSISTENT_CONFIDENCE``). An
    abbreviated one ("4746.6万円") stands for the range it may round or truncate from, so the
    total confirms the narrowest choice whose range holds it, only to its shown digits
    (``RANGE_CONFIDENCE``): a read that lost the point and a digit ("4746万円") holds the total
    too, in a range ten times wider. Failing both, a choice with a 6, 8 or 9 read back as 0
    (:func:`_zero_variants`) that equals the total is taken (``RANGE_CONFIDENCE``): hero
    amounts in a thin face came back ``¥1,721,800`` / ``¥1,721,900`` / ``¥1,721,606`` for
    ¥1,721,000, no read with the zeros. None when nothing or more than one choice fits."""
    if total is None:
        return None
    exact = [(v, t) for v, t in choices.items() if v == total]
    if exact:
        return (*exact[0], CONSISTENT_CONFIDENCE) if len(exact) == 1 else None
    spans = {}
    for value, text in choices.items():
        low, high = _shown_range(value, text)
        if low < high and low <= total <= high:
            spans[(value, text)] = high - low
    if spans:
        narrowest = min(spans.values())
        best = [choice for choice, span in spans.items() if span == narrowest]
        return (*best[0], RANGE_CONFIDENCE) if len(best) == 1 else None
    zeroed = {
        (total, variant)
        for text in choices.values()
        for variant in _zero_variants(text)
        if _parse_or_none(SALES_FIELDS["gmv"], variant) == total
    }
    return (*min(zeroed), RANGE_CONFIDENCE) if zeroed else None


def _parse_or_none(spec: FieldSpec, text: str) -> float | None:
    try:
        return _parse(spec, Reading(text, 0.0))
    except NumberFormatError:
        return None


def _settle(readings: Mapping[str, Reading], notes: list[str], table_total: float | None) -> dict[str, Reading]:
    """Decide disputed readings by evidence, never by how many reads said what.

    A GMV the product table's revenue (``table_total``) confirms (:func:`_by_table`: equal to
    the yen with ``CONSISTENT_CONFIDENCE``, to an abbreviation's shown digits or with a misread
    zero put back with ``RANGE_CONFIDENCE``), or a value the other fields' rates confirm (exactly one of them
    matching CVR = orders / viewers, CTR or GPM) is taken with ``CONSISTENT_CONFIDENCE``;
    else the one plausible choice that differs from the others only by zeros they read as
    6, 8 or 9 (:func:`_zero_choice`), or, when only one of them is plausible for the field
    (a 44 % CVR is not), that one, with ``RANGE_CONFIDENCE``. Anything else stays disputed and is reported as
    uncertain. A table that does not add up to any of them says nothing: it may list some
    products only.
    """
    out = dict(readings)
    settled: dict[str, tuple[float, str]] = {}
    for name, reading in readings.items():
        if not reading.disputed and isinstance(reading.raw, str):
            try:
                value = _parse(SALES_FIELDS[name], reading)
            except NumberFormatError:
                continue
            if value is not None:
                settled[name] = (value, reading.raw)
    progress = True
    while progress:
        progress = False
        for name, reading in out.items():
            if not reading.disputed:
                continue
            choices = _choices(name, reading)
            plausible = {v: t for v, t in choices.items() if _plausible(name, v, settled)}
            confirmed = {v: t for v, t in plausible.items() if _agrees(name, v, t, settled)}
            if len(choices) < 2:
                continue  # nothing to choose between: a rate within 3 % cannot vouch for every digit
            summed = _by_table(plausible, table_total) if name == "gmv" else None
            if summed is not None and _agrees(name, summed[0], summed[1], settled) is not False:
                value, text, confidence = summed
                why = _BY_TABLE
            elif len(confirmed) == 1:
                (value, text), confidence, why = next(iter(confirmed.items())), CONSISTENT_CONFIDENCE, _BY_RATES
            elif (
                (zero := _zero_choice(choices)) and zero[0] in plausible and _agrees(name, *zero, settled) is not False
            ):
                (value, text), confidence, why = zero, RANGE_CONFIDENCE, _BY_ZERO
            elif (
                len(plausible) == 1
                and len(choices) > 1
                and _digits_shared(next(iter(plausible.values())), choices)
                and not any(_agrees(name, v, t, settled) is False for v, t in plausible.items())
            ):
                (value, text), confidence, why = next(iter(plausible.items())), RANGE_CONFIDENCE, _BY_RANGE
            else:
                continue
            seen = " / ".join(repr(t) for t in (reading.raw, *reading.alternatives))
            notes.append(f"{name}: the reads disagree ({seen}); {text!r} taken, the only one {why}")
            out[name] = Reading(text, confidence)
            settled[name] = (value, text)
            progress = True
    return out


def _options(field: str, reading: Reading) -> list[tuple[int, str, float]]:
    """``(index, text, value)`` of the reading (index 0) and its alternatives that parse."""
    out = []
    for index, raw in enumerate((reading.raw, *reading.alternatives)):
        try:
            value = _parse(PRODUCT_FIELDS[field], Reading(raw, reading.confidence))
        except NumberFormatError:
            continue
        if value is not None:
            out.append((index, str(raw), value))
    return out


def _zero_variants(text: str) -> list[str]:
    """``text`` with one or more of its 6, 8 and 9 read back as the 0 they may be (the one-way
    confusion of :func:`_zero_choice`); none when it has more than four such digits."""
    looped = [i for i, ch in enumerate(text) if ch in _LOOPED]
    if len(looped) > 4:
        return []
    out = []
    for size in range(1, len(looped) + 1):
        for chosen in itertools.combinations(looped, size):
            out.append("".join("0" if i in chosen else ch for i, ch in enumerate(text)))
    return out


def _consistent_product(prefix: str, readings: Mapping[str, Reading], notes: list[str]) -> Mapping[str, Reading]:
    """Let ``price × sold = set_revenue`` decide between the reads of a product row.

    The three are read apart, so an exact match confirms each (``CONSISTENT_CONFIDENCE``), and
    when the first reads do not match but exactly one choice among the other reads (fewest
    changes first) does, that choice is taken with a warning. When no read matches, a read
    with a 6, 8 or 9 taken back to 0 may (``¥3,438,760`` for 5,020 × 685 = ¥3,438,700: every
    read saw the thin zero as a 6); exactly one such choice is taken with ``RANGE_CONFIDENCE``.
    Otherwise nothing changes.
    """
    if not all(field in readings for field in _PRODUCT_EQUATION):
        return readings
    choices = [_options(field, readings[field]) for field in _PRODUCT_EQUATION]
    confidence = CONSISTENT_CONFIDENCE
    best = _fewest_changes(choices)
    if best is None:
        zeroed = [
            [*options, *_zero_options(field, options)]
            for field, options in zip(_PRODUCT_EQUATION, choices, strict=True)
        ]
        best, confidence = _fewest_changes(zeroed), RANGE_CONFIDENCE
    if best is None:
        return readings
    out = dict(readings)
    for field, (index, text, _) in zip(_PRODUCT_EQUATION, best, strict=True):
        reading = readings[field]
        out[field] = Reading(reading.raw if index == 0 else text, max(reading.confidence, confidence))
        if index > 0:
            how = "another read" if index < _ZEROED else "a 6, 8 or 9 read back as 0"
            notes.append(
                f"{prefix}.{field}: read {reading.text!r}, but {text!r} ({how}) makes price × sold = set_revenue; taken"
            )
    return out


_ZEROED = 1000  # option index of a read with a looped digit taken back to 0
_MAX_COMBINATIONS = 20_000  # a row with more read combinations than this is not searched


def _never_holds(readings: Mapping[str, Reading]) -> bool:
    """Whether a row shows all three cells and no combination of their reads, 6, 8 or 9 read back
    as 0 included, makes ``price × sold = set_revenue``: one of its cells is wrong, whichever."""
    if not all(field in readings for field in _PRODUCT_EQUATION):
        return False
    choices = [_options(field, readings[field]) for field in _PRODUCT_EQUATION]
    zeroed = [
        [*options, *_zero_options(field, options)] for field, options in zip(_PRODUCT_EQUATION, choices, strict=True)
    ]
    if not all(zeroed) or math.prod(len(options) for options in zeroed) > _MAX_COMBINATIONS:
        return False
    return not any(abs(p[2] * s[2] - r[2]) <= 0.5 for p, s, r in itertools.product(*zeroed))


def _zero_options(field: str, options: list[tuple[int, str, float]]) -> list[tuple[int, str, float]]:
    """The zero variants of a field's reads, as options indexed from ``_ZEROED``."""
    out: list[tuple[int, str, float]] = []
    for _, text, _ in options:
        for variant in _zero_variants(text):
            for _, variant_text, value in _options(field, Reading(variant, 0.0)):
                out.append((_ZEROED + len(out), variant_text, value))
    return out


def _fewest_changes(choices: list[list[tuple[int, str, float]]]) -> tuple[tuple[int, str, float], ...] | None:
    """The one combination of options that makes price × sold = set_revenue with the fewest
    options other than the first reads; None when there is none or more than one (combinations
    that reach the same values by other reads count as one)."""
    matches = [combo for combo in itertools.product(*choices) if abs(combo[0][2] * combo[1][2] - combo[2][2]) <= 0.5]
    if not matches:
        return None
    fewest = min(sum(index > 0 for index, _, _ in combo) for combo in matches)
    best = [combo for combo in matches if sum(index > 0 for index, _, _ in combo) == fewest]
    # two routes to the same values ("¥2,980" read, or "¥2,986" with its 6 read back) are one answer
    values = {tuple(value for _, _, value in combo) for combo in best}
    return best[0] if len(values) == 1 else None


def build_extraction(
    readings: Mapping[str, Reading],
    products: list[ProductReading],
    *,
    provider: Provider,
    min_confidence: float,
    strict_text: bool,
    warnings: list[str] | None = None,
    sales_extra: Mapping[str, object] | None = None,
) -> SalesExtraction:
    """Apply the threshold, parsing, range and cross-field rules; build the models.

    ``strict_text`` is for image sources, where a value's text must look like
    its kind; partner JSON passes numbers, which carry no units to check.
    ``sales_extra`` goes to ``Sales`` as given (``currency``, ``traffic_sources``)
    and must be valid for it (pydantic ValidationError otherwise).
    """
    builder = _Builder(min_confidence, strict_text)
    builder.warnings.extend(warnings or [])
    values: dict[str, float] = {}
    rows: list[Mapping[str, Reading]] = []
    row_notes: list[str] = []
    for index, product in enumerate(products):
        rows.append(_consistent_product(f"set_products.{index}", product.numbers, row_notes))
    for name, reading in _settle(readings, builder.warnings, _table_total(rows)).items():
        value = builder.number(name, SALES_FIELDS[name], reading)
        if value is not None:
            values[name] = value
    _cross_check(builder, values)
    builder.warnings.extend(row_notes)
    set_products = []
    for index, (product, row) in enumerate(zip(products, rows, strict=True)):
        prefix = f"set_products.{index}"
        name = builder.text(f"{prefix}.name", product.name) if product.name is not None else ""
        numbers = {}
        for field, reading in row.items():
            value = builder.number(f"{prefix}.{field}", PRODUCT_FIELDS[field], reading)
            if value is not None:
                numbers[field] = value
        price, sold, revenue = numbers.get("price"), numbers.get("sold"), numbers.get("set_revenue")
        keys = tuple(f"{prefix}.{f}" for f in _PRODUCT_EQUATION)
        refuted = False
        if price is not None and sold is not None and revenue is not None:
            refuted = abs(price * sold - revenue) > 1
            if refuted:
                builder.penalise(
                    keys,
                    f"{prefix}: price × sold = {price * sold:g} but set_revenue is {revenue:g}; confidence lowered",
                )
        elif _never_holds(row):
            # a cell left uncertain hides the check, not the wrong value: when no read of the row
            # satisfies the equation, the cells that stay are doubted as a refuted row's are
            refuted = True
            builder.penalise(keys, f"{prefix}: no read of the row makes price × sold = set_revenue; confidence lowered")
        if refuted:
            # the equation is exact, so one of the three is wrong: those the penalty takes below the
            # threshold are uncertain, never written as fact
            for field, key in zip(_PRODUCT_EQUATION, keys, strict=True):
                if builder.fields[key].confidence < min_confidence:
                    numbers.pop(field, None)
                    builder.fields[key] = builder.fields[key].model_copy(update={"value": None, "uncertain": True})
        set_products.append(SetProduct(name=name, **numbers))
    sales = Sales.model_validate({**(sales_extra or {}), **values})
    return SalesExtraction(
        sales=sales, set_products=set_products, fields=builder.fields, warnings=builder.warnings, provider=provider
    )
