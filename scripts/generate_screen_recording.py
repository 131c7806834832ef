"""Generate a synthetic screen recording of a live-commerce stream, plus its truth.

Why: the screen-metrics extractor (Pattern B) has to be tested and benchmarked
on a video whose overlay values are known exactly, of any length, without
shipping real customer recordings. This draws a TikTok-LIVE-like portrait
screen (moving presenter, product board, scrolling comments, host pill, icons)
and the overlay values where a layout file says the platform draws them, then
encodes H.264 MP4 with PyAV. Values change at random moments (fixed seed),
purchase pop-ups come and go, and ``<video>.truth.json`` beside the MP4 records
what each frame shows (the displayed number, e.g. ``1.2万`` -> 12000).

    python -m scripts.generate_screen_recording out/stream.mp4 --duration 150 --fps 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rag_core.screen.layout import OverlayRegion, ScreenLayout, load_layout

FONT_DIR = Path("/usr/share/fonts/opentype/noto")  # fonts-noto-cjk, installed by scripts/setup.sh
BUYERS = (
    "さくら",
    "ゆうき",
    "みーちゃん",
    "Haru_22",
    "あおい",
    "りな",
    "kenta",
    "ももか",
    "ひなた",
    "sora",
    "まい",
    "Yui",
)
CHAT = (
    "かわいい！",
    "それ欲しい",
    "色違いありますか？",
    "こんばんは〜",
    "届くのいつですか",
    "買いました！",
    "肌に優しい？",
    "もう一回見せて",
)


@dataclass(frozen=True)
class RecordingSpec:
    """What to generate; the defaults give the small video the tests use (~3 s to make)."""

    duration_sec: float = 150.0
    fps: float = 4.0
    width: int = 540
    height: int = 960
    gop_sec: float = 2.0
    seed: int = 7
    layout: str = "tiktok_live_portrait"
    overlay: bool = True
    crf: int = 30


@lru_cache(maxsize=64)
def _font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / ("NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc")
    if not path.is_file():
        raise SystemExit(f"{path} missing: run scripts/setup.sh (installs fonts-noto-cjk)")
    return ImageFont.truetype(str(path), size, index=0)  # face 0 is the Japanese one


def show_count(value: int, field: str) -> str:
    """How the overlay writes a number: likes abbreviate with 万 like the app does, others use commas."""
    if field == "likes" and value >= 10_000:
        return f"{math.floor(value / 1000) / 10:.1f}万"
    if field == "viewers":
        return str(value)
    return f"{value:,}"


def _shown_value(text: str) -> int:
    if text.endswith("万"):
        return round(float(text[:-1]) * 10_000)
    return int(text.replace(",", ""))


def _timeline(spec: RecordingSpec, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Per-frame underlying values and the purchase pop-up events, all from ``rng``."""
    n = max(1, int(spec.duration_sec * spec.fps))
    t = np.arange(n) / spec.fps
    # Viewers: a slow arc with surges, updated by the app every 1-3 s.
    target = 350 + 900 * np.sin(np.pi * np.clip(t / max(spec.duration_sec, 1), 0, 1)) ** 2
    viewers = np.empty(n, dtype=np.int64)
    likes = np.empty(n, dtype=np.int64)
    comments = np.empty(n, dtype=np.int64)
    v, lk, cm = float(target[0]), 0.0, 0.0
    next_update, surge = 0.0, 1.0
    for i, ti in enumerate(t):
        if ti >= next_update:
            if rng.random() < 0.03:
                surge = rng.uniform(1.3, 2.2)
            surge = 1 + (surge - 1) * 0.9
            v = max(5.0, v + 0.35 * (target[i] * surge - v) + rng.normal(0, 0.03 * v))
            next_update = ti + rng.uniform(1.0, 3.0)
        lk += rng.poisson(v * 0.1 / spec.fps)
        cm += rng.poisson(v * 0.003 / spec.fps)
        viewers[i], likes[i], comments[i] = round(v), round(lk), round(cm)
    events: list[dict[str, Any]] = []
    clock = rng.uniform(3, 12)
    while clock + 4 < spec.duration_sec:
        events.append(
            {"start_sec": round(clock, 3), "end_sec": round(clock + 4.0, 3), "buyer": str(rng.choice(BUYERS))}
        )
        clock += 4.0 + 1.5 + rng.exponential(18)
    return {"t": t, "viewers": viewers, "likes": likes, "comments": comments}, events


