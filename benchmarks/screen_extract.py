"""Benchmark the screen-metrics extractor on adversarial generated recordings, per split.

Why: Pattern B must read recordings it was not tuned on (other fonts, rooms,
notations, encoders) and keep up with hour-long streams on the Functions
plan's 2 cores. The clips come from scripts/generate_screen_recording.py with
known overlay values, in two splits:

* ``dev``: what the reader was tuned on;
* ``held-out``: other seeds, and fonts (Noto Sans Regular, Serif Bold, Mono
  Bold), a backdrop (the striped ``neon`` room) and a notation (``plain``) the
  dev split never shows.

Per split it prints the share of counter samples within 1 % of the truth,
missing and wrong (a reading while a gift hid the counter or the app was off
screen counts as wrong unless it is right), the purchase pop-ups counted
against those shown, and the real-time ratio per resolution. Targets on the
held-out split: >= 98 % within 1 %, <= 0.5 % wrong, every pop-up counted,
>= 20x real time at 1080x1920. Clips are generated once and cached by their
parameters (~3 minutes the first time on a loaded 2-core machine).

    .venv/bin/python benchmarks/screen_extract.py                  # both splits
    .venv/bin/python benchmarks/screen_extract.py --split held-out --clip-sec 20
    .venv/bin/python benchmarks/screen_extract.py --split held-out --busy 1   # on a loaded machine

``--busy N`` runs N other CPU-bound jobs for the whole run, each in a session of
its own as another job on the machine would be (Linux shares CPU between
sessions first, so a job started in the benchmark's own session would load it
less than a neighbour does). The wall-clock ratios then say what the
extraction keeps while N of the 2 cores' worth of work competes with it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, like the other benchmarks

from rag_core.base.settings import load_settings
from rag_core.screen.extractor import ScreenExtractionResult, extract_screen_metrics
from scripts.generate_screen_recording import RecordingSpec, generate

COUNTERS = ("viewers", "likes", "comments")
GOALS = {"within": 0.98, "wrong": 0.005, "ratio_1080": 20.0}
_HD = {"width": 1080, "height": 1920}
_SD = {"width": 720, "height": 1280}
_PHONE = {"fps": 30.0, "gop_sec": None, "preset": "veryfast"}  # x264's default keyframe interval (250 frames)

SPLITS: dict[str, list[dict[str, Any]]] = {
    "dev": [
        {**_SD, **_PHONE, "seed": 101, "font": "sans-bold", "notation": "k", "room": "bright", "viewer_scale": 20,
         "gifts": True},
        {**_SD, "fps": 15.0, "vfr": True, "bitrate_kbps": 150, "gop_sec": 4.0, "seed": 102, "font": "serif-regular",
         "notation": "app", "room": "dark", "banner": "fit", "gifts": True, "blackouts": True},
        {**_HD, **_PHONE, "seed": 103, "font": "mono-regular", "notation": "man", "room": "dark", "banner": "fit",
         "viewer_scale": 8, "blackouts": True},
        {**_HD, "fps": 30.0, "gop_sec": 2.0, "seed": 104, "font": "sans-bold", "notation": "comma", "room": "bright",
         "viewer_scale": 3, "ui_shift": 0.002, "gifts": True},
        {**_SD, "fps": 60.0, "gop_sec": None, "preset": "veryfast", "bitrate_kbps": 300, "seed": 105,
         "font": "serif-regular", "notation": "k", "room": "dark", "viewer_scale": 300, "gifts": True,
         "blackouts": True},
        {**_SD, "fps": 15.0, "vfr": True, "bitrate_kbps": 150, "gop_sec": 4.0, "seed": 106, "font": "sans-bold",
         "notation": "man", "room": "dark", "banner": "fit", "viewer_scale": 2, "gifts": True},
        # Pop-ups as busy streams show them: a flickering LED-wall stage with fast coloured spotlights,
        # pop-ups replacing each other with no blank frame, gifts flying over them, the same buyers
        # again and again, shown shorter, on dark and blue banners.
        {**_SD, **_PHONE, "seed": 107, "font": "sans-bold", "notation": "k", "room": "stage", "banner": "dark",
         "viewer_scale": 10, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.5, "gifts": True,
         "popup_gifts": True},
        {**_HD, "fps": 30.0, "gop_sec": 2.0, "seed": 108, "font": "serif-regular", "notation": "comma",
         "room": "stage", "banner": "blue", "viewer_scale": 4, "buyers": 2, "popup_sec": 2.5,
         "popup_pause_sec": 4.0, "popup_slide_sec": 0.8, "ui_shift": 0.002},
        {**_SD, "fps": 15.0, "vfr": True, "bitrate_kbps": 600, "gop_sec": 4.0, "seed": 109, "font": "mono-regular",
         "notation": "man", "room": "stage", "banner": "fit", "viewer_scale": 2, "popup_pause_sec": 0.5,
         "repeat_gap_sec": 4.0, "popup_slide_sec": 0.5, "gifts": True, "popup_gifts": True, "blackouts": True},
        {**_SD, **_PHONE, "bitrate_kbps": 300, "seed": 110, "font": "serif-regular", "notation": "app",
         "room": "dark", "banner": "dark", "viewer_scale": 1, "popup_pause_sec": 0.0, "buyers": 3,
         "repeat_gap_sec": 4.0, "popup_gifts": True},
        # Run first as a check outside the split; one showed a pop-up sliding in counted twice, which
        # was then fixed on it, so all four are dev clips now.
        {**_HD, **_PHONE, "seed": 111, "font": "sans-bold", "notation": "k", "room": "stage", "banner": "dark",
         "viewer_scale": 10, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.5, "gifts": True,
         "popup_gifts": True},
        {**_SD, **_PHONE, "bitrate_kbps": 300, "seed": 112, "font": "serif-regular", "notation": "comma",
         "room": "bright", "banner": "dark", "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.4,
         "popup_gifts": True},
        {**_SD, "fps": 15.0, "vfr": True, "bitrate_kbps": 400, "gop_sec": 4.0, "seed": 113, "font": "mono-regular",
         "notation": "man", "room": "stage", "banner": "blue", "popup_pause_sec": 0.5, "repeat_gap_sec": 4.0,
         "buyers": 3, "popup_gifts": True, "gifts": True},
        {**_SD, **_PHONE, "seed": 114, "font": "sans-bold", "notation": "k", "room": "dark", "banner": "fit",
         "viewer_scale": 5, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.6,
         "popup_gifts": True},
        # The second check outside the split (seeds 121-132, 2026-12-03): these two showed a count
        # confirmed wrong (models disagreeing on every image) and pale pills read garbled sharp.
        {**_SD, **_PHONE, "bitrate_kbps": 500, "seed": 130, "font": "mono-regular", "notation": "man",
         "room": "stage", "banner": "dark", "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.5,
         "ui_shift": 0.002},
        {**_SD, **_PHONE, "bitrate_kbps": 600, "seed": 131, "font": "sans-bold", "notation": "app",
         "room": "stage", "banner": "fit", "popup_pause_sec": 0.5, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.6,
         "gifts": True, "popup_gifts": True, "blackouts": True},
        # From the same check, failing only at --clip-sec 60: a new buyer's longer pop-up under a gift
        # taken for the last one (125), a 1080x1920 Serif pop-up never read to match (128), a stable
        # misread comment count (122).
        {**_HD, "fps": 30.0, "gop_sec": 2.0, "seed": 125, "font": "mono-regular", "notation": "k", "room": "dark",
         "banner": "dark", "viewer_scale": 40, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_gifts": True},
        {**_HD, **_PHONE, "seed": 128, "font": "serif-regular", "notation": "app", "room": "bright",
         "banner": "dark", "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.4,
         "popup_gifts": True, "gifts": True},
        {**_HD, **_PHONE, "seed": 122, "font": "serif-regular", "notation": "man", "room": "dark", "banner": "fit",
         "viewer_scale": 5, "gifts": True, "blackouts": True},
        # The third check outside the split (seeds 140-150, the club room, 2026-12-03): a thin serif
        # pop-up under a gift beside its avatar counted twice (141, fixed); a longer new name after a
        # shorter one taken for it when the gained-pixels rule was tried at sliding-in offsets, and a
        # pop-up seen at the end of its slide counted twice (148, the second still open).
        {**_HD, "fps": 30.0, "gop_sec": 2.0, "seed": 141, "font": "serif-regular", "notation": "comma",
         "room": "club", "banner": "dark", "viewer_scale": 4, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0,
         "popup_gifts": True},
        {**_SD, **_PHONE, "bitrate_kbps": 1500, "seed": 148, "font": "mono-regular", "notation": "man",
         "room": "club", "banner": "fit", "viewer_scale": 2, "popup_pause_sec": 0.5, "repeat_gap_sec": 4.0,
         "popup_slide_sec": 0.6, "gifts": True, "popup_gifts": True, "blackouts": True},
        # The fourth check outside the split (seeds 160-169, every room and banner, 2026-12-03): a
        # longer new name after a shorter one under a gift taken for it by the sliding-in offsets
        # (160, fixed); the same pop-up counted twice when a gift ring darker than a bright room's bar
        # (163) or a gift over the avatar with its label over the name (167) is not seen as an
        # occluder (both still open).
        {**_SD, **_PHONE, "bitrate_kbps": 1200, "seed": 160, "font": "sans-bold", "notation": "k",
         "room": "club", "banner": "glass", "viewer_scale": 6, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0,
         "popup_slide_sec": 0.5, "gifts": True, "popup_gifts": True},
        {**_SD, "fps": 60.0, "gop_sec": None, "preset": "veryfast", "bitrate_kbps": 400, "seed": 163,
         "font": "sans-bold", "notation": "app", "room": "bright", "banner": "wide", "viewer_scale": 2,
         "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0, "popup_slide_sec": 0.4, "popup_gifts": True},
        {**_HD, "fps": 30.0, "gop_sec": 2.0, "seed": 167, "font": "serif-regular", "notation": "k",
         "room": "bright", "banner": "glass", "viewer_scale": 30, "popup_pause_sec": 0.0, "repeat_gap_sec": 4.0,
         "popup_slide_sec": 0.5, "gifts": True, "popup_gifts": True},
    ],
    "held-out": [
        {**_HD, **_PHONE, "seed": 201, "font": "serif-bold", "notation": "k", "room": "dark", "banner": "fit",
         "viewer_scale": 30, "gifts": True},
        {**_SD, "fps": 15.0, "vfr": True, "bitrate_kbps": 150, "gop_sec": 4.0, "seed": 202, "font": "sans-regular",
         "notation": "man", "room": "dark", "banner": "fit", "viewer_scale": 5, "gifts": True, "blackouts": True},
        {**_HD, **_PHONE, "seed": 203, "font": "mono-bold", "notation": "plain", "room": "neon", "viewer_scale": 2,
         "blackouts": True, "ui_shift": 0.002},
        {**_SD, **_PHONE, "seed": 204, "font": "sans-regular", "notation": "k", "room": "neon", "viewer_scale": 60,
         "bitrate_kbps": 400, "gifts": True},
    ],
}  # fmt: skip


@dataclasses.dataclass
class Tally:
    """Counter samples of one split: visible ones within 1 %, missing or wrong; hidden ones wrong."""

    visible: int = 0
    within: int = 0
    missing: int = 0
    wrong: int = 0
    hidden: int = 0
    hidden_wrong: int = 0
    popups_counted: int = 0
    popups_shown: int = 0
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def samples(self) -> int:
        return self.visible + self.hidden

    def merge(self, other: Tally) -> None:
        for name in ("visible", "within", "missing", "wrong", "hidden", "hidden_wrong"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.popups_counted += other.popups_counted
        self.popups_shown += other.popups_shown
        self.dropped.update(other.dropped)


def _truth_row(frames: list[dict[str, Any]], times: list[float], t_sec: float) -> dict[str, Any]:
    """The truth of the frame shown at ``t_sec`` (works for variable frame rates too).

    Samples carry their time rounded to the millisecond (``17.933`` for the frame at
    17.9333 s), so up to half a millisecond later still counts as that frame.
    """
    return frames[max(0, bisect_right(times, t_sec + 5e-4) - 1)]


def score(result: ScreenExtractionResult, truth: dict[str, Any], tally: Tally) -> None:
    """Add one clip's samples to ``tally``: one sample per interval window, missing when none was read."""
    frames = truth["frames"]
    times = [row["t_sec"] for row in frames]
    interval = result.interval_sec
    by_window = {math.floor(s.t_sec / interval + 0.5): s for s in result.samples}  # as the sampler cuts them
    windows = math.ceil(truth["spec"]["duration_sec"] / interval + 0.5)
    for window in range(windows):
        sample = by_window.get(window)
        row = _truth_row(frames, times, sample.t_sec if sample is not None else window * interval)
        # Without a sample it is unknown which frame of the window was read: a counter
        # hidden in any of them may have been hidden in the one read.
        start, end = (window - 0.5) * interval, (window + 0.5) * interval
        around = [r for r in frames if start <= r["t_sec"] < end] if sample is None else [row]
        for field in COUNTERS:
            value = getattr(sample, field) if sample is not None else None
            expected = row[field]
            right = value is not None and abs(value - expected) <= 0.01 * max(expected, 1)
            if any(field in r.get("hidden", ()) for r in around):
                tally.hidden += 1
                tally.hidden_wrong += value is not None and not right
            elif value is None:
                tally.visible += 1
                tally.missing += 1
            else:
                tally.visible += 1
                tally.within += right
                tally.wrong += not right
    counted = [s.purchases for s in result.samples if s.purchases is not None]
    tally.popups_counted += int(max(counted, default=0))
    tally.popups_shown += len(truth["purchase_events"])
    tally.dropped.update(d.reason for d in result.dropped)


