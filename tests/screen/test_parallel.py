"""A recording read in parts, in worker processes, gives exactly what one pass gives; a failed worker is reported
and reaped.

Real parts throughout: generated recordings, the real decoder and tesseract, real
worker processes. The parts are made short (``min_part_sec``) so that small clips split.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from rag_core.base.settings import Settings, load_settings
from rag_core.screen.extractor import _OverlayReader
from rag_core.screen.layout import load_layout
from rag_core.screen.parallel import Reading, ScreenReadWorkerError, plan_cuts, read_recording
from scripts.generate_screen_recording import RecordingSpec, generate

INTERVAL = 1.0


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(azure_openai_endpoint=None, embedding_provider="local", sales_ocr_provider="local")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """36 s, a keyframe every 2 s, a pop-up every ~3 s (each shown 4 s, so most cross a cut)."""
    video = tmp_path_factory.mktemp("parallel") / "stream.mp4"
    spec = RecordingSpec(duration_sec=36, popup_gap_sec=3.0, live_before_sec=600.0)
    truth = json.loads(generate(video, spec).read_text(encoding="utf-8"))
    return video, truth


def _read(video: Path | bytes, settings: Settings, processes: int, **options: Any) -> Reading:
    make = partial(_OverlayReader, load_layout(settings.screen_layout), settings)
    return read_recording(
        video, INTERVAL, make, processes=processes, event_fields=["purchases"], min_part_sec=8.0, **options
    )


@pytest.mark.parametrize("processes", [2, 3])
def test_parts_read_exactly_what_one_pass_reads(
    recording: tuple[Path, dict[str, Any]], settings: Settings, processes: int
) -> None:
    video, truth = recording
    cuts = plan_cuts(video, INTERVAL, processes, 8.0)
    assert len(cuts) == processes - 1
    crossing = [
        cut
        for cut in cuts
        for event in truth["purchase_events"]
        if event["start_sec"] < cut.t_sec - INTERVAL and event["end_sec"] > cut.t_sec
    ]
    assert crossing, "the clip must show a pop-up on both sides of a cut"
    one = _read(video, settings, processes=1)
    split = _read(video.read_bytes(), settings, processes=processes)  # bytes: the workers read a temporary copy
    assert (one.parts, split.parts) == (1, processes)
    assert [s.model_dump() for s in split.samples] == [s.model_dump() for s in one.samples]
    assert (split.frames_sampled, split.ocr_calls, split.ocr_skipped, split.unconfirmed, split.unreadable) == (
        one.frames_sampled,
        one.ocr_calls,
        one.ocr_skipped,
        one.unconfirmed,
        one.unreadable,
    )
    counted = max(s.purchases or 0 for s in one.samples)
    assert counted == len([e for e in truth["purchase_events"] if e["start_sec"] > 0.5])  # none twice, none lost


def test_short_recordings_and_one_cpu_are_read_in_one_pass(
    recording: tuple[Path, dict[str, Any]], settings: Settings
) -> None:
    video, _ = recording
    assert plan_cuts(video, INTERVAL, processes=1) == []
    assert plan_cuts(video, INTERVAL, processes=2) == []  # 36 s: parts of 30 s or more only


class _Stop(Exception):
    pass


def test_a_worker_that_dies_is_a_clear_failure_and_leaves_no_process(
    recording: tuple[Path, dict[str, Any]], settings: Settings
) -> None:
    video, _ = recording
    killed: list[int] = []

    def kill_the_worker(where: str) -> None:
        if not killed and "parts read at once" in where:
            for pid in _grandchildren():
                os.kill(pid, 9)
                killed.append(pid)

    with pytest.raises(ScreenReadWorkerError, match=r"the process reading the part from \d+ s stopped .*exit code"):
        _read(video, settings, processes=2, checkpoint=kill_the_worker)
    assert killed
    assert not _grandchildren()


def test_a_budget_stop_mid_way_names_the_progress_and_stops_the_workers(
    recording: tuple[Path, dict[str, Any]], settings: Settings
) -> None:
    video, _ = recording
    seen: list[str] = []

    def out_of_time(where: str) -> None:
        seen.append(where)
        if len(seen) == 5:
            raise _Stop(where)

    with pytest.raises(_Stop, match=r"while reading the screen recording: \d+ frames read, up to \d+ s of its 36 s"):
        _read(video, settings, processes=3, checkpoint=out_of_time)
    assert not _grandchildren()


def _grandchildren() -> list[int]:
    """The worker processes: children of this process' children (the forkserver forks them)."""
    return sorted(pid for child in _children_of(os.getpid()) for pid in _children_of(child))


def _children_of(pid: int) -> set[int]:
    """Children of ``pid`` (of its main thread; this process starts no others that fork)."""
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()
