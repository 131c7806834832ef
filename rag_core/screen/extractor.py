"""Screen metrics from a screen-recorded live stream (Pattern B).

A recording of the app (not the clean camera feed) shows the platform's
overlay: viewer count, likes, comments, "〇〇さんが購入しました" pop-ups. This
module turns such a video into a ``screen_metrics`` time series and per-phase
aggregates:

1. :mod:`rag_core.screen.sampler` picks one frame per interval
   (``SCREEN_SAMPLE_INTERVAL_SEC``), decoding keyframes where it can;
2. :mod:`rag_core.screen.overlay_ocr` reads the regions of the layout
   (``SCREEN_LAYOUT``, a JSON file, see :mod:`rag_core.screen.layout`), skipping
   regions whose glyphs did not change;
3. counts are parsed with :func:`rag_core.analysis.numbers.parse_number`, pop-ups are
   counted once each, and single-sample OCR spikes are dropped by a rolling
   median rule (:func:`filter_outliers`);
4. :func:`rag_core.screen.summary.summarise_for_phases` attaches start/end/peak viewers, comment rate
   and purchases to phases by time range.

Bad input (empty bytes, not a video, no overlay) gives an empty result with a
``reason``, never an exception: the caller stores the reason on the job.
"""

from __future__ import annotations

import bisect
import difflib
import re
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from rag_core.analysis.record import ScreenMetricSample
from rag_core.base.settings import Settings, get_settings
from rag_core.ocr.tessdata import find_tessdata
from rag_core.screen.layout import MetricField, OverlayRegion, ScreenLayout, load_layout
from rag_core.screen.overlay_ocr import RegionReader, TesseractLines, TextPatch, parse_count
from rag_core.screen.sampler import FrameSampler, SampledFrame, VideoInputError

METRIC_FIELDS: tuple[MetricField, ...] = ("viewers", "likes", "comments", "purchases")
RUNNING_TOTALS: tuple[MetricField, ...] = ("likes", "comments")  # overlay counters that never go down
DropReason = Literal["spike", "magnitude", "monotone"]
_SAME_SPAN = 0.03  # glyph width difference under which a pop-up in consecutive samples is the same one
_SAME_POPUP = (
    0.85  # text similarity from which two sightings are one pop-up: OCR noise stays above, a new buyer name falls below
)
_SAME_PLACE_GLYPHS = 0.6  # differing share of the worst stretch of two overlaid sightings: up to it, one pop-up
_LOST_GLYPHS = 0.4  # share of the earlier sighting's glyphs the later may lack where it only gained pixels
_NUDGE_PX = 2  # pixels either way two sightings at rest are also laid at
_SUFFIX_HEIGHTS = 4.0  # a pop-up's last stretch compared with the last one read right, in its text heights
_SUFFIX_TEMPLATES = 3  # pop-ups read right whose ends a garbled one's is compared with
_SAME_SUFFIX = 0.3  # differing share of that stretch's worst text-height-wide part up to which it ends alike
Sighting = tuple[str, TextPatch | None]  # a pop-up's text as read and its glyphs


