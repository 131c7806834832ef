"""Screen metrics from screen recordings (Pattern B), on generated videos with known overlay values.

The recordings come from scripts/generate_screen_recording.py (fixed seed), so
every sample can be checked against what the frame really showed.
"""

from __future__ import annotations

import itertools
import json
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from rag_core.analysis.record import Phase, ScreenMetricSample
from rag_core.base.settings import Settings, load_settings
from rag_core.screen.extractor import (
    ScreenExtractionResult,
    extract_screen_metrics,
    filter_outliers,
    read_frame,
)
from rag_core.screen.layout import LayoutError, available_layouts, load_layout
from rag_core.screen.sampler import FrameSampler
from rag_core.screen.summary import summarise_for_phases, summarise_window
from scripts.generate_screen_recording import RecordingSpec, generate, still_frame

LANDSCAPE_LAYOUT = Path(__file__).parents[1] / "data" / "layouts" / "landscape_shop.json"
Recording = tuple[Path, dict[str, Any]]


def _record(folder: Path, name: str, spec: RecordingSpec) -> Recording:
    video = folder / f"{name}.mp4"
    truth = json.loads(generate(video, spec).read_text(encoding="utf-8"))
    return video, truth


def _truth_at(truth: dict[str, Any], t_sec: float) -> dict[str, Any]:
    frames = truth["frames"]
    return frames[min(len(frames) - 1, round(t_sec * truth["spec"]["fps"]))]


def _share_within_1pct(result: ScreenExtractionResult, truth: dict[str, Any], field: str) -> float:
    hits = 0
    for sample in result.samples:
        value, expected = getattr(sample, field), _truth_at(truth, sample.t_sec)[field]
        hits += value is not None and abs(value - expected) <= 0.01 * max(expected, 1)
    return hits / len(result.samples)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(azure_openai_endpoint=None, embedding_provider="local", sales_ocr_provider="local")


@pytest.fixture(scope="session")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """150 s of a TikTok-LIVE-like portrait stream, 540x960 at 4 fps, keyframe every 2 s."""
    return _record(tmp_path_factory.mktemp("screen"), "portrait", RecordingSpec())


@pytest.fixture(scope="session")
def portrait_result(portrait: Recording, settings: Settings) -> ScreenExtractionResult:
    return extract_screen_metrics(portrait[0], settings=settings)


@pytest.fixture(scope="session")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    spec = RecordingSpec(duration_sec=40, width=960, height=540, layout=str(LANDSCAPE_LAYOUT), seed=11)
    return _record(tmp_path_factory.mktemp("screen"), "landscape", spec)


# --- one still frame ----------------------------------------------------------------------


def test_still_frames_read_like_the_recording(settings: Settings) -> None:
    """Screenshots of the live screen (what /metrics/extract-frame gets) read exactly, every
    few seconds of a stream, including the purchase pop-up's text when one is shown."""
    spec = RecordingSpec(duration_sec=60)
    for t_sec in range(0, 60, 6):
        image, truth = still_frame(spec, t_sec)
        reading = read_frame(image, settings=settings)
        assert (reading.viewers, reading.likes, reading.comments) == (
            truth["viewers"],
            truth["likes"],
            truth["comments"],
        ), t_sec
        if truth["popup"] is None:
            assert reading.purchase_popup is None, t_sec
        else:  # the text as OCR reads it: a buyer's name or icon may come out garbled, never the phrase
            assert reading.purchase_popup is not None and reading.purchase_popup.endswith("さんが購入しました"), t_sec


def test_a_frame_without_overlay_is_an_empty_reading(settings: Settings) -> None:
    image, _ = still_frame(RecordingSpec(duration_sec=4, overlay=False), 1.0)
    reading = read_frame(image, settings=settings)
    assert reading.empty and reading.warnings


# --- the series ---------------------------------------------------------------------------


