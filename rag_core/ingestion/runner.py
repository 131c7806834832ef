"""Run one ingest job from its queue message: what the queue trigger and the local worker call.

A job reads its inputs from the uploads container, fills the analysis' sales
from the sales screenshot (the analysis' own numbers win over OCR) and its
screen-metrics series from the screen recording, then ingests the analysis,
or, with no analysis, attaches the outcome to the already stored video.

Delivery semantics (the queue is at-least-once):

* a job already ``done`` is not run again, and ingest itself is idempotent,
  so a redelivered message changes nothing;
* a fault that a retry may cure (Qdrant or storage down, embedding API
  throttled, the video's analysis not stored yet) is re-raised so the host
  delivers the message again; the job goes back to ``queued`` with the error;
* on the last delivery (``dequeue_count >= MAX_DEQUEUE_COUNT``) the job is
  recorded ``failed`` with the reason before re-raising, and the host moves
  the message to ``<queue>-poison``;
* a fault no retry can cure fails the job at once and the message is
  consumed: the input is gone or malformed (any ``ValueError``, ``TypeError``,
  ``RecursionError`` or ``OverflowError`` raised while reading or storing it, as
  a deeply nested or absurd value gives), the record names another brand than
  the job's, an unscoped extraction names a video id several brands hold, or
  the attempt ran past ``JOB_TIME_BUDGET_SEC`` (checked between the stages of a
  job and inside the long ones: before each frame of a screen recording and each
  chunk of phases embedded and written). Only what is left (storage, Qdrant, the
  embedding API) is transient;
* a message delivered more than ``MAX_DEQUEUE_COUNT`` times (every earlier
  attempt died with its process, so none could record anything) fails its job
  without running it again, and a job already ``failed`` (by a permanent fault,
  or by the stuck-job sweep) is not run by a stray redelivery.

A screenshot's per-field readings (value, confidence, raw text, uncertain) are kept
beside the stream record (:mod:`rag_core.sales.provenance`), not in the job record.

A job record stays small whatever the job: the result lists at most
``MAX_LISTED_IDS`` point ids beside the counts (Table Storage entities are
limited to 64 KiB per property), and :mod:`rag_core.jobs.records` caps the
error and warnings.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rag_core.analysis.record import (
    AnalysisFormatError,
    AnalysisRecord,
    JsonDepthError,
    Sales,
    ScreenMetricSample,
    load_json,
    parse_analysis,
)
from rag_core.base.logs import log_context
from rag_core.base.storage import ContainerClient, ResourceNotFoundError
from rag_core.context import AppContext
from rag_core.jobs.records import JobMessage, JobRecord, JobStatus, now
from rag_core.knowledge.schemas import IngestResult
from rag_core.knowledge.store import (
    AmbiguousVideoIdError,
    BrandScope,
    Owner,
    VideoNotFoundError,
    VideoOwnershipError,
)
from rag_core.sales.provenance import provenance_of
from rag_core.sales.reader import InvalidInputError, SalesExtraction, extract_sales_from_image
from rag_core.screen.extractor import extract_screen_metrics

log = logging.getLogger(__name__)


MAX_LISTED_IDS = 100


class PermanentJobError(Exception):
    """The job cannot succeed however often it is retried."""


class JobTimeBudgetError(PermanentJobError):
    """The attempt ran past ``JOB_TIME_BUDGET_SEC``; a retry would do the same work again."""


# Raised by malformed input wherever it is finally noticed (pydantic and JSON errors are
# ValueErrors; a RecursionError comes from a structure nested too deep for a pickler).
_MALFORMED = (ValueError, TypeError, RecursionError, OverflowError)


def is_permanent(exc: BaseException) -> bool:
    """Whether no retry can cure ``exc``; everything else counts as an infrastructure fault."""
    if isinstance(exc, VideoNotFoundError):  # the analysis may still arrive: retried
        return False
    return isinstance(exc, (PermanentJobError, VideoOwnershipError, AmbiguousVideoIdError, *_MALFORMED))


@dataclass
class Budget:
    """The wall-clock allowance of one attempt.

    :meth:`check` is called between the stages of a job and, handed down as a plain
    callable (the lower layers know nothing of jobs), inside the long loops of a stage,
    so one long stage cannot overrun the budget by its whole length.
    """

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def check(self, where: str) -> None:
        """Raise :class:`JobTimeBudgetError` naming ``where`` the job stood once the budget is spent."""
        spent = time.monotonic() - self.started
        if spent > self.seconds:
            raise JobTimeBudgetError(
                f"the job ran {spent:.1f} s, past its time budget of {self.seconds:.0f} s "
                f"(JOB_TIME_BUDGET_SEC), {where}"
            )


@dataclass
class JobOutcome:
    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def handle_job_message(ctx: AppContext, body: bytes | str, *, dequeue_count: int) -> JobRecord:
    """Run the job of one delivered message and record its status (see the module docstring)."""
    message = JobMessage.model_validate_json(body)
    with log_context(job_id=message.job_id, video_id=message.video_id, attempt=dequeue_count):
        return _handle(ctx, message, dequeue_count)


def _handle(ctx: AppContext, message: JobMessage, dequeue_count: int) -> JobRecord:
    job = ctx.jobs.get(message.job_id) or _adopt(ctx, message)
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        log.info("job %s already %s; redelivery ignored", job.job_id, job.status)
        return job
    if dequeue_count > ctx.settings.max_dequeue_count:
        reason = (
            f"gave up after {dequeue_count - 1} deliveries that never finished "
            "(the worker died or was stopped each time)"
        )
        log.error("job %s failed: %s", job.job_id, reason)
        return ctx.jobs.update(job.job_id, status=JobStatus.FAILED, error=reason)
    ctx.jobs.update(job.job_id, status=JobStatus.RUNNING, attempts=dequeue_count, enqueued=True)
    started = time.monotonic()
    try:
        outcome = run_job(ctx, message, Budget(ctx.settings.job_time_budget_sec))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if is_permanent(exc):
            log.warning("job %s failed permanently: %s", job.job_id, reason)
            error = str(exc) if isinstance(exc, PermanentJobError) else f"invalid input: {reason}"
            return ctx.jobs.update(job.job_id, status=JobStatus.FAILED, error=error)
        last = dequeue_count >= ctx.settings.max_dequeue_count
        log.warning("job %s attempt %d failed%s: %s", job.job_id, dequeue_count, " (last)" if last else "", reason)
        if last:
            ctx.jobs.update(
                job.job_id, status=JobStatus.FAILED, error=f"failed after {dequeue_count} attempts: {reason}"
            )
        else:
            ctx.jobs.update(job.job_id, status=JobStatus.QUEUED, error=f"attempt {dequeue_count} failed: {reason}")
        raise
    done = ctx.jobs.update(
        job.job_id, status=JobStatus.DONE, error=None, result=outcome.result, warnings=outcome.warnings
    )
    log.info("job %s done in %.1f s: %s", job.job_id, time.monotonic() - started, outcome.result.get("status"))
    return done


def sweep_stuck_jobs(ctx: AppContext) -> list[JobRecord]:
    """Fail the jobs whose status would otherwise never change, so status never lies forever.

    * ``running`` for twice ``JOB_TIME_BUDGET_SEC`` without a change: its worker died and
      the message is gone too (a live attempt fails itself once over budget, and a
      redelivered one rewrites the record when it starts);
    * ``queued`` for ``MAX_DEQUEUE_COUNT`` budgets: its message was lost (every delivery
      would have touched the record by then).
    """
    budget = dt.timedelta(seconds=ctx.settings.job_time_budget_sec)
    stamp = now()
    swept = ctx.jobs.fail_stuck(
        JobStatus.RUNNING,
        stamp - 2 * budget,
        f"stuck: running for more than {2 * budget.total_seconds():.0f} s with no progress (the worker was lost)",
    )
    swept += ctx.jobs.fail_stuck(
        JobStatus.QUEUED,
        stamp - ctx.settings.max_dequeue_count * budget,
        f"stuck: queued for more than {ctx.settings.max_dequeue_count * budget.total_seconds():.0f} s "
        "(its queue message was lost); submit it again",
    )
    for job in swept:
        log.warning("job %s marked failed by the sweep: %s", job.job_id, job.error)
    return swept


def _adopt(ctx: AppContext, message: JobMessage) -> JobRecord:
    """A record for a message that arrived without one (e.g. re-sent from the poison queue by hand)."""
    stamp = now()
    record = JobRecord(
        job_id=message.job_id,
        kind=message.kind,
        video_id=message.video_id,
        brand_id=message.brand_id,
        source="queue",
        created_at=stamp,
        updated_at=stamp,
        message=message,
        enqueued=True,
    )
    return ctx.jobs.create(record)[0]


def run_job(ctx: AppContext, message: JobMessage, budget: Budget) -> JobOutcome:
    uploads = ctx.storage.container(ctx.settings.uploads_container)
    warnings: list[str] = []
    depth = ctx.settings.max_json_depth
    record = _load_analysis(uploads, message.analysis_blob, depth) if message.analysis_blob else None
    # The video the job writes: the analysis' own (under the job's brand, else the record's),
    # or for an extraction the job's brand's video (any owner's, when the job has no brand).
    address: BrandScope = message.brand_id
    if record is not None:
        address = Owner(message.brand_id if message.brand_id is not None else record.brand_id)
    if record is None:
        with ctx.knowledge() as kb:  # before the costly extraction: retried until the analysis is stored
            if kb.get_video(message.video_id, brand_id=address) is None:
                raise VideoNotFoundError(f"video {message.video_id!r} is not stored yet: its analysis must come first")
    budget.check("before reading the sales screenshot")
    sales = _read_sales(ctx, uploads, message.sales_image_blob, warnings) if message.sales_image_blob else None
    budget.check("before reading the screen recording")
    screen = (
        _read_screen(ctx, uploads, message.screen_recording_blob, warnings, budget)
        if message.screen_recording_blob
        else None
    )
    budget.check("before storing the analysis")
    try:
        with ctx.knowledge() as kb:
            if record is not None:
                result = kb.ingest(_merge(record, sales, screen), brand_id=message.brand_id, checkpoint=budget.check)
            elif sales is None and screen is None:
                raise PermanentJobError("nothing could be read from the uploads: " + "; ".join(warnings))
            else:
                result = kb.update_outcome(
                    message.video_id,
                    sales=sales.sales if sales else None,
                    set_products=(sales.set_products or None) if sales else None,
                    screen_metrics=screen,
                    brand_id=address,
                    checkpoint=budget.check,
                )
            if sales is not None:
                kb.record_sales_provenance(
                    message.video_id,
                    provenance_of(sales, job_id=message.job_id, read_at=now()),
                    replaces_products=bool(sales.set_products) and not (record and record.set_products),
                    brand_id=address,
                )
    except VideoOwnershipError as exc:
        raise PermanentJobError(str(exc)) from None
    return JobOutcome(result=_summary(result), warnings=warnings)


def _summary(result: IngestResult) -> dict[str, Any]:
    """The job's result: counts, and the first ``MAX_LISTED_IDS`` point ids (``point_count`` says
    how many there are; the ids follow from the video id and phase indexes anyway)."""
    summary = {"status": result.status, **result.model_dump(), "point_count": len(result.point_ids)}
    summary["point_ids"] = result.point_ids[:MAX_LISTED_IDS]
    return summary


def _download(container: ContainerClient, name: str) -> bytes:
    try:
        return container.download_blob(name).readall()
    except ResourceNotFoundError:
        raise PermanentJobError(f"input blob {container.container_name}/{name} is missing") from None


def _load_analysis(container: ContainerClient, name: str, max_depth: int) -> AnalysisRecord:
    try:
        return parse_analysis(load_json(_download(container, name), max_depth=max_depth))
    except (JsonDepthError, ValueError, AnalysisFormatError) as exc:
        raise PermanentJobError(f"analysis {name} is invalid: {exc}") from None


def _read_sales(ctx: AppContext, container: ContainerClient, name: str, warnings: list[str]) -> SalesExtraction | None:
    """The sales read from a screenshot; None (with a warning) when the image is unusable."""
    try:
        extraction = extract_sales_from_image(_download(container, name), ctx.settings)
    except InvalidInputError as exc:
        warnings.append(f"sales image {name}: {exc}")
        return None
    warnings.extend(f"sales image: {w}" for w in extraction.warnings)
    if not extraction.sales.model_dump(exclude_none=True, exclude_defaults=True) and not extraction.set_products:
        warnings.append(f"sales image {name}: no sales figure could be read")
        return None
    return extraction


def _read_screen(
    ctx: AppContext, container: ContainerClient, name: str, warnings: list[str], budget: Budget
) -> list[ScreenMetricSample] | None:
    """The overlay series of a screen recording; None (with the reason as a warning) when empty."""
    result = extract_screen_metrics(_download(container, name), settings=ctx.settings, checkpoint=budget.check)
    warnings.extend(f"screen recording: {w}" for w in result.warnings)
    if not result.samples:
        warnings.append(f"screen recording {name}: {result.reason}")
        return None
    return result.samples


def _merge(
    record: AnalysisRecord, sales: SalesExtraction | None, screen: list[ScreenMetricSample] | None
) -> AnalysisRecord:
    """The analysis with extracted outcome filled in where the analysis itself has none."""
    update: dict[str, Any] = {}
    if sales is not None:
        own = record.sales.model_dump(exclude_unset=True, exclude_none=True) if record.sales else {}
        update["sales"] = Sales.model_validate({**sales.sales.model_dump(exclude_none=True), **own})
        if not record.set_products:
            update["set_products"] = sales.set_products
    if screen and not record.screen_metrics:
        update["screen_metrics"] = screen
    return record.model_copy(update=update) if update else record
