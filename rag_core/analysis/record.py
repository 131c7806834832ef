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
from typing import Annotated, Any, Literal

from pydantic import (
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


Text = Annotated[str, BeforeValidator(_none_to_empty)]


class _Open(BaseModel):
    """Base for the format's objects: unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TrafficSource(_Open):
    channel: str | None = None
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
    traffic_sources: list[TrafficSource] = Field(default_factory=list)
    currency: str = "JPY"

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

    name: Text = ""
    price: Money = None
    original_price: Money = None
    discount_rate: Percent = None
    quantity: Count = None  # items in the set
    sold: Count = None  # units sold during the stream
    set_revenue: Money = None
    items: list[Any] = Field(default_factory=list)

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
    phase_index: int = Field(ge=0)
    start_sec: Seconds = None
    end_sec: Seconds = None
    phase_type: str = "unknown"
    behavior_label: str | None = None
    speech_text: Text = ""
    description: Text = ""
    insights: Text = ""
    products: list[str] = Field(default_factory=list)
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

    video_id: str = Field(min_length=1, max_length=200)
    brand_id: int | None = None
    user_email: str | None = None
    liver_id: str | None = None
    liver_name: str | None = None
    platform: str = "tiktok"
    stream_date: dt.date | None = None
    title: str | None = None
    video_url: str | None = None
    filename: str | None = None
    source_pattern: Literal["A", "B"] | None = None
    total_duration_sec: Seconds = None
    phases: list[Phase] = Field(min_length=1)
    sales: Sales | None = None
    set_products: list[SetProduct] = Field(default_factory=list)
    screen_metrics: list[ScreenMetricSample] = Field(default_factory=list)
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
