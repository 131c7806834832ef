"""What the two OCR paths share: Tesseract's language data and image helpers."""

from rag_core.ocr.imaging import otsu_threshold
from rag_core.ocr.tessdata import OcrUnavailableError, find_tessdata

__all__ = ["OcrUnavailableError", "find_tessdata", "otsu_threshold"]