def test_viewer_series_matches_truth(portrait: Recording, portrait_result: ScreenExtractionResult) -> None:
    _, truth = portrait
    result = portrait_result
    assert result.reason is None and result.layout == "tiktok_live_portrait"
    assert len(result.samples) >= 0.95 * truth["spec"]["duration_sec"] / result.interval_sec
    assert _share_within_1pct(result, truth, "viewers") >= 0.95
    assert _share_within_1pct(result, truth, "likes") >= 0.95  # includes 万 readings (1.2万 -> 12000)
    assert _share_within_1pct(result, truth, "comments") >= 0.95
    assert any(s.likes is not None and s.likes >= 10_000 for s in result.samples)


def test_purchase_popups_are_counted_once_each(portrait: Recording, portrait_result: ScreenExtractionResult) -> None:
    _, truth = portrait
    counted = [s.purchases for s in portrait_result.samples]
    assert counted[-1] == len(truth["purchase_events"]) > 3
    assert counted == [_truth_at(truth, s.t_sec)["purchases"] for s in portrait_result.samples]


def test_unchanged_regions_skip_ocr(portrait_result: ScreenExtractionResult) -> None:
    result = portrait_result
    assert 0 < result.ocr_skipped <= result.frames_sampled * 4  # at most once per region and frame


# --- sampling -----------------------------------------------------------------------------


def test_short_gop_decodes_keyframes_only(portrait: Recording) -> None:
    with FrameSampler(portrait[0], 2.0) as sampler:
        times = [frame.t_sec for frame in sampler]
    stats = sampler.stats
    assert stats.frames_sampled == len(times) >= 74
    assert max(b - a for a, b in itertools.pairwise(times)) <= 2.0
    # one keyframe per sample, plus the tail after the last keyframe; the video has 600 frames
    assert stats.frames_decoded <= stats.frames_sampled + 8


def test_long_gop_still_samples_every_interval(tmp_path: Path) -> None:
    video, _ = _record(tmp_path, "long_gop", RecordingSpec(duration_sec=30, gop_sec=10, overlay=False))
    with FrameSampler(video, 2.0) as sampler:
        times = [frame.t_sec for frame in sampler]
    assert len(times) >= 15
    assert max(b - a for a, b in itertools.pairwise(times)) <= 3.0
    assert sampler.stats.frames_decoded < 120  # fewer than all frames: only up to each needed one


