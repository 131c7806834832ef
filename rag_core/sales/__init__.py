"""Pattern A: sales figures from a dashboard screenshot (local OCR or a vision model) or a partner record."""

from rag_core.sales.reader import (
    InvalidInputError,
    SalesExtraction,
    build_screenshot_reader,
    extract_sales_from_image,
    load_image,
    sales_from_partner_json,
)

__all__ = [
    "InvalidInputError",
    "SalesExtraction",
    "build_screenshot_reader",
    "extract_sales_from_image",
    "load_image",
    "sales_from_partner_json",
]
