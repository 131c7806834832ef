"""Generate a synthetic screen recording of a live-commerce stream, plus its truth.

Why: the screen-metrics extractor (Pattern B) has to be tested and benchmarked
on a video whose overlay values are known exactly, of any length, without
shipping real customer recordings. This draws a TikTok-LIVE-like portrait
screen (moving presenter, product board, scrolling comments, host pill, icons)
and the overlay values where a layout file says the platform draws them, then
encodes H.264 MP4 with PyAV. Values change at random moments (fixed seed),
purchase pop-ups come and go, and ``<video>.truth.json`` beside the MP4 records
what each frame shows (the displayed number, e.g. ``1.2万`` -> 12000).

The defaults give the plain, bright, easy recording the unit tests use. The
other ``RecordingSpec`` fields make it adversarial, as real screen recordings
are: 720x1280 or 1080x1920, 15/30 fps or a variable frame rate, bitrates down to
~150 kbit/s, x264's default keyframe interval, several Noto CJK fonts and
weights, counts as ``1234``, ``1,234``, ``1.7K``/``1.2M`` or ``1.2万``, a dark
room with moving lights or a busy bright one, gift animations flying over the
counters, and seconds where the app is not on screen (black, app switcher).
The truth rows say when a counter was hidden, so a benchmark can tell
"missing" (fine while hidden) from "wrong".

    python -m scripts.generate_screen_recording out/stream.mp4 --duration 150 --fps 4
    python -m scripts.generate_screen_recording out/dark.mp4 --width 1080 --height 1920 --fps 30 \
        --gop 0 --room dark --notation k --gifts --blackouts --font serif-bold
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import math
from bisect import bisect_right
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
# Faces the overlay text (counters, pop-ups) can be drawn in: file and index in the collection.
FONTS = {
    "sans-bold": ("NotoSansCJK-Bold.ttc", 0),
    "sans-regular": ("NotoSansCJK-Regular.ttc", 0),
    "serif-bold": ("NotoSerifCJK-Bold.ttc", 0),
    "serif-regular": ("NotoSerifCJK-Regular.ttc", 0),
    "mono-bold": ("NotoSansCJK-Bold.ttc", 5),
    "mono-regular": ("NotoSansCJK-Regular.ttc", 5),
}
NOTATIONS = ("app", "plain", "comma", "k", "man")
ROOMS = ("bright", "dark", "neon", "stage", "club")
BANNERS = ("wide", "fit", "dark", "blue", "glass")
LASERS = ((40, 255, 90), (255, 40, 70), (70, 120, 255), (255, 60, 230))  # club laser colours: saturated
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
    """What to generate; the defaults give the small video the tests use (~3 s to make).

    ``gop_sec`` None leaves the keyframe interval to x264 (250 frames, scene cuts
    on), as a phone's recorder does; ``bitrate_kbps`` replaces the constant quality
    ``crf``. ``room``: ``bright`` (the default backdrop), ``dark`` (a dim room with
    moving stage lights) or ``neon`` (a busy, saturated backdrop). ``notation``:
    ``app`` (viewers plain, comments with commas, likes in 万 from 10,000), or one
    of ``plain``/``comma``/``k``/``man`` for every counter. ``viewer_scale``
    multiplies the audience (so K and 万 appear on viewers and comments too).
    ``live_before_sec``: how long the stream ran before the recording started (the
    running totals start where that much time at the first audience left them).
    ``banner``: the purchase pop-up as a wide orange bar (``wide``) or a pale pink
    pill as long as its text (``fit``), which in a dark room leaves the room, the
    pill and the text as three grey levels in the pop-up's box; ``dark`` a
    translucent black pill as long as its text (the room shows through it), ``blue``
    a wide blue bar, ``glass`` a translucent pill as long as its text shading from
    pink to violet (the room shows through, tinted). ``room`` ``stage``: a patterned
    LED wall with fast coloured spotlights, the whole room flickering; ``club``: a
    dark club with rotating fans of thin saturated laser beams, drifting discs of
    out-of-focus light and a dancing crowd's silhouette in front, so thin bright
    edges, colour and dark areas move side by side behind every badge and pill.

    Pop-ups: each is shown ``popup_sec``, then nothing for at least
    ``popup_pause_sec`` plus an exponential gap of mean ``popup_gap_sec``; with a pause
    of 0 the next pop-up can replace the one on screen (quick succession).
    ``buyers`` limits the names to the first ones (2: the same buyer buys again and
    again); ``repeat_gap_sec`` is the least blank time between two pop-ups of the
    same buyer (another buyer is drawn instead), since the same text twice with no
    sample between is one pop-up to any reader. ``popup_slide_sec``: each pop-up
    slides in from the left edge for that long first, as the apps animate them.
    ``popup_gifts``: gift sprites fly across the
    pop-up's row too. The sampler reads one frame per interval window (2 s by
    default), and consecutive samples are one to two intervals apart (a keyframe
    moves a window's sample), so a pop-up shown for two intervals is always
    sampled, one shown for one interval only when the samples are regular (a
    keyframe at every window's centre, or none in any window), and a shorter one may
    fall between samples.
    """

    duration_sec: float = 150.0
    fps: float = 4.0
    width: int = 540
    height: int = 960
    gop_sec: float | None = 2.0
    seed: int = 7
    layout: str = "tiktok_live_portrait"
    overlay: bool = True
    crf: int = 30
    bitrate_kbps: int | None = None
    preset: str = "ultrafast"
    vfr: bool = False
    font: str = "sans-bold"
    notation: str = "app"
    room: str = "bright"
    viewer_scale: float = 1.0
    popup_gap_sec: float = 18.0
    gifts: bool = False
    blackouts: bool = False
    ui_shift: float = 0.0
    live_before_sec: float = 0.0
    banner: str = "wide"
    popup_sec: float = 4.0
    popup_pause_sec: float = 1.5
    buyers: int = 0
    repeat_gap_sec: float = 0.0
    popup_slide_sec: float = 0.0
    popup_gifts: bool = False


@lru_cache(maxsize=64)
def _font(size: int, bold: bool = True, face: str | None = None) -> ImageFont.FreeTypeFont:
    name, index = FONTS[face or ("sans-bold" if bold else "sans-regular")]
    path = FONT_DIR / name
    if not path.is_file():
        raise SystemExit(f"{path} missing: run scripts/setup.sh (installs fonts-noto-cjk)")
    return ImageFont.truetype(str(path), size, index=index)  # face 0 is the Japanese one


def show_count(value: int, field: str, notation: str = "app") -> str:
    """How the overlay writes a number (abbreviations truncate, as the apps do: 1,799 is ``1.7K``).

    ``app``: likes abbreviate with 万 from 10,000, viewers are plain, comments use commas.
    """
    if notation == "app":
        notation = {"likes": "man", "viewers": "plain"}.get(field, "comma")
    if notation == "k" and value >= 1_000_000:
        return f"{math.floor(value / 100_000) / 10:.1f}M"
    if notation == "k" and value >= 1_000:
        return f"{math.floor(value / 100) / 10:.1f}K"
    if notation == "man" and value >= 10_000:
        return f"{math.floor(value / 1000) / 10:.1f}万"
    if notation == "plain":
        return str(value)
    return f"{value:,}"


def _shown_value(text: str) -> int:
    multiplier = {"万": 10_000, "K": 1_000, "M": 1_000_000}.get(text[-1])
    if multiplier:
        return round(float(text[:-1]) * multiplier)
    return int(text.replace(",", ""))


def _frame_times(spec: RecordingSpec) -> np.ndarray:
    """Presentation times: regular, or (``vfr``) each gap 0.5-1.5 frame periods, as phone recorders write."""
    n = max(1, int(spec.duration_sec * spec.fps))
    if not spec.vfr:
        return np.arange(n) / spec.fps
    gaps = np.random.default_rng(spec.seed + 1).uniform(0.5, 1.5, n) / spec.fps
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    return np.round(times[times < spec.duration_sec], 3)


def _timeline(spec: RecordingSpec, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Per-frame underlying values and the purchase pop-up events, all from ``rng``."""
    t = _frame_times(spec)
    n = len(t)
    # Viewers: a slow arc with surges, updated by the app every 1-3 s.
    target = (350 + 900 * np.sin(np.pi * np.clip(t / max(spec.duration_sec, 1), 0, 1)) ** 2) * spec.viewer_scale
    viewers = np.empty(n, dtype=np.int64)
    likes = np.empty(n, dtype=np.int64)
    comments = np.empty(n, dtype=np.int64)
    v = float(target[0])
    lk, cm = v * 0.1 * spec.live_before_sec, v * 0.003 * spec.live_before_sec
    next_update, surge = 0.0, 1.0
    for i, ti in enumerate(t):
        if ti >= next_update:
            if rng.random() < 0.03:
                surge = rng.uniform(1.3, 2.2)
            surge = 1 + (surge - 1) * 0.9
            v = max(5.0, v + 0.35 * (target[i] * surge - v) + rng.normal(0, 0.03 * v))
            next_update = ti + rng.uniform(1.0, 3.0)
        step = t[i + 1] - ti if spec.vfr and i + 1 < n else 1 / spec.fps
        lk += rng.poisson(v * 0.1 * step)
        cm += rng.poisson(v * 0.003 * step)
        viewers[i], likes[i], comments[i] = round(v), round(lk), round(cm)
    events: list[dict[str, Any]] = []
    names = BUYERS[: spec.buyers] if spec.buyers else BUYERS
    clock = rng.uniform(3, 12)
    while clock + spec.popup_sec < spec.duration_sec:
        buyer = str(rng.choice(names))
        if events and buyer == events[-1]["buyer"] and clock - events[-1]["end_sec"] < spec.repeat_gap_sec:
            buyer = names[(names.index(buyer) + 1) % len(names)]  # the same text again too soon: another buyer
        events.append({"start_sec": round(clock, 3), "end_sec": round(clock + spec.popup_sec, 3), "buyer": buyer})
        clock += spec.popup_sec + spec.popup_pause_sec + rng.exponential(spec.popup_gap_sec)
    return {"t": t, "viewers": viewers, "likes": likes, "comments": comments}, events


class _Painter:
    """Draws frames; everything that does not change per frame is rendered once."""

    def __init__(self, spec: RecordingSpec, layout: ScreenLayout, rng: np.random.Generator) -> None:
        self.spec, self.layout, self.rng = spec, layout, rng
        w, h = spec.width, spec.height
        grad = np.linspace(0, 1, 2 * h)[:, None, None]
        warm, cool = {
            "bright": (np.array([236, 214, 196]), np.array([120, 112, 150])),
            "dark": (np.array([52, 40, 46]), np.array([8, 8, 14])),
            "neon": (np.array([250, 60, 200]), np.array([20, 230, 210])),
            "stage": (np.array([70, 30, 110]), np.array([10, 20, 60])),
            "club": (np.array([36, 12, 54]), np.array([4, 4, 12])),
        }[spec.room]
        self.background = (cool + (warm - cool) * (0.5 + 0.5 * np.sin(grad * 6))).astype(np.uint8)
        self.background = np.repeat(self.background, w, axis=1)
        if spec.room == "neon":  # diagonal stripes: edges everywhere behind the translucent badges
            stripes = ((np.arange(2 * h)[:, None] + np.arange(w)[None, :]) // max(4, w // 40)) % 2 == 0
            self.background[stripes] = (self.background[stripes] * 0.6).astype(np.uint8)
        extra = np.random.default_rng(spec.seed + 2)  # features beyond the defaults never disturb ``rng``
        if spec.room == "stage":
            self._led_wall(extra)
        lights = {"dark": 6, "stage": 9}.get(spec.room, 0)
        fast = 4.0 if spec.room == "stage" else 1.0  # stage spotlights sweep several times faster
        self.lights = [
            (extra.uniform(0, 1), extra.uniform(0, 1), fast * extra.uniform(0.3, 1.2), extra.uniform(0.04, 0.12), c)
            for c in extra.integers(120, 256, (lights, 3))
        ]
        if spec.room == "stage":  # saturated spotlights: one channel of each turned down
            self.lights = [(*light[:4], _saturate(light[4], k)) for k, light in enumerate(self.lights)]
        gifts = int(spec.duration_sec / 7) if spec.gifts else 0
        self.gift_times: list[float] = sorted(extra.uniform(0, spec.duration_sec, gifts).tolist())
        self.shift = (
            round(extra.uniform(-spec.ui_shift, spec.ui_shift) * w),
            round(extra.uniform(-spec.ui_shift, spec.ui_shift) * h),
        )
        popup_gifts = int(spec.duration_sec / 5) if spec.popup_gifts else 0
        self.popup_gift_times: list[float] = sorted(extra.uniform(0, spec.duration_sec, popup_gifts).tolist())
        if spec.room == "club":  # its own generator: the other rooms' draws stay as they were
            self._club_setup(np.random.default_rng(spec.seed + 4))
        self.presenter = self._presenter(w, h, dim=spec.room == "dark")
        self.board = self._label_board(w, h)
        self.static: list[tuple[Image.Image, tuple[int, int]]] = []
        if spec.overlay:
            self.static = (self._chrome(w, h) if layout.orientation == "portrait" else []) + self._icons(w, h)
        self._cache: dict[tuple[str, str], Image.Image] = {}

    def _led_wall(self, extra: np.random.Generator) -> None:
        """The ``stage`` backdrop: a wall of coloured LED tiles with dark seams over the gradient."""
        tall, w = self.background.shape[:2]
        tile = max(6, w // 18)
        colours = extra.integers(30, 256, (tall // tile + 1, w // tile + 1, 3))
        colours[..., extra.integers(0, 3)] //= 4  # a tinted wall, not a grey one
        wall = np.repeat(np.repeat(colours, tile, axis=0), tile, axis=1)[:tall, :w]
        seams = (np.arange(tall)[:, None] % tile < 2) | (np.arange(w)[None, :] % tile < 2)
        mixed = (self.background * 0.4 + wall * 0.6).astype(np.uint8)
        mixed[seams] = (mixed[seams] * 0.3).astype(np.uint8)
        self.background = mixed

    def _club_setup(self, club: np.random.Generator) -> None:
        """The ``club`` room's moving parts: laser fans, bokeh discs and the crowd in front."""
        # Fans of beams from points above and below the frame, each swinging to and fro.
        self.fans = [
            (
                club.uniform(-0.1, 1.1),  # origin x, in widths
                club.choice([-0.05, 1.05]),  # above or below the frame, in heights
                club.uniform(0.4, 1.6),  # swing speed, rad/s
                club.uniform(0, 2 * math.pi),  # phase
                int(club.integers(5, 9)),  # beams
                club.uniform(0.5, 0.9),  # spread, rad
                LASERS[k % len(LASERS)],
            )
            for k in range(4)
        ]
        self.bokeh = [
            (club.uniform(0, 1), club.uniform(0, 1), club.uniform(-0.05, 0.05), club.uniform(-0.03, 0.03),
             club.uniform(0.025, 0.07), tuple(int(c) for c in _saturate(club.integers(160, 256, 3), k)))
            for k in range(16)
        ]  # fmt: skip
        self.crowd = [
            (k / 9 + club.uniform(-0.02, 0.02), club.uniform(0, 2 * math.pi), club.uniform(0.9, 1.2)) for k in range(10)
        ]

    def _club_back(self, img: Image.Image, t: float) -> Image.Image:
        """Drifting discs of out-of-focus light, translucent, over the dark room."""
        w, h = img.size
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        for x0, y0, vx, vy, radius, colour in self.bokeh:
            cx, cy, r = ((x0 + vx * t) % 1.2 - 0.1) * w, ((y0 + vy * t) % 1.2 - 0.1) * h, radius * w
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, 110))
        return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")

    def _club_front(self, img: Image.Image, t: float) -> None:
        """Thin laser beams swinging across the whole scene, then the crowd's dark heads and shoulders."""
        w, h = img.size
        d = ImageDraw.Draw(img)
        width = max(2, w // 360)
        reach = 2 * max(w, h)
        for ox, oy, speed, phase, beams, spread, colour in self.fans:
            x, y = ox * w, oy * h
            centre = (math.pi / 2 if oy < 0 else -math.pi / 2) + 0.7 * math.sin(t * speed + phase)
            for b in range(beams):
                angle = centre + spread * (b / (beams - 1) - 0.5)
                end = (x + reach * math.cos(angle), y + reach * math.sin(angle))
                d.line((x, y, *end), fill=colour, width=width)
        sway = 0.04 * w * math.sin(t / 3)
        for x, phase, size in self.crowd:
            r = 0.045 * w * size
            cx = x * w + sway
            cy = h * 0.53 + 0.012 * h * math.sin(t * 2 * math.pi * 1.1 + phase) + r  # dancing to the beat
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(10, 8, 16))
            d.rounded_rectangle((cx - 2.4 * r, cy + 1.2 * r, cx + 2.4 * r, h + r), radius=int(r), fill=(10, 8, 16))

    def _presenter(self, w: int, h: int, dim: bool) -> Image.Image:
        img = Image.new("RGBA", (int(w * 0.55), int(h * 0.6)), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        pw, ph = img.size
        k = 0.35 if dim else 1.0
        d.ellipse((pw * 0.05, ph * 0.35, pw * 0.95, ph * 1.3), fill=(int(190 * k), int(60 * k), int(80 * k), 255))
        d.ellipse((pw * 0.3, ph * 0.05, pw * 0.7, ph * 0.4), fill=(int(241 * k), int(200 * k), int(170 * k), 255))
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
            font = _font(max(8, int(bh * 0.62)), face=self.spec.font)
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
            font = _font(int(bh * 0.5), face=self.spec.font)
            text = f"{buyer}さんが購入しました"
            fitted = min(bw - 1, int(bh * 1.6 + d.textlength(text, font=font)))
            if self.spec.banner == "fit":  # a pale pink pill as long as its text, the room visible beside it
                right, fill = fitted, (255, 150, 175, 235)
            elif self.spec.banner == "dark":  # a translucent black pill: the room shows through behind the text
                right, fill = fitted, (0, 0, 0, 120)
            elif self.spec.banner == "blue":
                right, fill = int(bw * 0.92), (40, 110, 245, 230)
            else:
                right, fill = int(bw * 0.92), (255, 94, 58, 225)
            if self.spec.banner == "glass":  # translucent, shading from pink to violet along the pill
                img = _glass_pill(bw, bh, fitted)
                d = ImageDraw.Draw(img)
            else:
                d.rounded_rectangle((0, 0, right, bh - 1), radius=bh // 2, fill=fill)
            d.ellipse((4, 4, bh - 4, bh - 4), fill=(255, 235, 200, 255))
            d.text((bh + 4, bh * 0.5), text, font=font, fill="white", anchor="lm")
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

    def _gift(self, size: int) -> Image.Image:
        """A gift animation's sprite (a rose with a combo count), opaque where it is drawn."""
        key = ("gift", str(size))
        if key not in self._cache:
            img = Image.new("RGBA", (size * 2, size), (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            d.ellipse((0, 0, size - 1, size - 1), fill=(230, 30, 70, 255))
            d.ellipse((size * 0.25, size * 0.25, size * 0.75, size * 0.75), fill=(255, 150, 170, 255))
            d.text((size, size * 0.5), "x3", font=_font(int(size * 0.6)), fill=(255, 230, 80), anchor="lm")
            self._cache[key] = img
        return self._cache[key]

    def gifts_at(self, t: float) -> list[tuple[Image.Image, tuple[int, int]]]:
        """The gift sprites on screen at ``t``: each flies across a counter's (or the pop-up's) row for 2.5 s."""
        w, h = self.spec.width, self.spec.height
        counters = [r for r in self.layout.regions if r.kind == "count"]
        popups = [r for r in self.layout.regions if r.kind == "event"]
        out = []
        flights = [(start, counters, 1.3) for start in self.gift_times]
        flights += [(start, popups, 0.7) for start in self.popup_gift_times]  # smaller than the pop-up's box
        for k, (start, rows, size) in enumerate(flights):
            if not rows or not start <= t < start + 2.5:
                continue
            _, y0, _, y1 = rows[k % len(rows)].pixel_box(w, h)
            sprite = self._gift(int((y1 - y0) * size))
            x = int(-sprite.width + (w + sprite.width) * (t - start) / 2.5)
            out.append((sprite, (x, y0 - (sprite.height - (y1 - y0)) // 2)))
        return out

    def frame(self, t: float, texts: dict[str, str], popup: str | None, popup_age: float = math.inf) -> Image.Image:
        """The frame at ``t``; ``popup_age``: seconds since the pop-up appeared (it slides in first)."""
        w, h = self.spec.width, self.spec.height
        offset = int((math.sin(t / 9) * 0.5 + 0.5) * (h - 1))
        room = self.background[offset : offset + h]
        if self.spec.room == "stage":  # the stage lighting flickers: the whole room dims and brightens
            room = (room * (0.75 + 0.25 * math.sin(t * 23.0))).astype(np.uint8)
        img = Image.fromarray(room)
        if self.spec.room == "club":
            img = self._club_back(img, t)
        if self.lights:
            d = ImageDraw.Draw(img)
            for lx, ly, speed, radius, colour in self.lights:  # stage lights sweeping the room
                cx = (lx + 0.3 * math.sin(t * speed)) * w
                cy = (ly + 0.2 * math.cos(t * speed * 0.7)) * h
                r = radius * w
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in colour))
        px = int(w * 0.22 + w * 0.12 * math.sin(t / 2.3))
        py = int(h * 0.3 + h * 0.02 * math.sin(t * 1.7))
        img.paste(self.presenter, (px, py), self.presenter)
        img.paste(self.board, (int(w * 0.05), int(h * 0.36)), self.board)
        if self.spec.room == "club":
            self._club_front(img, t)
        if not self.spec.overlay:
            return img.convert("RGB")
        dx, dy = self.shift
        for sprite, pos in self.static:
            img.paste(sprite, (pos[0] + dx, pos[1] + dy), sprite)
        chat = self._chat(int(t / 1.5))
        img.paste(chat, (int(w * 0.03) + dx, int(h * 0.66) + dy), chat)
        for region in self.layout.regions:
            x0, y0, _, _ = region.pixel_box(w, h)
            if region.kind == "count":
                badge = self._badge(region, texts[region.field])
                img.paste(badge, (x0 + dx, y0 + dy), badge)
            elif popup is not None:
                sprite = self._popup(region, popup)
                if popup_age < self.spec.popup_slide_sec:  # sliding in from the left edge, slowing down
                    x0 -= round((1 - popup_age / self.spec.popup_slide_sec) ** 2 * (x0 + sprite.width))
                img.paste(sprite, (x0 + dx, y0 + dy), sprite)
        for sprite, pos in self.gifts_at(t):
            img.paste(sprite, pos, sprite)
        return img

    def occluded(self, t: float) -> list[str]:
        """The counters a gift sprite overlaps at ``t``."""
        w, h = self.spec.width, self.spec.height
        hidden: list[str] = []
        for region in self.layout.regions:
            x0, y0, x1, y1 = region.pixel_box(w, h)
            for sprite, (sx, sy) in self.gifts_at(t):
                if sx < x1 and sx + sprite.width > x0 and sy < y1 and sy + sprite.height > y0:
                    hidden.append(region.field)
        return hidden


def _glass_pill(width: int, height: int, right: int) -> Image.Image:
    """A ``glass`` pop-up's pill: a pink-to-violet gradient, 60 % opaque, rounded, ``right`` px long."""
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    colours = np.array([255, 70, 150]) * (1 - ramp) + np.array([110, 60, 255]) * ramp
    pill = Image.fromarray(np.repeat(colours, height, axis=0).astype(np.uint8)).convert("RGBA")
    alpha = Image.new("L", (width, height), 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, right, height - 1), radius=height // 2, fill=150)
    pill.putalpha(alpha)
    return pill


def _saturate(colour: np.ndarray, k: int) -> np.ndarray:
    """``colour`` with its ``k % 3``-th channel turned down: a coloured spotlight rather than a white one."""
    out = colour.copy()
    out[k % 3] //= 5
    return out


def _off_screen(spec: RecordingSpec) -> list[tuple[float, float, str]]:
    """Seconds the app is not on screen: a black stretch and an app-switcher stretch (``blackouts``)."""
    if not spec.blackouts:
        return []
    extra = np.random.default_rng(spec.seed + 3)
    half = spec.duration_sec / 2
    black = extra.uniform(0.1, 0.4) * half
    switcher = half + extra.uniform(0.1, 0.4) * half
    return [
        (black, black + extra.uniform(1.5, 3.0), "black"),
        (switcher, switcher + extra.uniform(2.0, 4.0), "switcher"),
    ]


def _switcher(stream: Image.Image) -> Image.Image:
    """The phone's app switcher: the stream shrunk to a card on a dark grey screen, another app beside it."""
    w, h = stream.size
    screen = Image.new("RGB", (w, h), (38, 38, 42))
    card = stream.resize((int(w * 0.62), int(h * 0.62)), Image.Resampling.BILINEAR)
    screen.paste(card, (int(w * 0.19), int(h * 0.17)))
    ImageDraw.Draw(screen).rounded_rectangle(
        (int(w * 0.86), int(h * 0.17), w + 20, int(h * 0.79)), radius=w // 30, fill=(235, 235, 240)
    )
    return screen


def _frames(spec: RecordingSpec) -> tuple[list[dict[str, Any]], Iterator[tuple[Image.Image, dict[str, Any]]]]:
    """The purchase events, and each frame with its truth row (what the overlay shows)."""
    layout = load_layout(spec.layout)
    rng = np.random.default_rng(spec.seed)
    values, events = _timeline(spec, rng)
    painter = _Painter(spec, layout, rng)
    fields = {r.field: r for r in layout.regions}
    off = _off_screen(spec)
    # A pop-up shown while the app is off screen is never seen: it is not in the recording.
    events = [e for e in events if not any(a < e["end_sec"] and e["start_sec"] < b for a, b, _ in off)]

    def frames() -> Iterator[tuple[Image.Image, dict[str, Any]]]:
        for i, t in enumerate(values["t"]):
            texts = {f: show_count(int(values[f][i]), f, spec.notation) for f in ("viewers", "likes", "comments")}
            live = [e for e in events if e["start_sec"] <= t < e["end_sec"]]
            popup = live[0]["buyer"] if live else None
            screen = next((kind for a, b, kind in off if a <= t < b), "stream")
            row: dict[str, Any] = {"t_sec": round(float(t), 4)}
            if spec.overlay:
                for f in ("viewers", "likes", "comments"):
                    if f in fields and fields[f].kind == "count":
                        row[f] = _shown_value(texts[f])
                if "purchases" in fields:
                    row["purchases"] = sum(1 for e in events if e["start_sec"] <= t)
                row["popup"] = f"{popup}さんが購入しました" if popup else None
                hidden = list(fields) if screen != "stream" else painter.occluded(float(t))
                if hidden:
                    row["hidden"] = hidden
            image = painter.frame(float(t), texts, popup, float(t) - live[0]["start_sec"] if live else math.inf)
            if screen == "black":
                image = Image.new("RGB", image.size)
            elif screen == "switcher":
                image = _switcher(image)
            yield image, row

    return (events if spec.overlay and "purchases" in fields else []), frames()


def still_frame(spec: RecordingSpec, t_sec: float) -> tuple[Image.Image, dict[str, Any]]:
    """The frame shown at ``t_sec`` (as a screenshot would capture it) and its truth row."""
    _, frames = _frames(spec)
    index = max(0, bisect_right(list(_frame_times(spec)), t_sec + 1e-9) - 1)
    return next(itertools.islice(frames, index, None))


_M_PERTURB = -6  # glibc's mallopt parameter: fill each allocation with one byte


@contextlib.contextmanager
def _filled_allocations() -> Iterator[None]:
    """While encoding, every allocation is filled with one byte (glibc's malloc perturbation).

    Why: x264 reads memory it never wrote when encoding a 1080-pixel-wide frame, so two
    encodes of the same frames in one process differed wherever the heap held other data
    before (measured: 3 of 3 encodes of a held-out spec differed; with the heap filled, 3 of
    3 were identical). Clips must be reproducible for the benchmark's splits to mean the same
    on every machine. Elsewhere than glibc this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        yield
        return
    mallopt(_M_PERTURB, 0x5A)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, 0)


def generate(out: Path, spec: RecordingSpec | None = None) -> Path:
    """Write the MP4 at ``out`` and ``<out>.truth.json`` beside it; returns the truth path."""
    spec = spec or RecordingSpec()
    events, frames = _frames(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(spec.fps).limit_denominator(1000)
    rows: list[dict[str, Any]] = []
    with _filled_allocations(), av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        tick = Fraction(1, 1000) if spec.vfr else 1 / rate
        stream.codec_context.time_base = tick
        # One encoder thread: x264's rate control under threads makes each encode of the same
        # spec a little different, and so the misreads a low-bitrate clip provokes.
        options: dict[str, object] = {"preset": spec.preset, "threads": "1"}
        if spec.bitrate_kbps is None:
            options["crf"] = str(spec.crf)
        else:
            stream.codec_context.bit_rate = spec.bitrate_kbps * 1000
            options.update(maxrate=f"{spec.bitrate_kbps}k", bufsize=f"{2 * spec.bitrate_kbps}k")
        if spec.gop_sec is not None:
            gop = str(max(1, round(spec.gop_sec * spec.fps)))
            options.update(g=gop, keyint_min=gop, sc_threshold="0", bf="2")
        stream.options = options
        for i, (image, row) in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts = round(row["t_sec"] / tick) if spec.vfr else i
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
    parser.add_argument("--gop", type=float, default=defaults.gop_sec, help="seconds between keyframes; 0: x264's")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--layout", default=defaults.layout, help="built-in layout name or a layout JSON path")
    parser.add_argument("--no-overlay", action="store_true", help="draw the stream without any overlay")
    parser.add_argument("--bitrate", type=int, default=None, help="kbit/s instead of constant quality")
    parser.add_argument("--preset", default=defaults.preset, help="x264 preset")
    parser.add_argument("--vfr", action="store_true", help="variable frame rate")
    parser.add_argument("--font", choices=sorted(FONTS), default=defaults.font)
    parser.add_argument("--notation", choices=NOTATIONS, default=defaults.notation)
    parser.add_argument("--room", choices=ROOMS, default=defaults.room)
    parser.add_argument("--viewer-scale", type=float, default=defaults.viewer_scale)
    parser.add_argument("--gifts", action="store_true", help="gift animations fly over the counters")
    parser.add_argument("--blackouts", action="store_true", help="black and app-switcher seconds")
    parser.add_argument("--banner", choices=BANNERS, default=defaults.banner, help="purchase pop-up style")
    parser.add_argument("--popup-sec", type=float, default=defaults.popup_sec, help="how long a pop-up shows")
    parser.add_argument(
        "--popup-pause", type=float, default=defaults.popup_pause_sec, help="least blank seconds between pop-ups"
    )
    parser.add_argument("--buyers", type=int, default=defaults.buyers, help="distinct buyer names (0: all)")
    parser.add_argument(
        "--repeat-gap", type=float, default=defaults.repeat_gap_sec, help="least blank seconds before a buyer repeats"
    )
    parser.add_argument("--popup-slide", type=float, default=defaults.popup_slide_sec, help="slide-in seconds")
    parser.add_argument("--popup-gifts", action="store_true", help="gift animations fly over the pop-up too")
    args = parser.parse_args()
    spec = RecordingSpec(
        duration_sec=args.duration,
        fps=args.fps,
        width=args.width,
        height=args.height,
        gop_sec=args.gop or None,
        seed=args.seed,
        layout=args.layout,
        overlay=not args.no_overlay,
        bitrate_kbps=args.bitrate,
        preset=args.preset,
        vfr=args.vfr,
        font=args.font,
        notation=args.notation,
        room=args.room,
        viewer_scale=args.viewer_scale,
        gifts=args.gifts,
        blackouts=args.blackouts,
        banner=args.banner,
        popup_sec=args.popup_sec,
        popup_pause_sec=args.popup_pause,
        buyers=args.buyers,
        repeat_gap_sec=args.repeat_gap,
        popup_slide_sec=args.popup_slide,
        popup_gifts=args.popup_gifts,
    )
    truth = generate(args.out, spec)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {truth}")


if __name__ == "__main__":
    main()
