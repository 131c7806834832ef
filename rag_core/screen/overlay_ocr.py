"""Read the text of one overlay region per sampled frame, cheaply.

Why this shape (measured on the generated recordings, 540x960 and 720x1280):

* tesseract through its C API (tesserocr) reads a small crop in 2-4 ms, where
  pytesseract spawns a process per call and needs ~120 ms; one API object is
  kept per (language, charset) for the whole video.
* Only the glyphs are kept: the crop is split at its Otsu threshold and every
  blob touching the crop edge (badge corners, the video behind a translucent
  badge) is dropped, so a region's box must enclose its text with a margin.
* The OCR input is the grey crop, normalised to dark text on white and scaled
  so the text is ~40 px tall; binarising first read 93-98 % of counts right,
  grey read 100 %.
* A count is trusted only when reads of two different images (scales, or a
  softened copy) agree and no rival value has as much support; a low blob at
  either end of its glyph run (a compression ghost) is trimmed first, and a read
  too short for the glyphs' width never counts. Otherwise it is missing
  (uncertain), never a guess.
* A region whose glyph mask matches the one last read (XOR under a few percent,
  which compression noise stays below and a changed digit does not) reuses
  the last text: a static counter costs no OCR at all.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import tesserocr
from PIL import Image, ImageFilter

from rag_core.analysis.numbers import NumberFormatError, parse_number
from rag_core.ocr.imaging import otsu_threshold
from rag_core.screen.layout import OverlayRegion

# Every multiplier the shared number grammar accepts (rag_core.analysis.numbers), and the "+" of
# capped counts ("1万+"): a glyph outside the whitelist is read as something else (K as nothing).
COUNT_CHARSET = "0123456789,.+千万億兆KkMmBb"
_SAME_GLYPHS_MAX_XOR = 0.05  # fraction of glyph pixels; jitter measured <= 2 %, one changed digit >= 10 %
_MIN_CONTRAST = 48  # grey levels between the darkest and brightest pixel of a crop with text
_MAX_LEVELS = 3  # nested Otsu splits: room | banner or badge | text
_MAX_BORDER_SHARE = 0.8  # of the text-coloured class touching the box edge, above which it is split again
_RETRY_SCALES = (0.7, 1.4)  # further text heights (x the region's): the cheaper one first
_MARGIN = 2  # images that read a count's value, less those that read the likeliest other value
_MIN_STRETCH_INK = 0.1  # of a square text height: less ink is a gap between words, not a glyph to compare
_USUAL_INK = 0.5  # of the median stretch's ink: as much is a stretch of text too, however thin the face
# Where an occluder is: glyph pixels below this share of the text's contrast (text cores reach ~1), and
# pixels beyond the background by this share on the side away from the text, once eroded by
# _FOREIGN_ERODE pixels (an area, not a glyph's anti-aliased rim or a thin stroke the encoder dimmed).
_DIM_INK = 0.8
_BEYOND_BACKGROUND = 0.5
_CLEAR_INK = 0.9  # of the text's contrast: glyph pixels at least this bright are plainly text
_FOREIGN_ERODE = 2
_SOFTEN = 0.04  # Gaussian radius in text heights for the softened reads of a count
_RIM_FRACTION = 8  # the OCR image keeps grey pixels within text height / this of a glyph pixel
_SPECK_INK = 0.5  # pixels per text-height pixel: a column run at either end of a count with less ink is noise
# Widest advance of each kind of count glyph, in text heights (a mono face's "." is as wide as a
# digit; CJK multipliers are square): a read whose glyphs could not fill the width seen lost some.
_MAX_ADVANCE = {"digit": 0.85, "separator": 0.85, "cjk": 1.25, "latin": 1.1, "+": 0.9}
_MIN_FILL = 0.9  # of the glyph run's width that the widest reading of the text must reach
_COUNT_SHAPE = re.compile(r"(?P<digits>[0-9][0-9.,]*)(?P<multiplier>[千万億兆KkMmBb])?\+?")
_DECIMAL = re.compile(r"[0-9]+(?:[.,][0-9]{1,2})?")  # 1.7K, 45.4K, 1.25M, 12万
_GROUPED = re.compile(r"[0-9]{1,3}(?:([.,])[0-9]{3}(?:\1[0-9]{3})*)?|[0-9]+")  # 1,234,567 or 1234567


_EngineKey = tuple[str, str, str | None]  # tessdata folder, languages, charset
_IDLE: dict[_EngineKey, list[tesserocr.PyTessBaseAPI]] = {}
_IDLE_LOCK = threading.Lock()
_IDLE_MAX = 4  # engines kept per key: one per concurrent extraction on a small instance


class TesseractLines:
    """Single-line OCR through tesserocr, one engine per (languages, charset), created on first use.

    Loading ``jpn+eng`` takes ~0.3 s, as long as OCRing a minute of recording, so
    closed readers hand their engines to a process-wide idle pool and the next
    extraction (the next job on a warm instance) takes them from there. An engine
    is used by one reader at a time: tesseract's API object is not thread-safe.
    """

    def __init__(self, tessdata: Path) -> None:
        self._tessdata = str(tessdata)
        self._apis: dict[_EngineKey, tesserocr.PyTessBaseAPI] = {}
        self.calls = 0

    def read(self, image: Image.Image, lang: str, charset: str | None) -> str:
        key = (self._tessdata, lang, charset)
        api = self._apis.get(key)
        if api is None:
            with _IDLE_LOCK:
                idle = _IDLE.get(key)
                api = idle.pop() if idle else None
            if api is None:
                api = tesserocr.PyTessBaseAPI(path=self._tessdata, lang=lang, psm=tesserocr.PSM.SINGLE_LINE)
                if charset:
                    api.SetVariable("tessedit_char_whitelist", charset)
            self._apis[key] = api
        self.calls += 1
        api.SetImage(image)
        return api.GetUTF8Text().strip()

    def close(self) -> None:
        for key, api in self._apis.items():
            with _IDLE_LOCK:
                idle = _IDLE.setdefault(key, [])
                if len(idle) < _IDLE_MAX:
                    idle.append(api)
                    continue
            api.End()
        self._apis.clear()


@dataclass(frozen=True)
class TextPatch:
    """The glyphs of one region: their mask and grey pixels, cut to their bounding box (at ``top``, ``left``
    in the region, so sightings in two frames can be laid over each other)."""

    mask: np.ndarray
    gray: np.ndarray
    light: bool
    top: int = 0
    left: int = 0

    def overlap_differs(self, other: TextPatch, shift: int = 0, lost: bool = False) -> float | None:
        """How much the two patches' glyphs differ where they overlap in the region (``other`` laid ``shift``
        pixels to the right of where it was seen); None if they hardly overlap. With ``lost``, only this
        patch's glyph pixels that ``other`` lacks count, as a share of this patch's own in the stretch.

        The share of differing glyph pixels in the worst stretch one text height wide:
        a different buyer's name, drawn where the other name was, differs in most
        pixels of its stretch however long the rest of the line is, while encoder noise
        on the same glyphs is spread thin. Only the overlap counts, so a blob that
        joined the glyphs beyond either end of the other patch (a stage light beside a
        pop-up) changes nothing. Nor does a stretch within two stretches of an occluder
        (occluder pixels in one patch where the other shows plain text or background): a gift flying
        over the pop-up hides glyphs in one sighting and shows its own sprite and label
        there, which differs as much as a new name would, and the encoder smears the
        glyphs along its path (600 kbit/s, 15 fps: two text heights beside its rim).
        """
        (h1, w1), (h2, w2) = self.mask.shape, other.mask.shape
        at = other.left + shift  # where ``other`` is laid
        top, left = max(self.top, other.top), max(self.left, at)
        bottom, right = min(self.top + h1, other.top + h2), min(self.left + w1, at + w2)
        if bottom - top < min(h1, h2) // 2 or right - left < min(w1, w2) // 2:
            return None
        here = (slice(top - self.top, bottom - self.top), slice(left - self.left, right - self.left))
        there = (slice(top - other.top, bottom - other.top), slice(left - at, right - at))
        a, b = self.mask[here], other.mask[there]
        stretch = max(1, bottom - top)
        kernel = np.ones(stretch)
        differ = np.convolve(np.count_nonzero(a & ~b if lost else a ^ b, axis=0), kernel, mode="valid")
        ink = np.maximum(
            np.convolve(a.sum(axis=0), kernel, mode="valid"), np.convolve(b.sum(axis=0), kernel, mode="valid")
        )
        # Stretches with a glyph's worth of ink, not gaps. The patch's height is the avatar's where a
        # pop-up has one, twice its text's: a light serif's words then hold too little ink for a square
        # that tall, so a stretch with half the line's usual ink counts as well.
        usual = float(np.median(ink[ink > 0])) if (ink > 0).any() else 0.0
        inked = (ink > 0) & (ink >= min(_MIN_STRETCH_INK * stretch * stretch, _USUAL_INK * usual))
        fa, unclear_a = self._occluders
        fb, unclear_b = other._occluders
        fa, unclear_a, fb, unclear_b = fa[here], unclear_a[here], fb[there], unclear_b[there]
        # An occluder moves or goes: it is where the other sighting shows clear text or background.
        # What looks alike in both (an avatar about as bright as the text) is not one.
        moved = (fa & ~_grow(unclear_b, _FOREIGN_ERODE)) | (fb & ~_grow(unclear_a, _FOREIGN_ERODE))
        occluded = _shrink(moved, 1).any(axis=0).astype(np.float64)
        near = np.convolve(occluded, np.ones(4 * stretch + 1))[2 * stretch : -2 * stretch] > 0  # within 2 stretches
        compared = inked & (np.convolve(near, kernel, mode="valid") == 0)
        if not compared.any():
            return None
        share = np.maximum(np.convolve(a.sum(axis=0), kernel, mode="valid"), 1) if lost else ink
        return float((differ[compared] / share[compared]).max())

    @cached_property
    def _occluders(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixels that are neither glyph nor background (where something lies over the text), and every
        pixel that is not plainly text or background.

        The first: glyph pixels well below the text's brightness, away from any text-bright
        pixel (a gift's sprite is dimmer than white text), and pixels beyond the background
        on the side away from the text (its dark rim on a pale pill); both eroded, so that
        only an area counts, never the anti-aliased rim of a glyph or a thin stroke the
        encoder dimmed.
        """
        gray = self.gray.astype(np.float32)
        around = gray[~self.mask]
        background = float(np.median(around)) if around.size else float(gray.mean())
        ink = float(np.percentile(gray[self.mask], 90 if self.light else 10)) if self.mask.any() else background
        if abs(ink - background) < 1:
            return np.zeros_like(self.mask), np.zeros_like(self.mask)
        level = (gray - background) / (ink - background)  # 0: background, 1: text
        dim = self.mask & (level < _DIM_INK) & ~_grow(self.mask & (level >= _DIM_INK), 1)
        beyond = level < -_BEYOND_BACKGROUND
        unclear = (self.mask & (level < _CLEAR_INK)) | beyond
        return _shrink(dim | beyond, _FOREIGN_ERODE), unclear

    @property
    def occluded(self) -> bool:
        """Whether something lies over the glyphs: an area neither text nor background (see ``_occluders``)."""
        return bool(self._occluders[0].any())

    def tail(self, width: int) -> TextPatch | None:
        """The glyphs of the last ``width`` columns, cut to their own rows (an avatar at the line's start
        makes the whole patch taller than its text); None when those columns hold no glyph."""
        start = max(0, self.mask.shape[1] - width)
        end = np.zeros_like(self.mask)
        end[:, start:] = self.mask[:, start:]
        return _cut(end, self.gray, self.light, (self.top, self.left)) if end.any() else None

    def same_glyphs(self, other: TextPatch) -> bool:
        """Whether ``other`` shows the same text (so its OCR result can be reused)."""
        (h1, w1), (h2, w2) = self.mask.shape, other.mask.shape
        if abs(h1 - h2) > 1 or abs(w1 - w2) > 1:
            return False
        h, w = min(h1, h2), min(w1, w2)
        a, b = self.mask[:h, :w], other.mask[:h, :w]
        return int(np.count_nonzero(a ^ b)) <= _SAME_GLYPHS_MAX_XOR * max(int(a.sum()), int(b.sum()), 1)

    def ocr_image(self, text_height_px: int, soften: bool = False) -> Image.Image:
        """Dark text on white, glyphs only, scaled to ``text_height_px`` and padded (what tesseract likes)."""
        gray = self.gray.astype(np.float32)
        glyph, around = gray[self.mask], gray[~self.mask]
        background = float(np.median(around)) if around.size else float(gray.mean())
        ink = float(np.percentile(glyph, 90 if self.light else 10))
        span = ink - background if abs(ink - background) >= 1 else 1.0
        darkness = np.clip((gray - background) / span, 0, 1)
        # Keep the anti-aliased rim and the thin strokes the threshold cut off (a light serif's
        # "4" breaks into pieces), blank everything farther out: about 1/8 of the text height.
        near = _grow(self.mask, max(1, round(self.mask.shape[0] / _RIM_FRACTION)))
        page = np.where(near, 255 - darkness * 255, 255).astype(np.uint8)
        scale = text_height_px / page.shape[0]
        size = (max(1, round(page.shape[1] * scale)), max(1, round(page.shape[0] * scale)))
        image = Image.fromarray(page).resize(size, Image.Resampling.BICUBIC)
        if soften:
            image = image.filter(ImageFilter.GaussianBlur(text_height_px * _SOFTEN))
        pad = text_height_px // 2
        padded = Image.new("L", (image.width + 2 * pad, image.height + 2 * pad), 255)
        padded.paste(image, (pad, pad))
        return padded