def clip(spec: RecordingSpec, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The generated clip for ``spec`` and its truth, from the cache when it was made before."""
    key = hashlib.sha256(json.dumps(dataclasses.asdict(spec), sort_keys=True).encode()).hexdigest()[:16]
    video = cache / f"screen_{spec.width}x{spec.height}_{key}.mp4"
    truth_path = video.with_suffix(".truth.json")
    if not (video.is_file() and truth_path.is_file()):
        started = time.perf_counter()
        generate(video, spec)
        print(f"  generated {video.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return video, json.loads(truth_path.read_text(encoding="utf-8"))


def run_split(name: str, clip_sec: float, cache: Path, verbose: bool) -> bool:
    """Extract every clip of a split, print its figures; whether the held-out targets are met."""
    settings = load_settings(azure_openai_endpoint=None)
    tally = Tally()
    seconds: dict[str, float] = defaultdict(float)
    processing: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    print(f"split {name}")
    for params in SPLITS[name]:
        spec = RecordingSpec(duration_sec=clip_sec, popup_gap_sec=3.0, live_before_sec=900.0, **params)
        video, truth = clip(spec, cache)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = extract_screen_metrics(video, settings=settings)
        elapsed = time.perf_counter() - started
        resolution = f"{spec.width}x{spec.height}"
        seconds[resolution] += spec.duration_sec
        processing[resolution] += elapsed
        cpu[resolution] += time.process_time() - started_cpu
        one = Tally()
        score(result, truth, one)
        tally.merge(one)
        print(
            f"  {resolution} {spec.fps:g} fps{' vfr' if spec.vfr else ''} {spec.font:<13} {spec.notation:<5} "
            f"{spec.room:<6} {spec.duration_sec / elapsed:5.1f}x  within {one.within}/{one.visible}"
            f"  wrong {one.wrong + one.hidden_wrong}  pop-ups {one.popups_counted}/{one.popups_shown}"
        )
        if verbose:  # when each pop-up was shown, and at which samples the count rose
            shown = [f"{e['start_sec']:.1f}-{e['end_sec']:.1f} {e['buyer']}" for e in truth["purchase_events"]]
            running = [(s.t_sec, s.purchases) for s in result.samples if s.purchases is not None]
            rises = [
                f"{t:.1f}" for (t, n), (_, before) in zip(running, [(0.0, 0.0), *running], strict=False) if n > before
            ]
            print(f"      pop-ups shown {', '.join(shown)}; counted at {', '.join(rises)}")
        if verbose:
            for d in result.dropped:
                print(f"      dropped {d.t_sec:6.2f} {d.field:<8} {d.value:g} ({d.reason})")
    samples = max(tally.samples, 1)
    within = tally.within / max(tally.visible, 1)
    wrong = (tally.wrong + tally.hidden_wrong) / samples
    print(f"  counter samples {tally.samples} ({tally.visible} visible, {tally.hidden} hidden by gifts or off screen)")
    print(f"  within 1 %      {within:.1%} of visible samples (goal >= {GOALS['within']:.0%})")
    print(f"  missing         {tally.missing / max(tally.visible, 1):.1%} of visible samples")
    print(f"  wrong           {wrong:.2%} of all samples (goal <= {GOALS['wrong']:.1%})")
    print(f"    while hidden  {tally.hidden_wrong}")
    print(f"  pop-ups         {tally.popups_counted} counted, {tally.popups_shown} shown")
    print(f"  dropped         {dict(tally.dropped) or 'none'}")
    for resolution in sorted(seconds):
        wall, own = seconds[resolution] / processing[resolution], seconds[resolution] / cpu[resolution]
        print(f"  speed {resolution:<9} {wall:.1f}x real time (wall clock); {own:.1f}x per CPU second used")
    # The wall-clock ratio is the CPU share the split got: the load says how shared the cores were meanwhile.
    print(f"  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end of the split")
    hd = seconds.get("1080x1920", 0) / processing["1080x1920"] if "1080x1920" in processing else None
    return (
        within >= GOALS["within"]
        and wrong <= GOALS["wrong"]
        and tally.popups_counted == tally.popups_shown
        and (hd is None or hd >= GOALS["ratio_1080"])
    )


@contextlib.contextmanager
def busy_jobs(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes, each in its own session, for as long as the block runs."""
    jobs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(count)]
    try:
        yield
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=[*SPLITS, "both"], default="both")
    parser.add_argument("--clip-sec", type=float, default=20.0, help="length of each generated clip")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "livecommerce-rag-bench")
    parser.add_argument("--verbose", action="store_true", help="list the readings dropped as uncertain")
    parser.add_argument("--busy", type=int, default=0, help="other CPU-bound jobs to run meanwhile (a loaded machine)")
    args = parser.parse_args()
    names = list(SPLITS) if args.split == "both" else [args.split]
    # Wall-clock ratios depend on what else runs: the load average says how shared the cores were.
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    # The OCR engines load once per process (~0.3 s, then pooled): a warm instance's cost, not a clip's.
    video, _ = clip(RecordingSpec(duration_sec=4.0), args.cache)
    started = time.perf_counter()
    extract_screen_metrics(video, settings=load_settings(azure_openai_endpoint=None))
    print(f"warm-up: OCR engines loaded and a 4 s clip read in {time.perf_counter() - started:.2f} s (not counted)")
    if args.busy:
        print(f"{args.busy} other CPU-bound job(s) running meanwhile, each in its own session")
    with busy_jobs(args.busy):
        met = {name: run_split(name, args.clip_sec, args.cache, args.verbose) for name in names}
    for name, ok in met.items():
        print(f"{name}: {'PASS' if ok else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