def test_rotated_recording_is_sampled_upright(tmp_path: Path) -> None:
    """Phones store portrait video as landscape plus a display matrix; samples must come out as shown."""
    video = tmp_path / "rotated.mp4"
    coded = np.zeros((32, 64, 3), np.uint8)
    coded[:8, :8] = 255  # a mark in the top-left corner of the coded picture
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(4))
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(coded, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(video.read_bytes())
    matrix_at = data.find(b"tkhd") + 4 + 4 + 20 + 8 + 8  # version 0 'tkhd': header, times and ids, layer...
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    video.write_bytes(bytes(data))  # display: rotate 90 degrees clockwise
    with FrameSampler(video, 1.0) as sampler:
        luma = next(iter(sampler)).luma
    assert luma.shape == (64, 32)
    assert luma[:4, -4:].mean() > 200 and luma[:4, :4].mean() < 60  # the mark is now top-right


# --- outliers -----------------------------------------------------------------------------


def _series(viewers: list[float | None]) -> list[ScreenMetricSample]:
    return [ScreenMetricSample(t_sec=2.0 * i, viewers=v) for i, v in enumerate(viewers)]


def test_outlier_filter_drops_a_single_tenfold_spike() -> None:
    samples = _series([1200, 1210, 1190, 12050, 1220, 1230, 1215])
    kept, dropped = filter_outliers(samples)
    assert [d.t_sec for d in dropped] == [6.0] and dropped[0].value == 12050
    assert [s.viewers for s in kept] == [1200, 1210, 1190, 1220, 1230, 1215]
    assert samples[3].viewers == 12050  # the input is not modified


def test_outlier_filter_drops_a_lost_digit_but_keeps_a_real_surge() -> None:
    kept, dropped = filter_outliers(_series([800, 810, 81, 820, 830, 4000, 4100, 4050, 4200]))
    assert [(d.value, d.field) for d in dropped] == [(81, "viewers")]
    assert [s.viewers for s in kept][-4:] == [4000, 4100, 4050, 4200]


def test_outlier_filter_keeps_samples_with_other_readings() -> None:
    samples = [
        ScreenMetricSample(t_sec=0, viewers=100, likes=5),
        ScreenMetricSample(t_sec=2, viewers=1000, likes=6),
        ScreenMetricSample(t_sec=4, viewers=100, likes=7),
    ]
    kept, dropped = filter_outliers(samples, ["viewers"])
    assert len(kept) == 3 and kept[1].viewers is None and kept[1].likes == 6 and len(dropped) == 1


# --- per-phase aggregates -----------------------------------------------------------------


def test_phase_summary_from_hand_made_samples() -> None:
    samples = [
        ScreenMetricSample(t_sec=0, viewers=100, comments=0, purchases=0),
        ScreenMetricSample(t_sec=30, viewers=150, comments=10, purchases=1),
        ScreenMetricSample(t_sec=60, viewers=300, comments=40, purchases=1),
        ScreenMetricSample(t_sec=90, viewers=250, comments=70, purchases=3),
        ScreenMetricSample(t_sec=120, viewers=None, comments=None, purchases=4),
    ]
    first = summarise_window(samples, 0, 60)
    assert (first.start_viewers, first.end_viewers, first.peak_viewers, first.samples) == (100, 150, 150, 2)
    assert first.comment_rate_per_min == 20.0  # 10 comments over 30 s
    assert first.purchases == 1
    second = summarise_window(samples, 60, 130)
    assert (second.start_viewers, second.end_viewers, second.peak_viewers) == (300, 250, 300)
    assert second.comment_rate_per_min == 60.0  # from 10 at 30 s (last before the phase) to 70 at 90 s
    assert second.purchases == 3  # 1 before the phase, 4 at its end
    empty = summarise_window(samples, 500, 600)
    assert empty.samples == 0 and empty.start_viewers is None and empty.purchases is None


def test_phase_aggregates_match_truth(portrait: Recording, portrait_result: ScreenExtractionResult) -> None:
    _, truth = portrait
    phases = [
        Phase(phase_index=0, start_sec=0, end_sec=50, phase_type="opening"),
        Phase(phase_index=1, start_sec=50, end_sec=100, phase_type="product_demo"),
        Phase(phase_index=2, start_sec=100, end_sec=None, phase_type="closing"),
    ]
    summarised = summarise_for_phases(portrait_result.samples, phases)
    assert [p.phase_type for p in summarised] == ["opening", "product_demo", "closing"]
    assert all(p.screen_summary is None for p in phases)  # the inputs are left alone
    times = [s.t_sec for s in portrait_result.samples]
    for phase in summarised:
        start, end = phase.start_sec or 0.0, phase.end_sec if phase.end_sec is not None else float("inf")
        inside = [_truth_at(truth, t) for t in times if start <= t < end]
        before = [_truth_at(truth, t) for t in times if t < start]
        summary = phase.screen_summary
        assert summary is not None and summary.samples == len(inside)
        assert summary.start_viewers == pytest.approx(inside[0]["viewers"], rel=0.01)
        assert summary.end_viewers == pytest.approx(inside[-1]["viewers"], rel=0.01)
        assert summary.peak_viewers == pytest.approx(max(r["viewers"] for r in inside), rel=0.01)
        base = before[-1] if before else inside[0]
        assert summary.purchases == inside[-1]["purchases"] - base["purchases"]
        minutes = (inside[-1]["t_sec"] - base["t_sec"]) / 60
        expected_rate = (inside[-1]["comments"] - base["comments"]) / minutes
        assert summary.comment_rate_per_min == pytest.approx(expected_rate, rel=0.02)


# --- layouts ------------------------------------------------------------------------------


def test_builtin_layout_is_the_default() -> None:
    assert "tiktok_live_portrait" in available_layouts()
    layout = load_layout("tiktok_live_portrait")
    assert {r.field for r in layout.regions} == {"viewers", "likes", "comments", "purchases"}
    assert layout.fits(720, 1280) and not layout.fits(1280, 720)


def test_a_layout_defined_only_in_a_data_file_works(landscape: Recording, settings: Settings) -> None:
    video, truth = landscape
    result = extract_screen_metrics(video, layout=LANDSCAPE_LAYOUT, settings=settings)
    assert result.reason is None and result.layout == "landscape_shop" and not result.warnings
    assert _share_within_1pct(result, truth, "viewers") >= 0.95
    assert result.samples[-1].purchases == len(truth["purchase_events"]) >= 1
    assert all(s.likes is None and s.comments is None for s in result.samples)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"name": "x", "regions": [{"field": "viewers", "box": [0.5, 0.1, 0.4, 0.2]}]}', "left < right"),
        ('{"name": "x", "regions": [{"field": "viewers", "box": [0, 0, 0.1, 1.5]}]}', "bottom <= 1"),
        (
            '{"name": "x", "regions": [{"field": "likes", "box": [0, 0, 0.1, 0.1]},'
            ' {"field": "likes", "box": [0, 0.2, 0.1, 0.3]}]}',
            "more than one region for likes",
        ),
        ('{"name": "x", "regions": [{"field": "likes", "box": [0, 0, 0.1, 0.1], "colour": "red"}]}', "colour"),
        ('{"name": "x", "regions": [{"field": "purchases", "kind": "event", "box": [0, 0, 1, 0.1]}]}', "pattern"),
        ('{"name": "x", "regions": [{"field": "gifts", "box": [0, 0, 1, 0.1]}]}', "regions.0.field"),
        ('{"name": "x", "regions": []}', "regions"),
        ("{not json", "not readable JSON"),
    ],
)
def test_a_bad_layout_file_is_rejected_with_its_name(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad_layout.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert "bad_layout.json" in str(caught.value) and problem in str(caught.value)


def test_an_unknown_layout_name_lists_the_builtin_ones() -> None:
    with pytest.raises(LayoutError, match="tiktok_live_portrait"):
        load_layout("instagram_live")


# --- bad inputs ---------------------------------------------------------------------------


def test_video_bytes_are_read_like_a_file(landscape: Recording, settings: Settings) -> None:
    video, truth = landscape
    result = extract_screen_metrics(video.read_bytes(), layout=LANDSCAPE_LAYOUT, settings=settings)
    assert result.reason is None and _share_within_1pct(result, truth, "viewers") >= 0.95


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda folder: b"", "empty (0 bytes)"),
        (lambda folder: _write(folder / "empty.mp4", b""), "empty (0 bytes)"),
        (lambda folder: folder / "missing.mp4", "no such video file"),
        (lambda folder: b"this is not a video at all " * 100, "not a readable video"),
        (lambda folder: _write(folder / "notes.mov", json.dumps({"a": 1}).encode()), "not a readable video"),
    ],
)
def test_bad_input_gives_a_reason_not_a_crash(tmp_path: Path, settings: Settings, make: Any, reason: str) -> None:
    result = extract_screen_metrics(make(tmp_path), settings=settings)
    assert result.samples == [] and result.reason is not None and reason in result.reason


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_truncated_video_gives_a_reason(portrait: Recording, settings: Settings) -> None:
    data = portrait[0].read_bytes()
    result = extract_screen_metrics(data[: len(data) // 2], settings=settings)
    assert result.samples == [] and result.reason is not None


def test_audio_only_file_gives_a_reason(tmp_path: Path, settings: Settings) -> None:
    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        tone = np.sin(np.linspace(0, 880 * np.pi, 16000, dtype=np.float32))[None, :] * 0.3
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    result = extract_screen_metrics(audio, settings=settings)
    assert result.samples == [] and result.reason == "the file has no video stream"


def test_video_without_overlay_gives_an_empty_result_with_reason(tmp_path: Path, settings: Settings) -> None:
    video, _ = _record(tmp_path, "plain", RecordingSpec(duration_sec=20, overlay=False))
    result = extract_screen_metrics(video, settings=settings)
    assert result.samples == [] and result.frames_sampled >= 10
    assert result.reason is not None and "no overlay readings" in result.reason


def test_wrong_orientation_is_warned_about(landscape: Recording, settings: Settings) -> None:
    result = extract_screen_metrics(landscape[0], layout="tiktok_live_portrait", settings=settings)
    assert any("portrait" in w and "960x540" in w for w in result.warnings)