def isolate_text(crop: np.ndarray, light: bool = True) -> TextPatch | None:
    """The glyphs inside ``crop`` (a grey region), or None when it holds nothing text-like.

    The crop is split at its Otsu level and the blobs touching its edge are
    dropped. When those blobs held much of the text-coloured class (a pop-up
    banner brighter than a dark room merges with its white text; a bright room
    shows through a badge's corners and touches the first digit), that class is
    split again at its own Otsu level: nested Otsu, i.e. a multi-level threshold
    found one level at a time, which separates text from banner from room
    whatever the room's brightness.
    """
    if crop.size == 0 or int(crop.max()) - int(crop.min()) < _MIN_CONTRAST:
        return None
    candidates = np.ones(crop.shape, dtype=bool)
    glyphs = None
    for _ in range(_MAX_LEVELS):
        values = crop[candidates]
        if values.size == 0 or int(values.max()) - int(values.min()) < _MIN_CONTRAST:
            break
        threshold = otsu_threshold(values)
        ink = candidates & (crop > threshold if light else crop < threshold)
        kept = _drop_border_blobs(ink)
        count = int(np.count_nonzero(kept))
        if count >= max(12, crop.size // 400):
            glyphs = kept
        if count >= (1 - _MAX_BORDER_SHARE) * int(np.count_nonzero(ink)):
            break
        candidates = ink
    if glyphs is None:
        return None
    return _cut(glyphs, crop, light)


def _cut(glyphs: np.ndarray, gray: np.ndarray, light: bool, at: tuple[int, int] = (0, 0)) -> TextPatch:
    """The patch of ``glyphs`` (a non-empty mask over ``gray``, itself at ``at`` in the region) cut to
    their bounding box plus one pixel."""
    rows, cols = np.flatnonzero(glyphs.any(axis=1)), np.flatnonzero(glyphs.any(axis=0))
    top, bottom = max(0, rows[0] - 1), min(gray.shape[0], rows[-1] + 2)
    left, right = max(0, cols[0] - 1), min(gray.shape[1], cols[-1] + 2)
    return TextPatch(
        mask=glyphs[top:bottom, left:right],
        gray=gray[top:bottom, left:right].copy(),
        light=light,
        top=at[0] + int(top),
        left=at[1] + int(left),
    )


def trim_end_specks(patch: TextPatch) -> TextPatch:
    """A count's ``patch`` without the specks at either end of its glyph run.

    A count never starts or ends with a separator, so a run of inked columns at
    either end holding less ink than a one-pixel hairline half the text's height
    is not text but a compression speck (at 150 kbit/s a glyph's edges ring into
    ghosts beside it) or the rim of a stage light seen through a translucent
    badge. Left in, tesseract reads it as a digit or a separator (``540`` as
    ``5340``, ``7,827`` as ``7,827,``), and the read is wrong or refused. The
    narrowest real glyph, a ``1``, has a stroke at least the text's height; a
    serif's terminal cut off by the threshold (a light ``3``) has more ink than a
    speck, as measured on the 150 kbit/s clips; separators between digits stay.
    """
    inked = np.flatnonzero(np.diff(np.concatenate(([0], patch.mask.any(axis=0).astype(np.int8), [0]))))
    runs = list(zip(inked[::2], inked[1::2], strict=True))  # [start, end) of each run of inked columns
    ink = [int(np.count_nonzero(patch.mask[:, start:end])) for start, end in runs]
    least = _SPECK_INK * (patch.mask.shape[0] - 2)  # _cut's one-pixel margin
    first, last = 0, len(runs) - 1
    while first < last and ink[first] < least:
        first += 1
    while last > first and ink[last] < least:
        last -= 1
    if first == 0 and last == len(runs) - 1:
        return patch
    glyphs = np.zeros_like(patch.mask)
    keep = slice(runs[first][0], runs[last][1])
    glyphs[:, keep] = patch.mask[:, keep]
    return _cut(glyphs, patch.gray, patch.light, (patch.top, patch.left))


def main_run(patch: TextPatch) -> TextPatch:
    """``patch`` cut to its line of text: the glyph columns without a gap as wide as the text is tall.

    A pop-up pill as long as its text leaves the room visible beside it inside the
    region, and a stage light there that touches no edge of the box joins the
    glyphs: the same pop-up then reads with a trailing ``0`` or ``。`` and is
    half as wide again in the next sample, so it was taken for a new one and
    counted twice. A count's badge is translucent, so a light seen through it far
    beside the number doubles the glyph run's width: every read of the count is
    then too short for it (:func:`could_fill`) and all 18 images are read before it
    is reported missing (the 1080x1920 stage clip: 4 of 11 viewer samples, half its
    OCR time). Letters, the avatar and the words of one line, and the glyphs of
    one count, sit closer than a text height; of the groups so separated, the one
    with the most ink is the line.
    """
    inked = np.flatnonzero(np.diff(np.concatenate(([0], patch.mask.any(axis=0).astype(np.int8), [0]))))
    runs = list(zip(inked[::2], inked[1::2], strict=True))  # [start, end) of each run of inked columns
    gap = patch.mask.shape[0] - 2  # _cut's one-pixel margin
    groups: list[tuple[int, int]] = []
    for start, end in runs:
        if groups and start - groups[-1][1] < gap:
            groups[-1] = (groups[-1][0], end)
        else:
            groups.append((start, end))
    if len(groups) == 1:
        return patch
    first, last = max(groups, key=lambda group: int(np.count_nonzero(patch.mask[:, group[0] : group[1]])))
    glyphs = np.zeros_like(patch.mask)
    glyphs[:, first:last] = patch.mask[:, first:last]
    return _cut(glyphs, patch.gray, patch.light, (patch.top, patch.left))


def could_fill(text: str, patch: TextPatch) -> bool:
    """Whether ``text`` can be what ``patch`` shows judged by width alone: no glyph is lost.

    Each character's widest advance (in text heights) is summed; when even that falls
    short of the glyph run's width, the read dropped characters (``983`` read as
    ``8``, ``540`` as ``40``): a tenfold error that two reads can share, so such a
    read never confirms a count.
    """
    height, width = patch.mask.shape[0] - 2, patch.mask.shape[1] - 2  # _cut's one-pixel margin
    widest = 0.0
    for char in unicodedata.normalize("NFKC", text):
        if char.isdigit():
            kind = "digit"
        elif char in ",.":
            kind = "separator"
        elif char in "千万億兆":
            kind = "cjk"
        else:
            kind = "+" if char == "+" else "latin"
        widest += _MAX_ADVANCE[kind] * height
    return widest >= _MIN_FILL * width


def parse_count(text: str) -> float | None:
    """An overlay number (``1,234``, ``1.2万``, ``12.5K``, ``1.2M``) or None when OCR gave something else.

    Why strict: a reading that is not a well-formed count must come back missing,
    never as a number of the wrong magnitude. A count without a multiplier is an
    integer, so its separators (``,``, or ``.`` misread for one) must split it
    into groups of three (``1.887`` -> 1887); ``1.7`` is then no count at all but
    most likely ``1.7K`` whose ``K`` was lost, and gives None instead of 17. With a
    multiplier the one separator is the decimal point (``1,7K`` read for ``1.7K``).
    A separator at either end (``211K.`` for ``21.1K``, ``191.`` for ``1,911``) is a
    point read in the wrong place, and a leading zero (``031``) a lost first digit:
    None too (the reader then retries another scale).
    The canonical text goes through :func:`rag_core.analysis.numbers.parse_number`,
    the grammar every reader shares.
    """
    s = re.sub(r"\s", "", unicodedata.normalize("NFKC", text))
    shape = _COUNT_SHAPE.fullmatch(s)
    if shape is None:
        return None
    digits, multiplier = shape.group("digits"), shape.group("multiplier")
    if re.match(r"0[0-9]", digits):
        return None  # no counter writes a leading zero: "031" is "1,031" with its "1," lost
    if multiplier:
        if not _DECIMAL.fullmatch(digits):
            return None
        canonical = digits.replace(",", ".") + multiplier
    else:
        if not _GROUPED.fullmatch(digits):
            return None
        canonical = re.sub(r"[.,]", "", digits)
    try:
        return parse_number(canonical, "number")
    except NumberFormatError:
        return None


class RegionReader:
    """Reads one region frame after frame, skipping OCR while its glyphs stay the same."""

    def __init__(self, region: OverlayRegion, engine: TesseractLines, default_lang: str) -> None:
        self.region = region
        self._engine = engine
        self._lang = region.lang or default_lang
        self._charset = region.charset or (COUNT_CHARSET if region.kind == "count" else None)
        self._last: tuple[TextPatch, str] | None = None
        self.skipped = 0
        self.unconfirmed = 0  # counts whose reads never agreed: reported missing (uncertain)
        self.glyphs: TextPatch | None = None  # the glyphs read last (None: no text)
        # Counts: other scales, then each language of a combined model alone at each scale (at
        # 150 kbit/s jpn+eng reads a blurred 万 as 5 where jpn alone reads it right), then all of
        # that again on a softened image (a glyph the encoder broke into blocks reads whole once
        # blurred by 4 % of its height). Most counts are confirmed by the first two reads; the
        # rest only cost the hard ones. Pop-ups: one larger scale (kanji need it), then the region's
        # text height softened (white text on a pale pill over a flickering stage at 600 kbit/s,
        # broken into blocks, read ``購入しました`` as ``大丸し 寺L-た`` sharp at every scale and
        # right softened), and no more, since chat lines drifting into the box never match and
        # each read of a long line costs what three counts do.
        singles = self._lang.split("+") if "+" in self._lang else []
        sharp = [
            (self._lang, 1.0),
            *((self._lang, s) for s in _RETRY_SCALES),
            *((one, 1.0) for one in singles),
            *((one, s) for s in _RETRY_SCALES for one in singles),
        ]
        self._attempts: list[tuple[str, float, bool]] = (
            [*((lang, scale, False) for lang, scale in sharp), *((lang, scale, True) for lang, scale in sharp)]
            if region.kind == "count"
            else [(self._lang, 1.0, False), (self._lang, max(_RETRY_SCALES), False), (self._lang, 1.0, True)]
        )
        # A count last shown in ASCII (1,234 or 12.5K, no 万) is read second by the Latin model
        # alone, at the first retry scale: it costs less than half of jpn+eng's read.
        latin = ("eng", _RETRY_SCALES[0], False)
        self._ascii_attempts = (
            [self._attempts[0], latin, *(a for a in self._attempts[1:] if a != latin)]
            if region.kind == "count" and "eng" in singles
            else self._attempts
        )

    def read(self, luma: np.ndarray) -> str | None:
        """The region's text in this frame; None when the region shows no text."""
        x0, y0, x1, y1 = self.region.pixel_box(luma.shape[1], luma.shape[0])
        patch = isolate_text(luma[y0:y1, x0:x1], light=self.region.text == "light")
        if patch is not None:
            patch = main_run(patch)  # a light far beside the text is not part of it
            if self.region.kind == "count":
                patch = trim_end_specks(patch)  # nor is a speck at either end of a count
        self.glyphs = patch
        if patch is None:
            return None
        if self._last is not None and patch.same_glyphs(self._last[0]):
            self.skipped += 1
            return self._last[1]
        text = self._confirmed(patch) if self.region.kind == "count" else self._matching(patch)
        self._last = (patch, text)
        return text

    def _matching(self, patch: TextPatch) -> str:
        """A pop-up's text: the first read that matches the pattern, else the last read."""
        text = ""
        for lang, scale, soften in self._attempts:
            image = patch.ocr_image(round(self.region.text_height_px * scale), soften)
            text = self._engine.read(image, lang, self._charset)
            if self.understood(text):
                break
        return text

    def _confirmed(self, patch: TextPatch) -> str:
        """A count's text once two more images read its number than read any rival; "" otherwise.

        One read can be confidently wrong (``4,805`` read as ``4,305`` at 150 kbit/s); two reads
        of differently scaled or softened images rarely make the same mistake, so a count is
        only reported when two agree, and is missing (uncertain) otherwise. Two models
        reading the same image do not count as two: ``jpn+eng`` and ``jpn`` both read one
        ``283.5K`` as ``284.5K``. Nor do two against one: ``9,105`` read twice and ``5,105``
        once at 150 kbit/s was wrong, so reading goes on until one value leads by two
        images. A read too short for the glyphs (:func:`could_fill`) never counts.
        """
        seen: dict[float, set[tuple[float, bool]]] = {}
        ascii_before = self._last is not None and self._last[1].isascii() and self._last[1] != ""
        for lang, scale, soften in self._ascii_attempts if ascii_before else self._attempts:
            image = patch.ocr_image(round(self.region.text_height_px * scale), soften)
            text = self._engine.read(image, lang, self._charset)
            value = parse_count(text) if could_fill(text, patch) else None
            if value is None:
                continue
            seen.setdefault(value, set()).add((scale, soften))
            rivals = max((len(images) for other, images in seen.items() if other != value), default=0)
            if len(seen[value]) - rivals >= _MARGIN:
                return text
        self.unconfirmed += 1
        return ""

    def understood(self, text: str) -> bool:
        """Whether ``text`` is what this region shows: a well-formed count, or a pop-up matching the pattern.

        A read that is not is retried at other scales and models: tesseract's errors
        on a blurred low-bitrate glyph (``万`` read as ``5``) change with both, and a
        malformed count is refused by :func:`parse_count`, so a retry can only turn
        a missing reading into a well-formed one; the series filters still judge it.
        """
        if self.region.kind == "count":
            return parse_count(text) is not None
        return self.region.pattern is not None and re.search(self.region.pattern, text) is not None


def _run_ids(mask: np.ndarray) -> np.ndarray:
    """Label each horizontal run of True pixels (0 = background), runs never crossing rows."""
    h, w = mask.shape
    padded = np.zeros((h, w + 1), dtype=bool)
    padded[:, :w] = mask
    flat = padded.ravel()
    starts = flat.copy()
    starts[1:] &= ~flat[:-1]
    return (np.cumsum(starts) * flat).reshape(h, w + 1)[:, :w]


def _drop_border_blobs(ink: np.ndarray) -> np.ndarray:
    """``ink`` without the blobs that touch the crop edge (4-connected).

    Flood fill without scipy: alternately spread along whole row runs and whole
    column runs, which converges in a few passes for blob shapes seen in overlays.
    """
    rows, cols = _run_ids(ink), _run_ids(ink.T).T
    reach = np.zeros_like(ink)
    reach[[0, -1], :] = ink[[0, -1], :]
    reach[:, [0, -1]] |= ink[:, [0, -1]]
    while True:
        grown = reach
        for ids in (rows, cols):
            hit = np.zeros(int(ids.max()) + 1, dtype=bool)
            hit[ids[grown]] = True
            hit[0] = False
            grown = hit[ids]
        if np.array_equal(grown, reach):
            return ink & ~reach
        reach = grown


def _shrink(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """``mask`` eroded by ``steps`` pixels (4-neighbourhood): what is left of areas, nothing of lines."""
    return ~_grow(~mask, steps)


def _grow(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """``mask`` dilated by ``steps`` pixels (4-neighbourhood, repeated)."""
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out
