"""The analysis format: one analysed live stream, its phases and its outcome.

One model serves the new format (docs/analysis-format.md) and the names the
existing callers and past files already use (shared reference contract):
``id`` for ``video_id``, ``sales_data`` for ``sales``, ``visual_context`` for
``description``, phases under ``report.phases`` or
``pipeline_result.labeled_phases`` and so on. The legacy names are folded into
the new ones before validation, so everything downstream sees one shape.
Unknown fields are kept (``extra="allow"``), numbers written for humans are
normalised by :func:`rag_core.analysis.numbers.parse_number`, and a validation error
names the field path (``phases.2.start_sec``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from itertools import accumulate
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rag_core.analysis.numbers import NumberFormatError, NumberKind, parse_number


def _number(kind: NumberKind) -> BeforeValidator:
    def convert(value: object) -> float | None:
        try:
            return parse_number(value, kind)
        except NumberFormatError as exc:
            raise ValueError(str(exc)) from None

    return BeforeValidator(convert)


_NonNegative = Annotated[float, Field(ge=0)]
_Percentage = Annotated[float, Field(ge=0, le=100)]
Money = Annotated[_NonNegative | None, _number("money")]
Count = Annotated[_NonNegative | None, _number("number")]
Percent = Annotated[_Percentage | None, _number("percent")]
Seconds = Annotated[_NonNegative | None, _number("duration")]


def _none_to_empty(value: object) -> object:
    return "" if value is None else value


# Per-field maxima of the free-text fields (characters), documented in docs/operations.md
# "Limits". They bound what one phase costs to embed (a 40 MB speech_text once kept a
# worker busy for ten minutes) and what a prompt can quote; real phases are far shorter.
MAX_PHASE_TEXT = 20_000  # speech_text, description, insights: ~10 minutes of speech
MAX_LABEL = 200  # phase_type, behavior_label, product names, ids, names
MAX_TITLE = 1_000
MAX_URL = 2_048
MAX_PHASES = 20_000
MAX_LIST = 10_000  # set_products, products of a phase
MAX_SCREEN_SAMPLES = 100_000  # one sample every 2 s for more than two days

Text = Annotated[str, BeforeValidator(_none_to_empty), Field(max_length=MAX_PHASE_TEXT)]
Label = Annotated[str, Field(max_length=MAX_LABEL)]

# ------------------------------------------------------------------ video ids --
VIDEO_ID_MAX = 200
# Unicode categories no id may contain: controls (NUL, CR, LF, DEL, C1), format characters
# (zero-width and direction marks, which make two ids look alike), surrogates, and the line
# and paragraph separators.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def check_video_id(value: str) -> str:
    """``value`` if it follows the one video-id grammar, else ValueError saying what is wrong.

    A video id is 1 to 200 characters of any script, with spaces, ``/``, ``%`` and other
    punctuation allowed, but no control, format or line-separator character, and no
    whitespace at either end (``" a"`` and ``"a"`` would look like one id). Every entry
    (API bodies and paths, blob drops, backfill files) holds ids to this rule, so every
    stored id can be named again in a URL path (percent-encoded) and deleted.
    """
    if not value or not value.strip():
        raise ValueError("must not be blank")
    if len(value) > VIDEO_ID_MAX:
        raise ValueError(f"must be at most {VIDEO_ID_MAX} characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ValueError(f"must not contain the control or invisible character U+{ord(char):04X}")
    return value


VideoId = Annotated[str, AfterValidator(check_video_id)]

# -------------------------------------------------------------------- dates --
JST = dt.timezone(dt.timedelta(hours=9), "JST")
_DATE_SPELLINGS = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def calendar_date(value: object) -> object:
    """A stream date as callers send it, as a calendar date.

    Accepted: ``2026-10-01``, ``2026/10/01``, ``2026.10.1``, ``2026年10月1日``,
    ``20261001``, and ISO timestamps (``2026-10-01T20:00:00+09:00``, ``…Z``), whose
    date is the one on the calendar of the timestamp's own offset: a partner system
    that says 20:00 in Tokyo means that day in Tokyo. A timestamp without an offset
    is read as Japan time, which is the same date. Anything else is left for the
    date type to refuse.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if not isinstance(value, str):
        return value
    text = value.strip()
    if match := _DATE_SPELLINGS.fullmatch(text):
        return dt.date(*(int(part) for part in match.groups()))
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if "T" in text or " " in text:
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            return value
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=JST)).date()
    return value


StreamDate = Annotated[dt.date | None, BeforeValidator(calendar_date)]


