"""Property tests: any JSON value either parses into a record or fails with field paths."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_core.analysis.record import AnalysisFormatError, AnalysisRecord, parse_analysis

KEYS = [
    "video_id", "id", "liver_id", "platform", "stream_date", "brand_id", "phases", "sales", "sales_data",
    "set_products", "screen_metrics", "report", "pipeline_result", "data_source", "quality_score",
    "speech_text", "visual_context", "total_duration",
]  # fmt: skip
PHASE_KEYS = [
    "phase_index", "phase_type", "behavior_label", "speech_text", "visual_context", "ai_insight",
    "start_sec", "end_sec", "duration_seconds", "products", "description",
]  # fmt: skip
SALES_KEYS = ["gmv", "orders", "total_orders", "cvr", "live_ctr", "viewers", "traffic_sources", "currency"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["￥1,200", "1.2万", "12.5%", "1:02:03", "12分30秒", "abc", "-", "３,２００人", "1e400"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
phases = st.lists(st.dictionaries(st.sampled_from(PHASE_KEYS), json_values, max_size=8), max_size=4)
records = st.fixed_dictionaries(
    {},
    optional={
        **{k: json_values for k in KEYS},
        "phases": phases | json_values,
        "sales": st.dictionaries(st.sampled_from(SALES_KEYS), json_values, max_size=6),
        "video_id": st.text(max_size=10) | st.integers(),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records | json_values)
def test_parser_never_fails_with_anything_but_field_problems(data: Any) -> None:
    try:
        record = parse_analysis(data)
    except AnalysisFormatError as exc:
        assert exc.problems and all(p.field and p.message for p in exc.problems)
        return
    assert isinstance(record, AnalysisRecord)
    assert record.phases and len({p.phase_index for p in record.phases}) == len(record.phases)
    # what parsed must survive a round trip through its own JSON (stored payloads are JSON)
    assert parse_analysis(record.model_dump(mode="json")).model_dump(mode="json") == record.model_dump(mode="json")