def _same_popup(before: Sighting, now: Sighting) -> bool:
    """Whether a pop-up seen in two consecutive samples is the same one.

    Its text as read may differ (a buyer's name and the avatar beside it come out
    differently over a moving background: ``倫 ゆなさんが障入しました`` then
    ``なさんが購入しました``), but the same pop-up draws the same glyphs in the same
    place: laid over each other in the region, no stretch one text height wide
    differs in more than 60 % of its glyph pixels (a stage light that joined the
    glyphs beyond either end is outside the overlap). A new buyer changes the text,
    and the glyphs where the last name was, even when the two names are as long
    (150 kbit/s dark clips: the same pop-up 0-40 %; drawn names as long 110-170 %,
    the share being of the larger glyph count). Nor is it new when the later sighting
    only gained pixels: a stage light behind a translucent pill that joins the name in
    thin pieces adds glyph pixels (46-60 % of a stretch) but takes few of the earlier
    ones away, so where every compared stretch keeps 60 % of the earlier sighting's
    glyph pixels it is the same pop-up (the same pop-up so lit: 34 % lost at worst;
    another buyer: 71 % and more, on the dev clips). Only this way round, and only as it
    rests (not moved left): a new pop-up caught sliding in can show less than the last one,
    and a longer name moved left can lay most of a shorter one's glyphs under its own. Glyphs that
    hardly overlap fall back to the run's width (within 3 %). When the earlier sighting ended further
    left, the glyphs are also compared with the later one moved left, at every
    offset: a pop-up caught while sliding in sits further left, its first glyphs
    cut off by the box's edge, and a new buyer's name differs however the two lines
    are laid (a new pop-up caught sliding in after one that rested is never moved).
    Not when the earlier sighting starts where the later one does and is as tall: it
    rested, its start not cut off, and it ended further left only because its name was
    shorter. Moved left, a longer new name lays its shared words over the shorter one's,
    and a gift over the shorter name rules the names out of the comparison (a check-set
    club clip's ``ゆうき`` replacing ``Yui`` was taken for it).
    """
    (text_a, glyphs_a), (text_b, glyphs_b) = before, now
    if difflib.SequenceMatcher(None, text_a, text_b).ratio() >= _SAME_POPUP:
        return True
    if glyphs_a is None or glyphs_b is None:
        return False
    # As seen (give or take the pixels the encoder moves a glyph's edge by), and when the earlier one
    # ended further left, the later one moved left by any amount: a pop-up sliding in from the left is
    # the same pop-up first further left, its first glyphs cut off by the box's edge (and its line's end
    # not always its text's: a light beside the pill joins it). Never the other way: a new pop-up
    # sliding in over the last one's place may show only the suffix they share.
    (h_a, w_a), (h_b, w_b) = glyphs_a.mask.shape, glyphs_b.mask.shape
    end_a, end_b = glyphs_a.left + w_a, glyphs_b.left + w_b
    # Where a line starts varies by a glyph's side bearing (a few pixels): a quarter of its height.
    start_nudge = max(_NUDGE_PX, min(h_a, h_b) // 4)
    rested = abs(glyphs_a.left - glyphs_b.left) <= start_nudge and abs(h_a - h_b) <= _NUDGE_PX
    if end_a >= end_b - _NUDGE_PX:
        furthest = -_NUDGE_PX
    elif rested:
        furthest = -start_nudge
    else:
        furthest = glyphs_a.left + w_a // 2 - end_b
    shifts = range(furthest, _NUDGE_PX + 1)
    differs = [d for d in (glyphs_a.overlap_differs(glyphs_b, shift) for shift in shifts) if d is not None]
    if differs and min(differs) <= _SAME_PLACE_GLYPHS:
        return True
    if differs:  # only added to, where it rests: the earlier glyphs are all still there, a light joined them
        at_rest = (glyphs_a.overlap_differs(glyphs_b, shift, lost=True) for shift in range(-_NUDGE_PX, _NUDGE_PX + 1))
        kept = [d for d in at_rest if d is not None]
        return bool(kept) and min(kept) <= _LOST_GLYPHS
    span_a, span_b = glyphs_a.mask.shape[1], glyphs_b.mask.shape[1]
    return abs(span_a - span_b) <= _SAME_SPAN * max(span_a, span_b)


def _ends_alike(known: TextPatch, glyphs: TextPatch) -> bool:
    """Whether ``glyphs`` end in the glyphs ``known`` (a pop-up whose text matched) ends in.

    Every pop-up of a region ends in the same words (``さんが購入しました``), drawn in
    the same face and size at the same height, so the last stretch of a line that OCR
    garbled (``ひなたさんが購入しました`` read as ``| 設EE の還@ おまし7`` at 1080x1920 in a light
    serif) can still be told to be a pop-up: laid right end on right end with a pop-up
    read right, its last four text heights differ in at most 30 % of the worst stretch's
    glyph pixels (dev pop-ups 0-15 %; chat lines, gift labels and lights 74 % and more).
    A chat line ends in other glyphs; a gift over either end is no comparison, since its
    ``x3`` could pass for the words it hides.
    """
    probe = known.tail(known.mask.shape[0])  # the line's end: text only, so its height is the text's
    if probe is None:
        return False
    width = round(_SUFFIX_HEIGHTS * (probe.mask.shape[0] - 2))  # _cut's one-pixel margin
    end, last = known.tail(width), glyphs.tail(width)
    if end is None or last is None or end.occluded or last.occluded:
        return False  # a gift over either end: its own label could pass for the words hidden under it
    at = (end.left + end.mask.shape[1]) - (last.left + last.mask.shape[1])  # right end on right end
    differs = [
        d for d in (end.overlap_differs(last, at + n) for n in range(-_NUDGE_PX, _NUDGE_PX + 1)) if d is not None
    ]
    return bool(differs) and min(differs) <= _SAME_SUFFIX


class PopupTracker:
    """Counts the pop-ups of one event region, sample after sample: each new one once.

    A pop-up already on screen in the first sample was bought before the recording and
    is not counted. A sample whose text does not match the pattern while its glyphs are
    those of the pop-up seen last (a gift flying over ``購入``, a garbled read at a low
    bitrate) keeps that pop-up on screen: were it forgotten, the same pop-up read right
    again in the next sample would count a second time.
    """

    def __init__(self) -> None:
        self.count = 0
        self._on_screen: Sighting | None = None
        self._first = True

    def see(self, shown: str | None, glyphs: TextPatch | None) -> bool:
        """Take one sample's reading (``shown``: text matching the pattern, else None); whether it is a new pop-up."""
        before, first = self._on_screen, self._first
        self._first = False
        if shown is None:
            if before is None or glyphs is None or not _same_popup(before, ("", glyphs)):
                self._on_screen = None
            return False
        self._on_screen = (shown, glyphs)
        is_new = before is None or not _same_popup(before, (shown, glyphs))
        self.count += is_new and not first
        return is_new and not first


class DroppedReading(BaseModel):
    """A reading reported as uncertain instead of as a value, kept so a reviewer can see what was thrown away.

    ``reason`` is ``spike`` (far off the rolling median of its neighbours),
    ``magnitude`` (one of a run of readings that sits 10x/100x/1000x off the rest of
    the stream: a lost ``K``, digit or separator that OCR repeated frame after frame)
    or ``monotone`` (a running total that would have to go down and up again);
    ``reference`` is the value it was compared with.
    """

    t_sec: float
    field: MetricField
    value: float
    reference: float
    reason: DropReason


class ScreenExtractionResult(BaseModel):
    """The series and how it was obtained; ``reason`` says why ``samples`` is empty when it is."""

    layout: str
    interval_sec: float
    samples: list[ScreenMetricSample] = Field(default_factory=list)
    dropped: list[DroppedReading] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    reason: str | None = None
    duration_sec: float | None = None
    frames_decoded: int = 0
    frames_sampled: int = 0
    ocr_calls: int = 0
    ocr_skipped: int = 0
    processing_sec: float = 0.0


class FrameReading(BaseModel):
    """What one still frame's overlay shows: the counters, and the purchase pop-up's text if any.

    A single frame cannot say how many purchases happened (that needs the pop-ups of a
    series), so the pop-up is returned as text, as the old ``purchase_notifications`` were.
    """

    layout: str
    viewers: float | None = None
    likes: float | None = None
    comments: float | None = None
    purchase_popup: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.viewers, self.likes, self.comments, self.purchase_popup))


