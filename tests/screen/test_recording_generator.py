"""The recording generator is reproducible: the benchmark's splits mean the same on every machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from scripts.generate_screen_recording import RecordingSpec, generate


def test_a_1080_wide_clip_encodes_to_the_same_bytes_whatever_the_heap_held(tmp_path: Path) -> None:
    """x264 reads memory it never wrote at a width that is not a multiple of 16; the generator
    fills allocations while encoding, so leftovers of earlier work cannot leak into the clip."""
    spec = RecordingSpec(
        duration_sec=1.0, width=1080, height=1920, fps=30.0, gop_sec=None, preset="veryfast", room="dark", gifts=True
    )
    digests = []
    leftovers = []
    for run in range(2):
        leftovers.append(np.random.default_rng(run).integers(0, 256, 8_000_000, dtype=np.uint8).tobytes())
        if run:
            leftovers.pop(0)  # freed: the heap holds this data when the next encode allocates
        out = tmp_path / f"clip{run}.mp4"
        generate(out, spec)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
