"""Where past analyses come from: local files, Azure Blob Storage, and an HTTP API.

Local files are read in order and need no checkpoint. The Blob and API sources
are resumable: a :class:`Checkpoint` file records how far a source got
(the last blob name, or the URL of the next page, plus how many records of that
blob or page are done), so an interrupted run continues where it stopped rather
than starting over. Records are committed to the checkpoint only *after* the
backfill has handled them: a source is a generator, and ``run_backfill`` resumes
it for the next record only once it has finished ingesting the previous one, so
the code right after each ``yield`` is the natural place to commit.

HTTP API paging contract (also in ``docs/backfill.md``):

* The first request is ``GET URL`` with ``page=1&per_page=M`` added (parameters
  already in ``URL`` win); a cursor-paged API may ignore them. A token is sent
  as ``Authorization: Bearer T``, and only to the origin of ``URL``.
* A response is either a JSON array of records, or a JSON object holding the
  records under ``items``, ``analyses`` or ``data``.
* If the object has a ``next`` or ``next_url`` key, its value is the URL of the
  next page (absolute, or relative to the page's URL); with a ``next_cursor``
  key, the next page is ``URL`` with ``cursor=<value>``. A null or empty value
  ends the backfill.
* Otherwise paging is by number: ``page`` is increased by one until a page
  comes back empty.
* 429 and 5xx responses and network errors are retried with exponential
  backoff (``Retry-After`` is honoured); any other error status, or a page that
  is not in one of these shapes, stops the run with a failure that names the
  page, and a re-run with the same checkpoint retries that page.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from rag_core.analysis.record import JsonDepthError, json_depth, load_json
from rag_core.base.settings import Settings
from rag_core.base.storage import AzureError, ContainerClient

# The API's limit (MAX_JSON_DEPTH) unless the caller passes the configured one: a backfill file
# is as much outside input as a request body, and Python's decoder recurses.
DEFAULT_MAX_DEPTH: int = Settings.model_fields["max_json_depth"].default


@dataclass
class SourceItem:
    """One record as read from a source: ``data`` or the ``error`` that prevented reading it."""

    name: str
    data: Any = None
    error: str | None = None


class Source(Protocol):
    """Where past analyses come from (local files; Blob and HTTP API sources plug in here)."""

    def items(self) -> Iterator[SourceItem]: ...


def records_in_document(name: str, text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Iterator[SourceItem]:
    """Split one file's text into records: a JSON object, a JSON array, or JSON Lines.

    Parsed with the API's guard (:func:`rag_core.analysis.record.load_json`): a record nested
    deeper than ``max_depth`` (a whole-file array may be one level deeper, as in the inbox) is
    an error item naming the limit, never a RecursionError; NaN and Infinity are refused.
    """
    stripped = text.strip()
    if not stripped:
        yield SourceItem(name, error="empty file")
        return
    depth = json_depth(stripped)  # measured without parsing: nothing recursive sees a deep file
    too_deep = SourceItem(name, error=f"JSON nested {depth} levels deep; the limit is {max_depth} (MAX_JSON_DEPTH)")
    doc: Any = None
    problem: str | None = None
    if depth <= max_depth + 1:
        try:
            doc = load_json(stripped, max_depth=max_depth + 1)
        except ValueError as exc:
            problem = f"invalid JSON: {exc}"
    else:
        problem = too_deep.error
    if problem is None:
        if isinstance(doc, list):
            yield from (SourceItem(f"{name}[{i}]", item) for i, item in enumerate(doc))
        else:
            yield too_deep if depth > max_depth else SourceItem(name, doc)
        return
    lines = list(_json_lines(name, stripped, max_depth)) if "\n" in stripped else []
    if any(item.error is None or "(MAX_JSON_DEPTH)" in item.error for item in lines):
        yield from lines  # JSON Lines: each line a record of its own
    else:
        yield SourceItem(name, error=problem)


def _json_lines(name: str, text: str, max_depth: int) -> Iterator[SourceItem]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield SourceItem(f"{name}:{lineno}", load_json(line, max_depth=max_depth))
            except JsonDepthError as exc:
                yield SourceItem(f"{name}:{lineno}", error=f"JSON {exc}")
            except ValueError as exc:
                yield SourceItem(f"{name}:{lineno}", error=f"invalid JSON: {exc}")


@dataclass
class LocalSource:
    """``*.json`` / ``*.jsonl`` files in a folder (optionally its subfolders)."""

    directory: Path
    recursive: bool = False
    max_depth: int = DEFAULT_MAX_DEPTH

    def items(self) -> Iterator[SourceItem]:
        if not self.directory.is_dir():
            raise FileNotFoundError(f"no such folder: {self.directory}")
        pattern = "**/*" if self.recursive else "*"
        for path in sorted(self.directory.glob(pattern)):
            if path.suffix not in (".json", ".jsonl") or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                yield SourceItem(str(path), error=f"unreadable: {exc}")
                continue
            yield from records_in_document(str(path), text, max_depth=self.max_depth)


RECORD_KEYS = ("items", "analyses", "data")
NEXT_URL_KEYS = ("next", "next_url")
NEXT_CURSOR_KEY = "next_cursor"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used (unreadable, or written for another source)."""


