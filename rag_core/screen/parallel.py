"""Read a long screen recording in parts at once, one process per part, joined exactly as one pass reads it.

Why: reading a 1080x1920 recording with long keyframe intervals costs ~1/27 of
its length in CPU (decoding every P frame, two tesseract reads per changed
count), all of it in one thread: a second thread gained nothing (see
docs/screen-metrics.md), so a second core is used by a second *process*, with
its own decoder and OCR engines, reading the second part of the recording.

How the parts stay exact:

* Parts are cut at keyframes, found by demuxing alone (no decoding). A part
  starts by seeking to its keyframe; a keyframe sampled in one pass resets the
  sampler (nothing held back, decoder flushed), so from there both read the same
  frames. Every sample is tagged with its window, so both sample the same instants.
* The overlay reader carries state from frame to frame (the last glyphs read and
  their text, the pop-up on screen, the running purchase total). Each part
  starts with a fresh reader, which may differ from the one a single pass would
  have there (a counter unchanged for a while reuses an older read). So each
  part records, after every sample, a digest of its reader's whole state (every
  attribute but the engines, statistics counters and the purchase total), and
  the parts overlap by one sample: the part before reads on to the cut's window.
  Where both read that window's keyframe and their states agree, the later part's
  readings are what one pass would give from there (the same frames into the
  same state). Where they do not, the part before reads on past the cut, with
  the true state, until it meets the later part at a keyframe sample with the
  same state, and the later part's readings are taken only from there; if they
  never meet, the part before simply reads the later part's range itself.
* The purchase total is a running count: a later part's counts are shifted by
  the total one pass had where they were joined, and a pop-up already on screen
  at a part's first sample is never counted there (that sample belongs to the
  part before), so a pop-up visible across a cut counts once, and the "already on
  screen when the recording starts" rule applies only at the real start.

The parent process reads the first part itself (no start cost, and it keeps
calling the job's time-budget checkpoint with the progress of all parts).
Workers are started from a ``forkserver`` (a single-threaded server started
cleanly once per process, the reader's modules preloaded) rather than by
``fork``: the Azure Functions Python worker runs gRPC and asyncio threads, and
forking a threaded process copies locks other threads may hold; ``spawn``
would import numpy, PyAV and tesserocr again for every worker (~1 s). Every
worker is killed and reaped before :func:`read_recording` returns or raises
(a budget stop, a failed worker, an error in the parent): none outlives its job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import av
import av.error
import numpy as np
from pydantic import BaseModel

from rag_core.analysis.record import ScreenMetricSample
from rag_core.screen.sampler import FrameSampler, SampledFrame, SamplerStats, VideoInputError

# A part shorter than this is not worth a process: a worker's start (fork, OCR engines ~0.3 s of
# CPU) and the demux pass must be paid back by the part it reads. Measured: docs/screen-metrics.md.
MIN_PART_SEC = 30.0
_POLL_SEC = 0.1  # how often the parent checks the budget and its workers while it waits
_REAP_SEC = 2.0  # how long a worker asked to stop may take before it is killed
# Reader attributes that are not state: the engines, statistics counters, and the running purchase
# total (a later part's total is shifted by the total where it was joined).
_NOT_STATE = frozenset({"_engine", "skipped", "unconfirmed", "unreadable", "_events"})
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["rag_core.screen.extractor"])


class ScreenReadWorkerError(RuntimeError):
    """A process reading a part of the recording failed or died; the message says which part and how."""


class OverlayReading(Protocol):
    """What a part needs of the overlay reader (``rag_core.screen.extractor``'s)."""

    unreadable: int

    def __enter__(self) -> OverlayReading: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    @property
    def ocr_calls(self) -> int: ...

    @property
    def ocr_skipped(self) -> int: ...

    @property
    def unconfirmed(self) -> int: ...

    def read(self, frame: SampledFrame) -> ScreenMetricSample | None: ...


ReaderFactory = Callable[[], OverlayReading]  # picklable (a partial of the reader class) for the workers


@dataclass(frozen=True)
class Record:
    """One sampled frame as a part read it: the sample, and what a join must compare."""

    window: int
    t_sec: float
    keyframe: bool
    state: str  # digest of the reader's state after this frame ("" when no part follows)
    sample: ScreenMetricSample | None
    counts: tuple[int, int, int, int]  # OCR calls, OCR skipped, unreadable, unconfirmed added by this frame


@dataclass
class PartReport:
    records: list[Record] = field(default_factory=list)
    frames_decoded: int = 0
    decode_errors: int = 0
    stopped: str | None = None  # why the video could not be read further (a damaged file)
    cpu_sec: float = 0.0  # CPU the worker process had used when it sent this report (since it started)


# Reads on past a cut with the true state: (keyframe samples of the later part to meet, last window) -> report.
ReadOn = Callable[[dict[int, tuple[float, str]], int | None], "PartReport"]


@dataclass
class Reading:
    """The recording as one pass reads it (whatever the number of parts)."""

    samples: list[ScreenMetricSample]
    width: int
    height: int
    duration_sec: float | None
    parts: int
    frames_decoded: int
    frames_sampled: int
    ocr_calls: int
    ocr_skipped: int
    unreadable: int
    unconfirmed: int
    decode_errors: int
    stopped: str | None
    worker_cpu_sec: float  # CPU used by the worker processes (the parent's own is its process time)


class PartReader:
    """Reads a recording from a keyframe on, one record per sampled frame, and can go on when asked."""

    def __init__(
        self,
        source: str | Path | bytes,
        interval: float,
        make_reader: ReaderFactory,
        start_pts: int | None,
        digest: bool,
    ) -> None:
        self.sampler = FrameSampler(source, interval, start_pts=start_pts)
        self._stack = ExitStack()
        self._stack.enter_context(self.sampler)
        self.reader = self._stack.enter_context(make_reader())
        self._frames: Iterator[SampledFrame] = iter(self.sampler)
        self._digest = digest
        self._stopped: str | None = None
        self._counted = (0, 0, 0, 0)

    def __enter__(self) -> PartReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def read(
        self,
        until_window: int | None,
        on_frame: Callable[[SampledFrame], None] | None = None,
        meet: dict[int, tuple[float, str]] | None = None,
    ) -> PartReport:
        """Read on until a record of ``until_window`` or later, or one that ``meet`` holds, is made (or the end).

        ``meet`` maps windows of the next part's keyframe samples to their time and state digest.
        """
        report = PartReport()
        decoded, errors = self.sampler.stats.frames_decoded, self.sampler.stats.decode_errors
        while self._stopped is None:
            try:
                frame = next(self._frames)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:  # a damaged or truncated file: keep what was read
                self._stopped = str(exc)
                report.stopped = self._stopped
                break
            if on_frame is not None:
                on_frame(frame)
            record = self._record(frame)
            report.records.append(record)
            if until_window is not None and record.window >= until_window:
                break
            if meet is not None and record.keyframe and meet.get(record.window) == (record.t_sec, record.state):
                break
        report.frames_decoded = self.sampler.stats.frames_decoded - decoded
        report.decode_errors = self.sampler.stats.decode_errors - errors
        return report

    def read_on(self, on_frame: Callable[[SampledFrame], None]) -> ReadOn:
        """:meth:`read` as the join calls it: on past the cut, until ``meet`` or ``until``."""
        return lambda meet, until: self.read(until, on_frame, meet)

    def _record(self, frame: SampledFrame) -> Record:
        sample = self.reader.read(frame)
        reader = self.reader
        counted = (reader.ocr_calls, reader.ocr_skipped, reader.unreadable, reader.unconfirmed)
        counts = tuple(now - before for now, before in zip(counted, self._counted, strict=True))
        self._counted = counted
        return Record(
            window=self.sampler.window(frame.t_sec),
            t_sec=frame.t_sec,
            keyframe=frame.keyframe,
            state=state_digest(reader) if self._digest else "",
            sample=sample,
            counts=(counts[0], counts[1], counts[2], counts[3]),
        )


def state_digest(reader: object) -> str:
    """A digest of everything the reader carries from one frame to the next (see ``_NOT_STATE``).

    Generic on purpose: a state attribute added to the reader later is covered without
    a change here (one missing from the digest would let two parts join wrongly).
    """
    h = hashlib.blake2b(digest_size=16)
    _feed_digest(reader, h)
    return h.hexdigest()


def _feed_digest(value: Any, h: Any) -> None:
    if value is None or isinstance(value, str | int | float | bool):
        h.update(repr(value).encode())
    elif isinstance(value, np.ndarray):
        h.update(repr((value.shape, value.dtype.str)).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, BaseModel):
        h.update(value.model_dump_json().encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(type(value).__name__.encode())
        for f in dataclasses.fields(value):
            _feed_digest(getattr(value, f.name), h)
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for item in value:
            _feed_digest(item, h)
        h.update(b"]")
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            _feed_digest(key, h)
            _feed_digest(value[key], h)
        h.update(b"}")
    elif isinstance(value, set | frozenset):
        h.update(repr(sorted(map(repr, value))).encode())
    elif hasattr(value, "__dict__"):
        h.update(type(value).__name__.encode())
        for name, attribute in sorted(vars(value).items()):
            if name not in _NOT_STATE:
                h.update(name.encode())
                _feed_digest(attribute, h)
    else:
        h.update(pickle.dumps(value))


@dataclass(frozen=True)
class Cut:
    """Where a part starts: its keyframe (stream timestamp) and that keyframe's sampling window."""

    pts: int
    t_sec: float
    window: int


def available_cpus() -> int:
    """CPUs this process may run on (a container's affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_cuts(
    source: str | Path | bytes, interval: float, processes: int, min_part_sec: float = MIN_PART_SEC
) -> list[Cut]:
    """Keyframes to cut the recording at, one per part after the first; empty when one pass is best.

    ``processes`` is the setting (0: one per available CPU). Parts are at least
    ``min_part_sec`` long, and as equal as the keyframes allow.
    """
    wanted = processes or available_cpus()
    if wanted < 2:
        return []
    try:
        sampler = FrameSampler(source, interval)
    except VideoInputError:
        return []  # the one-pass reader reports why
    with sampler:
        duration = sampler.stats.duration_sec or 0.0
        parts = min(wanted, math.floor(duration / min_part_sec))
        keyframes = sampler.keyframes() if parts >= 2 else []
    cuts: list[Cut] = []
    for k in range(1, parts):
        if not keyframes:
            break
        target = duration * k / parts
        pts, t = min(keyframes, key=lambda key: abs(key[1] - target))
        window = sampler.window(t)
        if window > (cuts[-1].window if cuts else 0) + 1 and t < duration - interval:
            cuts.append(Cut(pts=pts, t_sec=t, window=window))
    return cuts


class _Part:
    """A part read in a worker process, seen from the parent: its process, pipe, progress and report."""

    def __init__(self, index: int, process: multiprocessing.process.BaseProcess, conn: Any, cut: Cut) -> None:
        self.index, self.process, self.conn, self.cut = index, process, conn, cut
        self.frames = 0
        self.t_sec = cut.t_sec
        self.report: PartReport | None = None
        self.cpu_sec = 0.0

    def pump(self) -> None:
        """Take every message the worker has sent; raise if it failed or died."""
        try:
            while self.conn.poll():
                kind, body = self.conn.recv()
                if kind == "progress":
                    self.frames += 1
                    self.t_sec = body
                elif kind == "report":
                    self.report, self.cpu_sec = body, body.cpu_sec
                else:
                    raise ScreenReadWorkerError(
                        f"the process reading the part from {self.cut.t_sec:.0f} s failed: {body}"
                    )
        except (EOFError, OSError):
            self.process.join(_POLL_SEC)
            raise ScreenReadWorkerError(
                f"the process reading the part from {self.cut.t_sec:.0f} s stopped before it was done "
                f"(exit code {self.process.exitcode})"
            ) from None

    def stop(self) -> None:
        """Ask the worker to end, then kill it if it does not; reap it either way."""
        if self.process.is_alive():
            with suppress(OSError):
                self.conn.send(("close", None))
            self.process.join(_REAP_SEC)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _work(
    conn: Any, source: str, interval: float, make_reader: ReaderFactory, cut: Cut, until_window: int | None
) -> None:
    """A worker: read one part, send its report, then read on past its end whenever asked to."""
    try:
        with PartReader(source, interval, make_reader, cut.pts, digest=True) as part:
            report = part.read(until_window, lambda frame: conn.send(("progress", frame.t_sec)))
            report.cpu_sec = time.process_time()
            conn.send(("report", report))
            while True:
                command, body = conn.recv()
                if command == "close":
                    return
                meet, until = body
                report = part.read(until, meet=meet)
                report.cpu_sec = time.process_time()
                conn.send(("report", report))
    except (EOFError, BrokenPipeError):
        return  # the parent is gone: nothing to report to
    except Exception:
        conn.send(("error", traceback.format_exc(limit=3).strip().splitlines()[-1]))


def read_recording(
    source: str | Path | bytes,
    interval: float,
    make_reader: ReaderFactory,
    *,
    processes: int = 0,
    event_fields: Sequence[str] = (),
    checkpoint: Callable[[str], None] | None = None,
    min_part_sec: float = MIN_PART_SEC,
) -> Reading:
    """Read the recording once, in parts at once where it is long enough and CPUs allow (see the module doc).

    Raises :class:`VideoInputError` for a video that cannot be opened and
    :class:`ScreenReadWorkerError` when a worker fails; ``checkpoint`` is called
    before each frame the parent reads and while it waits, with how far the
    reading got, and may raise to stop it (the workers are stopped too).
    """
    with ExitStack() as stack:
        path: str | Path | bytes = source
        cuts = plan_cuts(source, interval, processes, min_part_sec)
        if cuts and isinstance(source, bytes | bytearray | memoryview):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="screen-"))
            path = Path(folder) / "recording"
            path.write_bytes(source)
        parts: list[_Part] = []
        stack.callback(_stop_all, parts)
        for k, cut in enumerate(cuts):
            until = cuts[k + 1].window if k + 1 < len(cuts) else None
            mine, theirs = _CONTEXT.Pipe()
            process = _CONTEXT.Process(
                target=_work, args=(theirs, str(path), interval, make_reader, cut, until), daemon=True
            )
            process.start()
            theirs.close()
            parts.append(_Part(k + 1, process, mine, cut))
        first = stack.enter_context(PartReader(path, interval, make_reader, None, digest=bool(cuts)))
        stats = first.sampler.stats
        own = {"frames": 0, "t": 0.0}

        def progress() -> str:
            for part in parts:
                part.pump()
            frames = own["frames"] + sum(p.frames for p in parts)
            if not parts:
                return f"{frames:,} frames read, up to {own['t']:.0f} s of its {stats.duration_sec or 0:.0f} s"
            covered = own["t"] + sum(p.t_sec - p.cut.t_sec for p in parts)
            return (
                f"{frames:,} frames read, up to {covered:.0f} s of its {stats.duration_sec or 0:.0f} s "
                f"({len(parts) + 1} parts read at once)"
            )

        def before_frame(frame: SampledFrame) -> None:
            own["t"] = frame.t_sec
            message = progress()
            own["frames"] += 1
            if checkpoint is not None:
                checkpoint(f"while reading the screen recording: {message}")

        def wait(part: _Part) -> PartReport:
            while True:
                message = progress()
                if part.report is not None:
                    report, part.report = part.report, None
                    return report
                if checkpoint is not None:
                    checkpoint(f"while reading the screen recording: {message}")
                multiprocessing.connection.wait([part.conn, part.process.sentinel], _POLL_SEC)

        joined = _Joined(first.read(cuts[0].window if cuts else None, before_frame), event_fields)
        # Whichever part read the true frames up to a cut reads on when the next part does not join there.
        read_on = first.read_on(before_frame)
        for k, part in enumerate(parts):
            later = wait(part)
            until = cuts[k + 1].window if k + 1 < len(cuts) else None
            meet = {r.window: (r.t_sec, r.state) for r in later.records if r.keyframe}
            met = joined.join(later)
            while not met and not joined.finished:
                more = read_on(meet, until)
                joined.extend(more)
                met = joined.join(later)
                if not met and (until is None or (more.records and more.records[-1].window >= until)):
                    break  # the part before read the later part's whole range itself
            joined.frames_decoded += later.frames_decoded
            if met:
                read_on = _worker_reads_on(part, wait)
            if joined.finished:
                break
        return joined.reading(stats, len(cuts) + 1, sum(part.cpu_sec for part in parts))


def _stop_all(parts: list[_Part]) -> None:
    for part in parts:
        part.stop()


def _worker_reads_on(part: _Part, wait: Callable[[_Part], PartReport]) -> ReadOn:
    def read_on(meet: dict[int, tuple[float, str]], until: int | None) -> PartReport:
        part.conn.send(("continue", (meet, until)))
        return wait(part)

    return read_on


class _Joined:
    """The records one pass would make, built part by part."""

    def __init__(self, first: PartReport, event_fields: Sequence[str]) -> None:
        self.records: list[Record] = []
        self.frames_decoded = self.decode_errors = 0
        self.stopped: str | None = None
        self.finished = False  # the true reading ended (end of the video or a damaged file)
        self._events = list(event_fields)
        self.extend(first)

    def extend(self, report: PartReport) -> None:
        """Add records read with the true state (by the first part, or a part joined before)."""
        self.records += report.records
        self.frames_decoded += report.frames_decoded
        self.decode_errors += report.decode_errors
        self.stopped = report.stopped
        self.finished = report.stopped is not None or not report.records

    def join(self, later: PartReport) -> bool:
        """Append ``later``'s records after the one that meets the last true record; whether one did.

        They meet when both read the same keyframe for that window into the same reader
        state; the later part's purchase totals are then shifted by the true total there.
        """
        if not self.records:
            return False
        last = self.records[-1]
        at = next((i for i, r in enumerate(later.records) if r.window == last.window), None)
        if at is None:
            return False
        theirs = later.records[at]
        if not (theirs.keyframe and (theirs.t_sec, theirs.state) == (last.t_sec, last.state)):
            return False
        shift = {f: _total(self.records, f) - _total(later.records[: at + 1], f) for f in self._events}
        for record in later.records[at + 1 :]:
            sample = record.sample
            if sample is not None and any(shift.values()):
                moved = {f: getattr(sample, f) + shift[f] for f in self._events if getattr(sample, f) is not None}
                record = dataclasses.replace(record, sample=sample.model_copy(update=moved))
            self.records.append(record)
        self.decode_errors += later.decode_errors
        self.stopped = later.stopped
        self.finished = later.stopped is not None
        return True

    def reading(self, stats: SamplerStats, parts: int, worker_cpu_sec: float) -> Reading:
        counts = [sum(r.counts[k] for r in self.records) for k in range(4)]
        return Reading(
            samples=[r.sample for r in self.records if r.sample is not None],
            width=stats.width,
            height=stats.height,
            duration_sec=stats.duration_sec,
            parts=parts,
            frames_decoded=self.frames_decoded,
            frames_sampled=len(self.records),
            ocr_calls=counts[0],
            ocr_skipped=counts[1],
            unreadable=counts[2],
            unconfirmed=counts[3],
            decode_errors=self.decode_errors,
            stopped=self.stopped,
            worker_cpu_sec=worker_cpu_sec,
        )


def _total(records: Sequence[Record], event_field: str) -> float:
    """The running total of ``event_field`` after ``records`` (0 before any reading of it)."""
    for record in reversed(records):
        value = None if record.sample is None else getattr(record.sample, event_field)
        if value is not None:
            return float(value)
    return 0.0
