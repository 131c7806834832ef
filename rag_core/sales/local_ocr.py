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
3. each segment is read as one line; label words and number pieces the cut split
   apart are joined; a segment naming a field in the label lexicon
   (:mod:`rag_core.sales.lexicon`) is paired with the nearest segment on its
   row to the right, else directly below it; a product table is recognised by
   its header row (商品名, 価格 …) and read by column;
4. a value is read three ways (the text read, digits-and-units only, languages
   swapped at a fixed height) and :func:`decide` turns the reads into one
   reading: agreement sets its confidence, as tesseract's own scores are poorly
   calibrated on short numbers, and reads that disagree make it *disputed*,
   never voted into confidence (fields.py settles it by evidence or reports it
   as uncertain).

Values are returned as text with a confidence; parsing, thresholds and
cross-checks are :mod:`rag_core.sales.fields`'s job. Figures per split are in
docs/sales-ingestion.md (benchmarks/ocr_accuracy.py).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from PIL import Image, ImageOps

from rag_core.analysis.numbers import VALUE_CHARS, NumberFormatError, parse_number
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
from rag_core.sales.lexicon import normalise, product_columns, sales_labels
from rag_core.sales.screenshot_reader import ImageKind, ScreenshotReading

Reader = Literal["text", "digits", "swapped", "latin", "chinese"]
_TEXT_PX = 32  # median text-line height the page is upscaled to (never downscaled)
_MAX_UPSCALE = 4.0
_VALUE_PX = 24  # height a value is scaled to for the swapped-languages read (big bold digits misread)
# A label read again at another height (None: the page's) or as grey rather than black-and-white
# (thin Mincho strokes of a small label in a compressed screenshot break up at a threshold).
_LABEL_RETRY: tuple[tuple[Reader, int | None, bool], ...] = (
    ("text", 24, False),
    ("text", None, True),
    ("swapped", 48, False),
    ("chinese", 32, False),
)
_NOT_A_VALUE = re.compile(r"[^\d\s,.，．:：%¥￥\\円人万億件回個分秒時間KkMm+\-]")  # a character no value shows
CHINESE = "chi_sim"  # Simplified Chinese labels (成交金额, 观看人数): read when its data is installed
_INK_MARGIN = 45  # a pixel this much darker than the page's background is text; cards and rules are not
_PHRASE_GAP = 0.8  # a column gap wider than this many line heights separates two segments
_MIN_TEXT_PX, _MAX_TEXT_PX = 8, 200
_BELOW_REACH = 2.5  # a value "below" a label starts within this many label heights
_ABOVE_REACH = 1.5  # a value "above" a label (tiles: big number, caption under it) ends within this many
_NUMBER_GAP = 1.3  # line heights between two pieces of one number (full-width digits are set wide)
_GROUP_GAP = 2.2  # ... when the right piece is a thousands group: a full-width comma's cell is empty ink
_THOUSANDS_GROUP = re.compile(r"^\s*([,.，．;:'、]?)\s*\d{3}(?!\d)")  # group 1: a separator before it
_MULTIPLIER = re.compile(r"(?<=\d)[万億千KkMm]")
_GROUPED = re.compile(r"\d\s*[,，]\s*\d{3}\s*$")  # ends with a separated group of three
_SEPARATOR_END = re.compile(r"[,.，．;:'、]\s*$")
_LATIN_CHARS = "0123456789,.:%KM"
_CURRENCY_START = re.compile(r"^\s*[¥￥\\Y$]")
_WORD_GAP = 1.3  # line heights between two words of one label (a monospaced face's space is half an em)
# ";" "'": a full-width comma; O: a ０; a currency mark may have one stray glyph after it (a
# full-width ￥'s wide cell read as "¥i")
# (l, I, |: a 1; before the number, a yen mark read as it and a stray glyph, or as one symbol: "*2,795,")
_NUMERIC_TEXT = re.compile(
    r"^(?:[¥￥\\Y][^\d\s]|[^\w\s+\-−–—‐.,，．()（）\[\]|!¥￥](?=\d))?[\d,.，．;:'、¥￥\\Y円人万億KMkOlI|%+\s]+$"
)
_DISAGREE_FACTOR = 0.6  # confidence factor of a value no two reads agree on
_AGREEMENT_FLOOR = {2: 0.7, 3: 0.9}  # confidence of a value that 2 or 3 of the reads agree on
_DISPUTED_CONFIDENCE = 0.3  # at most, for a value the reads disagree on (below any sensible threshold)
# What the jpn+eng model writes for a value's unit in big bold digits: "\\" or "Y" for a leading ¥,
# "A" for a trailing 人, and the kana 了 for a lone 7. None of these can be meant in a value.
_VALUE_SLIPS = (
    (re.compile(r"^[\\Y]"), "¥"),
    (re.compile(r"(?<=\d)A$"), "人"),
    (re.compile(r"了"), "7"),
)
# The part of a duration that counts up to 60 ("3時間10分", "2分49秒", "03:22"): at 60 or more it
# was misread ("3時間190分": a digit inserted), never written so
_SEXAGESIMAL = re.compile(r"(?:時間|分|\d:)(\d+)(?=[分秒]|$)")
# 秒 in a heavy face (M+ Black) read as its look-alike 秘, every read
_DURATION_SLIPS = ((re.compile(r"(?<=\d)秘"), "秒"),)
# 万 read as a 5 after one decimal ("11.25" for "11.2万", "¥39.35" for "¥39.3万"): a count or a yen
# amount has no two decimals, and a point before three digits is a comma, not this
_MULTIPLIER_AS_FIVE = re.compile(r"^([¥￥]?\d{1,4}\.\d)5$")
_COUNT_UNIT_END = re.compile(r"[人件回個]\s*$")
# A multiplier read as Latin letters after one decimal ("¥39.3FA", "¥39.3H" for a bold "¥39.3万"):
# no vote of its own, as the letters do not say which multiplier, but support for another read
# that shows the same digits with 万 or 億 (:func:`_unread_multipliers`)
_UNREAD_MULTIPLIER = re.compile(r"^[¥￥\\]?(\d{1,4}\.\d)[A-Za-z]{1,3}$")
_SHOWN_MULTIPLIER = re.compile(r"(\d{1,4}\.\d)[万億]")
_SIGNS = "+-−–—‐"  # the signs of a comparison ("前回比 +12.3%"), look-alikes included
# How an amount's yen marks come out of some faces: a full-width ￥ as a stray character and a
# backslash ("ぎ\\1,153,400") or as one symbol ("*2,514,880": nothing but a currency mark stands
# before an amount, and a symbol is no misread digit), a trailing 円 as up to three ASCII
# characters ("14,119,080F3", "3,058,400/F4", "690,900}\"}" in a Mincho face), only ever after
# a complete thousands group and never a sign, separator or "%".
_MONEY_SLIPS = (
    (re.compile(r"^[^\d\s+\-−–—‐][\\Y¥](?=\d)"), "¥"),
    (re.compile(r"^[\\Y¥][^\d\s,.](?=\d)"), "¥"),
    (re.compile(r"^[^\w\s+\-−–—‐.,，．()（）\[\]|!¥￥](?=\d)"), "¥"),
    (re.compile(r"(?<=\d,\d{3})(?![%+\-,.])[!-/:-~][!-~]{0,2}$"), "円"),
    # or as its left stroke and a symbol ("39,7871]", "39,7871\")" in a Mincho face)
    (re.compile(r"(?<=\d,\d{3})[1lI|][!-/:-@\[-`{-~][!-~]?$"), "円"),
    # or as one digit ("72,7787" for "72,778円"): no amount has four digits after its last comma
    (re.compile(r"^(\d{1,3}(?:,\d{3})+)\d$"), r"\1円"),  # (with a ¥ before it, no 円 is meant)
)
_UNIT_END = re.compile(r"(?<=\d)\s*[円人件回個万億%KkMm]\s*$")  # a number that ends in its unit is complete
# A comma before one or two digits and a multiplier is a decimal point ("126,3K", "1,2万");
# any other comma must start a group of exactly three digits.
_ABBREVIATED_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}[万億千KkMm])")
_BROKEN_GROUP = re.compile(r"\d,(?:\d{4}|\d{1,2}(?!\d))")
_RING_AS_DIGIT = re.compile(r"\.\d{3,}%$")
# K and M abbreviate below the next step ("999.9K", then "1.0M"): four digits before the point, or
# a thousands group, are no such notation but a misread unit ("6348.2万" read as "6348, 25m")
_OVERFULL_ABBREVIATION = re.compile(r"(?:\d{4,}|\d,\d{3})(?:\.\d+)?[KkMm]$")
_WORD_SPACE = 0.3  # words further apart than this many line heights are joined with a space
# a thousands group that ends the number: at the end, or closed by what is no digit or separator
# (a small 円 read as ")": "690,900),"; "１，８１１，" is not closed, its next group may follow)
_CLOSED_GROUP = re.compile(r"\d\s*[,，]\s*\d{3}\s*(?:$|[^\d\s,.，．;:'、])")
_NUMBER_START = re.compile(r"\d+\s*[,，.．]\s*$")  # a read ending in digits and a separator: more follows
_HEAD_UNIT_END = re.compile(r"(?<=\d)\s*(?:[万億]\s*)?[円人件回個万億%KkMm]\s*$")  # "169.6万円" too
_UNIT_BRACKET = re.compile(r"\s*[(（\[【{]")  # what opens a label's unit, "(円)", never a number
_FILLED_SHARE = 0.62  # a box darker than this share is a filled chip (words take a third of a line)
_RAISED_SHARE = 0.25  # ink pieces ending this share of a line above the baseline are raised
_RAISED_UNITS = frozenset({"万", "億", "万円", "億円", "円", "K", "M", "人", "件"})  # what a raised unit may read
_HEAD_GAP = 0.2  # a blank this many line heights wide may end a value with a decoration after it
_DECORATION_HEIGHT = 0.65  # ink lower than this share of a number's is set smaller: no more of its digits


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

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))