# --------------------------------------------------------------------- JSON --
class JsonDepthError(ValueError):
    """A JSON document nests arrays/objects deeper than the limit."""


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep ``text`` nests arrays and objects, counted without parsing it.

    Strings are cut out first (a bracket inside one does not count), then the
    remaining brackets are summed as +1/-1; all of it in C (regex, ``map``,
    ``accumulate``), so 16 MB of brackets is measured in about a second, and a
    document nested 100,000 deep never reaches a recursive parser.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(data: bytes | str, *, max_depth: int) -> Any:
    """Parse caller-supplied JSON: UTF-8 only, nesting at most ``max_depth`` deep (JsonDepthError),
    no ``NaN``/``Infinity`` (ValueError): a bound on every JSON input before anything recurses
    over it (the decoder, pydantic, the payload pickler of embedded Qdrant)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    depth = json_depth(text)
    if depth > max_depth:
        raise JsonDepthError(f"nested {depth} levels deep; the limit is {max_depth} (MAX_JSON_DEPTH)")
    return json.loads(text, parse_constant=_no_constants)


class _Open(BaseModel):
    """Base for the format's objects: unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TrafficSource(_Open):
    channel: Label | None = None
    gmv_pct: Percent = None
    impression_pct: Percent = None
    viewer_pct: Percent = None


class Sales(_Open):
    """Business outcome of a stream. Percentages are in percent units (3.4 = 3.4 %)."""

    gmv: Money = None
    orders: Count = None
    items_sold: Count = None
    viewers: Count = None
    peak_viewers: Count = None
    avg_watch_time_sec: Seconds = None
    product_clicks: Count = None
    ctr: Percent = None
    cvr: Percent = None
    gpm: Money = None
    new_followers: Count = None
    likes: Count = None
    comments: Count = None
    shares: Count = None
    impressions: Count = None
    product_impressions: Count = None
    tap_through_rate: Percent = None
    comment_rate: Percent = None
    follower_ratio: Percent = None
    duration_minutes: Count = None
    traffic_sources: list[TrafficSource] = Field(default_factory=list, max_length=MAX_LABEL)
    currency: Label = "JPY"

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for old, new in (
                ("total_orders", "orders"),
                ("product_sales_count", "items_sold"),
                ("live_ctr", "ctr"),
                ("avg_gpm", "gpm"),
            ):
                if old in data and data.get(new) is None:
                    data[new] = data.pop(old)
            if data.get("traffic_sources") is None:
                data.pop("traffic_sources", None)
            if data.get("currency") is None:
                data.pop("currency", None)
        return data


class SetProduct(_Open):
    """A product (or bundle) set for sale during the stream."""

    name: Annotated[str, BeforeValidator(_none_to_empty), Field(max_length=MAX_TITLE)] = ""
    price: Money = None
    original_price: Money = None
    discount_rate: Percent = None
    quantity: Count = None  # items in the set
    sold: Count = None  # units sold during the stream
    set_revenue: Money = None
    items: list[Any] = Field(default_factory=list, max_length=MAX_LIST)

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "quantity_sold" in data and data.get("sold") is None:
                data["sold"] = data.pop("quantity_sold")
            if data.get("items") is None:
                data.pop("items", None)
        return data

    @model_validator(mode="after")
    def _revenue(self) -> SetProduct:
        if self.set_revenue is None and self.price is not None and self.sold is not None:
            self.set_revenue = self.price * self.sold
        return self


class ScreenMetricSample(_Open):
    """One reading of a screen-recorded stream's overlay at ``t_sec``."""

    t_sec: float = Field(ge=0)
    viewers: Count = None
    likes: Count = None
    comments: Count = None
    purchases: Count = None


class PhaseScreenSummary(_Open):
    """Per-phase aggregate of the screen metrics that fall in the phase's time range."""

    start_viewers: float | None = None
    end_viewers: float | None = None
    peak_viewers: float | None = None
    comment_rate_per_min: float | None = None
    purchases: float | None = None
    samples: int = 0


