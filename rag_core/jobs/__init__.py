"""Job records: what was submitted, its state and its result, in Table Storage; queue messages that carry them."""

from rag_core.jobs.records import JobKind, JobMessage, JobRecord, JobStatus, JobStore, job_id_for

__all__ = ["JobKind", "JobMessage", "JobRecord", "JobStatus", "JobStore", "job_id_for"]
