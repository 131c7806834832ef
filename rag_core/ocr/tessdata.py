"""Where Tesseract's language data lives, for both OCR paths (sales screenshots, screen recordings)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)


class OcrUnavailableError(RuntimeError):
    """Tesseract or its language data is missing: a deployment problem, not bad input."""


def find_tessdata(configured: Path | None, languages: str | Iterable[str]) -> Path:
    """The tessdata folder holding every language named (``"jpn+eng"`` or ``["jpn", "eng"]``)."""
    specs = [languages] if isinstance(languages, str) else list(languages)
    needed = sorted({lang for spec in specs for lang in spec.split("+") if lang})
    candidates = [configured] if configured is not None else [Path(p) for p in TESSDATA_DIRS]
    for folder in candidates:
        if all((folder / f"{lang}.traineddata").is_file() for lang in needed):
            return folder
    raise OcrUnavailableError(
        f"tesseract data for {'+'.join(needed)} not found in {', '.join(map(str, candidates))}; "
        "install tesseract-ocr-jpn (scripts/setup.sh) or set TESSDATA_DIR"
    )
