"""The interface every sales-screenshot reader implements (``reader.build_screenshot_reader`` picks one).

Two readers exist: :class:`~rag_core.sales.local_ocr.LocalOcrReader` (Tesseract,
offline) and :class:`~rag_core.sales.azure_vision.AzureVisionReader` (a gpt-4o
deployment). Both turn one checked image into the same :class:`ScreenshotReading`,
so the caller validates and stores their output the same way, as ``embeddings/``
does for embedding providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from PIL import Image

from rag_core.sales.fields import ProductReading, Provider, Reading

ImageKind = Literal["png", "jpeg", "webp"]


@dataclass
class ScreenshotReading:
    """What a reader saw: text readings per sales field and product row, before validation."""

    readings: dict[str, Reading]
    products: list[ProductReading]
    notes: list[str] = field(default_factory=list)
    sales_extra: dict[str, Any] = field(default_factory=dict)  # fields passed through as read (currency)


class ScreenshotReader(Protocol):
    @property
    def provider(self) -> Provider: ...

    def read(self, data: bytes, image: Image.Image, kind: ImageKind) -> ScreenshotReading:
        """Read one screenshot: ``data`` as uploaded, ``image`` decoded from it, ``kind`` its format."""
        ...
