"""Generate TikTok-Shop-like LIVE dashboard screenshots with known values, plus their truth.

Why: the sales extractor (Pattern A) has to be tested and benchmarked on
screenshots whose every number is known exactly, without shipping customer
dashboards. This draws the shapes such dashboards come in - a two-column card
grid (label above value), a label/value list (label left, value right) and a
wide desktop grid - in light and dark themes, with a product table below, a
phone status bar and "前回比" comparisons as distractors, in the number
formats the app uses (``¥1,234,567``, ``123.4万``, ``3,200人``, ``1分23秒``,
``4.99%``). Some copies are scaled down and JPEG/WebP-compressed like shared
screenshots are. ``<image>.truth.json`` beside each image holds the values
as displayed (``123.4万`` -> 1234000), so an exact match is the bar.

    python scripts/generate_sales_screenshots.py            # writes tests/data/sales_screenshots/
    python scripts/generate_sales_screenshots.py --out /tmp/shots --seed 11
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "sales_screenshots"
FONT_DIR = Path("/usr/share/fonts/opentype/noto")  # fonts-noto-cjk, installed by scripts/setup.sh

# The label choices each field is drawn with (several synonyms, as dashboards differ).
LABELS: dict[str, tuple[str, ...]] = {
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


@lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / ("NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc")
    if not path.is_file():
        raise SystemExit(f"{path} missing: run scripts/setup.sh (installs fonts-noto-cjk)")
    return ImageFont.truetype(str(path), size, index=0)  # face 0 is the Japanese one


def _yen(value: int, rng: random.Random) -> tuple[str, float]:
    """A money amount as dashboards write it, and the amount that text means."""
    style = rng.choice(("yen", "fullwidth_yen", "en", "man") if value >= 100_000 else ("yen", "fullwidth_yen", "en"))
    if style == "man":
        shown = round(value / 1000) / 10
        return f"¥{shown:.1f}万", round(shown * 10_000)
    mark = {"yen": "¥", "fullwidth_yen": "￥", "en": ""}[style]
    return (f"{value:,}円" if style == "en" else f"{mark}{value:,}"), value


def _count(value: int, rng: random.Random, unit: str = "") -> tuple[str, float]:
    if value >= 10_000 and rng.random() < 0.4:
        shown = value // 1000 / 10  # the app truncates: 12,980 -> 1.2万
        return f"{shown:.1f}万", round(shown * 10_000)
    return f"{value:,}{unit if rng.random() < 0.5 else ''}", value


def _watch_time(seconds: int, rng: random.Random) -> str:
    minutes, sec = divmod(seconds, 60)
    style = rng.choice(("jp", "clock", "seconds") if seconds < 100 else ("jp", "clock"))
    if style == "clock":
        return f"{minutes:02d}:{sec:02d}"
    if style == "seconds":
        return f"{seconds}秒"
    return f"{minutes}分{sec}秒" if minutes else f"{sec}秒"


def make_shot(rng: random.Random, fields: list[str]) -> Shot:
    """Draw one consistent stream (cvr = orders/viewers, gmv = Σ price × sold, ...) and format it."""
    viewers = rng.randint(3_000, 90_000)
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
        "likes": rng.randint(2_000, 400_000),
        "comments": rng.randint(80, 6_000),
        "shares": rng.randint(3, 800),
        "duration_minutes": rng.randint(40, 200),
    }
    shot = Shot()
    for name in fields:
        value = raw[name]
        if name in ("gmv", "gpm"):
            text, truth = _yen(int(value), rng)
        elif name in ("ctr", "cvr"):
            text, truth = f"{value:.2f}%", value
        elif name == "avg_watch_time_sec":
            text, truth = _watch_time(int(value), rng), value
        elif name == "duration_minutes":
            hours, minutes = divmod(int(value), 60)
            text, truth = (f"{hours}時間{minutes}分" if hours and rng.random() < 0.6 else f"{value}分"), value
        else:
            unit = "人" if name in ("viewers", "peak_viewers", "new_followers") else ""
            text, truth = _count(int(value), rng, unit)
        shot.display[name], shot.truth[name] = text, float(truth)
        shot.labels[name] = rng.choice(LABELS[name])
        change = rng.uniform(-40, 60)
        shot.changes[name] = f"前回比 {'+' if change >= 0 else '-'}{abs(change):.1f}%"
    for name, price, count in zip(names, prices, sold, strict=True):
        shot.products.append({"name": name, "price": float(price), "sold": float(count), "set_revenue": price * count})
        shot.product_rows.append((name, f"¥{price:,}", f"{count:,}", f"¥{price * count:,}"))
    return shot


def _status_bar(draw: ImageDraw.ImageDraw, width: int, theme: Theme, rng: random.Random) -> None:
    draw.text((36, 14), f"{rng.randint(18, 23)}:{rng.randint(0, 59):02d}", font=_font(24, True), fill=theme.value)
    draw.rounded_rectangle((width - 86, 20, width - 40, 40), 5, outline=theme.value, width=2)
    draw.rectangle((width - 82, 24, width - 82 + rng.randint(10, 38), 36), fill=theme.value)


def _header(draw: ImageDraw.ImageDraw, x: int, y: int, theme: Theme, rng: random.Random) -> int:
    draw.text((x, y), "LIVEデータ分析", font=_font(34, True), fill=theme.value)
    day = f"2026/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d} {rng.randint(18, 21)}:00開始"
    draw.text((x, y + 52), day, font=_font(22), fill=theme.muted)
    return y + 100


def _right(draw: ImageDraw.ImageDraw, x_right: int, y: int, text: str, font: ImageFont.FreeTypeFont, fill: str) -> None:
    draw.text((x_right - draw.textlength(text, font=font), y), text, font=font, fill=fill)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    while draw.textlength(text, font=font) > width and len(text) > 2:
        text = text[:-2] + "…"
    return text


def _table(draw: ImageDraw.ImageDraw, shot: Shot, x0: int, x1: int, y: int, theme: Theme, size: int) -> int:
    """The product table: name left, price / units / revenue right-aligned in columns."""
    draw.text((x0, y), "商品別データ", font=_font(size + 6, True), fill=theme.value)
    y += size + 26
    span = x1 - x0
    rights = [x0 + int(span * f) for f in (0.60, 0.78, 1.0)]
    draw.text((x0, y), TABLE_HEADERS[0], font=_font(size), fill=theme.label)
    for right, head in zip(rights, TABLE_HEADERS[1:], strict=True):
        _right(draw, right, y, head, _font(size), theme.label)
    y += size + 28
    for name, *cells in shot.product_rows:
        draw.line((x0, y - 8, x1, y - 8), fill=theme.rule, width=2)
        draw.text((x0, y + 4), _fit(draw, name, _font(size), span * 0.40), font=_font(size), fill=theme.value)
        for right, cell in zip(rights, cells, strict=True):
            _right(draw, right, y + 4, cell, _font(size, True), theme.value)
        y += size + 34
    return y


def draw_cards(shot: Shot, theme: Theme, rng: random.Random, *, width: int, columns: int, phone: bool) -> Image.Image:
    """Card grid: each metric in a rounded card, label on top, big value below, comparison under it."""
    height = 2400
    img = Image.new("RGB", (width, height), theme.background)
    draw = ImageDraw.Draw(img)
    pad, gap = (32, 20) if phone else (40, 18)
    y = 70 if phone else 30
    if phone:
        _status_bar(draw, width, theme, rng)
    y = _header(draw, pad, y, theme, rng)
    card_w = (width - 2 * pad - (columns - 1) * gap) // columns
    card_h = 168
    names = list(shot.display)
    for i, name in enumerate(names):
        col, row = i % columns, i // columns
        x, top = pad + col * (card_w + gap), y + row * (card_h + gap)
        draw.rounded_rectangle((x, top, x + card_w, top + card_h), 18, fill=theme.card)
        draw.text((x + 24, top + 20), shot.labels[name], font=_font(24), fill=theme.label)
        draw.text((x + 24, top + 60), shot.display[name], font=_font(40, True), fill=theme.value)
        change = shot.changes[name]
        draw.text((x + 24, top + 124), change, font=_font(20), fill=theme.up if "+" in change else theme.down)
    y += -(-len(names) // columns) * (card_h + gap) + 30
    y = _table(draw, shot, pad, width - pad, y, theme, 24)
    return img.crop((0, 0, width, y + 30))


def draw_list(shot: Shot, theme: Theme, rng: random.Random, *, width: int) -> Image.Image:
    """Label/value list: one metric per row, label left, value right-aligned, rules between rows."""
    img = Image.new("RGB", (width, 2400), theme.background)
    draw = ImageDraw.Draw(img)
    _status_bar(draw, width, theme, rng)
    pad = 40
    y = _header(draw, pad, 70, theme, rng)
    draw.text((pad, y), "パフォーマンス", font=_font(30, True), fill=theme.value)
    y += 60
    for name, text in shot.display.items():
        draw.text((pad, y + 20), shot.labels[name], font=_font(26), fill=theme.label)
        _right(draw, width - pad, y + 14, text, _font(32, True), theme.value)
        y += 84
        draw.line((pad, y, width - pad, y), fill=theme.rule, width=2)
    y = _table(draw, shot, pad, width - pad, y + 40, theme, 24)
    return img.crop((0, 0, width, y + 30))


LAYOUTS = ("cards", "list", "desktop")


def render(layout: str, theme_name: str, shot: Shot, rng: random.Random) -> Image.Image:
    theme = THEMES[theme_name]
    if layout == "cards":
        return draw_cards(shot, theme, rng, width=750, columns=2, phone=True)
    if layout == "desktop":
        return draw_cards(shot, theme, rng, width=1280, columns=4, phone=False)
    return draw_list(shot, theme, rng, width=750)


@dataclass(frozen=True)
class Variant:
    """How the screenshot was shared: original PNG, or scaled down and lossy-compressed."""

    name: str
    scale: float
    fmt: str
    quality: int = 0


VARIANTS = (Variant("png", 1.0, "png"), Variant("small", 0.6, "jpeg", 72), Variant("webp", 0.8, "webp", 80))


def plan() -> list[tuple[str, str, Variant]]:
    """Every layout x theme as PNG and small JPEG, plus two WebP copies: 14 screenshots."""
    out = [(layout, theme, v) for layout in LAYOUTS for theme in THEMES for v in VARIANTS[:2]]
    out += [("cards", "dark", VARIANTS[2]), ("list", "light", VARIANTS[2])]
    return out


def generate(out: Path, seed: int) -> list[Path]:
    """Write every planned screenshot and its truth into ``out``; returns the image paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (layout, theme, variant) in enumerate(plan()):
        rng = random.Random(seed * 1000 + index)
        all_fields = list(LABELS)
        if layout == "desktop":
            fields = all_fields
        else:
            drop = set(rng.sample(all_fields, rng.randint(0, 4)))
            fields = [f for f in all_fields if f not in drop]
        shot = make_shot(rng, fields)
        img = render(layout, theme, shot, rng)
        if variant.scale != 1.0:
            size = (round(img.width * variant.scale), round(img.height * variant.scale))
            img = img.resize(size, Image.Resampling.LANCZOS)
        name = f"{index:02d}_{layout}_{theme}_{variant.name}"
        ext = {"png": "png", "jpeg": "jpg", "webp": "webp"}[variant.fmt]
        path = out / f"{name}.{ext}"
        if variant.fmt == "png":
            img.save(path, optimize=True)
        else:
            img.save(path, quality=variant.quality)
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
        (out / f"{name}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", "utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=20260113)
    args = parser.parse_args()
    paths = generate(args.out, args.seed)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} screenshots ({total / 1e6:.2f} MB) to {args.out}")


if __name__ == "__main__":
    main()
