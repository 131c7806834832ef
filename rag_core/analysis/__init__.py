"""The analysis format: one analysed stream (phases, sales, products, screen metrics) and its number grammar."""

from rag_core.analysis.numbers import NumberFormatError, NumberKind, parse_number
from rag_core.analysis.record import (
    AnalysisFormatError,
    AnalysisRecord,
    Phase,
    Sales,
    ScreenMetricSample,
    SetProduct,
    parse_analysis,
)

__all__ = [
    "AnalysisFormatError",
    "AnalysisRecord",
    "NumberFormatError",
    "NumberKind",
    "Phase",
    "Sales",
    "ScreenMetricSample",
    "SetProduct",
    "parse_analysis",
    "parse_number",
]
