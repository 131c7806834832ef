"""Read a sales dashboard screenshot offline with tesseract, by layout rather than by reading order.

Dashboards put a label and its number in a card (label above value) or a row
(label left, value right). Tesseract's own page segmentation merges cells
across columns ("620 ¥1,847,600" as one word) and loses glyphs, so the layout
is found here and tesseract (through tesserocr, models loaded once) only reads
single lines:

1. the image is normalised to dark text on white (dark themes inverted) and
   upscaled until its typical text line is ~32 px, so shrunk screenshots read
   like full-size ones;
2. a recursive XY-cut of the ink (split at empty rows, then at gaps wider
   than a line height) yields text segments: a label, a value, a table cell;
3. each segment is read as one line; a segment matching a known label
   (allowing a misread character) is paired with the nearest segment on its
   row to the right, else directly below it; a product table is recognised by
   its header row (商品名, 価格 …) and read by column;
4. a value is read three ways (plain, digits-and-units only, languages
   swapped at a fixed height) and the value the reads agree on wins; the
   agreement sets its confidence, as tesseract's own scores are poorly
   calibrated on short numbers.

Values are returned as text with a confidence; parsing, thresholds and
cross-checks are :mod:`rag_core.sales.fields`'s job. Measured on the
shipped screenshots (benchmarks/ocr_accuracy.py): every field exact, about 1 s
per screenshot on 2 cores.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from rag_core.analysis.numbers import NumberFormatError, parse_number
from rag_core.ocr.imaging import otsu_threshold
from rag_core.ocr.tessdata import OcrUnavailableError, find_tessdata
from rag_core.sales.fields import (
    PRODUCT_FIELDS,
    SALES_FIELDS,
    FieldSpec,
    ProductReading,
    Provider,
    Reading,
    text_fits_kind,
)
from rag_core.sales.screenshot_reader import ImageKind, ScreenshotReading

Reader = Literal["text", "digits", "swapped"]
VALUE_CHARS = "0123456789,.%:+-¥万億千円人件分秒時間KM"  # signs kept, so "前回比 +12%" reads as no total
LABELS: dict[str, tuple[str, ...]] = {
    "gmv": ("GMV", "総GMV", "売上", "総売上", "売上金額", "総売上金額", "販売金額"),
    "orders": ("注文数", "注文件数", "総注文数"),
    "items_sold": ("販売数", "販売個数", "販売点数", "商品販売数", "売れた商品数"),
    "viewers": ("視聴者数", "総視聴者数", "視聴数", "ユニーク視聴者数"),
    "peak_viewers": ("最大同時視聴者数", "最高同時視聴者数", "同時視聴者数", "ピーク視聴者数", "最大視聴者数"),
    "avg_watch_time_sec": ("平均視聴時間",),
    "product_clicks": ("クリック数", "商品クリック数"),
    "ctr": ("クリック率", "CTR", "商品クリック率"),
    "cvr": ("CVR", "転換率", "コンバージョン率", "購入率"),
    "gpm": ("GPM",),
    "new_followers": ("新規フォロワー", "新規フォロワー数", "フォロワー増加数"),
    "likes": ("いいね", "いいね数"),
    "comments": ("コメント", "コメント数"),
    "shares": ("シェア", "シェア数"),
    "impressions": ("インプレッション", "インプレッション数", "表示回数"),
    "duration_minutes": ("配信時間", "LIVE時間", "ライブ時間"),
}
PRODUCT_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("商品名", "商品"),
    "price": ("価格", "単価", "販売価格"),
    "sold": ("販売数", "販売個数", "数量"),
    "set_revenue": ("売上", "売上金額", "GMV", "売上高"),
}
_TEXT_PX = 32  # median text-line height the page is upscaled to (never downscaled)
_MAX_UPSCALE = 4.0
_VALUE_PX = 24  # height a value is scaled to for the swapped-languages read (big bold digits misread)
_LABEL_RETRY_PX: tuple[tuple[Reader, int], ...] = (("text", 24), ("swapped", 48))
_INK_MARGIN = 45  # a pixel this much darker than the page's background is text; cards and rules are not
_PHRASE_GAP = 0.8  # a column gap wider than this many line heights separates two segments
_MIN_TEXT_PX, _MAX_TEXT_PX = 8, 200
_BELOW_REACH = 2.5  # a value "below" a label starts within this many label heights
_DISAGREE_FACTOR = 0.6  # confidence factor of a value no two reads agree on
_AGREEMENT_FLOOR = {2: 0.7, 3: 0.9}  # confidence of a value that 2 or 3 of the reads agree on
_MULTIPLIER = re.compile(r"[万億千KMB]")
# What the jpn+eng model writes for a value's unit in big bold digits: "\\" or "Y" for a leading ¥,
# "A" for a trailing 人, and the kana 了 for a lone 7. None of these can be meant in a value.
_VALUE_SLIPS = ((re.compile(r"^[\\Y]"), "¥"), (re.compile(r"(?<=\d)A$"), "人"), (re.compile(r"了"), "7"))
_WORD_SPACE = 0.3  # words further apart than this many line heights are joined with a space
# Folded on both sides before labels are compared: look-alikes the jpn model swaps, small kana.
_CONFUSABLE = str.maketrans("一口力夕卜二工ァィゥェォッャュョ", "ーロカタトニエアイウエオツヤユヨ")


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def h(self) -> int:
        return max(1, self.y1 - self.y0)

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    def same_row(self, other: Box) -> bool:
        overlap = min(self.y1, other.y1) - max(self.y0, other.y0)
        return overlap >= 0.5 * min(self.h, other.h)


@dataclass(frozen=True, eq=False)
class Phrase:
    """One text segment as read: a label, a value, a title, a table cell."""

    text: str
    confidence: float  # the lowest word confidence, 0-1
    box: Box


def _norm(text: str) -> str:
    s = unicodedata.normalize("NFKC", text)
    s = re.sub(r"[\s()（）:：・]", "", s).translate(_CONFUSABLE)
    return s.upper()


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (labels are a few characters long)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _label_fields(text: str, vocabulary: dict[str, tuple[str, ...]]) -> list[str]:
    """The fields whose label ``text`` may be, best first: labels of 3-7 characters may have one
    misread character (シェア read as シェエア), longer ones two, 2-character ones none. A misread
    can land on a neighbour (クリック率 read as クリック数), so the runner-up is kept: the value's
    kind decides."""
    s = _norm(text)
    if not s or any(ch.isdigit() for ch in s):
        return []
    ranked: dict[str, tuple[int, int]] = {}
    for field, labels in vocabulary.items():
        for label in labels:
            target = _norm(label)
            allowed = 0 if len(target) <= 2 else 1 if len(target) <= 7 else 2
            distance = _edits(s, target)
            if distance <= allowed and (field not in ranked or (distance, -len(target)) < ranked[field]):
                ranked[field] = (distance, -len(target))
    return sorted(ranked, key=ranked.__getitem__)


def _split_label(phrase: Phrase) -> tuple[list[str], str | None] | None:
    """``(fields, inline value text)`` when the phrase is a label or starts with one ("GMV ¥1,234")."""
    tokens = phrase.text.split(" ")
    for k in range(len(tokens), 0, -1):  # the longest label prefix
        fields = _label_fields("".join(tokens[:k]), LABELS)
        if fields:
            return fields, "".join(tokens[k:]) or None
    return None


class _Engine:
    """Single-line tesseract readers, kept loaded; one caller at a time.

    ``text`` reads anything in ``languages``; ``digits`` the same models limited to digits and
    units; ``swapped`` the languages in reverse order (``eng+jpn``), whose digit shapes differ
    from the jpn model's (which reads a bold 50 px "2.76%" as "2.16%"): a second opinion.
    """

    def __init__(self, tessdata: Path, languages: str) -> None:
        try:
            import tesserocr
        except ImportError as exc:  # pragma: no cover - a broken deployment
            raise OcrUnavailableError(f"tesserocr is not installed: {exc}") from exc
        self._tesserocr: Any = tesserocr
        self.lock = threading.Lock()
        psm = tesserocr.PSM.RAW_LINE  # SINGLE_LINE drops some short grey labels (総売上) entirely
        swapped = "+".join(reversed(languages.split("+")))
        self._apis = {
            "text": tesserocr.PyTessBaseAPI(path=str(tessdata), lang=languages, psm=psm),
            "digits": tesserocr.PyTessBaseAPI(path=str(tessdata), lang=languages, psm=psm),
            "swapped": tesserocr.PyTessBaseAPI(path=str(tessdata), lang=swapped, psm=psm),
        }
        self._apis["digits"].SetVariable("tessedit_char_whitelist", VALUE_CHARS)

    def read(self, image: Image.Image, line_height: int, reader: Reader = "text") -> tuple[str, float]:
        """The line's text and its lowest word confidence (0-1); ``("", 0.0)`` when nothing is read."""
        level = self._tesserocr.RIL.WORD
        api = self._apis[reader]
        api.SetImage(image)
        api.Recognize()
        text, confidences, last_right = "", [], None
        for item in self._tesserocr.iterate_level(api.GetIterator(), level):
            if item.Empty(level):
                continue
            word = (item.GetUTF8Text(level) or "").strip()
            if not word:
                continue
            left, _, right, _ = item.BoundingBox(level)
            if last_right is not None and left - last_right > _WORD_SPACE * line_height:
                text += " "
            text += word
            last_right = right
            confidences.append(item.Confidence(level) / 100)
        return text, min(confidences, default=0.0)


