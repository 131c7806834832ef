"""Load past analyses into the knowledge base.

    python -m rag_core.backfill --source local --dir samples/ [--dry-run] [--recursive]

A source yields raw items (a name and either a decoded JSON value or the reason
it could not be read); each record is validated and ingested on its own, so a
bad file is reported with its field paths and skipped, never aborting the rest.
Ingest is idempotent: running a backfill twice reports everything ``unchanged``
and makes no embedding calls. Exit status: 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from rag_core.models import AnalysisFormatError, parse_analysis
from rag_core.settings import get_settings


@dataclass
class SourceItem:
    """One record as read from a source: ``data`` or the ``error`` that prevented reading it."""

    name: str
    data: Any = None
    error: str | None = None


class Source(Protocol):
    """Where past analyses come from (local files; Blob and HTTP API sources plug in here)."""

    def items(self) -> Iterator[SourceItem]: ...


def records_in_document(name: str, text: str) -> Iterator[SourceItem]:
    """Split one file's text into records: a JSON object, a JSON array, or JSON Lines."""
    stripped = text.strip()
    if not stripped:
        yield SourceItem(name, error="empty file")
        return
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError as exc:
        if "\n" not in stripped:
            yield SourceItem(name, error=f"invalid JSON: {exc}")
            return
        for lineno, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    yield SourceItem(f"{name}:{lineno}", json.loads(line))
                except json.JSONDecodeError as line_exc:
                    yield SourceItem(f"{name}:{lineno}", error=f"invalid JSON: {line_exc}")
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield SourceItem(f"{name}[{i}]", item)
    else:
        yield SourceItem(name, doc)


@dataclass
class LocalSource:
    """``*.json`` / ``*.jsonl`` files in a folder (optionally its subfolders)."""

    directory: Path
    recursive: bool = False

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
            yield from records_in_document(str(path), text)


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
    source: Source, *, dry_run: bool = False, brand_id: int | None = None, progress: bool = True
) -> BackfillSummary:
    """Validate (and unless ``dry_run``, ingest) every record of ``source``."""
    summary = BackfillSummary()
    kb = None
    if not dry_run:
        from rag_core.service import KnowledgeBase

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
    return summary


def build_source(args: argparse.Namespace) -> Source:
    if args.source == "local":
        if not args.dir:
            raise SystemExit("--source local needs --dir")
        return LocalSource(Path(args.dir), recursive=args.recursive)
    raise SystemExit(f"unknown source {args.source!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rag_core.backfill", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["local"], default="local")
    p.add_argument("--dir", help="folder of analysis JSON / JSONL files (--source local)")
    p.add_argument("--recursive", action="store_true", help="also read subfolders")
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


if __name__ == "__main__":
    raise SystemExit(main())