class _Painter:
    """Draws frames; everything that does not change per frame is rendered once."""

    def __init__(self, spec: RecordingSpec, layout: ScreenLayout, rng: np.random.Generator) -> None:
        self.spec, self.layout, self.rng = spec, layout, rng
        w, h = spec.width, spec.height
        grad = np.linspace(0, 1, 2 * h)[:, None, None]
        warm, cool = np.array([236, 214, 196]), np.array([120, 112, 150])
        self.background = (cool + (warm - cool) * (0.5 + 0.5 * np.sin(grad * 6))).astype(np.uint8)
        self.background = np.repeat(self.background, w, axis=1)
        self.presenter = self._presenter(w, h)
        self.board = self._label_board(w, h)
        self.static: list[tuple[Image.Image, tuple[int, int]]] = []
        if spec.overlay:
            self.static = (self._chrome(w, h) if layout.orientation == "portrait" else []) + self._icons(w, h)
        self._cache: dict[tuple[str, str], Image.Image] = {}

    def _presenter(self, w: int, h: int) -> Image.Image:
        img = Image.new("RGBA", (int(w * 0.55), int(h * 0.6)), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        pw, ph = img.size
        d.ellipse((pw * 0.05, ph * 0.35, pw * 0.95, ph * 1.3), fill=(190, 60, 80, 255))
        d.ellipse((pw * 0.3, ph * 0.05, pw * 0.7, ph * 0.4), fill=(241, 200, 170, 255))
        d.rectangle((pw * 0.3, ph * 0.02, pw * 0.7, ph * 0.12), fill=(60, 40, 30, 255))
        return img

    def _label_board(self, w: int, h: int) -> Image.Image:
        img = Image.new("RGBA", (int(w * 0.42), int(h * 0.14)), (255, 255, 255, 235))
        d = ImageDraw.Draw(img)
        d.text((10, 8), "限定セット", font=_font(max(12, h // 40)), fill=(200, 30, 60))
        d.text((10, 8 + h // 30), "¥3,980", font=_font(max(14, h // 28)), fill=(20, 20, 20))
        return img

    def _chrome(self, w: int, h: int) -> list[tuple[Image.Image, tuple[int, int]]]:
        """The app's portrait UI around the metrics: host pill, viewer avatars, close button, bottom bar."""
        sprites: list[tuple[Image.Image, tuple[int, int]]] = []
        u = h / 100
        pill = Image.new("RGBA", (int(w * 0.5), int(4.2 * u)), (0, 0, 0, 0))
        d = ImageDraw.Draw(pill)
        d.rounded_rectangle((0, 0, pill.width - 1, pill.height - 1), radius=pill.height // 2, fill=(0, 0, 0, 110))
        d.ellipse((3, 3, pill.height - 3, pill.height - 3), fill=(250, 180, 90, 255))
        d.text((pill.height + 4, pill.height * 0.12), "ShopLive公式", font=_font(int(1.7 * u)), fill="white")
        d.rounded_rectangle(
            (pill.width * 0.68, 5, pill.width - 5, pill.height - 5), radius=pill.height // 3, fill=(254, 44, 85, 255)
        )
        d.text((pill.width * 0.72, pill.height * 0.18), "フォロー", font=_font(int(1.4 * u)), fill="white")
        sprites.append((pill, (int(0.03 * w), int(3.6 * u))))
        for k in range(3):
            av_img = Image.new("RGBA", (int(3.2 * u), int(3.2 * u)), (0, 0, 0, 0))
            ImageDraw.Draw(av_img).ellipse(
                (0, 0, av_img.width - 1, av_img.height - 1), fill=(90 + 50 * k, 150, 200, 255)
            )
            sprites.append((av_img, (int(0.55 * w + k * 2.6 * u), int(3.8 * u))))
        close = Image.new("RGBA", (int(2.6 * u), int(2.6 * u)), (0, 0, 0, 0))
        ImageDraw.Draw(close).text((2, -4), "×", font=_font(int(2.4 * u)), fill="white")
        sprites.append((close, (int(0.955 * w) - close.width // 2, int(3.9 * u))))
        bar = Image.new("RGBA", (w, int(7 * u)), (0, 0, 0, 0))
        d = ImageDraw.Draw(bar)
        d.rounded_rectangle(
            (int(0.03 * w), int(1.5 * u), int(0.55 * w), int(5.5 * u)), radius=int(2 * u), fill=(0, 0, 0, 120)
        )
        d.text(
            (int(0.06 * w), int(2.2 * u)), "コメントする...", font=_font(int(1.7 * u), bold=False), fill=(230, 230, 230)
        )
        for k, color in enumerate(((254, 44, 85), (255, 200, 40), (80, 200, 255))):
            x = int(0.62 * w + k * 0.12 * w)
            d.ellipse((x, int(1.5 * u), x + int(4 * u), int(5.5 * u)), fill=(*color, 255))
        sprites.append((bar, (0, h - bar.height)))
        return sprites

    def _icons(self, w: int, h: int) -> list[tuple[Image.Image, tuple[int, int]]]:
        """A small icon left of each count badge (outside its box, as the app draws it)."""
        sprites: list[tuple[Image.Image, tuple[int, int]]] = []
        for region in self.layout.regions:
            if region.kind != "count":
                continue
            x0, y0, _, y1 = region.pixel_box(w, h)
            size = max(8, int((y1 - y0) * 0.8))
            icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
            d = ImageDraw.Draw(icon)
            shape = {"likes": "pieslice", "viewers": "ellipse"}.get(region.field, "rectangle")
            fill = (254, 44, 85, 255) if region.field == "likes" else (255, 255, 255, 230)
            if shape == "pieslice":
                d.pieslice((0, 0, size - 1, size - 1), 200, 340, fill=fill)
                d.polygon([(0, size * 0.4), (size - 1, size * 0.4), (size / 2, size - 1)], fill=fill)
            elif shape == "ellipse":
                d.ellipse((size * 0.25, 0, size * 0.75, size * 0.5), fill=fill)
                d.pieslice((0, size * 0.5, size - 1, size * 1.5), 180, 360, fill=fill)
            else:
                d.rounded_rectangle((0, size * 0.1, size - 1, size * 0.8), radius=size // 4, fill=fill)
            sprites.append((icon, (x0 - size - 4, y0 + ((y1 - y0) - size) // 2)))
        return sprites

    def _badge(self, region: OverlayRegion, text: str) -> Image.Image:
        """A count badge: translucent dark pill with the value in white, sized to the region."""
        key = (region.field, text)
        if key not in self._cache:
            x0, y0, x1, y1 = region.pixel_box(self.spec.width, self.spec.height)
            bw, bh = x1 - x0, y1 - y0
            img = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            d.rounded_rectangle((0, 0, bw - 1, bh - 1), radius=bh // 2, fill=(0, 0, 0, 105))
            font = _font(max(8, int(bh * 0.62)))
            d.text((bh * 0.35, bh * 0.5), text, font=font, fill="white", anchor="lm")
            self._cache[key] = img
        return self._cache[key]

    def _popup(self, region: OverlayRegion, buyer: str) -> Image.Image:
        key = (region.field, buyer)
        if key not in self._cache:
            x0, y0, x1, y1 = region.pixel_box(self.spec.width, self.spec.height)
            bw, bh = x1 - x0, y1 - y0
            img = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            d.rounded_rectangle((0, 0, int(bw * 0.92), bh - 1), radius=bh // 2, fill=(255, 94, 58, 225))
            d.ellipse((4, 4, bh - 4, bh - 4), fill=(255, 235, 200, 255))
            d.text(
                (bh + 4, bh * 0.5), f"{buyer}さんが購入しました", font=_font(int(bh * 0.5)), fill="white", anchor="lm"
            )
            self._cache[key] = img
        return self._cache[key]

    def _chat(self, first: int) -> Image.Image:
        key = ("chat", str(first))
        if key not in self._cache:
            w, h = self.spec.width, self.spec.height
            img = Image.new("RGBA", (int(w * 0.7), int(h * 0.2)), (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            font = _font(max(9, h // 60), bold=False)
            for row in range(5):
                k = first + row
                line = f"{BUYERS[(k * 7) % len(BUYERS)]}: {CHAT[(k * 5) % len(CHAT)]}"
                y = row * img.height // 5
                d.text((1, y + 1), line, font=font, fill=(0, 0, 0, 160))
                d.text((0, y), line, font=font, fill=(255, 255, 255, 255))
            self._cache[key] = img
        return self._cache[key]

    def frame(self, t: float, texts: dict[str, str], popup: str | None) -> Image.Image:
        w, h = self.spec.width, self.spec.height
        offset = int((math.sin(t / 9) * 0.5 + 0.5) * (h - 1))
        img = Image.fromarray(self.background[offset : offset + h])
        px = int(w * 0.22 + w * 0.12 * math.sin(t / 2.3))
        py = int(h * 0.3 + h * 0.02 * math.sin(t * 1.7))
        img.paste(self.presenter, (px, py), self.presenter)
        img.paste(self.board, (int(w * 0.05), int(h * 0.36)), self.board)
        if not self.spec.overlay:
            return img.convert("RGB")
        for sprite, pos in self.static:
            img.paste(sprite, pos, sprite)
        chat = self._chat(int(t / 1.5))
        img.paste(chat, (int(w * 0.03), int(h * 0.66)), chat)
        for region in self.layout.regions:
            x0, y0, _, _ = region.pixel_box(w, h)
            if region.kind == "count":
                badge = self._badge(region, texts[region.field])
                img.paste(badge, (x0, y0), badge)
            elif popup is not None:
                sprite = self._popup(region, popup)
                img.paste(sprite, (x0, y0), sprite)
        return img


def _frames(spec: RecordingSpec) -> tuple[list[dict[str, Any]], Iterator[tuple[Image.Image, dict[str, Any]]]]:
    """The purchase events, and each frame with its truth row (what the overlay shows)."""
    layout = load_layout(spec.layout)
    rng = np.random.default_rng(spec.seed)
    values, events = _timeline(spec, rng)
    painter = _Painter(spec, layout, rng)
    fields = {r.field: r for r in layout.regions}

    def frames() -> Iterator[tuple[Image.Image, dict[str, Any]]]:
        for i, t in enumerate(values["t"]):
            texts = {f: show_count(int(values[f][i]), f) for f in ("viewers", "likes", "comments")}
            live = [e for e in events if e["start_sec"] <= t < e["end_sec"]]
            popup = live[0]["buyer"] if live else None
            row: dict[str, Any] = {"t_sec": round(float(t), 4)}
            if spec.overlay:
                for f in ("viewers", "likes", "comments"):
                    if f in fields and fields[f].kind == "count":
                        row[f] = _shown_value(texts[f])
                if "purchases" in fields:
                    row["purchases"] = sum(1 for e in events if e["start_sec"] <= t)
                row["popup"] = f"{popup}さんが購入しました" if popup else None
            yield painter.frame(float(t), texts, popup), row

    return (events if spec.overlay and "purchases" in fields else []), frames()


def still_frame(spec: RecordingSpec, t_sec: float) -> tuple[Image.Image, dict[str, Any]]:
    """The frame shown at ``t_sec`` (as a screenshot would capture it) and its truth row."""
    _, frames = _frames(spec)
    index = round(t_sec * spec.fps)
    return next(itertools.islice(frames, index, None))


def generate(out: Path, spec: RecordingSpec | None = None) -> Path:
    """Write the MP4 at ``out`` and ``<out>.truth.json`` beside it; returns the truth path."""
    spec = spec or RecordingSpec()
    events, frames = _frames(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(spec.fps).limit_denominator(1000)
    gop = max(1, round(spec.gop_sec * spec.fps))
    rows: list[dict[str, Any]] = []
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.options = {
            "crf": str(spec.crf),
            "preset": "ultrafast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "2",
        }
        for i, (image, row) in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
            rows.append(row)
        for packet in stream.encode():
            container.mux(packet)
    truth = {"video": out.name, "spec": asdict(spec), "purchase_events": events, "frames": rows}
    truth_path = out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return truth_path


def main() -> None:
    defaults = RecordingSpec()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="MP4 to write; the truth goes to <out>.truth.json")
    parser.add_argument("--duration", type=float, default=defaults.duration_sec, help="seconds of video")
    parser.add_argument("--fps", type=float, default=defaults.fps)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--gop", type=float, default=defaults.gop_sec, help="seconds between keyframes")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--layout", default=defaults.layout, help="built-in layout name or a layout JSON path")
    parser.add_argument("--no-overlay", action="store_true", help="draw the stream without any overlay")
    args = parser.parse_args()
    spec = RecordingSpec(
        duration_sec=args.duration,
        fps=args.fps,
        width=args.width,
        height=args.height,
        gop_sec=args.gop,
        seed=args.seed,
        layout=args.layout,
        overlay=not args.no_overlay,
    )
    truth = generate(args.out, spec)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {truth}")


if __name__ == "__main__":
    main()