@lru_cache(maxsize=4)
def _engine(tessdata: Path, languages: str) -> _Engine:
    return _Engine(tessdata, languages)


def prepare(image: Image.Image) -> Image.Image:
    """Grey, dark text on light, scaled so the typical text line is ``_TEXT_PX`` tall:
    what tesseract reads best, whatever the screenshot's resolution or shape."""
    gray = ImageOps.grayscale(image.convert("RGB"))
    if float(np.median(np.asarray(gray))) < 128:  # dark theme
        gray = ImageOps.invert(gray)
    heights = [box.h for box in segment(ink(gray))]
    if heights:
        scale = min(_MAX_UPSCALE, max(1.0, _TEXT_PX / float(np.median(heights))))
        if scale > 1.05:
            gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.LANCZOS)
    return gray


def ink(gray: Image.Image) -> np.ndarray:
    """Text pixels: darker than the background (the commonest grey) by ``_INK_MARGIN``. Relative,
    so light labels still count in a blurred or washed-out screenshot."""
    pixels = np.asarray(gray)
    background = int(np.argmax(np.bincount(pixels.ravel(), minlength=256)))
    return pixels < background - _INK_MARGIN


def _runs(profile: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of True in ``profile``, bridging gaps narrower than ``min_gap``."""
    index = np.flatnonzero(profile)
    if index.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(index) > min_gap)
    starts = [int(index[0]), *(int(index[b + 1]) for b in breaks)]
    ends = [*(int(index[b]) + 1 for b in breaks), int(index[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def segment(ink: np.ndarray) -> list[Box]:
    """Text segments by recursive XY-cut: split at empty rows, then at column gaps wider than
    ``_PHRASE_GAP`` line heights, until nothing splits; rules and specks are dropped."""
    out: list[Box] = []
    stack = [Box(0, 0, ink.shape[1], ink.shape[0])]
    while stack:
        box = stack.pop()
        region = ink[box.y0 : box.y1, box.x0 : box.x1]
        rows = _runs(np.asarray(region.any(axis=1)), 1)
        if len(rows) != 1:
            stack.extend(Box(box.x0, box.y0 + a, box.x1, box.y0 + b) for a, b in rows)
            continue
        top, bottom = rows[0]
        height = bottom - top
        columns = _runs(np.asarray(region[top:bottom].any(axis=0)), max(4, int(_PHRASE_GAP * height)))
        parts = [Box(box.x0 + a, box.y0 + top, box.x0 + b, box.y0 + bottom) for a, b in columns]
        if len(parts) > 1:
            stack.extend(parts)
        elif parts and _MIN_TEXT_PX <= height <= _MAX_TEXT_PX and parts[0].x1 - parts[0].x0 >= 4:
            out.append(parts[0])
    return sorted(out, key=lambda b: (b.y0, b.x0))


class _Page:
    """One prepared screenshot: its segments read as text, and value re-reads on demand."""

    def __init__(self, image: Image.Image, engine: _Engine) -> None:
        self.image = image
        self.engine = engine
        self._reads: dict[tuple[Box, Reader, int | None], tuple[str, float]] = {}
        self.phrases: list[Phrase] = []
        for box in segment(ink(image)):
            text, confidence = engine.read(self.canvas(box), box.h)
            if text:
                self.phrases.append(Phrase(text, confidence, box))

    def canvas(self, box: Box, scale: float = 1.0) -> Image.Image:
        """The box alone with a white margin (no neighbouring ink for the line reader to see),
        black on white at the box's own Otsu threshold: the grey anti-aliasing of small light
        labels makes the jpn model read シェア as "DET"."""
        pad = max(4, box.h // 6)
        crop = np.asarray(self.image)[box.y0 : box.y1, box.x0 : box.x1]
        page = np.full((crop.shape[0] + 2 * pad, crop.shape[1] + 2 * pad), 255, dtype=np.uint8)
        page[pad:-pad, pad:-pad] = np.where(crop > otsu_threshold(crop), 255, 0)
        image = Image.fromarray(page)
        if scale != 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        return image

    def _read(self, box: Box, reader: Reader, height: int | None = None) -> tuple[str, float]:
        """One read of a box (scaled to ``height`` px), remembered: a candidate is tried for
        several fields' kinds."""
        key = (box, reader, height)
        if key not in self._reads:
            scale = 1.0 if height is None else height / box.h
            self._reads[key] = self.engine.read(self.canvas(box, scale=scale), height or box.h, reader)
        return self._reads[key]

    def label(self, phrase: Phrase) -> tuple[list[str], str | None] | None:
        """``_split_label`` of the phrase; a short digit-free phrase that is no label is read twice
        more (at ``_LABEL_RETRY_PX``), since the eng half of jpn+eng now and then turns a label
        into Latin junk (クリック率 as "Ay DB") at one size and not at another."""
        split = _split_label(phrase)
        if split is not None or any(ch.isdigit() for ch in phrase.text) or len(_norm(phrase.text)) > 12:
            return split
        for reader, height in _LABEL_RETRY_PX:
            text, confidence = self._read(phrase.box, reader, height)
            split = _split_label(Phrase(text, confidence, phrase.box))
            if split is not None:
                return split
        return None

    def read_value(self, phrase: Phrase, spec: FieldSpec) -> Reading | None:
        """The phrase as a value of the field, by a vote of three reads: the text read, a
        digits-and-units read and a swapped-languages read at ``_VALUE_PX`` (plus a fourth when
        no two agree). Tesseract's own word confidence is poorly calibrated on short numbers (a
        clean "4.54%" scores 0.23), so agreement sets a floor: three reads agreeing count 0.9,
        two 0.7; a value only one read gives keeps 0.6 of its word confidence, which a threshold
        then refuses. The losing reads travel along as alternatives. None when no read fits."""
        reads = [
            (phrase.text, phrase.confidence),
            self._read(phrase.box, "digits", _VALUE_PX),
            self._read(phrase.box, "swapped", _VALUE_PX),
        ]
        votes = [vote for text, confidence in reads if (vote := _vote(text, confidence, spec))]
        if len({v[0] for v in votes}) == len(votes):  # no two agree: one more opinion
            votes += [v for v in [_vote(*self._read(phrase.box, "text", _VALUE_PX), spec)] if v]
        if not votes:
            return None
        best = max(votes, key=lambda v: (sum(w[0] == v[0] for w in votes), v[2]))
        agreeing = [v for v in votes if v[0] == best[0]]
        confidence = max(v[2] for v in agreeing)
        others = tuple(dict.fromkeys(v[1] for v in votes if v[0] != best[0]))
        if len(agreeing) == 1:
            return Reading(best[1], confidence * _DISAGREE_FACTOR, others)
        return Reading(best[1], max(confidence, _AGREEMENT_FLOOR[len(agreeing)]), others)


def _vote(text: str, confidence: float, spec: FieldSpec) -> tuple[float, str, float] | None:
    """``(value, cleaned text, confidence)`` of one read, or None when it is no value of the field
    (wrong units, a sign, a fraction of a count)."""
    kind = spec.kind
    s = unicodedata.normalize("NFKC", text).replace(" ", "")
    for slip, meant in _VALUE_SLIPS:
        s = slip.sub(meant, s)
    if kind in ("number", "money") and not _MULTIPLIER.search(s):
        s = re.sub(r"(?<=\d)\.(?=\d{3}(?!\d))", ",", s)  # counts and yen are whole: "1.205" is 1,205
    if not s or not text_fits_kind(s, kind):
        return None
    try:
        value = parse_number(s, kind)
    except NumberFormatError:
        return None
    if value is None or (spec.integer and not value.is_integer()):
        return None
    return value, s, confidence


@dataclass
class _Table:
    header: list[tuple[str, Phrase]]
    rows: list[list[Phrase]]


def _find_table(phrases: list[Phrase]) -> _Table | None:
    """A product table: a header row holding 商品名 or 価格 (never metric labels) and another
    column header, and the rows below it."""
    anchors = {k: PRODUCT_COLUMNS[k] for k in ("name", "price")}
    for anchor in phrases:
        if not _label_fields(anchor.text, anchors):
            continue
        header: list[tuple[str, Phrase]] = []
        for phrase in phrases:
            columns = _label_fields(phrase.text, PRODUCT_COLUMNS) if phrase.box.same_row(anchor.box) else []
            if columns and columns[0] not in {column for column, _ in header}:
                header.append((columns[0], phrase))
        if len(header) < 2:
            continue
        bottom = max(p.box.y1 for _, p in header)
        rows: list[list[Phrase]] = []
        for phrase in sorted((p for p in phrases if p.box.y0 >= bottom), key=lambda p: p.box.y0):
            if rows and phrase.box.same_row(rows[-1][0].box):
                rows[-1].append(phrase)
            else:
                rows.append([phrase])
        return _Table(header=sorted(header, key=lambda item: item[1].box.x0), rows=rows)
    return None


def _column_of(table: _Table, phrase: Phrase) -> str:
    """The header column a cell belongs to: the most horizontal overlap, else the nearest centre."""

    def overlap(head: Phrase) -> int:
        return min(phrase.box.x1, head.box.x1) - max(phrase.box.x0, head.box.x0)

    column, head = max(table.header, key=lambda item: (overlap(item[1]), -abs(item[1].box.cx - phrase.box.cx)))
    if overlap(head) > 0:
        return column
    return min(table.header, key=lambda item: abs(item[1].box.cx - phrase.box.cx))[0]


def _read_products(page: _Page, table: _Table) -> tuple[list[ProductReading], set[Phrase]]:
    """One reading per table row until a row without any number (the table has ended), and
    the phrases the table took (header and product rows)."""
    products: list[ProductReading] = []
    taken = {phrase for _, phrase in table.header}
    for row in table.rows:
        cells: dict[str, list[Phrase]] = {}
        for phrase in sorted(row, key=lambda p: p.box.x0):
            cells.setdefault(_column_of(table, phrase), []).append(phrase)
        numbers = {}
        for column, phrases in cells.items():
            if column != "name" and (reading := page.read_value(phrases[0], PRODUCT_FIELDS[column])):
                numbers[column] = reading
        if not numbers:
            break
        names = cells.get("name", [])
        name = Reading(" ".join(p.text for p in names), min(p.confidence for p in names)) if names else None
        products.append(ProductReading(name=name, numbers=numbers))
        taken.update(row)
    return products, taken


def _candidates(label: Phrase, others: list[Phrase], labels: list[Phrase]) -> list[Phrase]:
    """Value candidates of a label: the nearest on its row to the right, then the nearest two below."""
    box = label.box
    right = [
        p
        for p in others
        if p.box.x0 >= box.x1 - box.h // 2
        and p.box.same_row(box)
        and not any(box.x1 <= q.box.x0 < p.box.x0 and q.box.same_row(box) for q in labels)
    ]
    below = [
        p
        for p in others
        if box.y1 - box.h // 4 <= p.box.y0 <= box.y1 + _BELOW_REACH * box.h
        and abs(p.box.x0 - box.x0) <= 2 * box.h
        and not any(box.y1 <= q.box.y0 < p.box.y0 and q.box.x0 < p.box.x1 and q.box.x1 > p.box.x0 for q in labels)
    ]
    return sorted(right, key=lambda p: p.box.x0)[:1] + sorted(below, key=lambda p: p.box.y0)[:2]


def _pair(
    page: _Page, labels: list[tuple[list[str], Phrase, str | None]], others: list[Phrase]
) -> tuple[dict[str, Reading], list[str]]:
    """Give each label the first value candidate that reads as a value of one of its fields."""
    label_phrases = [label for _, label, _ in labels]
    readings: dict[str, Reading] = {}
    notes: list[str] = []
    for fields, label, inline in labels:
        open_fields = [f for f in fields if f not in readings]
        if not open_fields:
            notes.append(f"{fields[0]}: label {label.text!r} seen again; the first reading is kept")
            continue
        if inline is not None:  # "GMV ¥1,234" in one segment: one read only, no vote to be had
            fitting = [f for f in open_fields if text_fits_kind(inline, SALES_FIELDS[f].kind)]
            if fitting:
                readings[fitting[0]] = Reading(inline, label.confidence)
                continue
        for candidate in _candidates(label, others, label_phrases):
            hit = next(((f, r) for f in open_fields if (r := page.read_value(candidate, SALES_FIELDS[f]))), None)
            if hit is not None:
                readings[hit[0]] = hit[1]
                others.remove(candidate)
                break
        else:
            notes.append(f"{open_fields[0]}: label {label.text!r} found but no value next to it")
    return readings, notes


def read_screenshot(
    image: Image.Image, *, languages: str, tessdata: Path | None
) -> tuple[dict[str, Reading], list[ProductReading], list[str]]:
    """Every sales field and product row the screenshot shows, as text readings with a confidence,
    and notes on labels that were seen without a value."""
    engine = _engine(find_tessdata(tessdata, languages), languages)
    with engine.lock:
        page = _Page(prepare(image), engine)
        table = _find_table(page.phrases)
        products, taken = _read_products(page, table) if table is not None else ([], set())
        labels: list[tuple[list[str], Phrase, str | None]] = []
        others: list[Phrase] = []
        for phrase in page.phrases:
            if phrase in taken:
                continue
            split = page.label(phrase)
            if split is not None:
                labels.append((split[0], phrase, split[1]))
            else:
                others.append(phrase)
        readings, notes = _pair(page, labels, others)
    return readings, products, notes


@dataclass
class LocalOcrReader:
    """The offline reader: Tesseract with the given languages."""

    languages: str
    tessdata: Path | None
    provider: Provider = "local"

    def read(self, data: bytes, image: Image.Image, kind: ImageKind) -> ScreenshotReading:
        readings, products, notes = read_screenshot(image, languages=self.languages, tessdata=self.tessdata)
        if not readings and not products:
            notes.append("no sales label (GMV, 注文数, 視聴者数, ...) was recognised in the image")
        return ScreenshotReading(readings, products, notes)
