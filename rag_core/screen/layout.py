"""Declarative overlay layouts for screen-recorded live streams (Pattern B).

Where a platform draws its viewer count, like counter or purchase pop-up is a
fact about that platform's UI, not about our code, so it lives in a JSON data
file: ``rag_core/screen/layouts/<name>.json`` for the built-in ones, or any file path
(a new platform or a redesigned UI is a data change). Boxes are fractions of
the frame so one layout serves every resolution of the same aspect ratio.
The loader validates strictly (unknown keys, inverted boxes and bad patterns
are rejected with the file named) because a silently ignored typo would turn
into an empty metrics series much later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LAYOUTS_DIR = Path(__file__).with_name("layouts")

MetricField = Literal["viewers", "likes", "comments", "purchases"]


class LayoutError(ValueError):
    """A layout is missing or malformed; the message names the file and the problem."""


class OverlayRegion(BaseModel):
    """One overlay element: where it is, what it means and how to read it.

    ``kind="count"`` reads a number (``1,234``, ``1.2万``, ``12.5K``, ``1.2M``) and reports
    it as the field's value. ``kind="event"`` is a transient pop-up (``〇〇さんが
    購入しました``): every new pop-up whose text matches ``pattern`` adds one to
    the field's running total, so counters and events give the same cumulative
    shape downstream.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: MetricField
    kind: Literal["count", "event"] = "count"
    box: tuple[float, float, float, float] = Field(
        description="left, top, right, bottom as fractions of the frame width/height"
    )
    text: Literal["light", "dark"] = Field("light", description="text brighter or darker than its badge")
    lang: str | None = Field(None, description="tesseract languages; default eng for counts, OCR_LANGUAGES for events")
    charset: str | None = Field(
        None, description="characters OCR may output; counts default to digits, separators and every multiplier"
    )
    pattern: str | None = Field(None, description="regex an event's text must contain (events only)")
    text_height_px: int = Field(40, ge=12, le=200, description="crops are scaled so text is about this tall")

    @field_validator("box")
    @classmethod
    def _box_inside_frame(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        left, top, right, bottom = box
        if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
            raise ValueError(
                "box must be [left, top, right, bottom] with 0 <= left < right <= 1 and 0 <= top < bottom <= 1"
            )
        return box

    @model_validator(mode="after")
    def _event_pattern(self) -> OverlayRegion:
        if self.kind == "event":
            if not self.pattern:
                raise ValueError("an event region needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
        elif self.pattern is not None:
            raise ValueError("pattern is only meaningful for event regions")
        return self

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in pixels of a ``width`` x ``height`` frame (never empty)."""
        left, top, right, bottom = self.box
        x0, y0 = int(left * width), int(top * height)
        x1, y1 = max(x0 + 1, round(right * width)), max(y0 + 1, round(bottom * height))
        return x0, y0, min(x1, width), min(y1, height)


class ScreenLayout(BaseModel):
    """A platform's overlay: a name and its regions (one per metric field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    orientation: Literal["portrait", "landscape", "any"] = "any"
    regions: tuple[OverlayRegion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_region_per_field(self) -> ScreenLayout:
        fields = [r.field for r in self.regions]
        duplicates = sorted({f for f in fields if fields.count(f) > 1})
        if duplicates:
            raise ValueError(f"more than one region for {', '.join(duplicates)}")
        return self

    def fits(self, width: int, height: int) -> bool:
        """Whether a ``width`` x ``height`` frame has the orientation this layout was drawn for."""
        if self.orientation == "portrait":
            return height > width
        if self.orientation == "landscape":
            return width > height
        return True


def available_layouts() -> list[str]:
    """Names of the built-in layouts (the JSON files shipped in ``rag_core/screen/layouts``)."""
    return sorted(p.stem for p in LAYOUTS_DIR.glob("*.json"))


def load_layout(name_or_path: str | Path) -> ScreenLayout:
    """Load a built-in layout by name, or any layout JSON file by path; raises LayoutError."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name_or_path)):
            raise LayoutError(f"unknown layout {name_or_path!r}; built-in: {', '.join(available_layouts())}")
        path = LAYOUTS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise LayoutError(f"layout {name_or_path!r} not found (built-in: {', '.join(available_layouts())})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"{path}: not readable JSON: {exc}") from None
    try:
        return ScreenLayout.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in exc.errors())
        raise LayoutError(f"{path}: {problems}") from None