class Phase(_Open):
    phase_index: int = Field(ge=0, le=100_000)  # the feedback routes name phases up to this index
    start_sec: Seconds = None
    end_sec: Seconds = None
    phase_type: Label = "unknown"
    behavior_label: Label | None = None
    speech_text: Text = ""
    description: Text = ""
    insights: Text = ""
    products: list[Label] = Field(default_factory=list, max_length=MAX_LIST)
    screen_summary: PhaseScreenSummary | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("description") and data.get("visual_context") is not None:
                data["description"] = data.pop("visual_context")
            for old in ("ai_insight", "insight"):
                if not data.get("insights") and data.get(old) is not None:
                    data["insights"] = data.pop(old)
            if not data.get("phase_type"):
                data["phase_type"] = data.get("behavior_label") or "unknown"
            if data.get("products") is None:
                data.pop("products", None)
        return data

    @field_validator("end_sec")
    @classmethod
    def _time_order(cls, end: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start_sec")
        if start is not None and end is not None and end < start:
            raise ValueError("end_sec must not be before start_sec")
        return end

    @property
    def duration_sec(self) -> float | None:
        if self.start_sec is None or self.end_sec is None:
            return None
        return self.end_sec - self.start_sec


class AnalysisRecord(_Open):
    """One analysed live stream."""

    video_id: VideoId
    brand_id: int | None = None
    user_email: Label | None = None
    liver_id: Label | None = None
    liver_name: Label | None = None
    platform: Label = "tiktok"
    stream_date: StreamDate = None
    title: Annotated[str, Field(max_length=MAX_TITLE)] | None = None
    video_url: Annotated[str, Field(max_length=MAX_URL)] | None = None
    filename: Annotated[str, Field(max_length=MAX_TITLE)] | None = None
    source_pattern: Literal["A", "B"] | None = None
    total_duration_sec: Seconds = None
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES)
    sales: Sales | None = None
    set_products: list[SetProduct] = Field(default_factory=list, max_length=MAX_LIST)
    screen_metrics: list[ScreenMetricSample] = Field(default_factory=list, max_length=MAX_SCREEN_SAMPLES)
    screen_overlay: dict[str, Any] | None = None  # legacy single overlay reading
    quality_score: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _legacy_record(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {
            k: dict(v) if k in ("report", "pipeline_result") and isinstance(v, dict) else v for k, v in data.items()
        }
        if data.get("video_id") is None and data.get("id") is not None:
            data["video_id"] = data.pop("id")
        if isinstance(data.get("video_id"), int):
            data["video_id"] = str(data["video_id"])
        if data.get("sales") is None and data.get("sales_data") is not None:
            data["sales"] = data.pop("sales_data")
        if data.get("total_duration_sec") is None and data.get("total_duration") is not None:
            data["total_duration_sec"] = data.pop("total_duration")
        if data.get("source_pattern") is None and "data_source" in data:
            data["source_pattern"] = {"clean": "A", "screen_recording": "B"}.get(str(data.pop("data_source")))
        if data.get("platform") is None:
            data.pop("platform", None)
        if data.get("set_products") is None:
            data.pop("set_products", None)
        metrics = data.get("screen_metrics")
        if isinstance(metrics, dict):
            data["screen_overlay"] = data.pop("screen_metrics")
        elif metrics is None:
            data.pop("screen_metrics", None)
        phases = _legacy_phases(data)
        if phases is not None:
            data["phases"] = phases
        return data


def _legacy_phases(data: dict[str, Any]) -> Any:
    """Find the phase list wherever past files put it and fill index/time from position."""
    phases = data.get("phases")
    if phases is None:
        report = data.get("report")
        pipeline = data.get("pipeline_result")
        if isinstance(report, dict) and report.get("phases") is not None:
            phases = report.pop("phases")
        elif isinstance(pipeline, dict) and pipeline.get("labeled_phases") is not None:
            phases = pipeline.pop("labeled_phases")
        for key in ("report", "pipeline_result"):  # drop the husk once its phases are taken
            if data.get(key) == {}:
                data.pop(key)
    if phases is None and (data.get("speech_text") or data.get("visual_context")):
        phases = [{"speech_text": data.pop("speech_text", None), "visual_context": data.pop("visual_context", None)}]
    if not isinstance(phases, list):
        return phases
    out: list[Any] = []
    clock = 0.0
    for position, phase in enumerate(phases):
        if not isinstance(phase, dict):
            out.append(phase)
            continue
        phase = dict(phase)
        if phase.get("phase_index") is None:
            phase["phase_index"] = position
        duration = phase.get("duration_seconds")
        if isinstance(duration, int | float) and phase.get("start_sec") is None and phase.get("end_sec") is None:
            phase["start_sec"], phase["end_sec"] = clock, clock + duration
        if isinstance(phase.get("end_sec"), int | float):
            clock = float(phase["end_sec"])
        out.append(phase)
    return out


class FieldProblem(BaseModel):
    field: str
    message: str


class AnalysisFormatError(ValueError):
    """An analysis record failed validation; ``problems`` name each field path."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


def parse_analysis(data: object) -> AnalysisRecord:
    """Validate one record (new or legacy names) or raise AnalysisFormatError."""
    if not isinstance(data, dict):
        raise AnalysisFormatError([FieldProblem(field="$", message="an analysis must be a JSON object")])
    try:
        record = AnalysisRecord.model_validate(data)
    except ValidationError as exc:
        raise AnalysisFormatError(
            [
                FieldProblem(field=".".join(str(p) for p in err["loc"]) or "$", message=err["msg"])
                for err in exc.errors()
            ]
        ) from None
    indexes = [p.phase_index for p in record.phases]
    if len(set(indexes)) != len(indexes):
        raise AnalysisFormatError([FieldProblem(field="phases", message="phase_index values must be unique")])
    return record