class Glyph(NamedTuple):
    """One character as a line read saw it, and its columns on the page."""

    char: str
    x0: int
    x1: int


class Line(NamedTuple):
    """One line read: its text, lowest word confidence (0-1) and characters in image columns."""

    text: str
    confidence: float
    glyphs: tuple[Glyph, ...]


@dataclass(frozen=True, eq=False)
class Phrase:
    """One text segment as read: a label, a value, a title, a table cell."""

    text: str
    confidence: float  # the lowest word confidence, 0-1
    box: Box
    glyphs: tuple[Glyph, ...] = ()  # page columns of each character read (values only need them)


def _adjacent(
    phrases: list[Phrase],
    gap: float,
    joinable: Callable[[Phrase, Phrase | None], bool],
    refused: Collection[tuple[int, int]] = (),
) -> tuple[Phrase, Phrase] | None:
    """The first two joinable phrases side by side on one row, at most ``gap`` line heights
    apart with nothing between them (``joinable(phrase, None)`` for the left one,
    ``joinable(phrase, left)`` for the right one; ``refused``: pairs, by id, already turned down)."""
    for left in phrases:
        if not joinable(left, None):
            continue
        right = min(
            (p for p in phrases if p is not left and p.box.x0 >= left.box.x1 and p.box.same_row(left.box)),
            key=lambda p: p.box.x0,
            default=None,
        )
        if (
            right is not None
            and (id(left), id(right)) not in refused
            and joinable(right, left)
            and right.box.x0 - left.box.x1 <= gap * max(left.box.h, right.box.h)
        ):
            return left, right
    return None


def _number_piece(phrase: Phrase, left: Phrase | None) -> bool:
    """Whether the phrase may be a piece of a number: numeric text, or, right after a number
    that ends in a separator ("¥1,811,"), any piece with a digit of about its height (a wide
    full-width "７４０" read as "フ 40": the number must go on, and its rest is read again)."""
    if _NUMERIC_TEXT.match(phrase.text):
        return True
    return (
        left is not None
        and bool(_SEPARATOR_END.search(left.text))
        and any(ch.isdigit() for ch in phrase.text)
        and 0.7 * left.box.h <= phrase.box.h <= 1.3 * left.box.h
    )


def _word_runs(phrases: list[Phrase]) -> list[list[Phrase]]:
    """Digit-free phrases side by side on one row, at most ``_WORD_GAP`` line heights apart, as
    runs in reading order; every other phrase is a run of its own."""
    runs: list[list[Phrase]] = []
    for phrase in sorted(phrases, key=lambda p: p.box.x0):  # left to right: a row's words differ in top
        wordy = not any(ch.isdigit() for ch in phrase.text)
        run = next(
            (
                r
                for r in runs
                if wordy
                and not any(ch.isdigit() for ch in r[-1].text)
                and r[-1].box.same_row(phrase.box)
                and 0 <= phrase.box.x0 - r[-1].box.x1 <= _WORD_GAP * max(r[-1].box.h, phrase.box.h)
            ),
            None,
        )
        if run is None:
            runs.append([phrase])
        else:
            run.append(phrase)
    return runs


def _join_labels(phrases: list[Phrase]) -> list[Phrase]:
    """Join the words of one label that the XY-cut split at word spaces (``Avg.`` ``watch``
    ``time``): in each run of neighbouring words the longest stretch that is a label becomes
    one phrase, so ``views`` alone never names a field inside "GMV per thousand views"."""
    out: list[Phrase] = []
    for run in _word_runs(phrases):
        stretch = next(
            (
                (i, i + size)
                for size in range(len(run), 1, -1)
                for i in range(len(run) - size + 1)
                if sales_labels().match(" ".join(p.text for p in run[i : i + size]))
            ),
            None,
        )
        if stretch is None:
            out.extend(run)
            continue
        i, j = stretch
        words = run[i:j]
        box = words[0].box
        for word in words[1:]:
            box = box.union(word.box)
        joined = Phrase(" ".join(p.text for p in words), min(p.confidence for p in words), box)
        out.extend([*run[:i], joined, *run[j:]])
    return sorted(out, key=lambda p: (p.box.y0, p.box.x0))


