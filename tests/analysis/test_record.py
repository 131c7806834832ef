"""The analysis format (rag_core.analysis.record) against the committed samples and hand-made edge cases.

The samples are what the backfill and the demo load, so they are checked here
too: every file parses, the legacy files mean exactly what their new-format
twins mean, the generator reproduces them byte for byte, and the outcome in
them really follows the phase behaviour the README describes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rag_core.analysis.record import AnalysisFormatError, AnalysisRecord, parse_analysis

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
GENERATOR = ROOT / "scripts" / "generate_samples.py"
FORMAT_DOC = ROOT / "docs" / "analysis-format.md"
PHASE_TYPES = {"opening", "product_demo", "price_explanation", "call_to_action", "qna", "idle", "closing"}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_samples", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load_generator()


@pytest.fixture(scope="module")
def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


@pytest.fixture(scope="module")
def records(sample_files: list[Path]) -> list[AnalysisRecord]:
    return [parse_analysis(json.loads(p.read_text(encoding="utf-8"))) for p in sample_files]


def _problems(data: object) -> dict[str, str]:
    with pytest.raises(AnalysisFormatError) as info:
        parse_analysis(data)
    return {p.field: p.message for p in info.value.problems}


# ------------------------------------------------------------------ samples --


def test_every_sample_parses_and_is_consistent(sample_files: list[Path], records: list[AnalysisRecord]) -> None:
    assert len(records) >= 60
    for path, record in zip(sample_files, records, strict=True):
        assert record.video_id == path.stem
        assert 6 <= len(record.phases) <= 12
        assert [p.phase_index for p in record.phases] == list(range(len(record.phases)))
        assert record.phases[0].start_sec == 0
        for before, after in zip(record.phases, record.phases[1:], strict=False):
            assert after.start_sec == before.end_sec, f"{record.video_id}: phases are not contiguous"
        assert record.total_duration_sec == record.phases[-1].end_sec
        assert {p.phase_type for p in record.phases} <= PHASE_TYPES
        assert all(p.speech_text and p.description and p.insights for p in record.phases)
        sales = record.sales
        assert sales is not None and sales.viewers and sales.orders is not None and sales.gmv is not None
        assert sales.cvr == pytest.approx(round(sales.orders / sales.viewers * 100, 2), abs=0.006)
        assert sales.gmv == sum(s.set_revenue or 0 for s in record.set_products)
        assert sales.items_sold == sum(s.sold or 0 for s in record.set_products)


def test_samples_cover_livers_brands_platforms_and_patterns(records: list[AnalysisRecord]) -> None:
    livers = {r.liver_id for r in records}
    assert 8 <= len(livers) <= 10
    assert all(liver and liver.startswith("liver_") for liver in livers)
    assert 2 <= len({r.brand_id for r in records}) <= 3
    platforms = [r.platform for r in records]
    assert platforms.count("tiktok") > len(records) * 0.7
    assert "tiktok_shop" in platforms
    dates = sorted(r.stream_date for r in records if r.stream_date)
    assert dates[0].year == dates[-1].year == 2026 and (dates[-1] - dates[0]).days >= 240
    pattern_b = [r for r in records if r.source_pattern == "B"]
    assert pattern_b and all(r.source_pattern in {"A", "B"} for r in records)
    assert sum(r.quality_score is None for r in records) > len(records) * 0.8


def test_pattern_b_time_series_matches_the_sales(records: list[AnalysisRecord]) -> None:
    series = [r for r in records if r.screen_metrics]
    assert series
    for record in series:
        times = [m.t_sec for m in record.screen_metrics]
        assert times == [i * 30 for i in range(len(times))]
        assert times[-1] <= (record.total_duration_sec or 0) < times[-1] + 30
        assert record.sales is not None
        purchases = [m.purchases or 0 for m in record.screen_metrics]
        assert purchases == sorted(purchases), "running totals never fall"
        assert purchases[-1] == record.sales.orders
        assert max(m.viewers or 0 for m in record.screen_metrics) == record.sales.peak_viewers


def test_about_a_tenth_of_the_samples_use_legacy_names(sample_files: list[Path]) -> None:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sample_files]
    legacy = [d for d in docs if "id" in d and "video_id" not in d]
    assert 0.07 <= len(legacy) / len(docs) <= 0.15
    assert all("sales_data" in d and "phases" not in d for d in legacy)
    assert any("report" in d for d in legacy) and any("pipeline_result" in d for d in legacy)


def test_legacy_samples_mean_the_same_as_their_new_format_twins(generator: ModuleType) -> None:
    legacy = [s for s in generator.generate() if s.legacy]
    assert legacy
    for sample in legacy:
        on_disk = json.loads((SAMPLES / f"{sample.video_id}.json").read_text(encoding="utf-8"))
        assert on_disk == sample.doc
        old, new = parse_analysis(sample.doc), parse_analysis(sample.canonical)
        _assert_same_meaning(old, new)


def _assert_same_meaning(old: AnalysisRecord, new: AnalysisRecord) -> None:
    """Compare every field the legacy names map onto (numbers with a float tolerance)."""
    for name in ("video_id", "liver_id", "platform", "stream_date", "source_pattern", "total_duration_sec"):
        assert getattr(old, name) == getattr(new, name), name
    assert len(old.phases) == len(new.phases)
    for old_phase, new_phase in zip(old.phases, new.phases, strict=True):
        for name in ("phase_index", "phase_type", "start_sec", "end_sec", "speech_text", "description", "insights"):
            assert getattr(old_phase, name) == getattr(new_phase, name), f"phases.{new_phase.phase_index}.{name}"
        assert old_phase.products == new_phase.products
    assert old.sales is not None and new.sales is not None
    for name, value in new.sales.model_dump(exclude={"traffic_sources", "currency"}).items():
        assert getattr(old.sales, name) == pytest.approx(value), f"sales.{name}"
    for old_set, new_set in zip(old.set_products, new.set_products, strict=True):
        for name in ("name", "price", "original_price", "discount_rate", "quantity", "sold", "set_revenue"):
            assert getattr(old_set, name) == pytest.approx(getattr(new_set, name)), f"set_products.{name}"


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path: Path, sample_files: list[Path]) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path), "--count", "72"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [p.name for p in sample_files]
    for committed in [*sample_files, *sorted((SAMPLES / "invalid").glob("*.json"))]:
        fresh = tmp_path / committed.relative_to(SAMPLES)
        assert fresh.read_bytes() == committed.read_bytes(), committed.name


def test_outcome_follows_phase_behaviour(generator: ModuleType) -> None:
    """The README promises these effects; keep the generator honest about them."""
    samples = generator.generate()

    def median_cvr(keep: Callable[[Any], bool]) -> float:
        return statistics.median(s.canonical["sales"]["cvr"] for s in samples if keep(s))

    assert median_cvr(lambda s: s.features["urgent_cta"]) > 1.3 * median_cvr(lambda s: not s.features["urgent_cta"])
    assert median_cvr(lambda s: s.features["has_price"]) > 1.3 * median_cvr(lambda s: not s.features["has_price"])
    assert median_cvr(lambda s: s.features["idle_share"] > 0.1) < 0.8 * median_cvr(
        lambda s: s.features["idle_share"] == 0
    )
    demo = statistics.median(s.features["demo_share"] for s in samples)
    assert median_cvr(lambda s: s.features["demo_share"] > demo) > median_cvr(
        lambda s: s.features["demo_share"] <= demo
    )


def test_invalid_samples_are_reported_with_field_paths() -> None:
    def load(name: str) -> Any:
        return json.loads((SAMPLES / "invalid" / f"{name}.json").read_text(encoding="utf-8"))

    assert set(_problems(load("invalid-missing-phases"))) == {"phases"}
    problems = _problems(load("invalid-bad-times-and-gmv"))
    assert "sales.gmv" in problems
    assert any(field.startswith("phases.1") and "end_sec" in msg for field, msg in problems.items())


# ------------------------------------------------------------- legacy names --

NEW_FORMAT: dict[str, Any] = {
    "video_id": "v-legacy-1",
    "liver_id": "liver_test",
    "source_pattern": "B",
    "total_duration_sec": 3723,
    "phases": [
        {
            "phase_index": 0,
            "phase_type": "product_demo",
            "start_sec": 0,
            "end_sec": 300,
            "speech_text": "見てください、この発色！",
            "description": "手の甲にリップを塗っている。",
            "insights": "実演が具体的。",
        },
        {
            "phase_index": 1,
            "phase_type": "call_to_action",
            "start_sec": 300,
            "end_sec": 420,
            "speech_text": "残りわずかです！",
            "description": "カートを指差している。",
            "insights": "緊急性の訴求が効いている。",
        },
    ],
    "sales": {
        "gmv": 150000,
        "orders": 1234,
        "items_sold": 1500,
        "viewers": 12000,
        "ctr": 12.5,
        "cvr": 3.4,
        "gpm": 12500,
        "likes": 34000,
    },
    "set_products": [{"name": "リップ", "price": 1980, "sold": 30}],
}

LEGACY_FORMAT: dict[str, Any] = {
    "id": "v-legacy-1",
    "liver_id": "liver_test",
    "data_source": "screen_recording",
    "total_duration": "1:02:03",
    "report": {
        "phases": [
            {
                "behavior_label": "product_demo",
                "duration_seconds": 300,
                "speech_text": "見てください、この発色！",
                "visual_context": "手の甲にリップを塗っている。",
                "ai_insight": "実演が具体的。",
            },
            {
                "phase_type": "call_to_action",
                "duration_seconds": 120,
                "speech_text": "残りわずかです！",
                "visual_context": "カートを指差している。",
                "insight": "緊急性の訴求が効いている。",
            },
        ]
    },
    "sales_data": {
        "gmv": "￥150,000",
        "total_orders": "1,234",
        "product_sales_count": "1500個",
        "viewers": "1.2万",
        "live_ctr": "12.5%",
        "cvr": "3.4%",
        "avg_gpm": "12,500円",
        "likes": "3.4万",
    },
    "set_products": [{"name": "リップ", "price": "￥1,980", "quantity_sold": "30"}],
}


def test_legacy_names_mean_the_same_as_the_new_ones() -> None:
    _assert_same_meaning(parse_analysis(LEGACY_FORMAT), parse_analysis(NEW_FORMAT))


def test_pipeline_result_labeled_phases_are_found() -> None:
    record = parse_analysis(
        {"id": 42, "pipeline_result": {"labeled_phases": [{"behavior_label": "qna", "speech_text": "質問ありがとう"}]}}
    )
    assert record.video_id == "42"
    assert record.phases[0].phase_type == "qna"
    assert record.phases[0].phase_index == 0


def test_top_level_speech_and_visual_context_make_one_phase() -> None:
    record = parse_analysis({"video_id": "v1", "speech_text": "こんばんは", "visual_context": "手を振っている"})
    assert [(p.phase_index, p.speech_text, p.description) for p in record.phases] == [
        (0, "こんばんは", "手を振っている")
    ]


def test_duration_seconds_only_phases_get_contiguous_times() -> None:
    record = parse_analysis(
        {
            "video_id": "v1",
            "report": {
                "phases": [
                    {"duration_seconds": 120},
                    {"duration_seconds": 300},
                    {"start_sec": 500, "end_sec": 560},  # an explicit time moves the clock
                    {"duration_seconds": 60},
                ]
            },
        }
    )
    times = [(p.phase_index, p.start_sec, p.end_sec) for p in record.phases]
    assert times == [(0, 0, 120), (1, 120, 420), (2, 500, 560), (3, 560, 620)]


def test_new_name_wins_over_legacy_name() -> None:
    record = parse_analysis(
        {
            "video_id": "new",
            "id": "old",
            "phases": [{"phase_index": 0, "description": "新", "visual_context": "旧"}],
            "sales": {"orders": 5, "total_orders": 9},
        }
    )
    assert record.video_id == "new"
    assert record.phases[0].description == "新"
    assert record.sales is not None and record.sales.orders == 5


# --------------------------------------------------------------------- nulls --


def test_nulls_anywhere_in_phases_and_sales_do_not_crash() -> None:
    phase_keys = ["phase_type", "behavior_label", "start_sec", "end_sec", "speech_text", "description", "insights"]
    sales_keys = ["gmv", "orders", "items_sold", "viewers", "ctr", "cvr", "gpm", "traffic_sources", "currency"]
    record = parse_analysis(
        {
            "video_id": "v-null",
            "liver_id": None,
            "platform": None,
            "stream_date": None,
            "total_duration": None,
            "phases": [
                {"phase_index": 0, **dict.fromkeys(phase_keys), "products": None, "visual_context": None},
                {"phase_index": None, "ai_insight": None, "duration_seconds": None, "screen_summary": None},
            ],
            "sales_data": dict.fromkeys(sales_keys),
            "set_products": None,
            "screen_metrics": None,
        }
    )
    first = record.phases[0]
    assert (first.phase_type, first.speech_text, first.description, first.insights) == ("unknown", "", "", "")
    assert first.products == [] and first.duration_sec is None
    assert record.phases[1].phase_index == 1
    assert record.platform == "tiktok"
    assert record.sales is not None and record.sales.gmv is None and record.sales.currency == "JPY"
    assert record.set_products == [] and record.screen_metrics == []


def test_empty_markers_in_numbers_become_null() -> None:
    record = parse_analysis({"video_id": "v", "phases": [{"phase_index": 0}], "sales": {"gmv": "-", "cvr": ""}})
    assert record.sales is not None and record.sales.gmv is None and record.sales.cvr is None


# ---------------------------------------------------------------- malformed --

BASE_PHASES = [{"phase_index": 0, "start_sec": 0, "end_sec": 60}, {"phase_index": 1, "start_sec": 60, "end_sec": 90}]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"video_id": "v", "phases": [BASE_PHASES[0], {"phase_index": 1, "start_sec": "abc"}]}, "phases.1.start_sec"),
        ({"video_id": "v", "phases": BASE_PHASES, "sales": {"gmv": "abc"}}, "sales.gmv"),
        ({"video_id": "v", "phases": BASE_PHASES, "sales": {"gmv": -1}}, "sales.gmv"),
        ({"video_id": "v", "phases": BASE_PHASES, "sales_data": {"total_orders": "たくさん"}}, "sales.orders"),
        ({"video_id": "v"}, "phases"),
        ({"video_id": "v", "phases": []}, "phases"),
        ({"video_id": "v", "phases": [{"phase_index": 0}, {"phase_index": 0}]}, "phases"),
        ({"phases": BASE_PHASES}, "video_id"),
        ({"video_id": "", "phases": BASE_PHASES}, "video_id"),
        ({"video_id": "v", "phases": BASE_PHASES, "stream_date": "2026-13-45"}, "stream_date"),
        (
            {"video_id": "v", "phases": BASE_PHASES, "set_products": [{"name": "x", "price": "abc"}]},
            "set_products.0.price",
        ),
        ({"video_id": "v", "phases": BASE_PHASES, "source_pattern": "C"}, "source_pattern"),
        (["not", "an", "object"], "$"),
    ],
)
def test_malformed_records_name_the_field(data: object, field: str) -> None:
    assert field in _problems(data)


def test_duplicate_phase_index_is_explained() -> None:
    assert "unique" in _problems({"video_id": "v", "phases": [{"phase_index": 3}, {"phase_index": 3}]})["phases"]


def test_end_before_start_is_reported_on_that_phase() -> None:
    phases = [BASE_PHASES[0], {"phase_index": 1, "start_sec": 480, "end_sec": 300}]
    problems = _problems({"video_id": "v", "phases": phases})
    assert any(field.startswith("phases.1") and "end_sec" in message for field, message in problems.items())


def test_all_problems_are_reported_at_once() -> None:
    problems = _problems(
        {"video_id": "v", "phases": [{"phase_index": 0, "end_sec": "x"}], "sales": {"gmv": "abc", "cvr": 101}}
    )
    assert {"phases.0.end_sec", "sales.gmv", "sales.cvr"} <= set(problems)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"sales": {"cvr": 150}}, "sales.cvr"),
        ({"sales": {"ctr": "120%"}}, "sales.ctr"),
        ({"sales": {"ctr": -0.5}}, "sales.ctr"),
        ({"sales_data": {"live_ctr": "100.1%"}}, "sales.ctr"),
        ({"sales": {"traffic_sources": [{"channel": "feed", "gmv_pct": 130}]}}, "sales.traffic_sources.0.gmv_pct"),
        ({"set_products": [{"name": "x", "discount_rate": "101%"}]}, "set_products.0.discount_rate"),
        ({"quality_score": 1.5}, "quality_score"),
    ],
)
def test_percent_and_score_out_of_range_are_rejected(patch: dict[str, Any], field: str) -> None:
    assert field in _problems({"video_id": "v", "phases": BASE_PHASES, **patch})


def test_percent_fields_are_percent_units() -> None:
    record = parse_analysis({"video_id": "v", "phases": BASE_PHASES, "sales": {"ctr": "12.5%", "cvr": 0.8}})
    assert record.sales is not None and (record.sales.ctr, record.sales.cvr) == (12.5, 0.8)


# ------------------------------------------------------------ kept / derived --


def test_unknown_fields_are_kept() -> None:
    record = parse_analysis(
        {
            "video_id": "v",
            "campaign": {"name": "春のセール", "coupon": "SPRING10"},
            "phases": [{"phase_index": 0, "camera_angle": "close-up"}],
            "sales": {"gmv": 1000, "coupon_used": 12},
            "set_products": [{"name": "x", "jan_code": "4901234567894"}],
        }
    )
    assert record.model_extra == {"campaign": {"name": "春のセール", "coupon": "SPRING10"}}
    assert record.phases[0].model_extra == {"camera_angle": "close-up"}
    dumped = record.model_dump()
    assert dumped["sales"]["coupon_used"] == 12
    assert dumped["set_products"][0]["jan_code"] == "4901234567894"
    assert parse_analysis(dumped).model_dump() == dumped  # and survive a round trip


def test_set_revenue_is_price_times_sold() -> None:
    record = parse_analysis(
        {
            "video_id": "v",
            "phases": BASE_PHASES,
            "set_products": [
                {"name": "a", "price": "￥1,980", "sold": 3},
                {"name": "b", "price": 2500, "quantity_sold": "1.2万"},
                {"name": "c", "price": 1000, "sold": 2, "set_revenue": 1800},  # a given revenue is kept
                {"name": "d", "price": 1000},  # nothing sold recorded: no revenue invented
            ],
        }
    )
    assert [s.set_revenue for s in record.set_products] == [5940, pytest.approx(30_000_000), 1800, None]


def test_human_numbers_are_normalised() -> None:
    record = parse_analysis(
        {
            "video_id": "v",
            "phases": BASE_PHASES,
            "sales": {
                "gmv": "￥1,234,567",
                "viewers": "3,200人",
                "likes": "12.5K",
                "avg_watch_time_sec": "1:23",
                "cvr": "２.５％",
            },
        }
    )
    sales = record.sales
    assert sales is not None
    assert (sales.gmv, sales.viewers, sales.likes, sales.avg_watch_time_sec, sales.cvr) == (
        1_234_567,
        3200,
        12500,
        83,
        2.5,
    )


# ---------------------------------------------------------------------- doc --


def test_the_format_documents_examples_parse_as_described() -> None:
    blocks = re.findall(r"```json\n(.*?)```", FORMAT_DOC.read_text(encoding="utf-8"), re.DOTALL)
    records = [json.loads(b) for b in blocks if b.startswith("{")]
    assert len(records) == 2
    legacy, full = (parse_analysis(r) for r in records)
    assert (legacy.video_id, legacy.source_pattern, legacy.total_duration_sec) == ("v-legacy-1", "A", 3723)
    assert [(p.phase_type, p.start_sec, p.end_sec) for p in legacy.phases] == [("product_demo", 0, 300)]
    assert legacy.sales is not None
    assert (legacy.sales.gmv, legacy.sales.orders, legacy.sales.viewers, legacy.sales.ctr) == (
        150000,
        1234,
        12000,
        12.5,
    )
    assert legacy.set_products[0].set_revenue == 59400
    sample = parse_analysis(json.loads((SAMPLES / f"{full.video_id}.json").read_text(encoding="utf-8")))
    assert full.model_dump(exclude={"phases"}) == sample.model_dump(exclude={"phases"})
    assert full.phases == sample.phases[:3]
