"""Field accuracy of the local (tesseract) sales extractor on the shipped dashboard screenshots.

For every ``tests/data/sales_screenshots/<name>.<png|jpg|webp>`` with its
``<name>.truth.json``, the screenshot is read with ``SALES_OCR_PROVIDER=local``
and every number is compared with the truth in canonical units (yen, count,
percent, seconds, minutes): a field counts as right only when the value is
exactly the true one. A missing field (left empty, e.g. for low confidence)
counts as wrong, and so does a field read that the screenshot does not show.
Sales fields and product cells (price, sold, set_revenue) make up the overall
figure; product names are reported apart, as a character similarity.

    .venv/bin/python benchmarks/ocr_accuracy.py [--dir DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_core.base.settings import load_settings  # noqa: E402
from rag_core.sales.fields import SalesExtraction  # noqa: E402
from rag_core.sales.reader import extract_sales_from_image  # noqa: E402

DEFAULT_DIR = ROOT / "tests" / "data" / "sales_screenshots"
PRODUCT_NUMBERS = ("price", "sold", "set_revenue")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Score:
    """Right/total per field, the misses (for reading), and product-name similarities."""

    right: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: list[str] = field(default_factory=list)
    wrong_values: int = 0  # misses where a value was returned (not left empty): the costly kind
    name_similarity: list[float] = field(default_factory=list)

    def add(self, key: str, got: object, expected: object, image: str, detail: str) -> None:
        ok = got == expected
        self.total[key] += 1
        self.right[key] += ok
        if not ok:
            self.misses.append(f"{image}: {key} {detail}")
            self.wrong_values += got is not None

    @property
    def overall(self) -> float:
        total = sum(self.total.values())
        return sum(self.right.values()) / total if total else 0.0


def screenshots(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each screenshot in ``folder`` with its truth, in name order."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            truth = json.loads(path.with_name(path.stem + ".truth.json").read_text("utf-8"))
            out.append((path, truth))
    return out


def score_one(score: Score, image: str, extraction: SalesExtraction, truth: dict[str, Any]) -> None:
    """Add one screenshot's comparison to ``score``."""
    got = extraction.sales.model_dump()
    expected = truth["sales"]
    for name, value in expected.items():
        score.add(name, got.get(name), value, image, f"read {got.get(name)!r}, true {value!r}")
    for name, reading in extraction.fields.items():
        if "." not in name and name not in expected and reading.value is not None:
            score.add(name, reading.value, None, image, f"read {reading.value!r} but the screenshot does not show it")
    products = extraction.set_products
    for index, true_product in enumerate(truth["set_products"]):
        product = products[index].model_dump() if index < len(products) else {}
        for name in PRODUCT_NUMBERS:
            got_value = product.get(name)
            score.add(f"product.{name}", got_value, true_product[name], image, f"#{index} read {got_value!r}")
        similarity = difflib.SequenceMatcher(None, product.get("name") or "", true_product["name"]).ratio()
        score.name_similarity.append(similarity)
    for index in range(len(truth["set_products"]), len(products)):
        score.add("product.extra_rows", index, None, image, f"#{index} read a row the table does not have")


def run(folder: Path, verbose: bool) -> Score:
    settings = load_settings(sales_ocr_provider="local", azure_openai_endpoint=None)
    score = Score()
    timings = []
    for path, truth in screenshots(folder):
        started = time.perf_counter()
        extraction = extract_sales_from_image(path.read_bytes(), settings)
        timings.append(time.perf_counter() - started)
        before = len(score.misses)
        score_one(score, path.name, extraction, truth)
        status = "ok" if len(score.misses) == before else f"{len(score.misses) - before} wrong"
        print(f"{path.name:34s} {timings[-1]:5.2f}s  {status}")
        if verbose:
            for warning in extraction.warnings:
                print(f"    warning: {warning}")
    print()
    print(f"{'field':28s} {'right':>5s} / {'total':<5s} accuracy")
    for key in sorted(score.total):
        print(f"{key:28s} {score.right[key]:5d} / {score.total[key]:<5d} {score.right[key] / score.total[key]:7.1%}")
    print()
    for miss in score.misses:
        print(f"miss  {miss}")
    similarity = sum(score.name_similarity) / max(1, len(score.name_similarity))
    print(f"product names: mean character similarity {similarity:.1%} over {len(score.name_similarity)} rows")
    print(f"time per screenshot: mean {sum(timings) / len(timings):.2f}s, max {max(timings):.2f}s")
    print(f"misses: {len(score.misses)}, of which a wrong value returned (not left empty): {score.wrong_values}")
    right, total = sum(score.right.values()), sum(score.total.values())
    print(f"OVERALL exact-match accuracy: {score.overall:.2%} ({right}/{total} fields, {len(timings)} screenshots)")
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--verbose", action="store_true", help="print each screenshot's warnings")
    args = parser.parse_args()
    run(args.dir, args.verbose)


if __name__ == "__main__":
    main()
