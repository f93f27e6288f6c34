"""Finding screenshots in tool results: the same paths as the one-pattern search, in linear time."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from tracewheel.dataset.attachments import image_paths, mentioned_images

# the former single pattern: right answers, quadratic time on long runs without a match
QUADRATIC = re.compile(r"(?P<path>[^\s\[\]()'\"<>]+\.(?:png|jpe?g|gif|webp))\b", re.IGNORECASE)


def test_finds_what_the_single_pattern_found() -> None:
    text = (
        "[image saved to /data/att/s-1/page.png (image/png, 120 bytes)] see 'shot.JPEG' and <a.gif>,"
        " not .png alone, x.pngs, a.png.b.webp c.jpg-d (e.jpe)"
    )
    assert mentioned_images(text) == [m["path"] for m in QUADRATIC.finditer(text)]
    assert mentioned_images(text) == ["/data/att/s-1/page.png", "shot.JPEG", "a.gif", "a.png.b.webp", "c.jpg"]
    pieces = ["a", ".", "png", "jpg", "jpeg", "PNG", "gif", " ", "[", "(", "'", "/", "-", "_", "é", "\n", "webp", "s"]
    generator = random.Random(7)
    for _ in range(3000):
        sample = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 20)))
        assert mentioned_images(sample) == [m["path"] for m in QUADRATIC.finditer(sample)], sample


@pytest.mark.parametrize(
    "text",
    [
        "a" * 80_000,
        "a.pn" * 20_000,
        "x" * 10_000_000,
        ".jpe" * 2_500_000,
        "a.png" * 2_000_000,
    ],
    ids=["80k-run", "80k-near-misses", "10MB-run", "10MB-near-misses", "10MB-matches"],
)
def test_adversarial_tool_results_take_well_under_a_second(text: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    image_paths(text, tmp_path)
    assert time.perf_counter() - started < 1.0
