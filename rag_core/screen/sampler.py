"""Pick one frame per sampling interval from a video while decoding as little as possible.

Why: a 60-minute 30 fps screen recording has 108,000 frames and the overlay
reader needs about 1,800 of them (one per 2 s). Demuxing is nearly free;
decoding is the cost, and a frame can only be decoded after every frame it
refers to since the previous keyframe. So the timeline is cut into windows of
one interval (centred on 0, I, 2I, ...) and each window gets the *cheapest*
frame in it:

* a keyframe when one falls in the window: one packet decoded, nothing else;
* otherwise the earliest frame in the window, which needs the packets from the
  last keyframe up to it.

Packets are demuxed in decode order and held back (not decoded) until it is
known that they are needed: a packet whose time lies past the end of the next
unserved window proves no keyframe will serve that window (a later keyframe
would come first in decode order), and only then is the held-back part of the
group of pictures fed to the decoder, which skips the non-reference frames
(most B-frames) shown before the window. With a keyframe every <= 2 s (the usual
streaming/recorder setting) only keyframes are decoded; with long GOPs it
degrades gracefully to decoding what is needed. Only the sampled frames are
ever converted: their luma plane is read in place (a grey image for free).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import av
import av.container
import numpy as np

# 8-bit formats whose first plane is the luma (Y) plane, usable as a grey image as is.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "nv12", "nv21", "gray"}
)


_SKIP_LOOP_FILTER = "all"


class VideoInputError(ValueError):
    """The input cannot be read as a video; the message says why, for the caller's reason field."""


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: seconds from the start of the video and its upright grey image."""

    t_sec: float
    luma: np.ndarray


@dataclass
class SamplerStats:
    """What the sampler did, for benchmarks and for the extraction result."""

    width: int = 0
    height: int = 0
    duration_sec: float | None = None
    packets: int = 0
    packets_decoded: int = 0
    frames_decoded: int = 0
    frames_sampled: int = 0
    decode_errors: int = 0
    notes: list[str] = field(default_factory=list)


class FrameSampler:
    """Iterate :class:`SampledFrame` s of a video file path or in-memory bytes, one per interval."""

    def __init__(self, source: str | Path | bytes, interval_sec: float) -> None:
        if interval_sec <= 0:
            raise ValueError("interval_sec must be positive")
        self.interval = interval_sec
        self.stats = SamplerStats()
        self._container = _open(source)
        try:
            self._stream = self._container.streams.video[0]
        except IndexError:
            self._container.close()
            raise VideoInputError("the file has no video stream") from None
        ctx = self._stream.codec_context
        # One decoding thread. x264 writes one slice per frame, so slice threads have nothing to
        # share, and on a busy machine waiting for them costs wall time (1080x1920 x264-default-GOP
        # clips at load 4-7: 14-20 % more x real time by wall clock, the same per CPU second, the
        # same readings); frame threads cost more CPU and add a frame of latency to every decode.
        ctx.thread_count = 1
        # No deblocking on any frame: 30-35 % less decoding, no measured effect on the reads, even
        # at 150 kbit/s, since the overlay's glyphs are far larger than the 4x4 block edges.
        ctx.options = {"skip_loop_filter": _SKIP_LOOP_FILTER}
        self.stats.width, self.stats.height = ctx.width, ctx.height
        if self._stream.duration is not None and self._stream.time_base is not None:
            self.stats.duration_sec = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration is not None:
            self.stats.duration_sec = self._container.duration / av.time_base
        self._origin: float | None = None
        self._served = -1  # highest window that has produced a sample

    def __enter__(self) -> FrameSampler:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _window(self, t: float) -> int:
        return math.floor(t / self.interval + 0.5)

    def _window_end(self, window: int) -> float:
        return (window + 0.5) * self.interval

    def _time(self, pts: int | None) -> float | None:
        """Seconds since the stream's start (recordings do not always start at 0)."""
        base = self._stream.time_base
        if pts is None or base is None:
            return None
        if self._origin is None:
            start = self._stream.start_time
            self._origin = float(start * base) if start is not None else float(pts * base)
        return max(0.0, float(pts * base) - self._origin)

    def __iter__(self) -> Iterator[SampledFrame]:
        held: list[av.Packet] = []  # packets of the current GOP not yet given to the decoder
        decoding = False  # the decoder holds the state of the current GOP
        in_flight = -1  # highest window expected from packets already given to the decoder
        chase = -1  # a window being decoded for: feed every packet until it is served
        last_t: float | None = None
        for packet in self._container.demux(self._stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            self.stats.packets += 1
            t = self._time(packet.pts if packet.pts is not None else packet.dts)
            last_t = t if t is not None else last_t
            wanted = max(in_flight, self._served) + 1
            if packet.is_keyframe:
                if held and t is not None and t >= self._window_end(wanted):
                    yield from self._feed(held, until_served=wanted)  # the old GOP holds that window's frames
                    decoding = True
                if decoding:
                    yield from self._drain()
                held, decoding, in_flight = [], False, self._served
                window = self._window(t) if t is not None else self._served + 1
                if window > self._served:
                    yield from self._feed([packet])
                    decoding, in_flight = True, window
                else:
                    held.append(packet)
                continue
            if not (decoding or held):
                continue  # before the first keyframe: undecodable
            held.append(packet)
            if chase > self._served or t is None or t >= self._window_end(wanted):
                if chase <= self._served:
                    chase = in_flight = wanted
                yield from self._feed(held, until_served=chase)
                decoding = True
        wanted = max(in_flight, self._served) + 1
        if held and last_t is not None and last_t >= self._window_end(wanted) - self.interval:
            yield from self._feed(held, until_served=wanted)  # the tail after the last keyframe
            decoding = True
        if decoding:
            yield from self._drain()

    def _feed(self, packets: list[av.Packet], until_served: int | None = None) -> Iterator[SampledFrame]:
        """Decode ``packets`` from the front, removing them; stop early once ``until_served`` is served.

        Packets shown before that window are decoded only if later frames refer to
        them (``skip_frame=NONREF``): 1.7x faster on a 30 fps, 10 s GOP recording.
        """
        ctx = self._stream.codec_context
        window_start = None if until_served is None else self._window_end(until_served) - self.interval
        while packets and (until_served is None or self._served < until_served):
            packet = packets.pop(0)
            self.stats.packets_decoded += 1
            t = self._time(packet.pts)
            before_window = window_start is not None and t is not None and t < window_start
            ctx.skip_frame = "NONREF" if before_window else "DEFAULT"
            try:
                frames = ctx.decode(packet)
            except av.error.FFmpegError:
                self.stats.decode_errors += 1
                continue
            yield from self._select(frames)

    def _drain(self) -> Iterator[SampledFrame]:
        """Take the frames the decoder still holds back (B-frame reordering), then reset it."""
        ctx = self._stream.codec_context
        try:
            frames = ctx.decode(None)
        except av.error.FFmpegError:
            self.stats.decode_errors += 1
            frames = []
        yield from self._select(frames)
        ctx.flush_buffers()

    def _select(self, frames: list[av.VideoFrame]) -> Iterator[SampledFrame]:
        for frame in frames:
            self.stats.frames_decoded += 1
            t = self._time(frame.pts)
            if t is None:
                continue
            window = self._window(t)
            if window <= self._served:
                continue
            self._served = window
            self.stats.frames_sampled += 1
            yield SampledFrame(t_sec=t, luma=_upright_luma(frame))


def _open(source: str | Path | bytes) -> av.container.InputContainer:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise VideoInputError("the video is empty (0 bytes)")
        handle: str | io.BytesIO = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise VideoInputError(f"no such video file: {path}")
        if path.stat().st_size == 0:
            raise VideoInputError("the video is empty (0 bytes)")
        handle = str(path)
    try:
        return av.open(handle, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoInputError(f"not a readable video: {exc}") from None


def _upright_luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's grey image as displayed: the Y plane read in place, turned per the display matrix."""
    luma: np.ndarray
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        luma = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    else:
        luma = frame.to_ndarray(format="gray")
    quarter_turns = round(frame.rotation / 90) % 4 if frame.rotation else 0
    return np.rot90(luma, quarter_turns) if quarter_turns else luma