class _OverlayReader:
    """Turns sampled frames into samples: one RegionReader per region plus pop-up bookkeeping."""

    def __init__(self, layout: ScreenLayout, settings: Settings) -> None:
        languages = [r.lang or settings.ocr_languages for r in layout.regions]
        self._engine = TesseractLines(find_tessdata(settings.tessdata_dir, languages))
        self._readers = [RegionReader(r, self._engine, settings.ocr_languages) for r in layout.regions]
        self._popups: dict[MetricField, PopupTracker] = {
            r.field: PopupTracker() for r in layout.regions if r.kind == "event"
        }
        self._glyphs: dict[MetricField, TextPatch | None] = {}
        # The glyphs of the last pop-ups whose text matched (a few: a light can join one's end).
        self._read_right: dict[MetricField, deque[TextPatch]] = {}
        self.unreadable = 0

    def __enter__(self) -> _OverlayReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._engine.close()

    @property
    def ocr_calls(self) -> int:
        return self._engine.calls

    @property
    def ocr_skipped(self) -> int:
        return sum(r.skipped for r in self._readers)

    @property
    def unconfirmed(self) -> int:
        return sum(r.unconfirmed for r in self._readers)

    def readings(self, luma: np.ndarray) -> Iterator[tuple[OverlayRegion, float | None, str | None]]:
        """Each region with what it shows: a count region's number, an event region's text when it
        matches the pattern or its glyphs end as a pop-up read right did (None where the region
        shows nothing readable)."""
        for reader in self._readers:
            region, text = reader.region, reader.read(luma)
            self._glyphs[region.field] = reader.glyphs
            if region.kind == "count":
                value = parse_count(text) if text else None
                self.unreadable += bool(text) and value is None
                yield region, value, None
            else:
                assert region.pattern is not None  # guaranteed by the layout validator
                glyphs = reader.glyphs
                if text and re.search(region.pattern, text):
                    if glyphs is not None:
                        self._read_right.setdefault(region.field, deque(maxlen=_SUFFIX_TEMPLATES)).append(glyphs)
                    yield region, None, text
                    continue
                # Garbled, but ending in the glyphs every pop-up ends in: a pop-up all the same.
                known = self._read_right.get(region.field, ())
                alike = glyphs is not None and any(_ends_alike(one, glyphs) for one in known)
                yield region, None, text if alike else None

    def read(self, frame: SampledFrame) -> ScreenMetricSample | None:
        """The frame's sample, or None when no region showed anything readable."""
        values: dict[str, float | None] = {}
        seen = False
        for region, value, shown in self.readings(frame.luma):
            if region.kind == "count":
                values[region.field] = value
                seen |= value is not None
                continue
            tracker = self._popups[region.field]
            tracker.see(shown, self._glyphs.get(region.field))
            values[region.field] = float(tracker.count)
            seen |= shown is not None
        return ScreenMetricSample(t_sec=round(frame.t_sec, 3), **values) if seen else None


