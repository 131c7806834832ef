"""Load past analyses into the knowledge base.

    python -m rag_core.operations.backfill --source local --dir samples/ [--dry-run] [--recursive]
    python -m rag_core.operations.backfill --source azure --container NAME [--prefix P] [--checkpoint F]
    python -m rag_core.operations.backfill --source api --url URL [--token T] [--rate N] [--checkpoint F]

Blob and API sources (``rag_core.operations.backfill.sources``) resume from a JSON
``--checkpoint`` file, so an interrupted run continues where it stopped; the
API source is rate-limited and retries 429/5xx. See docs/backfill.md.

A source yields raw items (a name and either a decoded JSON value or the reason
it could not be read); each record is validated and ingested on its own, so a
bad file is reported with its field paths and skipped, never aborting the rest.
Ingest is idempotent: running a backfill twice reports everything ``unchanged``
and makes no embedding calls. Exit status: 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from rag_core.analysis.record import AnalysisFormatError, parse_analysis
from rag_core.base.settings import Settings, get_settings
from rag_core.operations.backfill.sources import (
    ApiSource,
    AzureBlobSource,
    Checkpoint,
    CheckpointError,
    LocalSource,
    Source,
)

if TYPE_CHECKING:
    from rag_core.knowledge.knowledge_base import KnowledgeBase


@dataclass
class BackfillSummary:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def render(self) -> str:
        order = ("inserted", "updated", "unchanged", "valid", "failed")
        lines = ["backfill: " + ", ".join(f"{k} {self.counts[k]}" for k in order if k in self.counts or k == "failed")]
        lines += [f"  FAILED {name}: {reason}" for name, reason in self.failures]
        return "\n".join(lines)


def run_backfill(
    source: Source,
    *,
    dry_run: bool = False,
    brand_id: int | None = None,
    progress: bool = True,
    kb: KnowledgeBase | None = None,
) -> BackfillSummary:
    """Validate (and unless ``dry_run``, ingest) every record of ``source``.

    ``kb`` defaults to one built from the process settings; tests pass their own.
    """
    summary = BackfillSummary()
    if dry_run:
        kb = None
    elif kb is None:
        from rag_core.knowledge.knowledge_base import KnowledgeBase

        kb = KnowledgeBase(get_settings())
    for item in tqdm(source.items(), desc="backfill", unit="rec", disable=not progress, file=sys.stderr):
        if item.error is not None:
            summary.counts["failed"] += 1
            summary.failures.append((item.name, item.error))
            continue
        try:
            record = parse_analysis(item.data)
            if kb is None:
                summary.counts["valid"] += 1
                continue
            result = kb.ingest(record, brand_id=brand_id)
        except (AnalysisFormatError, PermissionError) as exc:
            summary.counts["failed"] += 1
            summary.failures.append((item.name, str(exc)))
            continue
        summary.counts[result.status] += 1
    if kb is not None:
        kb.optimize()  # index what the backfill wrote now, not at the first idle minute
    return summary


def build_source(args: argparse.Namespace, settings: Settings | None = None) -> Source:
    """The source the arguments ask for; ``settings`` default to the process settings."""
    if args.source == "local":
        if not args.dir:
            raise SystemExit("--source local needs --dir")
        if args.checkpoint or args.limit:
            raise SystemExit("--checkpoint and --limit are for --source azure / api")
        depth = (settings or get_settings()).max_json_depth
        return LocalSource(Path(args.dir), recursive=args.recursive, max_depth=depth)
    from rag_core.base.storage import Storage

    if args.dry_run and args.checkpoint:
        raise SystemExit("--dry-run writes nothing, so it takes no --checkpoint")
    settings = settings or get_settings()
    source: AzureBlobSource | ApiSource
    if args.source == "azure":
        if not args.container:
            raise SystemExit("--source azure needs --container")
        container = Storage(settings).blobs.get_container_client(args.container)
        source = AzureBlobSource(
            container=container, prefix=args.prefix or "", limit=args.limit, max_depth=settings.max_json_depth
        )
    elif args.source == "api":
        if not args.url:
            raise SystemExit("--source api needs --url")
        secret = settings.backfill_api_token
        token = args.token or (secret.get_secret_value() if secret else None)
        rate = args.rate or settings.backfill_rate_per_sec
        try:
            source = ApiSource(
                url=args.url,
                token=token,
                per_page=args.per_page,
                rate=rate,
                limit=args.limit,
                max_depth=settings.max_json_depth,
            )
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    else:
        raise SystemExit(f"unknown source {args.source!r}")
    try:
        source.checkpoint = Checkpoint.open(Path(args.checkpoint) if args.checkpoint else None, source.identity)
    except CheckpointError as exc:
        raise SystemExit(str(exc)) from None
    if source.checkpoint.complete:
        print(f"checkpoint {args.checkpoint} is complete: nothing to do (delete it to start over)", file=sys.stderr)
    return source


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rag_core.operations.backfill", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["local", "azure", "api"], default="local")
    p.add_argument("--dir", help="folder of analysis JSON / JSONL files (--source local)")
    p.add_argument("--recursive", action="store_true", help="also read subfolders")
    p.add_argument("--container", help="blob container of analysis JSON / JSONL blobs (--source azure)")
    p.add_argument("--prefix", help="only blobs whose names start with this (--source azure)")
    p.add_argument("--url", help="first page of the analyses API (--source api; paging in docs/backfill.md)")
    p.add_argument("--token", help="bearer token for --url (default: setting BACKFILL_API_TOKEN)")
    p.add_argument("--per-page", type=int, default=100, help="page size asked of the API (default 100)")
    p.add_argument("--rate", type=float, help="max API requests per second (default: BACKFILL_RATE_PER_SEC, 5)")
    p.add_argument("--checkpoint", help="JSON file recording progress; a re-run resumes from it (azure / api)")
    p.add_argument("--limit", type=int, help="stop after this many records (azure / api); resume with --checkpoint")
    p.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    p.add_argument("--brand-id", type=int, help="stamp this brand (tenant) on every record")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    summary = run_backfill(
        build_source(args), dry_run=args.dry_run, brand_id=args.brand_id, progress=not args.no_progress
    )
    print(summary.render())
    return 1 if summary.counts["failed"] else 0