@dataclass
class Checkpoint:
    """How far one source got, kept in a JSON file (or only in memory when ``path`` is None).

    ``source`` names the source the file was written for, so resuming a blob
    backfill from an API checkpoint (or another container) is refused instead of
    silently skipping records. ``position`` is the source's own resume point.
    """

    path: Path | None
    source: str
    position: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    complete: bool = False

    @classmethod
    def open(cls, path: Path | None, source: str) -> Checkpoint:
        """The checkpoint at ``path`` if it exists (it must be for ``source``), else a fresh one."""
        if path is None or not path.exists():
            return cls(path, source)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            found = state["source"]
            checkpoint = cls(path, found, dict(state["position"]), int(state["records"]), bool(state["complete"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"unreadable checkpoint {path}: {exc}") from None
        if found != source:
            raise CheckpointError(f"checkpoint {path} belongs to {found!r}, not {source!r}")
        return checkpoint

    def commit(self, position: dict[str, Any], *, records: int = 1) -> None:
        """Record that ``records`` more records are done and the source now stands at ``position``."""
        self.position = position
        self.records += records
        self._save()

    def finish(self) -> None:
        """Mark the source as fully read; later runs with this file have nothing to do."""
        self.complete = True
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        state = {
            "source": self.source,
            "position": self.position,
            "records": self.records,
            "complete": self.complete,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # Write then rename, so a crash mid-write never leaves a truncated checkpoint.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass(kw_only=True)
class _ResumableSource:
    """Checkpoint and per-run record limit shared by the sources below.

    ``limit`` caps the records handled in one run (a backfill in chunks); with a
    checkpoint file the next run picks up right after them.
    """

    checkpoint: Checkpoint | None = None
    limit: int | None = None
    _taken: int = field(default=0, init=False, repr=False)

    @property
    def identity(self) -> str:
        raise NotImplementedError

    def _checkpoint(self) -> Checkpoint:
        if self.checkpoint is None:
            self.checkpoint = Checkpoint(None, self.identity)
        return self.checkpoint

    def _commit(self, position: dict[str, Any]) -> None:
        self._taken += 1
        self._checkpoint().commit(position)

    def _limit_reached(self) -> bool:
        return self.limit is not None and self._taken >= self.limit


@dataclass(kw_only=True)
class AzureBlobSource(_ResumableSource):
    """``*.json`` / ``*.jsonl`` blobs of one container, in name order, optionally under a prefix.

    The checkpoint position is ``{"blob", "etag", "done", "finished"}``: the blob
    being read, its ETag, how many of its records are done and whether all are.
    Blob Storage lists names in lexicographic order, so every blob before the
    checkpointed one is done. If that blob changed since (new ETag), it is read
    again from its first record; ingest is idempotent, so nothing is duplicated.
    """

    container: ContainerClient
    prefix: str = ""
    max_depth: int = DEFAULT_MAX_DEPTH

    @property
    def identity(self) -> str:
        return f"azure:{self.container.account_name}/{self.container.container_name}/{self.prefix}"

    def items(self) -> Iterator[SourceItem]:
        checkpoint = self._checkpoint()
        if checkpoint.complete:
            return
        resume = checkpoint.position
        if not self.container.exists():
            raise FileNotFoundError(f"no such container: {self.container.container_name}")
        for blob in self.container.list_blobs(name_starts_with=self.prefix or None):
            name: str = blob.name
            if not name.endswith((".json", ".jsonl")):
                continue
            if resume and (name < resume["blob"] or (name == resume["blob"] and resume["finished"])):
                continue
            if self._limit_reached():
                return
            label = f"{self.container.container_name}/{name}"
            try:
                download = self.container.download_blob(name)
                etag = download.properties.etag
                text = download.readall().decode("utf-8")
                records = list(records_in_document(label, text, max_depth=self.max_depth))
            except (AzureError, UnicodeDecodeError) as exc:
                etag, records = None, [SourceItem(label, error=f"unreadable: {exc}")]
            skip = resume["done"] if resume and name == resume["blob"] and etag == resume["etag"] else 0
            for done, item in enumerate(records[skip:], skip + 1):
                if self._limit_reached():
                    return
                yield item
                self._commit({"blob": name, "etag": etag, "done": done, "finished": done == len(records)})
        checkpoint.finish()


class PageError(RuntimeError):
    """A page that could not be fetched (after retries) or does not follow the paging contract."""


class RateLimiter:
    """At most ``rate`` requests per second: each waits until ``1/rate`` s after the previous one.

    A minimum interval rather than a bucket, because a backfill is one steady
    stream of requests with nothing to gain from bursts.
    """

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def _with_query(url: str, **params: str | int) -> str:
    """``url`` with ``params`` set in its query string (replacing any same-named ones)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items()})
    return urlunsplit(parts._replace(query=urlencode(query)))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (a number or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse without a zone; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(kw_only=True)
class ApiSource(_ResumableSource):
    """Past analyses from an HTTP API, page by page (the contract is in the module docstring).

    The checkpoint position is ``{"url", "skip"}``: the page to fetch and how
    many of its records are done. Paging must be stable (a page's records do
    not move while the backfill runs) for ``skip`` to point at the right record.
    """

    url: str
    token: str | None = None
    per_page: int = 100
    rate: float | None = 5.0
    retries: int = 5
    backoff: float = 0.5
    max_wait: float = 120.0
    timeout: float = 30.0
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {self.url}")
        if self.per_page < 1 or (self.rate is not None and self.rate <= 0):
            raise ValueError("per_page and rate must be positive")
        self._limiter = RateLimiter(self.rate)

    @property
    def identity(self) -> str:
        return f"api:{self.url}"

    def items(self) -> Iterator[SourceItem]:
        checkpoint = self._checkpoint()
        if checkpoint.complete:
            return
        given = dict(parse_qsl(urlsplit(self.url).query))
        defaults = {k: v for k, v in (("page", 1), ("per_page", self.per_page)) if k not in given}
        url: str = checkpoint.position.get("url") or _with_query(self.url, **defaults)
        skip: int = checkpoint.position.get("skip", 0)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        with httpx.Client(headers=headers, timeout=self.timeout) as client:
            while not self._limit_reached():
                try:
                    body = self._get(client, url)
                    records = self._records(body)
                except PageError as exc:
                    yield self._stopped(url, exc)
                    return
                # A bad next link must not cost this page's records: they go first, the error after.
                problem: PageError | None = None
                try:
                    next_url = self._next_url(body, url, records)
                except PageError as exc:
                    next_url, problem = None, exc
                for index in range(skip, len(records)):
                    if self._limit_reached():
                        return
                    yield SourceItem(f"{url}[{index}]", records[index])
                    self._commit({"url": url, "skip": index + 1})
                if problem is not None:
                    yield self._stopped(url, problem)
                    return
                if next_url is None:
                    checkpoint.finish()
                    return
                checkpoint.commit({"url": next_url, "skip": 0}, records=0)
                url, skip = next_url, 0

    @staticmethod
    def _stopped(url: str, problem: PageError) -> SourceItem:
        return SourceItem(url, error=f"{problem}; stopped here, re-run with the checkpoint to resume")

    @staticmethod
    def _records(body: Any) -> list[Any]:
        """The records of one page: a bare array, or the list under a known key of an object."""
        if isinstance(body, list):
            return body
        if isinstance(body, dict):
            key = next((k for k in RECORD_KEYS if k in body), None)
            if key is not None and isinstance(body[key], list):
                return list(body[key])
        raise PageError(f"expected a JSON array, or an object with a list under one of {', '.join(RECORD_KEYS)}")

    def _next_url(self, body: Any, url: str, records: list[Any]) -> str | None:
        """The URL of the page after ``url``, or None after the last page."""
        if not isinstance(body, dict) or not any(k in body for k in (*NEXT_URL_KEYS, NEXT_CURSOR_KEY)):
            # Numbered pages: the next number, until a page comes back empty.
            if not records:
                return None
            page = dict(parse_qsl(urlsplit(url).query)).get("page", "1")
            if not page.isdigit():
                raise PageError(f"page parameter {page!r} is not a number")
            return _with_query(url, page=int(page) + 1)
        link_key = next((k for k in NEXT_URL_KEYS if k in body), None)
        if link_key is not None:
            link = body[link_key]
            if not link:
                return None
            if not isinstance(link, str):
                raise PageError(f"{link_key!r} must be a URL string")
            next_url = urljoin(url, link)
        else:
            cursor = body[NEXT_CURSOR_KEY]
            if cursor is None or cursor == "":
                return None
            next_url = _with_query(self.url, cursor=cursor, per_page=self.per_page)
        # The bearer token goes only to the API it was given for.
        if _origin(next_url) != _origin(self.url):
            raise PageError(f"next page {next_url} is on another origin than {self.url}")
        if next_url == url:
            raise PageError("the next page is this page again")
        return next_url

    def _get(self, client: httpx.Client, url: str) -> Any:
        """GET a page as JSON, retrying 429, 5xx and network errors with backoff."""
        attempt = 0
        while True:
            attempt += 1
            self._limiter.wait()
            wait: float | None = None
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    try:  # a page holds its records two levels down at most ({"items": [...]})
                        return load_json(response.content, max_depth=self.max_depth + 2)
                    except JsonDepthError as exc:
                        raise PageError(f"response JSON is {exc}") from None
                    except ValueError:
                        raise PageError("response is not JSON") from None
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise PageError(f"{problem}: {response.text[:200]}")
                wait = _retry_after(response)
            if attempt > self.retries:
                raise PageError(f"{problem} after {attempt} attempts")
            if wait is None:
                # Exponential backoff with jitter, so parallel clients do not retry in lockstep.
                delay = self.backoff * 2 ** (attempt - 1)
                wait = delay / 2 + random.uniform(0, delay / 2)
            time.sleep(min(wait, self.max_wait))