def read_frame(
    image: Image.Image, *, layout: str | Path | ScreenLayout | None = None, settings: Settings | None = None
) -> FrameReading:
    """Read the overlay of one still frame (a screenshot of the live screen).

    Raises only for configuration problems, as :func:`extract_screen_metrics` does; a
    frame with no readable overlay gives an empty reading (``empty``) with a warning.
    """
    settings = settings or get_settings()
    chosen = layout if isinstance(layout, ScreenLayout) else load_layout(layout or settings.screen_layout)
    reading = FrameReading(layout=chosen.name)
    if not chosen.fits(image.width, image.height):
        reading.warnings.append(
            f"layout {chosen.name} is for {chosen.orientation} frames, this one is {image.width}x{image.height}"
        )
    luma = np.asarray(image.convert("L"))
    with _OverlayReader(chosen, settings) as reader:
        for region, value, shown in reader.readings(luma):
            if region.kind == "count":
                setattr(reading, region.field, value)
            elif shown is not None:
                reading.purchase_popup = shown
        if reader.unreadable:
            reading.warnings.append(f"{reader.unreadable} region readings were not numbers and were skipped")
        if reader.unconfirmed:
            reading.warnings.append(f"{reader.unconfirmed} count readings uncertain (no two reads agreed), left empty")
    if reading.empty:
        reading.warnings.append(f"no overlay reading in the frame (layout {chosen.name})")
    return reading