# Where a label may end: word spaces, after a colon ("Likes:1,234"), and where digits start after
# a word ("注文数・900": a colon read as "・", no space)
_LABEL_TOKEN = re.compile(r" |(?<=[^\d\s][:：])|(?<=[^\d\s,.¥￥\\$])(?=\d)")
_VALUE_START = re.compile(r"[\d¥￥\\$]")  # where an inline value starts: a digit or a currency mark


def _split_label(phrase: Phrase, blank: list[tuple[int, int]] | None = None) -> tuple[list[str], Phrase | None] | None:
    """``(fields, inline value)`` when the phrase is a label or starts with one (``GMV ¥1,234``,
    ``視聴者数：1,234人``): the value is the rest of the phrase from its first digit or
    currency mark on, as a phrase of its own (:func:`_inline_value`; ``blank``: the phrase's
    blank column runs in page columns, where the value may be cut off)."""
    tokens = [t for t in _LABEL_TOKEN.split(phrase.text) if t]
    for k in range(len(tokens), 0, -1):  # the longest label prefix
        fields = sales_labels().match("".join(tokens[:k]))
        if fields:
            rest = "".join(tokens[k:])
            # a rest without a digit is a misread qualifier ("Shop GMV (円)" read "Shop GMV (FQ)"), no value
            if not any(ch.isdigit() for ch in rest):
                return fields, None
            return fields, _inline_value(phrase, sum(len(t) for t in tokens[:k]), rest, blank or [])
    return None


