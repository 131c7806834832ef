"""The dashboard's view models against the knowledge base's own analytics, on a few samples."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from functions.api import create_api
from rag_core.context import AppContext
from rag_core.dashboard import views
from rag_core.knowledge.analytics import SUMMARY_FIELDS
from rag_core.knowledge.schemas import TopPerformerQuery
from tests.appkit import RememberingEmbedder, app_context, app_settings, sample_records
from tests.azurite import Azurite


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, sample_embedder: RememberingEmbedder) -> AppContext:
    context = app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant")), sample_embedder)
    with context.knowledge() as kb:
        for record in sample_records(72)[::4]:
            kb.ingest(record)
    return context


@pytest.mark.parametrize("metric", ["gmv", "gpm", "cvr"])
@pytest.mark.parametrize("brand_id", [None, 101])
def test_overview_leaderboards_equal_top_performers(ctx: AppContext, metric: str, brand_id: int | None) -> None:
    board = views.overview(ctx, brand_id=brand_id).leaders[metric]
    with ctx.knowledge() as kb:
        expected = kb.top_performers(
            TopPerformerQuery.model_validate({"metric": metric, "limit": 5}), brand_id=brand_id
        )
    assert board == expected.top and board


def test_liver_view_trend_and_suggestions_cite_figures(ctx: AppContext) -> None:
    liver_id = sample_records(72)[0].liver_id
    assert liver_id is not None
    view = views.liver(ctx, liver_id)
    assert view is not None and len(view.trend_line) == len(view.streams) == view.summary.videos
    assert view.suggestions and all(s.evidence for s in view.suggestions)
    assert views.liver(ctx, liver_id, brand_id=999) is None


def test_an_unreachable_chat_deployment_leaves_the_rule_suggestions_and_says_so(ctx: AppContext) -> None:
    """With AZURE_OPENAI_CHAT_DEPLOYMENT set but its endpoint refusing connections, the liver page
    still answers at once, with the rule text and a note: never a 5xx, never a hang."""
    liver_id = sample_records(72)[0].liver_id
    assert liver_id is not None
    unreachable = {"azure_openai_endpoint": "http://127.0.0.1:9", "azure_openai_chat_deployment": "gpt-4o-advice"}
    with ctx.knowledge() as kb:
        broken = AppContext(ctx.settings.model_copy(update=unreachable), kb=kb)
    rules, view = views.liver(ctx, liver_id), views.liver(broken, liver_id)
    assert rules is not None and view is not None and rules.suggestions_note is None
    assert view.suggestions == rules.suggestions and view.suggestions_note
    with TestClient(create_api(lambda: broken)) as client:
        page = client.get(f"/ui/livers/{liver_id}")
    assert page.status_code == 200 and 'id="suggestions-note"' in page.text and 'id="suggestions"' in page.text


def test_the_overview_rows_come_from_summaries_that_hold_every_column_it_shows() -> None:
    """The overview lists the kept stream summaries: a column missing from them would be blank."""
    assert set(views._STREAM_FIELDS) <= set(SUMMARY_FIELDS)
