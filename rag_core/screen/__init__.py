"""Pattern B: the overlay counters of a screen-recorded stream read into a time series, summarised per phase."""

from rag_core.screen.extractor import ScreenExtractionResult, extract_screen_metrics, read_frame
from rag_core.screen.summary import summarise_for_phases

__all__ = ["ScreenExtractionResult", "extract_screen_metrics", "read_frame", "summarise_for_phases"]
