"""Generate TikTok-Shop-like LIVE dashboard screenshots with known values, plus their truth.

Why: the sales extractor (Pattern A) has to be tested and benchmarked on
screenshots whose every number is known exactly, without shipping customer
dashboards, and on more variety than one app's look: a reader tuned on one
style reads 100 % of its own screenshots and 91 % of other people's (issue 13).
So the screenshots vary in what real ones vary in:

* layouts: a phone card grid (label above value, status bar), a wide desktop
  grid, a label/value list, a two-column list, and crops of them (header and
  product table cut off);
* light, dark and dim themes; several CJK faces (Noto Sans/Serif CJK, IPA
  Gothic, VL Gothic) at several sizes; scales 0.5x-2x; PNG, WebP and JPEG
  down to quality 60;
* label wordings drawn from ``rag_core/sales/lexicon.json`` (Japanese and
  English terms, with the qualifiers the lexicon allows: ``総``, ``LIVE``,
  ``(円)``, ``数``), and numbers in every notation the grammar reads
  (``¥1,234``, ``￥``, ``円``, ``123.4万``, ``1.2億``, ``12.5K``, ``1.2M``, full-width
  digits);
* "前回比 +12%" comparisons as distractors, and a product table.

Two splits, drawn at benchmark time (nothing but the small fixture set is
committed): ``dev``, tuned on, and ``test``, never tuned on, with another seed,
and label wordings, qualifiers, a layout (the two-column list), a theme (dim) and
faces (VL Gothic, Noto Serif) that ``dev`` never shows. So that a reader tuned on
dev is not tuned to one look, dev has styles of its own that test never shows:
faces Noto Sans Mono CJK JP, IPA PGothic, Noto Sans CJK set bold throughout, two
Mincho (serif) faces - IPA Mincho and Sawarabi Mincho -, a rounded one (Motoya L
Maruberi), M+ 1 and M+ 2 (hairline labels, black values), and values whose digits
are set in a Latin face (DejaVu Sans, Serif or Mono) with CJK units from the page's
face, as web dashboards do; themes washed-out grey (labels barely darker than the
card), navy, charcoal (grey values on near-black: low contrast), teal (tinted dark
cards), accent (values in the app's pink on pale pink cards) and sepia; and
layouts "tiles" (three columns, the number over its caption), "hero" (a phone page
led by the GMV in a banner at twice the value size), "ledger" (a 1280 px zebra
list: each value a page width from its label) and "inline" (``label：value`` pairs
side by side on a row); and the GMV dressed as hero numbers are (a trend arrow with its
percentage after it, a sparkline beside it, the currency mark and unit set smaller), drawn
from a random stream of its own. Test's draw (seed, faces, themes, layouts, wordings) is
unchanged by them: same bytes. ``fixture`` is the 14 committed
screenshots in tests/data/sales_screenshots (dev styles, fixed seed).
Chinese wordings are in the lexicon but not drawn yet; the offline reader's Chinese
re-read (``tesseract-ocr-chi-sim``) is covered by a Simplified Chinese dashboard in
tests/sales/test_reader.py instead.

``<image>.truth.json`` beside each image holds the values as displayed
(``123.4万`` -> 1234000), so an exact match is the bar.

    python scripts/generate_sales_screenshots.py                       # the fixture set
    python scripts/generate_sales_screenshots.py --split test --count 40 --out /tmp/test
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "sales_screenshots"
LEXICON = ROOT / "rag_core" / "sales" / "lexicon.json"
FIXTURE_SEED = 20260113
SPLIT_SEEDS = {"dev": 1301, "test": 9907, "fixture": FIXTURE_SEED}
FIELDS = (
    "gmv",
    "orders",
    "items_sold",
    "viewers",
    "peak_viewers",
    "avg_watch_time_sec",
    "product_clicks",
    "ctr",
    "cvr",
    "gpm",
    "new_followers",
    "likes",
    "comments",
    "shares",
    "duration_minutes",
)
FIXTURE_LABELS: dict[str, tuple[str, ...]] = {  # the committed set keeps the plain wordings it always had
    "gmv": ("GMV", "総売上", "売上金額"),
    "orders": ("注文数", "注文件数"),
    "items_sold": ("販売数", "販売個数"),
    "viewers": ("視聴者数", "総視聴者数"),
    "peak_viewers": ("最大同時視聴者数", "最高同時視聴者数"),
    "avg_watch_time_sec": ("平均視聴時間",),
    "product_clicks": ("クリック数", "商品クリック数"),
    "ctr": ("クリック率", "CTR"),
    "cvr": ("CVR", "転換率"),
    "gpm": ("GPM",),
    "new_followers": ("新規フォロワー", "新規フォロワー数"),
    "likes": ("いいね", "いいね数"),
    "comments": ("コメント", "コメント数"),
    "shares": ("シェア", "シェア数"),
    "duration_minutes": ("配信時間",),
}
# Qualifiers drawn around a core term, by the field's kind; every third one is held out for test.
PREFIXES = {"ja": ("総", "累計", "LIVE", "ライブ", "本日の", "配信"), "en": ("Total", "LIVE", "Overall", "Cumulative")}
SUFFIXES = {
    "number": ("数", "(人)", "(件)", "(回)"),
    "money": ("(円)", "(¥)", "金額", "(JPY)"),
    "percent": ("(%)", "率"),
    "duration": ("(秒)", "(分)"),
}
PRODUCT_NAMES = (
    "カバー力クッションファンデ",
    "ツヤ発色リップティント",
    "ロングカールマスカラ",
    "9色アイシャドウパレット",
    "高保湿化粧水 200ml",
    "和牛ハンバーグ 6個入り",
    "オーバーサイズパーカー",
    "プロテインバー 12本セット",
    "美容液ファンデーション",
    "シルクナイトキャップ",
)
TABLE_HEADERS = ("商品名", "価格", "販売数", "売上")
FONT_FILES = {
    "noto-sans": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    ),
    "noto-serif": (
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
    ),
    "ipa-gothic": (
        "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
        "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    ),
    "vl-gothic": (
        "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
        "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
    ),
    # dev only, so that dev is not one face's look: a monospaced and a proportional Gothic, and
    # Noto Sans set bold throughout (labels too)
    "noto-sans-mono": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    ),
    "ipa-pgothic": (
        "/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf",
        "/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf",
    ),
    "noto-sans-bold": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    ),
    # dev only, so that dev has serif (Mincho) digits and kana of its own, a rounded face, and
    # hairline labels over black values (M+ 2 Light / Black)
    "ipa-mincho": (
        "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf",
        "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf",
    ),
    "sawarabi-mincho": (
        "/usr/share/fonts/truetype/sawarabi-mincho/sawarabi-mincho-medium.ttf",
        "/usr/share/fonts/truetype/sawarabi-mincho/sawarabi-mincho-medium.ttf",
    ),
    "maruberi": (
        "/usr/share/fonts/truetype/motoya-l-maruberi/MTLmr3m.ttf",
        "/usr/share/fonts/truetype/motoya-l-maruberi/MTLmr3m.ttf",
    ),
    "mplus": (
        "/usr/share/fonts/opentype/mplus/Mplus1-Regular.otf",
        "/usr/share/fonts/opentype/mplus/Mplus1-Bold.otf",
    ),
    "mplus-light": (
        "/usr/share/fonts/opentype/mplus/Mplus2-Light.otf",
        "/usr/share/fonts/opentype/mplus/Mplus2-Black.otf",
    ),
    # dev only: Latin faces for the digits of values, CJK units from the page's face (web
    # dashboards set numbers in a Latin face and fall back for 万, 円, 人)
    "dejavu-sans": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    "dejavu-serif": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    ),
    "dejavu-mono": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    ),
}  # fonts-noto-cjk, fonts-ipafont-gothic/-mincho, fonts-vlgothic, fonts-sawarabi-mincho, fonts-mplus,
# fonts-motoya-l-maruberi, fonts-dejavu-core: installed by scripts/setup.sh
FACE_INDEX = {"noto-sans-mono": 5}  # a .ttc's face 0 is Noto Sans CJK JP; 5 is Noto Sans Mono CJK JP
FALLBACK_FACE = "noto-sans"  # a character a face lacks (M+ has no ￥, Maruberi no ¥) is set in it


@dataclass(frozen=True)
class Split:
    """What one split may draw: layouts, faces, wordings (held-out ones preferred in test)."""

    layouts: tuple[str, ...]
    faces: tuple[str, ...]
    themes: tuple[str, ...]
    held_out: bool  # test: wordings, qualifiers, layouts and faces dev never shows
    # Latin faces a value's digits may be set in (None: the page's face); empty draws nothing, so
    # the splits without them keep their bytes
    number_faces: tuple[str | None, ...] = ()
    # how the GMV card's value may be decorated (None: plain), drawn from a stream of its own
    # (:func:`_gmv_look`); empty draws nothing, so the splits without them keep their bytes
    gmv_looks: tuple[str | None, ...] = ()
    # how the GMV card's label and value are dressed beyond :attr:`gmv_looks` (None: not), from a
    # stream of its own again, so that the pages not dressed keep their bytes
    gmv_dresses: tuple[str | None, ...] = ()


SPLITS = {
    "fixture": Split(("cards", "list", "desktop"), ("noto-sans",), ("light", "dark"), held_out=False),
    "dev": Split(
        ("cards", "desktop", "list", "cropped", "tiles", "hero", "ledger", "inline"),
        (
            "noto-sans",
            "ipa-gothic",
            "noto-sans-mono",
            "ipa-pgothic",
            "noto-sans-bold",
            "ipa-mincho",
            "sawarabi-mincho",
            "maruberi",
            "mplus",
            "mplus-light",
        ),
        ("light", "dark", "grey", "navy", "charcoal", "teal", "accent", "sepia"),
        held_out=False,
        number_faces=(None, None, None, "dejavu-sans", "dejavu-serif", "dejavu-mono"),
        gmv_looks=(None, "trend", "sparkline", "small_unit", "small_unit_trend"),
        gmv_dresses=(None, None, "chip", "tooltip", "comparison", "raised_unit", "decimal_m", "chip_raised"),
    ),
    "test": Split(
        ("cards", "desktop", "list", "cropped", "list2", "list2"),
        ("noto-sans", "ipa-gothic", "vl-gothic", "noto-serif"),
        ("light", "dark", "dim"),
        held_out=True,
    ),
}


@dataclass(frozen=True)
class Theme:
    background: str
    card: str
    label: str
    value: str
    muted: str
    rule: str
    up: str
    down: str


THEMES = {
    "light": Theme("#ffffff", "#f4f5f7", "#6d6f78", "#161823", "#8a8b91", "#e3e4e8", "#12a150", "#e0294a"),
    "dark": Theme("#121212", "#1f2026", "#a3a4ab", "#ffffff", "#7c7d84", "#2e2f36", "#35d07f", "#ff4d6a"),
    "dim": Theme("#2b2d33", "#363941", "#b9bbc2", "#f2f3f5", "#8d9099", "#44474f", "#4ad991", "#ff6f86"),
    # dev only: a washed-out grey (low contrast: labels barely darker than the card) and a
    # coloured dark card background
    "grey": Theme("#e6e7eb", "#d9dbe0", "#8b8e97", "#4a4d55", "#9a9ca4", "#c9cbd1", "#3f9f6a", "#c8576a"),
    "navy": Theme("#0f213d", "#1a3459", "#8fa6c8", "#e9eff9", "#7389ab", "#2a456c", "#49c98a", "#ff7a8c"),
    # dev only: a low-contrast near-black (grey values on charcoal cards), dark teal cards with
    # tinted text, values in the app's accent colour on pale pink cards, and warm sepia paper
    "charcoal": Theme("#18191b", "#232427", "#6e7178", "#b4b7bd", "#5d6066", "#303236", "#3fae74", "#d8576b"),
    "teal": Theme("#071a1c", "#0f3b3d", "#7fb8b2", "#e6fffb", "#5e918c", "#1d5254", "#5be0a0", "#ff8a7a"),
    "accent": Theme("#ffffff", "#fff0f3", "#8a7d82", "#fe2c55", "#a3979b", "#f3d9df", "#12a150", "#6b6e78"),
    "sepia": Theme("#f6f0e3", "#ece2cc", "#8c7b5c", "#3b2f1e", "#9d8d70", "#dccfb3", "#3f8a4f", "#b3473d"),
}


PARTIAL_FACES = frozenset({"mplus", "mplus-light", "maruberi"})  # faces without every glyph the pages use
NUMBER_CHARS = frozenset("0123456789,.%:+-KM¥")  # what a Latin number face sets of a value


@dataclass(frozen=True)
class Style:
    """One screenshot's typography: faces and sizes; ``number_face``, a Latin face the digits
    of values are set in (CJK units fall back to the page's face)."""

    face: str
    label_px: int
    value_px: int
    number_face: str | None = None
    gmv_look: str | None = None  # how the GMV's value is decorated (Split.gmv_looks)
    gmv_dress: str | None = None  # how the GMV's label and value are dressed (Split.gmv_dresses)

    def font(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        return _font(self.face, size, bold)

    def runs(self, text: str, bold: bool, number: bool) -> list[tuple[str, str]]:
        """``text`` as runs of ``(characters, face)``: a value's digits in the number face, a
        character a partial face lacks in ``FALLBACK_FACE``, the rest in the page's face."""
        out: list[tuple[str, str]] = []
        for ch in text:
            face = self.face
            if number and self.number_face is not None and ch in NUMBER_CHARS:
                face = self.number_face
            elif self.face in PARTIAL_FACES and not _has_glyph(self.face, bold, ch):
                face = FALLBACK_FACE
            if out and out[-1][1] == face:
                out[-1] = (out[-1][0] + ch, face)
            else:
                out.append((ch, face))
        return out


@lru_cache(maxsize=128)
def _font(face: str, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    path = Path(FONT_FILES[face][int(bold)])
    if not path.is_file():
        raise SystemExit(f"{path} missing: run scripts/setup.sh (installs the CJK fonts)")
    return ImageFont.truetype(str(path), size, index=FACE_INDEX.get(face, 0))


@lru_cache(maxsize=4096)
def _has_glyph(face: str, bold: bool, ch: str) -> bool:
    """Whether the face draws ``ch`` itself rather than its missing-glyph box."""
    font = _font(face, 32, bold)
    return ch.isspace() or bytes(font.getmask(ch)) != bytes(font.getmask("\U000f0000"))


def _put(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    style: Style,
    size: int,
    fill: str,
    *,
    bold: bool = False,
    number: bool = False,
) -> None:
    """Draw ``text`` at ``xy`` (top left) in the style's faces, runs of other faces on the
    page face's baseline. One face only: a plain ``draw.text``, so such pages keep their bytes."""
    runs = style.runs(text, bold, number)
    if len(runs) == 1 and runs[0][1] == style.face:
        draw.text(xy, text, font=style.font(size, bold), fill=fill)
        return
    x, baseline = xy[0], xy[1] + style.font(size, bold).getmetrics()[0]
    for part, face in runs:
        font = _font(face, size, bold)
        draw.text((x, baseline), part, font=font, fill=fill, anchor="ls")
        x += draw.textlength(part, font=font)


def _width(
    draw: ImageDraw.ImageDraw, text: str, style: Style, size: int, *, bold: bool = False, number: bool = False
) -> float:
    """The advance of ``text`` as :func:`_put` draws it."""
    return sum(draw.textlength(part, font=_font(face, size, bold)) for part, face in style.runs(text, bold, number))


@lru_cache(maxsize=1)
def _lexicon_terms() -> dict[str, list[str]]:
    """Japanese and English core terms per field (Chinese is not drawn: see the module doc)."""
    data = json.loads(LEXICON.read_text("utf-8"))["fields"]
    return {name: [*data[name]["ja"], *data[name]["en"]] for name in FIELDS}


def _pick(options: tuple[str, ...] | list[str], rng: random.Random, split: Split) -> str:
    """A choice where every third option is held out of dev; test prefers the held-out ones."""
    held = [o for i, o in enumerate(options) if i % 3 == 2]
    seen = [o for i, o in enumerate(options) if i % 3 != 2]
    if split.held_out and held and rng.random() < 0.6:
        return rng.choice(held)
    return rng.choice(seen)


def wording(name: str, kind: str, rng: random.Random, split: Split, fixture: bool) -> str:
    """A label for the field: a lexicon term, sometimes with a qualifier before or after it."""
    if fixture:
        return rng.choice(FIXTURE_LABELS[name])
    term = _pick(_lexicon_terms()[name], rng, split)
    language = "ja" if any(ord(ch) > 0x3000 for ch in term) else "en"
    label = term
    if rng.random() < 0.35:
        prefix = _pick(PREFIXES[language], rng, split)
        label = f"{prefix} {label}" if language == "en" else f"{prefix}{label}"
    if rng.random() < 0.3 and language == "ja" and not label.endswith(("数", "率", "時間")):
        label += _pick(SUFFIXES[kind], rng, split)
    elif rng.random() < 0.2 and kind in ("money", "percent"):
        label += " " + SUFFIXES[kind][0]
    return label


FULLWIDTH = str.maketrans("0123456789,.", "０１２３４５６７８９，．")


def _money(value: int, rng: random.Random, fixture: bool) -> tuple[str, float]:
    """A money amount as dashboards write it, and the amount that text means."""
    styles = ["yen", "fullwidth_yen", "en"]
    if value >= 100_000:
        styles.append("man")
    if not fixture:
        styles += ["man_en", "fullwidth_digits"] + (["oku"] if value >= 100_000_000 else [])
    style = rng.choice(styles)
    if style in ("man", "man_en"):
        shown = round(value / 1000) / 10
        return (f"¥{shown:.1f}万" if style == "man" else f"{shown:.1f}万円"), round(shown * 10_000)
    if style == "oku":
        shown = round(value / 10_000_000) / 10
        return f"¥{shown:.1f}億", round(shown * 100_000_000)
    if style == "fullwidth_digits":
        return f"￥{value:,}".translate(FULLWIDTH), value
    mark = {"yen": "¥", "fullwidth_yen": "￥", "en": ""}[style]
    return (f"{value:,}円" if style == "en" else f"{mark}{value:,}"), value


def _count(value: int, rng: random.Random, unit: str, fixture: bool) -> tuple[str, float]:
    """A count as dashboards write it (truncated when abbreviated, as the app does), and its value."""
    if fixture:  # the committed set's draws, kept so its truth files reproduce
        if value >= 10_000 and rng.random() < 0.4:
            shown = value // 1000 / 10
            return f"{shown:.1f}万", round(shown * 10_000)
        return f"{value:,}{unit if rng.random() < 0.5 else ''}", value
    styles = ["plain", "unit", "fullwidth"] + (["man"] if value >= 10_000 else [])
    styles += ["k"] if 10_000 <= value < 10**6 else ["m"] if value >= 10**6 else []  # never "3750.3K"
    style = rng.choice(styles)
    if style == "man":
        shown = value // 1000 / 10  # the app truncates: 12,980 -> 1.2万
        return f"{shown:.1f}万", round(shown * 10_000)
    if style == "k":
        shown = value // 100 / 10
        return f"{shown:.1f}K", round(shown * 1_000)
    if style == "m":
        shown = value // 100_000 / 10
        return f"{shown:.1f}M", round(shown * 1_000_000)
    if style == "fullwidth":
        return f"{value:,}".translate(FULLWIDTH), value
    return f"{value:,}{unit if style == 'unit' else ''}", value


def _watch_time(seconds: int, rng: random.Random) -> str:
    minutes, sec = divmod(seconds, 60)
    style = rng.choice(("jp", "clock", "seconds") if seconds < 100 else ("jp", "clock"))
    if style == "clock":
        return f"{minutes:02d}:{sec:02d}"
    if style == "seconds":
        return f"{seconds}秒"
    return f"{minutes}分{sec}秒" if minutes else f"{sec}秒"


KINDS = {
    "gmv": "money",
    "gpm": "money",
    "ctr": "percent",
    "cvr": "percent",
    "avg_watch_time_sec": "duration",
    "duration_minutes": "duration",
}


@dataclass
class Shot:
    """One screenshot's content: the displayed text per field and the true values."""

    display: dict[str, str] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    changes: dict[str, str] = field(default_factory=dict)
    products: list[dict[str, Any]] = field(default_factory=list)
    product_rows: list[tuple[str, str, str, str]] = field(default_factory=list)


def make_shot(rng: random.Random, fields: list[str], split: Split, *, fixture: bool) -> Shot:
    """Draw one consistent stream (cvr = orders/viewers, gmv = Σ price × sold, ...) and format it."""
    big = not fixture and rng.random() < 0.25  # a big account: millions of viewers, 億 of GMV
    viewers = rng.randint(200_000, 3_000_000) if big else rng.randint(3_000, 90_000)
    orders = max(5, round(viewers * rng.uniform(0.004, 0.03)))
    clicks = round(viewers * rng.uniform(0.02, 0.09))
    n_products = rng.randint(3, 5)
    names = rng.sample(PRODUCT_NAMES, n_products)
    prices = [rng.choice((980, 1280, 1580, 1980, 2200, 2510, 2980, 3480, 4980, 5020, 6800)) for _ in names]
    items_sold = orders + rng.randint(0, max(1, orders // 4))
    cuts = sorted(rng.sample(range(1, items_sold), n_products - 1))
    sold = [b - a for a, b in zip([0, *cuts], [*cuts, items_sold], strict=True)]
    gmv = sum(p * s for p, s in zip(prices, sold, strict=True))
    raw = {
        "gmv": gmv,
        "orders": orders,
        "items_sold": items_sold,
        "viewers": viewers,
        "peak_viewers": max(20, round(viewers * rng.uniform(0.015, 0.08))),
        "avg_watch_time_sec": rng.randint(25, 260),
        "product_clicks": clicks,
        "ctr": round(clicks / viewers * 100, 2),
        "cvr": round(orders / viewers * 100, 2),
        "gpm": round(gmv / viewers * 1000),
        "new_followers": rng.randint(8, 900),
        "likes": rng.randint(2_000, 400_000) * (10 if big else 1),
        "comments": rng.randint(80, 6_000),
        "shares": rng.randint(3, 800),
        "duration_minutes": rng.randint(40, 200),
    }
    shot = Shot()
    for name in fields:
        value = raw[name]
        kind = KINDS.get(name, "number")
        if kind == "money":
            text, truth = _money(int(value), rng, fixture)
        elif kind == "percent":
            decimals = 2 if fixture or rng.random() < 0.6 else 1
            text, truth = f"{value:.{decimals}f}%", round(value, decimals)
        elif name == "avg_watch_time_sec":
            text, truth = _watch_time(int(value), rng), value
        elif name == "duration_minutes":
            hours, minutes = divmod(int(value), 60)
            text, truth = (f"{hours}時間{minutes}分" if hours and rng.random() < 0.6 else f"{value}分"), value
        else:
            unit = "人" if name in ("viewers", "peak_viewers", "new_followers") else ""
            text, truth = _count(int(value), rng, unit, fixture)
        shot.display[name], shot.truth[name] = text, float(truth)
        shot.labels[name] = wording(name, kind, rng, split, fixture)
        change = rng.uniform(-40, 60)
        shot.changes[name] = f"前回比 {'+' if change >= 0 else '-'}{abs(change):.1f}%"
    for name, price, count in zip(names, prices, sold, strict=True):
        shot.products.append({"name": name, "price": float(price), "sold": float(count), "set_revenue": price * count})
        shot.product_rows.append((name, f"¥{price:,}", f"{count:,}", f"¥{price * count:,}"))
    return shot


def _status_bar(draw: ImageDraw.ImageDraw, width: int, theme: Theme, rng: random.Random, style: Style) -> None:
    _put(draw, (36, 14), f"{rng.randint(18, 23)}:{rng.randint(0, 59):02d}", style, 24, theme.value, bold=True)
    draw.rounded_rectangle((width - 86, 20, width - 40, 40), 5, outline=theme.value, width=2)
    draw.rectangle((width - 82, 24, width - 82 + rng.randint(10, 38), 36), fill=theme.value)


def _header(draw: ImageDraw.ImageDraw, x: int, y: int, theme: Theme, rng: random.Random, style: Style) -> int:
    _put(draw, (x, y), "LIVEデータ分析", style, 34, theme.value, bold=True)
    day = f"2026/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d} {rng.randint(18, 21)}:00開始"
    _put(draw, (x, y + 52), day, style, 22, theme.muted)
    return y + 100


def _right(
    draw: ImageDraw.ImageDraw,
    x_right: int,
    y: int,
    text: str,
    style: Style,
    size: int,
    fill: str,
    *,
    bold: bool = False,
    number: bool = False,
) -> None:
    left = x_right - _width(draw, text, style, size, bold=bold, number=number)
    _put(draw, (left, y), text, style, size, fill, bold=bold, number=number)


def _fit(draw: ImageDraw.ImageDraw, text: str, style: Style, size: int, width: float) -> str:
    while _width(draw, text, style, size) > width and len(text) > 2:
        text = text[:-2] + "…"
    return text


def _shrink(draw: ImageDraw.ImageDraw, text: str, style: Style, size: int, width: float) -> int:
    """The largest size up to ``size`` at which ``text`` fits ``width``: a long wording is set
    smaller, as apps do, rather than cut off (a cut label names no field)."""
    while size > 12 and _width(draw, text, style, size) > width:
        size -= 1
    return size


def _value_size(draw: ImageDraw.ImageDraw, text: str, style: Style, size: int, width: float) -> int:
    """The largest even step down from ``size`` at which a value fits ``width``: a long
    full-width number is set smaller, as apps do, never cut off."""
    while size > 16 and _width(draw, text, style, size, bold=True, number=True) > width:
        size -= 2
    return size


def _table(draw: ImageDraw.ImageDraw, shot: Shot, x0: int, x1: int, y: int, theme: Theme, style: Style) -> int:
    """The product table: name left, price / units / revenue right-aligned in columns."""
    size = 24
    _put(draw, (x0, y), "商品別データ", style, size + 6, theme.value, bold=True)
    y += size + 26
    span = x1 - x0
    rights = [x0 + int(span * f) for f in (0.56, 0.72, 1.0)]  # room for 8-digit revenues
    _put(draw, (x0, y), TABLE_HEADERS[0], style, size, theme.label)
    for right, head in zip(rights, TABLE_HEADERS[1:], strict=True):
        _right(draw, right, y, head, style, size, theme.label)
    y += size + 28
    for name, *cells in shot.product_rows:
        draw.line((x0, y - 8, x1, y - 8), fill=theme.rule, width=2)
        _put(draw, (x0, y + 4), _fit(draw, name, style, size, span * 0.40), style, size, theme.value)
        for right, cell in zip(rights, cells, strict=True):
            _right(draw, right, y + 4, cell, style, size, theme.value, bold=True, number=True)
        y += size + 34
    return y


TREND_ARROWS = {"+": "▲", "-": "▼"}
_UNIT_SPLIT = re.compile(r"^([¥￥]?)(.*?)((?:[万億]円?|円)?)$")


def _put_gmv(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    style: Style,
    size: int,
    theme: Theme,
    *,
    right: float,
    change: str,
) -> None:
    """The GMV's value as hero numbers are dressed (``style.gmv_look``): the currency mark and
    unit set smaller on the number's baseline (``¥`` ``123.4`` ``万``), a trend arrow with its
    percentage after the number (``▲12.3%`` in the up or down colour), or a sparkline beside it;
    nothing that does not fit before ``right`` is drawn. Plain without a look. ``style.gmv_dress``
    adds: the mark and unit smaller and **raised** to the digits' top (another baseline), or the
    comparison (``前回比 +12.3%``) on the value's own line after it."""
    look = style.gmv_look or ""
    dress = style.gmv_dress or ""
    x, y = xy
    baseline = y + style.font(size, True).getmetrics()[0]
    prefix, number, unit = "", text, ""
    raised = "raised" in dress
    if ("small_unit" in look or raised) and (split := _UNIT_SPLIT.match(text)):
        prefix, number, unit = split.groups()
    small = max(12, round(size * 0.55))
    digit_top = baseline + style.font(size, True).getbbox("0", anchor="ls")[1]
    for part, px, gap in ((prefix, small, round(small * 0.15)), (number, size, 0), (unit, small, 0)):
        if part:
            top = baseline - style.font(px, True).getmetrics()[0]
            if raised and px == small:  # set from the digits' top down: its own baseline
                top = digit_top - style.font(px, True).getbbox(part[0])[1]
            _put(draw, (x, top), part, style, px, theme.value, bold=True, number=True)
            x += _width(draw, part, style, px, bold=True, number=True) + gap
    if "trend" in look:
        sign, rest = change.split()[-1][0], change.split()[-1][1:]
        trend, px = f"{TREND_ARROWS[sign]}{rest}", max(12, round(size * 0.45))
        left = x + round(size * 0.3)
        if left + _width(draw, trend, style, px) <= right:
            _put(
                draw,
                (left, baseline - style.font(px).getmetrics()[0]),
                trend,
                style,
                px,
                theme.up if sign == "+" else theme.down,
            )
            x = left + _width(draw, trend, style, px)
    if dress == "comparison":
        px, left = max(12, round(size * 0.4)), x + round(size * 0.4)
        if left + _width(draw, change, style, px) <= right:
            fill = theme.up if "+" in change else theme.down
            _put(draw, (left, baseline - style.font(px).getmetrics()[0]), change, style, px, fill)
    if look == "sparkline":
        left, width = x + round(size * 0.5), min(3 * size, right - x - round(size * 0.5))
        if width >= size:
            line = random.Random(text)  # its own stream: the page's draws are not moved
            height = size * 0.6
            points = [(left + width * i / 9, baseline - height * line.random()) for i in range(10)]
            draw.line(points, fill=theme.up, width=max(2, size // 16), joint="curve")


def _put_gmv_label(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, style: Style, size: int, theme: Theme
) -> None:
    """The GMV's label as ``style.gmv_dress`` has it: inside a coloured **chip** (a filled pill,
    the words in the card's colour), or followed by a **tooltip** mark (a ringed ``i``)."""
    dress = style.gmv_dress or ""
    x, y = xy
    width = _width(draw, text, style, size)
    if "chip" in dress:
        pad = round(size * 0.45)
        draw.rounded_rectangle((x - pad, y - 4, x + width + pad, y + size + 8), (size + 12) // 2, fill=theme.up)
        _put(draw, (x, y), text, style, size, theme.card)
        return
    _put(draw, (x, y), text, style, size, theme.label)
    if dress == "tooltip":
        r, cx, cy = size * 0.38, x + width + size * 0.7, y + size * 0.62
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=theme.label, width=max(1, size // 14))
        _put(draw, (cx - r * 0.22, cy - r * 0.85), "i", style, round(r * 1.4), theme.label)


def _gmv_in_millions(shot: Shot) -> None:
    """The GMV as English-language tools abbreviate money: ``¥1.23M``, two decimals of a million
    (the truth becomes the amount that text means)."""
    millions = round(shot.truth["gmv"] / 1_000_000, 2)
    if millions >= 0.01:
        shot.display["gmv"] = f"¥{millions:.2f}M"
        shot.truth["gmv"] = round(millions * 1_000_000)


@dataclass
class Page:
    """A drawn dashboard: the image, where its metric rows start, and where the table starts."""

    image: Image.Image
    rows: list[tuple[int, list[str]]]  # (top y, fields on that row)
    table_top: int


def draw_cards(
    shot: Shot,
    theme: Theme,
    rng: random.Random,
    style: Style,
    *,
    width: int,
    columns: int,
    phone: bool,
    value_first: bool = False,
    hero: bool = False,
) -> Page:
    """Card grid: each metric in a rounded card, label on top, big value below, comparison under it
    (``value_first``: the value on top and the label under it, as some tools draw tiles;
    ``hero``: the GMV, or the first metric, alone in a banner card at twice the value size)."""
    img = Image.new("RGB", (width, 3000), theme.background)
    draw = ImageDraw.Draw(img)
    pad, gap = (32, 20) if phone else (40, 18)
    y = 70 if phone else 30
    if phone:
        _status_bar(draw, width, theme, rng, style)
    y = _header(draw, pad, y, theme, rng, style)
    card_w = (width - 2 * pad - (columns - 1) * gap) // columns
    lp, vp = style.label_px, style.value_px
    card_h = 20 + lp + 16 + vp + 24 + 20 + 20
    names = list(shot.display)
    rows: list[tuple[int, list[str]]] = []
    if hero and names:
        name = names.pop(names.index("gmv") if "gmv" in names else 0)
        hero_px = _value_size(draw, shot.display[name], style, 2 * vp, width - 2 * pad - 48)
        banner_h = 28 + lp + 18 + hero_px + 28
        draw.rounded_rectangle((pad, y, width - pad, y + banner_h), 22, fill=theme.card)
        if name == "gmv" and style.gmv_dress:
            _put_gmv_label(draw, (pad + 24, y + 28), shot.labels[name], style, lp, theme)
        else:
            _put(draw, (pad + 24, y + 28), shot.labels[name], style, lp, theme.label)
        change = shot.changes[name]
        value_xy = (pad + 24, y + 46 + lp)
        if name == "gmv" and (style.gmv_look or style.gmv_dress):
            _put_gmv(draw, value_xy, shot.display[name], style, hero_px, theme, right=width - pad - 24, change=change)
        else:
            _put(draw, value_xy, shot.display[name], style, hero_px, theme.value, bold=True, number=True)
        change_x = width - pad - 24 - _width(draw, change, style, 22)
        _put(draw, (change_x, y + 28), change, style, 22, theme.up if "+" in change else theme.down)
        rows.append((y, [name]))
        y += banner_h + gap
    for i, name in enumerate(names):
        col, row = i % columns, i // columns
        x, top = pad + col * (card_w + gap), y + row * (card_h + gap)
        if col == 0:
            rows.append((top, []))
        rows[-1][1].append(name)
        draw.rounded_rectangle((x, top, x + card_w, top + card_h), 18, fill=theme.card)
        label_px = _shrink(draw, shot.labels[name], style, lp, card_w - 40)
        value_px = _value_size(draw, shot.display[name], style, vp, card_w - 40)
        label_y, value_y = top + 20 + lp - label_px, top + 36 + lp + (vp - value_px)
        if value_first:
            value_y, label_y = top + 20 + (vp - value_px), top + 36 + vp + lp - label_px
        if name == "gmv" and style.gmv_dress:
            _put_gmv_label(draw, (x + 20, label_y), shot.labels[name], style, label_px, theme)
        else:
            _put(draw, (x + 20, label_y), shot.labels[name], style, label_px, theme.label)
        change = shot.changes[name]
        if name == "gmv" and (style.gmv_look or style.gmv_dress):
            _put_gmv(
                draw,
                (x + 20, value_y),
                shot.display[name],
                style,
                value_px,
                theme,
                right=x + card_w - 20,
                change=change,
            )
        else:
            _put(draw, (x + 20, value_y), shot.display[name], style, value_px, theme.value, bold=True, number=True)
        _put(draw, (x + 20, top + 60 + lp + vp), change, style, 20, theme.up if "+" in change else theme.down)
    y += -(-len(names) // columns) * (card_h + gap) + 30
    table_top = y
    y = _table(draw, shot, pad, width - pad, y, theme, style)
    return Page(img.crop((0, 0, width, y + 30)), rows, table_top)


def draw_list(
    shot: Shot, theme: Theme, rng: random.Random, style: Style, *, width: int, columns: int, zebra: bool = False
) -> Page:
    """Label/value list: label left, value right-aligned, rules between rows; ``columns`` lists side
    by side; ``zebra``: every other row on the card colour, label and value inset in it."""
    img = Image.new("RGB", (width, 3000), theme.background)
    draw = ImageDraw.Draw(img)
    _status_bar(draw, width, theme, rng, style)
    pad, gap = 40, 60
    y = _header(draw, pad, 70, theme, rng, style)
    _put(draw, (pad, y), "パフォーマンス", style, 30, theme.value, bold=True)
    y += 60
    lp, vp = style.label_px, style.value_px
    row_h = max(lp, vp) + 44
    col_w = (width - 2 * pad - (columns - 1) * gap) // columns
    inset = 20 if zebra else 0
    names = list(shot.display)
    rows: list[tuple[int, list[str]]] = []
    for i in range(0, len(names), columns):
        rows.append((y, names[i : i + columns]))
        if zebra and (i // columns) % 2 == 0:
            draw.rectangle((pad, y + 2, width - pad, y + row_h - 2), fill=theme.card)
        for col, name in enumerate(names[i : i + columns]):
            x0 = pad + col * (col_w + gap) + inset
            value_w = _width(draw, shot.display[name], style, vp, bold=True, number=True)
            label_px = _shrink(draw, shot.labels[name], style, lp, col_w - 2 * inset - value_w - 2 * lp)
            _put(draw, (x0, y + 22 + (vp - label_px) // 2), shot.labels[name], style, label_px, theme.label)
            right = x0 + col_w - 2 * inset
            _right(draw, right, y + 18, shot.display[name], style, vp, theme.value, bold=True, number=True)
        y += row_h
        if not zebra:
            draw.line((pad, y, width - pad, y), fill=theme.rule, width=2)
    table_top = y + 40
    y = _table(draw, shot, pad, width - pad, table_top, theme, style)
    return Page(img.crop((0, 0, width, y + 30)), rows, table_top)


def draw_inline(shot: Shot, theme: Theme, rng: random.Random, style: Style, *, width: int, columns: int) -> Page:
    """A summary strip: ``label：value`` pairs side by side on each row, the value right after its
    label (a gap drawn per page, from a word space to a few characters) on the same baseline."""
    img = Image.new("RGB", (width, 3000), theme.background)
    draw = ImageDraw.Draw(img)
    pad, gap = 40, 72
    y = _header(draw, pad, 30, theme, rng, style)
    lp = style.label_px
    vp = max(lp + 2, style.value_px * 3 // 4)
    space = round(rng.uniform(0.3, 1.6) * lp)
    colon = rng.choice(("", "：", ":"))
    row_h = vp + 36
    col_w = (width - 2 * pad - (columns - 1) * gap) // columns
    names = list(shot.display)
    rows: list[tuple[int, list[str]]] = []
    for i in range(0, len(names), columns):
        rows.append((y, names[i : i + columns]))
        draw.rectangle((pad, y, width - pad, y + row_h - 8), fill=theme.card)
        for col, name in enumerate(names[i : i + columns]):
            x0 = pad + 16 + col * (col_w + gap)
            label = shot.labels[name] + colon
            value_px = _value_size(draw, shot.display[name], style, vp, col_w * 0.55)
            value_w = _width(draw, shot.display[name], style, value_px, bold=True, number=True)
            label_px = _shrink(draw, label, style, lp, col_w - 32 - value_w - space)
            base = y + 14 + vp  # the common baseline, near the bottom of the value
            label_top = base - style.font(label_px).getmetrics()[0]
            _put(draw, (x0, label_top), label, style, label_px, theme.label)
            value_x = x0 + _width(draw, label, style, label_px) + space
            value_top = base - style.font(value_px, True).getmetrics()[0]
            _put(draw, (value_x, value_top), shot.display[name], style, value_px, theme.value, bold=True, number=True)
        y += row_h
    table_top = y + 40
    y = _table(draw, shot, pad, width - pad, table_top, theme, style)
    return Page(img.crop((0, 0, width, y + 30)), rows, table_top)


def render(layout: str, theme_name: str, shot: Shot, rng: random.Random, style: Style) -> Page:
    theme = THEMES[theme_name]
    draws: dict[str, Callable[[], Page]] = {
        "cards": lambda: draw_cards(shot, theme, rng, style, width=750, columns=2, phone=True),
        "desktop": lambda: draw_cards(shot, theme, rng, style, width=1280, columns=4, phone=False),
        "list": lambda: draw_list(shot, theme, rng, style, width=750, columns=1),
        "list2": lambda: draw_list(shot, theme, rng, style, width=1280, columns=2),
        "tiles": lambda: draw_cards(shot, theme, rng, style, width=1080, columns=3, phone=False, value_first=True),
        # dev only: a phone page led by a hero GMV, a wide zebra ledger with each value a page
        # width from its label, and label-value pairs inline
        "hero": lambda: draw_cards(shot, theme, rng, style, width=750, columns=2, phone=True, hero=True),
        "ledger": lambda: draw_list(shot, theme, rng, style, width=1280, columns=1, zebra=True),
        "inline": lambda: draw_inline(shot, theme, rng, style, width=1180, columns=2),
    }
    return draws[layout]()


def crop(page: Page, shot: Shot, rng: random.Random) -> Image.Image:
    """A screenshot cut to a band of metric rows: header and product table gone, and the truth
    keeps only the fields whose row is inside the band."""
    first = rng.randint(0, max(0, len(page.rows) - 3))
    last = rng.randint(min(len(page.rows), first + 2), len(page.rows))
    top = page.rows[first][0] - 8
    bottom = page.rows[last][0] - 8 if last < len(page.rows) else page.table_top - 8
    kept = {name for _, names in page.rows[first:last] for name in names}
    for name in list(shot.display):
        if name not in kept:
            for table in (shot.display, shot.truth, shot.labels, shot.changes):
                table.pop(name, None)
    shot.products.clear()
    return page.image.crop((0, top, page.image.width, bottom))


@dataclass(frozen=True)
class Variant:
    """How the screenshot was shared: original PNG, or scaled and lossy-compressed."""

    name: str
    scale: float
    fmt: str
    quality: int = 0


FIXTURE_VARIANTS = (Variant("png", 1.0, "png"), Variant("small", 0.6, "jpeg", 72), Variant("webp", 0.8, "webp", 80))


def _variant(rng: random.Random) -> Variant:
    """Scale 0.5x-2x (log-uniform), then PNG, WebP or JPEG at quality 60-95."""
    scale = round(math.exp(rng.uniform(math.log(0.5), math.log(2.0))), 2)
    fmt = rng.choice(("png", "jpeg", "jpeg", "webp"))
    quality = 0 if fmt == "png" else rng.randint(60, 95)
    return Variant(f"x{round(scale * 100)}_{fmt}{quality or ''}", scale, fmt, quality)


def _style(rng: random.Random, split: Split, fixture: bool) -> Style:
    if fixture:
        return Style("noto-sans", 24, 40)
    face = rng.choice(split.faces)
    style = Style(face, rng.choice((20, 22, 24, 26, 28)), rng.choice((30, 34, 40, 46)))
    if split.number_faces:  # drawn only where the split has them: the other splits keep their draws
        style = Style(style.face, style.label_px, style.value_px, rng.choice(split.number_faces))
    return style


def fixture_plan() -> list[tuple[str, str, Variant]]:
    """Every layout x theme as PNG and small JPEG, plus two WebP copies: 14 screenshots."""
    out = [
        (layout, theme, v)
        for layout in ("cards", "list", "desktop")
        for theme in ("light", "dark")
        for v in FIXTURE_VARIANTS[:2]
    ]
    out += [("cards", "dark", FIXTURE_VARIANTS[2]), ("list", "light", FIXTURE_VARIANTS[2])]
    return out


def _save(img: Image.Image, variant: Variant, path_stem: Path) -> Path:
    if variant.scale != 1.0:
        size = (max(1, round(img.width * variant.scale)), max(1, round(img.height * variant.scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    path = path_stem.with_name(path_stem.name + {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[variant.fmt])
    if variant.fmt == "png":
        img.save(path, optimize=True)
    else:
        img.save(path, quality=variant.quality)
    return path


def generate(out: Path, seed: int | None = None, *, split: str = "fixture", count: int | None = None) -> list[Path]:
    """Write the split's screenshots and truths into ``out``; returns the image paths.

    ``fixture`` is the 14 committed screenshots; ``dev`` and ``test`` draw ``count`` (default 40)
    screenshots of every style the split allows. Same split, seed and count: same bytes.
    """
    rules = SPLITS[split]
    seed = SPLIT_SEEDS[split] if seed is None else seed
    fixture = split == "fixture"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    plans = fixture_plan() if fixture else [None] * (count or 40)
    for index, planned in enumerate(plans):
        rng = random.Random(seed * 1000 + index)
        if planned is not None:
            layout, theme, variant = planned
        else:
            layout, theme = rng.choice(rules.layouts), rng.choice(rules.themes)
            variant = _variant(rng)
        style = _style(rng, rules, fixture)
        if rules.gmv_looks:  # its own stream, after the page's draws: nothing else moves
            look = random.Random(f"gmv-look-{seed}-{index}").choice(rules.gmv_looks)
            style = Style(style.face, style.label_px, style.value_px, style.number_face, look)
        if rules.gmv_dresses:  # a stream of its own again: the pages it leaves plain keep their bytes
            dress = random.Random(f"gmv-dress-{seed}-{index}").choice(rules.gmv_dresses)
            style = Style(style.face, style.label_px, style.value_px, style.number_face, style.gmv_look, dress)
        if layout == "desktop" and fixture:
            fields = list(FIELDS)
        else:
            drop = set(rng.sample(FIELDS, rng.randint(0, 4)))
            fields = [f for f in FIELDS if f not in drop]
        shot = make_shot(rng, fields, rules, fixture=fixture)
        if style.gmv_dress == "decimal_m" and "gmv" in shot.truth:
            _gmv_in_millions(shot)
        if layout == "cropped":
            base = rng.choice(("cards", "list", "desktop"))
            img = crop(render(base, theme, shot, rng, style), shot, rng)
        else:
            img = render(layout, theme, shot, rng, style).image
        name = f"{index:02d}_{layout}_{theme}_{variant.name}"
        path = _save(img, variant, out / name)
        truth = {
            "image": path.name,
            "layout": layout,
            "theme": theme,
            "variant": variant.name,
            "sales": shot.truth,
            "display": shot.display,
            "labels": shot.labels,
            "set_products": shot.products,
        }
        if not fixture:
            truth["face"] = style.face
        (out / f"{name}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", "utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--split", choices=sorted(SPLITS), default="fixture")
    parser.add_argument("--seed", type=int, default=None, help="default: the split's own seed")
    parser.add_argument("--count", type=int, default=None, help="screenshots of a dev/test split (default 40)")
    args = parser.parse_args()
    paths = generate(args.out, args.seed, split=args.split, count=args.count)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} {args.split} screenshots ({total / 1e6:.2f} MB) to {args.out}")


if __name__ == "__main__":
    main()