def extract_screen_metrics(
    video: str | Path | bytes,
    *,
    layout: str | Path | ScreenLayout | None = None,
    settings: Settings | None = None,
    interval_sec: float | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> ScreenExtractionResult:
    """Read the overlay of a screen recording (file path or bytes) into an outlier-filtered series.

    ``layout`` is a built-in layout name, a layout JSON path or a loaded layout
    (default ``SCREEN_LAYOUT``); ``interval_sec`` defaults to
    ``SCREEN_SAMPLE_INTERVAL_SEC``. Raises only for configuration problems (unknown
    layout, missing OCR language data); anything wrong with the video is a ``reason``.
    ``checkpoint`` is called before each sampled frame is read, with how far the reading
    got; it raises to stop a recording that takes too long (a job's time budget).
    """
    settings = settings or get_settings()
    chosen = layout if isinstance(layout, ScreenLayout) else load_layout(layout or settings.screen_layout)
    interval = interval_sec or settings.screen_sample_interval_sec
    result = ScreenExtractionResult(layout=chosen.name, interval_sec=interval)
    clock = time.perf_counter()
    raw: list[ScreenMetricSample] = []
    try:
        sampler = FrameSampler(video, interval)
    except VideoInputError as exc:
        result.reason = str(exc)
        return result
    with sampler, _OverlayReader(chosen, settings) as reader:
        stats = sampler.stats
        if not chosen.fits(stats.width, stats.height):
            result.warnings.append(
                f"layout {chosen.name} is for {chosen.orientation} video, this one is {stats.width}x{stats.height}"
            )
        try:
            for frame in sampler:
                if checkpoint is not None:
                    checkpoint(
                        f"while reading the screen recording: {stats.frames_sampled - 1:,} frames read, "
                        f"up to {frame.t_sec:.0f} s of its {stats.duration_sec or 0:.0f} s"
                    )
                sample = reader.read(frame)
                if sample is not None:
                    raw.append(sample)
        except av.error.FFmpegError as exc:  # a damaged or truncated file: keep what was read
            result.warnings.append(f"stopped reading the video early: {exc}")
        result.duration_sec = stats.duration_sec
        result.frames_decoded, result.frames_sampled = stats.frames_decoded, stats.frames_sampled
        result.ocr_calls, result.ocr_skipped = reader.ocr_calls, reader.ocr_skipped
        if stats.decode_errors:
            result.warnings.append(f"{stats.decode_errors} packets could not be decoded")
        if reader.unreadable:
            result.warnings.append(f"{reader.unreadable} region readings were not numbers and were skipped")
        if reader.unconfirmed:
            result.warnings.append(f"{reader.unconfirmed} count readings uncertain (no two reads agreed), left empty")
    count_fields = [r.field for r in chosen.regions if r.kind == "count"]
    result.samples, result.dropped = filter_outliers(raw, count_fields)
    if result.dropped:
        kinds = Counter(d.reason for d in result.dropped)
        result.warnings.append(
            "reported as uncertain, not as values: " + ", ".join(f"{n} {kind} readings" for kind, n in kinds.items())
        )
    if not result.samples:
        result.reason = (
            "no frames could be decoded"
            if stats.frames_sampled == 0
            else f"no overlay readings in {stats.frames_sampled} sampled frames (layout {chosen.name})"
        )
    result.processing_sec = round(time.perf_counter() - clock, 3)
    return result


def filter_outliers(
    samples: Sequence[ScreenMetricSample],
    fields: Iterable[MetricField] = METRIC_FIELDS,
    *,
    half_window: int = 2,
    ratio: float = 3.0,
    min_delta: float = 10.0,
    jump: float = 7.0,
    running_totals: Iterable[MetricField] = RUNNING_TOTALS,
) -> tuple[list[ScreenMetricSample], list[DroppedReading]]:
    """Drop readings that disagree with the rest of the stream; they are listed as uncertain.

    Three rules, per field:

    * spike: a reading ``ratio`` times off the median of itself and up to
      ``half_window`` readings on each side (and ``min_delta`` away) goes. A
      one- or two-sample OCR slip goes; a real level change survives, because
      after it the neighbours agree with it.
    * magnitude: a misread that OCR repeats (``1.7K`` read as ``17`` for as long as
      the counter shows ``1.7K``) outvotes any median. So the series is cut where
      consecutive readings jump by ``jump`` times or more; the run that most
      readings agree with sets the stream's level, and walking out from it, a run
      that starts (or ends) ``jump`` times off the last accepted reading is dropped
      whole. Audiences and running totals do not change 7x between two samples a
      few seconds apart; a lost or extra digit, separator or multiplier changes a
      reading 10x-1000x.
    * monotone: likes and comments only ever rise, so of the remaining readings
      the longest non-decreasing sequence is kept and the rest is dropped (a
      misread digit, ``3.2万`` read as ``8277``, breaks it; a real count never does).

    Samples left with no reading at all are removed.
    """
    cleaned = [s.model_copy() for s in samples]
    dropped: list[DroppedReading] = []
    totals = set(running_totals)

    def drop(i: int, field: MetricField, reference: float, reason: DropReason) -> None:
        value = float(getattr(cleaned[i], field))
        setattr(cleaned[i], field, None)
        dropped.append(
            DroppedReading(t_sec=cleaned[i].t_sec, field=field, value=value, reference=reference, reason=reason)
        )

    for field in fields:
        positions = [i for i, s in enumerate(cleaned) if getattr(s, field) is not None]
        values = [float(getattr(cleaned[i], field)) for i in positions]
        spikes = set()
        for k, i in enumerate(positions):
            median = statistics.median(values[max(0, k - half_window) : k + half_window + 1])
            value = values[k]
            if abs(value - median) >= min_delta and (value >= ratio * median or value * ratio <= median):
                spikes.add(k)
                drop(i, field, median, "spike")
        rest = [(i, v) for k, (i, v) in enumerate(zip(positions, values, strict=True)) if k not in spikes]
        magnitude = set()
        for run, reference in _magnitude_errors(rest, jump, min_delta):
            for i, _ in run:
                magnitude.add(i)
                drop(i, field, reference, "magnitude")
        if field in totals:
            rest = [(i, v) for i, v in rest if i not in magnitude]
            keep = _longest_rise([v for _, v in rest])
            for k, (i, _) in enumerate(rest):
                if k not in keep:
                    before = [v for j, (_, v) in enumerate(rest[:k]) if j in keep]
                    drop(i, field, before[-1] if before else rest[min(keep)][1], "monotone")
    kept = [s for s in cleaned if any(getattr(s, f) is not None for f in METRIC_FIELDS)]
    return kept, sorted(dropped, key=lambda d: (d.t_sec, d.field))


def _magnitude_errors(
    readings: Sequence[tuple[int, float]], jump: float, min_delta: float
) -> list[tuple[list[tuple[int, float]], float]]:
    """The runs of ``readings`` that sit ``jump`` times off the stream's level, each with the level it broke from."""

    def far(a: float, b: float) -> bool:
        low, high = sorted((abs(a), abs(b)))
        return high - low >= min_delta and high >= jump * max(low, 1.0)

    runs: list[list[tuple[int, float]]] = []
    for reading in readings:
        if runs and not far(runs[-1][-1][1], reading[1]):
            runs[-1].append(reading)
        else:
            runs.append([reading])
    if len(runs) < 2:
        return []
    # The stream's level is the run most readings agree with (its own and those of every run at its
    # magnitude): a long misread run between two shorter right ones still loses to them together.
    levels = [statistics.median(v for _, v in run) for run in runs]
    agree = [sum(len(runs[j]) for j in range(len(runs)) if not far(levels[k], levels[j])) for k in range(len(runs))]
    anchor = max(range(len(runs)), key=lambda k: (agree[k], len(runs[k])))
    errors = []
    level = runs[anchor][-1][1]
    for run in runs[anchor + 1 :]:
        if far(level, run[0][1]):
            errors.append((run, level))
        else:
            level = run[-1][1]
    level = runs[anchor][0][1]
    for run in reversed(runs[:anchor]):
        if far(level, run[-1][1]):
            errors.append((run, level))
        else:
            level = run[0][1]
    return errors


def _longest_rise(values: Sequence[float]) -> set[int]:
    """Positions of a longest non-decreasing subsequence of ``values`` (patience sorting, O(n log n))."""
    tails: list[float] = []  # smallest last value of a rise of each length
    tail_at: list[int] = []  # its position
    parent = [-1] * len(values)
    for k, value in enumerate(values):
        length = bisect.bisect_right(tails, value)
        if length == len(tails):
            tails.append(value)
            tail_at.append(k)
        else:
            tails[length], tail_at[length] = value, k
        parent[k] = tail_at[length - 1] if length else -1
    keep: set[int] = set()
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        keep.add(k)
        k = parent[k]
    return keep