def _inline_value(phrase: Phrase, label_chars: int, rest: str, blank: list[tuple[int, int]]) -> Phrase:
    """The value after a phrase's first ``label_chars`` characters, cut off in the widest blank
    columns between the label's last glyph and the value's first (skipping junk read in the gap,
    "販売金額 .2,414,890円";
    tesseract's glyph starts lie now and then, and a cut through a digit made "900" read as
    "3900" twice), so that it is read three ways like any value. Without glyph positions or a
    blank column to cut in, it is the rest's text alone, with no glyphs and the label's box."""
    glyphs = phrase.glyphs
    alone = Phrase(rest, phrase.confidence, phrase.box)
    if len(glyphs) != len(phrase.text.replace(" ", "")):
        return alone
    start = next((i for i in range(label_chars, len(glyphs)) if _VALUE_START.match(glyphs[i].char)), None)
    # the label's last word glyph: a colon after it is thin enough to fall in the blank columns
    end = next((i for i in range(label_chars - 1, -1, -1) if glyphs[i].char.isalnum()), None)
    if not start or end is None:
        return alone
    gaps = [gap for gap in blank if glyphs[end].x0 < gap[0] and gap[1] <= glyphs[start].x0 + 2]
    if not gaps:
        return alone
    a, b = max(gaps, key=lambda gap: gap[1] - gap[0])  # the label-value space is the widest
    box = Box(max((a + b) // 2, b - phrase.box.h // 4), phrase.box.y0, phrase.box.x1, phrase.box.y1)
    value = tuple(g for g in glyphs[start:])
    return Phrase("".join(g.char for g in value), phrase.confidence, box, value)


class _Engine:
    """Single-line tesseract readers, kept loaded; one caller at a time.

    ``text`` reads anything in ``languages``; ``digits`` the same models limited to digits and
    units; ``swapped`` the languages in reverse order (``eng+jpn``), whose digit shapes differ
    from the jpn model's (which reads a bold 50 px "2.76%" as "2.16%"): a second opinion;
    ``latin`` the eng model alone on digits and separators, which does not share the jpn
    model's blind spots (IPA Gothic's "0円" read as "6円" by every jpn read).
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
        if "eng" in languages.split("+"):  # the Latin model alone, on digits only (_Page.latin_read)
            self._apis["latin"] = tesserocr.PyTessBaseAPI(path=str(tessdata), lang="eng", psm=psm)
            self._apis["latin"].SetVariable("tessedit_char_whitelist", _LATIN_CHARS)
        first, *rest = languages.split("+")
        if CHINESE not in languages.split("+") and (tessdata / f"{CHINESE}.traineddata").is_file():
            # jpn+eng reads 19 of the lexicon's 71 Chinese terms (simplified 额, 观, 订 are no
            # Japanese characters), jpn+chi_sim+eng 67; only labels the first reads failed on
            # are read so, as it is a third slower than jpn+eng.
            chinese = "+".join([first, CHINESE, *rest])
            self._apis["chinese"] = tesserocr.PyTessBaseAPI(path=str(tessdata), lang=chinese, psm=psm)

    def has(self, reader: Reader) -> bool:
        """Whether ``reader``'s models are loaded (``latin`` needs eng, ``chinese`` chi_sim's data)."""
        return reader in self._apis

    def read(self, image: np.ndarray, line_height: int, reader: Reader = "text") -> Line:
        """The line (``image``: uint8 grey) as read; empty text with confidence 0 when nothing is
        read. Raw bytes, not a PIL image: tesserocr would encode a PIL image as a BMP on every
        call, a tenth of the reading time."""
        level = self._tesserocr.RIL.WORD
        api = self._apis[reader]
        pixels = np.ascontiguousarray(image, dtype=np.uint8)
        api.SetImageBytes(pixels.tobytes(), pixels.shape[1], pixels.shape[0], 1, pixels.shape[1])
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
        symbol = self._tesserocr.RIL.SYMBOL
        glyphs = tuple(
            Glyph(char, box[0], box[2])
            for item in self._tesserocr.iterate_level(api.GetIterator(), symbol)
            if not item.Empty(symbol)
            and (char := (item.GetUTF8Text(symbol) or "").strip())
            and (box := item.BoundingBox(symbol))
        )
        return Line(text, min(confidences, default=0.0), glyphs)


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
        self.pixels = np.asarray(image)  # once: converting the page per crop cost a tenth of the time
        self.engine = engine
        self._reads: dict[tuple[Box, Reader, int | None, bool], tuple[str, float]] = {}
        self.phrases: list[Phrase] = []
        self.loose: set[int] = set()  # numbers (by id) with a piece beside them that may belong to them
        for box in segment(ink(image)):
            if phrase := self._phrase(box):
                self.phrases.append(phrase)
        self._join_numbers()

    def _join_numbers(self) -> None:
        """Join the pieces of one number the XY-cut split apart: full-width digits and a full-width
        comma leave gaps wider than a word space (``１，８５８`` arrives as "1" and "858", the comma
        dropped as a speck), and only the first piece would be paired with the label. Pieces
        ``_NUMBER_GAP`` line heights apart are joined, and a three-digit group after a separator
        up to ``_GROUP_GAP``; joined pieces are read again as one."""
        refused: set[tuple[int, int]] = set()
        while pair := _adjacent(self.phrases, _GROUP_GAP, _number_piece, refused):
            left, right = pair
            gap = (right.box.x0 - left.box.x1) / max(left.box.h, right.box.h)
            next_value = any(ch.isdigit() for ch in left.text) and (
                _CURRENCY_START.match(right.text)  # "¥1,234 ¥567": two amounts
                or (_CURRENCY_START.match(left.text) and _COUNT_UNIT_END.search(right.text))  # "¥32,889 491人"
            )
            thousands = _THOUSANDS_GROUP.match(right.text)
            group = thousands and (thousands.group(1) or _SEPARATOR_END.search(left.text))
            if next_value or (gap > _NUMBER_GAP and not group):
                refused.add((id(left), id(right)))  # a currency mark or a far number is the next value
                if thousands and not next_value and not _GROUPED.search(left.text) and not _UNIT_END.search(left.text):
                    # a lone three-digit group: perhaps the rest of this number, unless the number
                    # shows its separators ("¥2,286,800"), so that one missing before it is no gap,
                    # or ends in its unit ("1,188,540円" beside a card's "606": nothing follows a unit)
                    self.loose.add(id(left))
                continue
            box = left.box.union(right.box)
            self.phrases = [p for p in self.phrases if p is not left and p is not right]
            self.phrases.append(self._phrase(box) or Phrase(f"{left.text}{right.text}", 0.0, box))
        self.phrases.sort(key=lambda p: (p.box.y0, p.box.x0))
        # "¥62," goes on, when anything follows it on its row to go on with ("82,264,000," with a
        # small 円 read as "," and nothing after it is complete)
        self.loose.update(
            id(p)
            for p in self.phrases
            if _SEPARATOR_END.search(p.text)
            and any(
                q.box.same_row(p.box) and 0 <= q.box.x0 - p.box.x1 <= _GROUP_GAP * max(p.box.h, q.box.h)
                for q in self.phrases
            )
        )

    def joined(self, left: Phrase, right: Phrase) -> Phrase:
        """The two pieces of one number read again as one phrase."""
        box = left.box.union(right.box)
        return self._phrase(box) or Phrase(f"{left.text}{right.text}", 0.0, box)

    def _phrase(self, box: Box) -> Phrase | None:
        """The box read at the page's own scale, its glyphs in page columns; None when empty."""
        line = self.engine.read(self.canvas(box), box.h)
        if not line.text:
            return None
        shift = box.x0 - _pad(box)
        glyphs = tuple(Glyph(g.char, g.x0 + shift, g.x1 + shift) for g in line.glyphs)
        return Phrase(line.text, line.confidence, box, glyphs)

    def canvas(self, box: Box, scale: float = 1.0, grey: bool = False) -> np.ndarray:
        """The box alone with a white margin (no neighbouring ink for the line reader to see),
        black on white at the box's own Otsu threshold: the grey anti-aliasing of small light
        labels makes the jpn model read シェア as "DET"; a box mostly dark after the threshold is a
        filled chip with light words in it (a label in a coloured pill), flipped so that the
        words are the dark ones. ``grey``: its greys stretched to black and white instead, for a
        label whose thin strokes the threshold breaks up."""
        pad = _pad(box)
        crop = self.pixels[box.y0 : box.y1, box.x0 : box.x1]
        page = np.full((crop.shape[0] + 2 * pad, crop.shape[1] + 2 * pad), 255, dtype=np.uint8)
        if grey:
            low, high = (float(v) for v in np.percentile(crop, (2, 98)))
            stretched = (crop.astype(np.float32) - low) * (255.0 / max(1.0, high - low))
            page[pad:-pad, pad:-pad] = np.clip(stretched, 0, 255).astype(np.uint8)
        else:
            light = crop > otsu_threshold(crop)
            if 1.0 - float(light.mean()) > _FILLED_SHARE:  # light words in a filled chip: flip them dark
                light = ~light
                # and what lies outside the pill's rounded ends (dark now, from a row's end
                # inwards) is no ink: read as a glyph, it made "LIVE" "てLiv"
                dark = ~light
                light |= np.cumprod(dark, axis=1).astype(bool) | np.cumprod(dark[:, ::-1], axis=1)[:, ::-1].astype(bool)
            page[pad:-pad, pad:-pad] = np.where(light, 255, 0)
        if scale == 1.0:
            return page
        image = Image.fromarray(page)
        size = (round(image.width * scale), round(image.height * scale))
        return np.asarray(image.resize(size, Image.Resampling.LANCZOS))

    def _read(self, box: Box, reader: Reader, height: int | None = None, grey: bool = False) -> tuple[str, float]:
        """One read of a box (scaled to ``height`` px; ``grey``: see :meth:`canvas`), remembered:
        a candidate is tried for several fields' kinds."""
        key = (box, reader, height, grey)
        if key not in self._reads:
            scale = 1.0 if height is None else height / box.h
            self._reads[key] = self.engine.read(self.canvas(box, scale, grey), height or box.h, reader)[:2]
        return self._reads[key]

    def label(self, phrase: Phrase) -> tuple[list[str], Phrase | None] | None:
        """``_split_label`` of the phrase; a short phrase that is no label and no value is read
        again (``_LABEL_RETRY``), since the eng half of jpn+eng now and then turns a label into
        Latin junk (クリック率 as "Ay DB", in Sawarabi Mincho "Diy 7B", digits included) at one
        size and not at another, and a Chinese label needs the chi_sim model (when installed)."""
        split = _split_label(phrase, self.blank_columns(phrase.box))
        if split is not None and split[1] is not None and self._goes_on(phrase, split[1].text):
            self.loose.add(id(split[1]))
        text = phrase.text
        valueish = sum(ch.isdigit() for ch in text) > 2 or "%" in text or not _NOT_A_VALUE.search(text)
        if split is None and valueish:
            return self._label_before_value(phrase)
        if split is not None or len(normalise(text)) > 12:
            return split
        seen = [text]
        for reader, height, grey in _LABEL_RETRY:
            if not self.engine.has(reader):
                continue
            text, confidence = self._read(phrase.box, reader, height, grey)
            split = _split_label(Phrase(text, confidence, phrase.box))
            if split is not None and split[1] is None:
                # another read of the phrase ending in a number piece ("4,"): the label swallowed the
                # start of a wide number, whose rest lies to its right; that rest alone is no value
                start = next((found for t in seen if (found := _NUMBER_START.search(t))), None)
                return split[0], Phrase(start.group(0), 0.0, phrase.box) if start else None
            if split is not None:
                return split
            seen.append(text)
        return None

    def _label_before_value(self, phrase: Phrase) -> tuple[list[str], Phrase | None] | None:
        """A ``label：value`` phrase whose label was misread (``売上: ¥414,850`` as
        ``AL: ¥414,850``): the words before its first digit or currency mark, cut off in the
        blank columns before the value, are read again alone as a label (``_LABEL_RETRY``, the
        page's scale first: without the value beside it the line reads otherwise). Not after a
        sign: ``前回比 +12.3%`` is a comparison, not a label and its value."""
        glyphs = phrase.glyphs
        if len(glyphs) != len(phrase.text.replace(" ", "")):
            return None
        start = next((i for i, g in enumerate(glyphs) if _VALUE_START.match(g.char)), None)
        before = "".join(g.char for g in glyphs[:start])
        if not start or not any(ch.isalpha() for ch in before) or any(ch in _SIGNS or ch.isdigit() for ch in before):
            return None
        box, blank = phrase.box, self.blank_columns(phrase.box)
        cut = _cut_before(blank, glyphs[start].x0, box.h)
        if cut - box.x0 < box.h:
            return None
        label_box = Box(box.x0, box.y0, cut, box.y1)
        rest = "".join(g.char for g in glyphs[start:])
        for reader, height, grey in (("text", None, False), *_LABEL_RETRY):
            if not self.engine.has(reader):
                continue
            text, confidence = self._read(label_box, reader, height, grey)
            split = _split_label(Phrase(text, confidence, label_box))
            if split is not None:
                return split[0], _inline_value(phrase, start, rest, blank)
        return None

    def _goes_on(self, phrase: Phrase, value: str) -> bool:
        """Whether the number ending ``phrase`` (its text ``value``) may go on past it: it ends in
        a separator, or a lone three-digit group follows within ``_GROUP_GAP`` line heights and
        the number neither shows its separators nor ends in its unit (as for ``loose``)."""
        if _SEPARATOR_END.search(value):
            return True
        if _GROUPED.search(value) or _UNIT_END.search(value):
            return False
        return any(
            p is not phrase
            and p.box.same_row(phrase.box)
            and 0 <= p.box.x0 - phrase.box.x1 <= _GROUP_GAP * max(p.box.h, phrase.box.h)
            and _THOUSANDS_GROUP.match(p.text)
            for p in self.phrases
        )

    def read_value(self, phrase: Phrase, spec: FieldSpec, unit: str = "") -> Reading | None:
        """The phrase as a value of the field, from three reads: the text read at the page's
        own scale, a digits read and a swapped-languages read at ``_VALUE_PX`` (plus a fourth,
        the text read at ``_VALUE_PX``, when no two agree, or when the eng model's read is the
        only value: the jpn model then agreeing is a second opinion, while a jpn read agreeing
        with a jpn read is not - IPA Gothic's thin 0 read as 9 by both made "1時間40分" 109
        minutes, confidently); :func:`decide` turns them into one reading. None when no read
        fits the field. The digits read is :meth:`latin_read` wherever the eng model is loaded.
        ``unit``: read apart (raised off the baseline), written after every read of the number."""
        latin = self.engine.has("latin") and bool(phrase.glyphs)
        reads = [
            (phrase.text, phrase.confidence),
            self.latin_read(phrase) if latin else self._read(phrase.box, "digits", _VALUE_PX),
            self._read(phrase.box, "swapped", _VALUE_PX),
        ]
        reads = [(f"{text}{unit}" if text else text, confidence) for text, confidence in reads]
        voted = [(i, vote) for i, (text, confidence) in enumerate(reads) if (vote := vote_of(text, confidence, spec))]
        votes = [vote for _, vote in voted] + _unread_multipliers(reads, [vote for _, vote in voted], spec)
        latin_alone = latin and [i for i, _ in voted] == [1] and len(votes) == 1
        if len({v.value for v in votes}) == len(votes) > 1 or latin_alone:  # one more opinion
            text, confidence = self._read(phrase.box, "text", _VALUE_PX)
            fourth = (f"{text}{unit}" if text else text, confidence)
            votes += [v for v in [vote_of(*fourth, spec)] if v] + _unread_multipliers([fourth], votes, spec)
        if spec.kind == "percent" and any(_RING_AS_DIGIT.search(v.text) for v in votes):
            # a rate to three decimals is rare, a "%" whose ring is read as a digit is not ("2.73%"
            # as "2.735%" by every read at _VALUE_PX): the reads at the page's scale get a say too
            again = [self._read(phrase.box, reader) for reader in ("swapped", "latin") if self.engine.has(reader)]
            votes += [v for text, confidence in again if (v := vote_of(text, confidence, spec))]
        reading = decide(votes)
        if reading is None or reading.disputed or id(phrase) not in self.loose:
            return reading  # (loose: a number piece beside it was not joined, the value may go on)
        return Reading(reading.raw, min(reading.confidence, _DISPUTED_CONFIDENCE), disputed=True)

    def read_candidate(self, phrase: Phrase, spec: FieldSpec) -> Reading | None:
        """:meth:`read_value`, or :meth:`read_head` when the phrase reads as no value, as one
        read alone or as reads that disagree, and its head reads as a stronger one: a trend or a
        sparkline after the number spoils the reads of the whole (``¥5,451,820。jss。``, read
        as one amount with 円 by one read alone), not those of the number cut off before it.
        A unit raised off the number's baseline is read apart (:meth:`read_raised`)."""
        raised = self.raised_tail(phrase.box)
        if raised is not None and (apart := self.read_raised(phrase.box, raised, spec)) is not False:
            return apart
        reading = self.read_value(phrase, spec)
        if reading is not None and reading.confidence >= _AGREEMENT_FLOOR[2]:
            return reading
        head = self.read_head(phrase, spec)
        if head is not None and (reading is None or head.confidence > reading.confidence):
            return head
        return reading

    def read_head(self, phrase: Phrase, spec: FieldSpec) -> Reading | None:
        """The value at the head of a phrase that reads as none, with a decoration after it (a
        trend ``▲5.7%``, a sparkline, a small unit read as junk: ``¥1,809,700ん、``,
        ``¥ 5,451,82015.5:``): the phrase is cut in a blank run at least ``_HEAD_GAP`` line
        heights wide, the longest head first, and the head read anew like any value. A head is
        tried only when it ends a number for certain (a thousands group closed by its end or by
        what is no digit or separator, or its unit) and
        what follows does not go on with it (a separator or a three-digit group: ``１，８１１``
        ``，７４０`` is one number set wide), so a wide-set number is never cut short."""
        glyphs, box = phrase.glyphs, phrase.box
        if len(glyphs) < 2:
            return None
        runs = [gap for gap in self.blank_columns(box) if gap[1] - gap[0] >= _HEAD_GAP * box.h and gap[1] < box.x1]
        for a, b in sorted(runs, reverse=True):
            head_text = "".join(g.char for g in glyphs if g.x0 < a)  # (a word's last glyph ends where it does)
            tail_text = "".join(g.char for g in glyphs if g.x0 >= b - 1)
            ends = bool(_CLOSED_GROUP.search(head_text) or _HEAD_UNIT_END.search(head_text))
            if _goes_on_with(tail_text) or _SEPARATOR_END.search(head_text):
                continue  # (a wide-set "￥３，１１１，" "１６０": a comma's descent is no decoration)
            # the whole read as junk ("*818035 ce cus" for "¥818.3万 前回比 +14.8%" at 0.8x) says
            # nothing of where the number ends; a tail set smaller than the head's digits cannot
            # be more of them (a comparison, a trend), and then the head's own read must end a
            # number for certain - a head cut before a small 万 ("¥818.3") never does
            smaller = not ends and self.ink_height(Box(b, box.y0, box.x1, box.y1)) < _DECORATION_HEIGHT * (
                self.ink_height(Box(box.x0, box.y0, a, box.y1))
            )
            if not (ends or smaller):
                continue
            head = self._phrase(Box(box.x0, box.y0, min(box.x1, a + (b - a) // 2), box.y1))
            reading = self.read_value(head, spec) if head is not None else None
            if reading is not None and (ends or _ends_number(str(reading.raw))):
                return reading
        return None

    def raised_tail(self, box: Box) -> int | None:
        """Where a unit set small and raised to the digits' top begins (``196.5`` ``万円`` with
        the 万円 on a baseline of its own): the last ink pieces of the box end above the
        number's baseline by ``_RAISED_SHARE`` of the line. None when the box has none, or has
        nothing before them. Read as one line, the raised 万円 came out as two more digits,
        ``196.541``, by every read alike."""
        crop = self.pixels[box.y0 : box.y1, box.x0 : box.x1]
        inked = crop <= otsu_threshold(crop)
        pieces = _runs(np.asarray(inked.any(axis=0)), 1)
        if len(pieces) < 2:
            return None
        rows = [np.flatnonzero(inked[:, a:b].any(axis=1)) for a, b in pieces]
        tops, bottoms = [int(r[0]) for r in rows], [int(r[-1]) for r in rows]
        top, baseline = sorted(tops)[len(tops) // 2], sorted(bottoms)[len(bottoms) // 2]  # the digits'
        start = len(pieces)
        while (
            start > 0
            and bottoms[start - 1] < baseline - _RAISED_SHARE * box.h
            and tops[start - 1] <= top + _RAISED_SHARE * box.h  # hung from the digits' top (no sparkline)
        ):
            start -= 1
        if start in (0, len(pieces)):
            return None
        return box.x0 + pieces[start][0]

    def read_raised(self, box: Box, x: int, spec: FieldSpec) -> Reading | Literal[False] | None:
        """A value whose unit is raised from ``x`` on: the unit read alone at ``_VALUE_PX``, the
        number before it read like any value with the unit written after each read. A unit that
        reads as no known one leaves a number with a decimal point disputed (``196.5`` without
        its 万 is no amount to state); a whole number is then read as before (False): its unit
        may be a 円, read as anything, but never a missing multiplier."""
        number = self._phrase(Box(box.x0, box.y0, x, box.y1))
        if number is None:
            return None
        unit = "".join(
            ch for ch in self._read(Box(x, box.y0, box.x1, box.y1), "text", _VALUE_PX)[0] if not ch.isspace()
        )
        if unit in _RAISED_UNITS:
            return self.read_value(number, spec, unit)
        if re.search(r"\d\s*[.．]\s*\d", number.text):
            return Reading(number.text, min(number.confidence, _DISPUTED_CONFIDENCE), disputed=True)
        return False

    def ink_height(self, box: Box) -> int:
        """Rows of the box with ink at its own Otsu threshold, from the first to the last."""
        crop = self.pixels[box.y0 : box.y1, box.x0 : box.x1]
        if crop.size == 0:
            return 0
        rows = np.flatnonzero((crop <= otsu_threshold(crop)).any(axis=1))
        return int(rows[-1] - rows[0] + 1) if rows.size else 0

    def blank_columns(self, box: Box) -> list[tuple[int, int]]:
        """``[start, end)`` page columns of the box with no ink at its own Otsu threshold."""
        crop = self.pixels[box.y0 : box.y1, box.x0 : box.x1]
        blank = ~np.asarray((crop <= otsu_threshold(crop)).any(axis=0))
        return [(box.x0 + a, box.x0 + b) for a, b in _runs(blank, 1)]

    def latin_read(self, phrase: Phrase) -> tuple[str, float]:
        """The eng model alone on each run of digits, separators and Latin units the text read
        saw, with what lies between them (currency mark, CJK units: ``¥``, ``万``, ``分``, ``秒``)
        kept as the text read has it: the eng model does not share the jpn model's blind spots
        (IPA and VL Gothic's "0" read as "6" or "9" by every jpn read), but writes a CJK unit as
        a digit, so it never sees one. ``("", 0.0)`` when a run reads as nothing, but for a
        lone thin 1 the text read saw (the eng model reads no ink in it, and the reads of the
        other runs, "40" in "1時間40分" read "1時間49分" by every jpn read, were lost with it)."""
        box = phrase.box
        marks = [(_latin_char(g.char, i == 0), g) for i, g in enumerate(phrase.glyphs)]
        gaps = self.blank_columns(box)
        out, confidences = "", []
        i = 0
        while i < len(marks):
            char, glyph = marks[i]
            if char is not None:
                out += char
                i += 1
                continue
            j = i
            while j < len(marks) and marks[j][0] is None:
                j += 1
            # Cut in the blank columns just before the run's first glyph and just after its last:
            # tesseract's glyph starts are close, its ends are not (a word's last digit ends where
            # the word does), and a digit has no blank column inside it, where 時 or 分 may.
            left = box.x0 if i == 0 else _cut_before(gaps, glyph.x0, box.h)
            right = box.x1 if j == len(marks) else _cut_after(gaps, marks[j - 1][1].x0, box.h)
            lone_one = j - i == 1 and unicodedata.normalize("NFKC", glyph.char) in "1lI|"
            if right - left < 2 and not lone_one:
                return "", 0.0
            text, confidence = (
                ("", 0.0) if right - left < 2 else self._read(Box(left, box.y0, right, box.y1), "latin", _VALUE_PX)
            )
            text = text.replace(" ", "")
            if j < len(marks):
                text = text.rstrip(",.:")  # the edge of the unit after it ("254.1.万")
            if i > 0:
                text = text.lstrip(",.:")
            if not text and lone_one:  # a lone thin 1 ("1時間40分") is read as nothing at all
                out += "1"
            elif not text:
                return "", 0.0
            else:
                out += text
                confidences.append(confidence)
            i = j
        return (out, min(confidences)) if confidences else ("", 0.0)


def _ends_number(text: str) -> bool:
    """Whether a value's text ends a number for certain: a closed thousands group or a unit."""
    return bool(_CLOSED_GROUP.search(text) or _HEAD_UNIT_END.search(text))


def _goes_on_with(tail: str) -> bool:
    """Whether text after a number may be more of it: a separator or a thousands group."""
    return bool(_THOUSANDS_GROUP.match(tail) or re.match(r"\s*[,.，．;:'、]", tail))


def _cut_before(gaps: list[tuple[int, int]], x: int, height: int) -> int:
    """A column in the last blank run that ends by column ``x`` (+2), at most a quarter line
    height from the ink; ``x`` when there is none."""
    before = [gap for gap in gaps if gap[1] <= x + 2]
    if not before:
        return x
    a, b = before[-1]
    return max((a + b) // 2, b - height // 4)


def _cut_after(gaps: list[tuple[int, int]], x: int, height: int) -> int:
    """A column in the first blank run after column ``x``, at most a quarter line height from
    the ink; ``x`` + a line height when there is none."""
    after = [gap for gap in gaps if gap[0] > x]
    if not after:
        return x + height
    a, b = after[0]
    return min((a + b) // 2, a + height // 4)


def _latin_char(char: str, first: bool) -> str | None:
    """None for a character the eng model reads (a digit, a separator, ``%``, ``K``), else the
    character the value means (the jpn model's slips undone: a leading ``\\`` or ``Y`` is ¥)."""
    c = unicodedata.normalize("NFKC", char)
    if c in _LATIN_CHARS or c in "了Oo。lI|":  # 了: the jpn model's lone 7; O: a ０ or a 9; 。: a point; l: a 1
        return None
    if first and c in "\\Y":
        return "¥"
    return "人" if c == "A" else c


def _pad(box: Box) -> int:
    """The white margin around a box read alone."""
    return max(4, box.h // 6)


def _unread_multipliers(reads: list[tuple[str, float]], votes: list[Vote], spec: FieldSpec) -> list[Vote]:
    """Votes for the one value read with a multiplier (``¥39.3万``), from the reads that are no
    value and show its digits followed by Latin letters (``¥39.3FA``): a whole amount or count
    with one decimal needs a multiplier, and a bold 万 at hero size comes out as letters at the
    re-read size, so three reads of one clear number gave one vote and it was left empty. The
    letters do not say which multiplier, so they only back a read that shows one."""
    shown = {(m.group(1), v.value): v.text for v in votes if (m := _SHOWN_MULTIPLIER.search(v.text))}
    if not spec.whole or len({value for _, value in shown}) != 1:
        return []
    (digits, value), shown_text = next(iter(shown.items()))
    out = []
    for text, confidence in reads:
        unread = _UNREAD_MULTIPLIER.match(unicodedata.normalize("NFKC", text).replace(" ", ""))
        if unread and unread.group(1) == digits and vote_of(text, confidence, spec) is None:
            out.append(Vote(value, shown_text, confidence))  # (its text the one that shows the multiplier)
    return out


class Vote(NamedTuple):
    """One read of a value: what it parses to, its cleaned text, tesseract's word confidence."""

    value: float
    text: str
    confidence: float


def _unit_seen(votes: list[Vote]) -> list[Vote]:
    """The votes without those that read a multiplier as digits: when one read shows ``36.6万``,
    another's ``36.645`` (a point taken for a thousands separator) is the 万 misread, not
    36,645 - dashboards never separate thousands with a point, only OCR turns a comma into one."""
    if not any(_MULTIPLIER.search(v.text) for v in votes):
        return votes
    return [v for v in votes if _MULTIPLIER.search(v.text) or "." not in v.text]


def decide(votes: list[Vote]) -> Reading | None:
    """One reading from the reads of a value (the first is the read at the page's own scale).

    Reads that agree set the confidence, as tesseract's own word confidence is poorly
    calibrated on short numbers (a clean "4.54%" scores 0.23): three agreeing count 0.9, two
    0.7; a value only one read gives keeps 0.6 of its word confidence, which the threshold
    refuses. Reads that *disagree* are never voted into confidence: a decimal point or a
    comma is lost more easily than a digit is invented, so three small re-reads saying "44%"
    are no evidence against one full-size "4.4%". The reading is then ``disputed``, with the
    most-supported text first (the full-size read's on a tie) and every other as an
    alternative; :func:`rag_core.sales.fields.build_extraction` settles it by evidence (the
    field's plausible range, CVR = orders / viewers, price × sold = revenue) or reports it as
    uncertain. A read that turned a multiplier into digits (``36.645`` beside ``36.6万``) is
    no vote (:func:`_unit_seen`).
    """
    votes = _unit_seen(votes)
    if not votes:
        return None
    groups: dict[float, list[int]] = {}
    for index, vote in enumerate(votes):
        groups.setdefault(vote.value, []).append(index)
    ranked = sorted(groups.values(), key=lambda ix: (len(ix), 0 in ix, max(votes[i].confidence for i in ix)))
    best = ranked[-1]
    confidence = max(votes[i].confidence for i in best)
    text = votes[best[0]].text
    if len(groups) > 1:
        others = tuple(dict.fromkeys(votes[ix[0]].text for ix in reversed(ranked[:-1])))
        return Reading(text, min(confidence, _DISPUTED_CONFIDENCE), others, disputed=True)
    if len(best) == 1:
        return Reading(text, confidence * _DISAGREE_FACTOR)
    return Reading(text, max(confidence, _AGREEMENT_FLOOR[min(3, len(best))]))


def vote_of(text: str, confidence: float, spec: FieldSpec) -> Vote | None:
    """The :class:`Vote` of one read, or None when it is no value of the field
    (wrong units, a sign, a fraction of a count)."""
    kind = spec.kind
    s = unicodedata.normalize("NFKC", text).replace(" ", "")
    slips = _VALUE_SLIPS + (_MONEY_SLIPS if kind == "money" else ()) + (_DURATION_SLIPS if kind == "duration" else ())
    for slip, meant in slips:
        s = slip.sub(meant, s)
    if spec.whole:
        s = _MULTIPLIER_AS_FIVE.sub(r"\1万", s)
    s = re.sub(r"(?<=\d)。(?=\d)", ".", s)  # "4。6万": the jpn model's full stop for a point
    if kind == "percent":
        s = re.sub(r"(?<=\d),(?=\d{1,2}%$)", ".", s)  # "4,93%": a rate's point read as a comma
    s = _ABBREVIATED_COMMA.sub(".", s)  # "126,3K": the point of an abbreviated count, read as a comma
    if _BROKEN_GROUP.search(s):
        return None  # "54,0429" (円 read as 9), "3,17人" (a digit lost): no number is written so
    if _OVERFULL_ABBREVIATION.search(s):
        return None  # "6348.25m": 万 read as "5m"; K and M have at most three digits before the point
    if not s or not text_fits_kind(s, kind):
        return None
    if kind == "duration" and any(int(part) >= 60 for part in _SEXAGESIMAL.findall(s)):
        return None
    try:
        value = parse_number(s, kind, whole=spec.whole)
    except NumberFormatError:
        return None
    if value is None or (spec.whole and not value.is_integer()):
        return None  # a fraction of a count, or of a yen: "¥268.65" is "¥268.6万" with 万 read as 5
    return Vote(value, s, confidence)


@dataclass
class _Table:
    header: list[tuple[str, Phrase]]
    rows: list[list[Phrase]]


def _find_table(phrases: list[Phrase]) -> _Table | None:
    """A product table: a header row holding 商品名 or 価格 (never metric labels) and another
    column header, and the rows below it."""
    columns_of = product_columns().match
    for anchor in phrases:
        if columns_of(anchor.text)[:1] not in (["name"], ["price"]):
            continue
        header: list[tuple[str, Phrase]] = []
        for phrase in phrases:
            columns = columns_of(phrase.text) if phrase.box.same_row(anchor.box) else []
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
    """Value candidates of a label: the nearest two on its row to the right (the first may be a
    misread piece of the label, "GMV" "(FA)" for "GMV (円)"), then the nearest two below, then the
    nearest just above (tiles that set the number over its caption), each only when no other
    label stands between. Below reaches ``_BELOW_REACH`` label heights, or half as many of the
    candidate's own (a hero number's ascent leaves a gap that grows with its size, under a small
    caption). Above comes last and must be close (``_ABOVE_REACH`` label heights, or half as many
    of the candidate's own: a big number's descent), so that in a card grid it never reaches the
    card above (its comparison line is further)."""
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
        if box.y1 - box.h // 4 <= p.box.y0 <= box.y1 + _BELOW_REACH * max(box.h, p.box.h / 2)
        and abs(p.box.x0 - box.x0) <= 2 * box.h
        and not any(box.y1 <= q.box.y0 < p.box.y0 and q.box.x0 < p.box.x1 and q.box.x1 > p.box.x0 for q in labels)
    ]
    above = [
        p
        for p in others
        if box.y0 - _ABOVE_REACH * max(box.h, p.box.h / 2) <= p.box.y1 <= box.y0 + box.h // 4
        and _aligned_above(p.box, box)
        and not any(p.box.y1 <= q.box.y1 <= box.y0 and q.box.x0 < p.box.x1 and q.box.x1 > p.box.x0 for q in labels)
    ]
    return (
        sorted(right, key=lambda p: p.box.x0)[:2]
        + sorted(below, key=lambda p: p.box.y0)[:2]
        + sorted(above, key=lambda p: -p.box.y1)[:1]
    )


def _aligned_above(value: Box, label: Box) -> bool:
    """Whether a value above a label (tiles) is in its column: they start within two label
    heights, or the label lies within the value's width (a label whose first word was left out,
    "LIVE" "GMV" with GMV misread, under a wide number). Not for values below: a product
    table's right-aligned header lies within the width of the cell under it."""
    return abs(value.x0 - label.x0) <= 2 * label.h or value.x0 <= label.x0 < label.x1 <= value.x1


def _pair(
    page: _Page, labels: list[tuple[list[str], Phrase, Phrase | None]], others: list[Phrase]
) -> tuple[dict[str, Reading], list[str]]:
    """Give each label the first value candidate that reads as a value of one of its fields: its
    inline value first, then its neighbours (:func:`_candidates`)."""
    label_phrases = [label for _, label, _ in labels]
    readings: dict[str, Reading] = {}
    notes: list[str] = []
    for fields, label, inline in labels:
        open_fields = [f for f in fields if f not in readings]
        if not open_fields:
            notes.append(f"{fields[0]}: label {label.text!r} seen again; the first reading is kept")
            continue
        weak_inline: tuple[str, Reading] | None = None
        if inline is not None:
            hit = next(((f, r) for f in open_fields if (r := _inline_reading(page, inline, SALES_FIELDS[f]))), None)
            if hit is not None and (hit[1].confidence >= _AGREEMENT_FLOOR[2] or not _UNIT_BRACKET.match(inline.text)):
                readings[hit[0]] = hit[1]
                continue
            # a weak inline value that opens with a bracket may be the label's own unit misread
            # ("LIVE Gross revenue (円)" in a chip, "(円)" read "(F3)J"): the neighbours are asked
            # too and the stronger wins (a number's first piece, "数:1。" before "018", is kept)
            weak_inline = hit
            rest = next((p for p in others if _rest_of(inline, p)), None)
            if rest is not None:
                # "Clicks ４，" "６１５": the segmenter cut a wide number after its first digits,
                # which went with the label; the pieces are read as one, never the rest alone
                joined = page.joined(inline, rest)
                hit = next(((f, r) for f in open_fields if (r := page.read_value(joined, SALES_FIELDS[f]))), None)
                others.remove(rest)
                if hit is not None:
                    readings[hit[0]] = hit[1]
                else:
                    notes.append(
                        f"{open_fields[0]}: {inline.text!r} {rest.text!r} after {label.text!r} read as no value"
                    )
                continue
        for candidate in _candidates(label, others, label_phrases):
            hit = next(((f, r) for f in open_fields if (r := page.read_candidate(candidate, SALES_FIELDS[f]))), None)
            if hit is not None:
                if weak_inline is not None and weak_inline[1].confidence >= hit[1].confidence:
                    break  # the inline value reads at least as well: it stays the label's value
                readings[hit[0]] = hit[1]
                others.remove(candidate)
                weak_inline = None
                break
        if weak_inline is not None:
            readings[weak_inline[0]] = weak_inline[1]
        elif not any(f in readings for f in open_fields):
            notes.append(f"{open_fields[0]}: label {label.text!r} found but no value next to it")
    return readings, notes


def _rest_of(inline: Phrase, other: Phrase) -> bool:
    """Whether ``other`` is the rest of the number an inline value starts: just after it on its row,
    the inline piece ending in a separator (``４，``) or the other a thousands group (``０１８``)."""
    gap = other.box.x0 - inline.box.x1
    return (
        other.box.same_row(inline.box)
        and 0 <= gap <= _GROUP_GAP * max(inline.box.h, other.box.h)
        and bool(_NUMERIC_TEXT.match(inline.text))
        and bool(_SEPARATOR_END.search(inline.text) or _THOUSANDS_GROUP.match(other.text))
    )


def _inline_reading(page: _Page, value: Phrase, spec: FieldSpec) -> Reading | None:
    """An inline value read like any other; one without glyph positions is its text alone, a
    single read that the threshold refuses unless another source confirms it."""
    if value.glyphs:
        return page.read_value(value, spec)
    if not text_fits_kind(value.text, spec.kind):
        return None
    return Reading(value.text, value.confidence * _DISAGREE_FACTOR)


def read_screenshot(
    image: Image.Image, *, languages: str, tessdata: Path | None
) -> tuple[dict[str, Reading], list[ProductReading], list[str]]:
    """Every sales field and product row the screenshot shows, as text readings with a confidence,
    and notes on labels that were seen without a value."""
    engine = _engine(find_tessdata(tessdata, languages), languages)
    with engine.lock:
        page = _Page(prepare(image), engine)
        phrases = _join_labels(page.phrases)  # before the table: "Products" "sold" is no table header
        table = _find_table(phrases)
        products, taken = _read_products(page, table) if table is not None else ([], set())
        labels: list[tuple[list[str], Phrase, Phrase | None]] = []
        others: list[Phrase] = []
        for phrase in phrases:
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
