"""Image helpers both OCR paths share (sales screenshots and screen-recording overlays)."""

from __future__ import annotations

import numpy as np


def otsu_threshold(gray: np.ndarray) -> int:
    """The grey level that best splits ``gray`` (uint8) into two classes (Otsu 1979).

    Pixels above the returned level form one class. The between-class variance
    is computed for every level at once from the cumulative histogram.
    """
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * np.arange(256))
    total, grand = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (grand * weight - mean * total) ** 2 / (weight * (total - weight))
    return int(np.nanargmax(between[:-1]))
