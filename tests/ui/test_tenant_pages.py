"""The dashboard when several brands hold one video id (ids are unique per brand), over HTTP.

Brand 101's ``aoi-20260113-01`` is also stored for brand 102 and as unscoped data, each with its
own liver, date and GMV. An unscoped (admin) session's links name each video's owner and open
exactly that video; the id opened with no owner gets a page listing the owners (409); ratings
go to the video the page shows. A brand-scoped session's pages are byte for byte the same
whether the other owners exist or not. Plain HTTP through the app's test client, but for one
browser test of the new page (axe-core, and a real form post from the page it links).
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from functions.api import create_api
from rag_core.analysis.record import AnalysisRecord
from rag_core.base.settings import ApiKey
from rag_core.context import AppContext
from rag_core.knowledge.store import Owner, point_id
from tests.appkit import RememberingEmbedder, app_context, app_settings, sample_records
from tests.azurite import Azurite
from tests.ui.conftest import BRAND_KEY, OPS_KEY, serve
from tests.ui.test_dashboard import AXE, settle, shot, sign_in

pytestmark = pytest.mark.timeout(900)

BASE = sample_records(12)  # brand 101's aoi (8 streams) and brand 102's haruto (4)
SHARED = BASE[0]
assert SHARED.brand_id == 101 and SHARED.sales is not None


def _copy(brand_id: int | None, liver_id: str, liver_name: str, day: str, gmv: float) -> AnalysisRecord:
    assert SHARED.sales is not None
    return SHARED.model_copy(
        update={
            "brand_id": brand_id,
            "liver_id": liver_id,
            "liver_name": liver_name,
            "stream_date": SHARED.stream_date.replace(day=int(day)) if SHARED.stream_date else None,
            "sales": SHARED.sales.model_copy(update={"gmv": gmv}),
        }
    )


# The other owners of SHARED's id, selling far more so they lead the overview's top streams.
CLASHES = {
    102: _copy(102, "liver_haruto", "はると", "20", 9_000_000.0),
    None: _copy(None, "liver_admin", "管理者テスト", "21", 8_000_000.0),
}


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, sample_embedder: RememberingEmbedder) -> AppContext:
    keys = [ApiKey(name="ops", key=OPS_KEY), ApiKey(name="brand101", key=BRAND_KEY, brand_id=101)]
    settings = app_settings(azurite, tmp_path_factory.mktemp("qdrant-tenant"), api_keys=keys)
    context = app_context(settings, sample_embedder)
    with context.knowledge() as kb:
        for record in BASE:
            kb.ingest(record)
    return context


def _store_clashes(ctx: AppContext) -> None:
    with ctx.knowledge() as kb:
        for record in CLASHES.values():
            kb.ingest(record)


def _drop_clashes(ctx: AppContext) -> None:
    with ctx.knowledge() as kb:
        for owner in CLASHES:
            if kb.get_video(SHARED.video_id, brand_id=Owner(owner)) is not None:
                kb.delete_video(SHARED.video_id, brand_id=Owner(owner))


def _session(ctx: AppContext, key: str) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: ctx)) as client:
        token = client.get("/ui/login").text.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post("/ui/login", data={"key": key, "csrf": token}, follow_redirects=False)
        assert signed.status_code == 303
        yield client


@pytest.fixture(scope="module")
def admin(ctx: AppContext) -> Iterator[TestClient]:
    yield from _session(ctx, OPS_KEY)


@pytest.fixture(scope="module")
def scoped(ctx: AppContext) -> Iterator[TestClient]:
    yield from _session(ctx, BRAND_KEY)


@pytest.fixture
def clashed(ctx: AppContext) -> None:
    _store_clashes(ctx)  # idempotent: unchanged records are not written again


class _Page(HTMLParser):
    """The links, hidden form fields and element texts of a page, enough to follow it like a person."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.hidden: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.hidden[str(values["name"])] = str(values.get("value") or "")


def _stream_links(html: str, video_id: str) -> list[str]:
    return [link for link in _Page(html).links if urlsplit(link).path == f"/ui/streams/{video_id}"]


def _owner_of(link: str) -> str | None:
    values = parse_qs(urlsplit(link).query).get("brand_id")
    return values[0] if values else None


def _shows(html: str, record: AnalysisRecord) -> bool:
    """The stream page is that record's: its liver and date in the heading line."""
    return f"{record.liver_name}</a> › 配信" in html and f"・ {record.stream_date} ・" in html


OWNERS = {"101": SHARED, "102": CLASHES[102], "none": CLASHES[None]}


@pytest.mark.usefixtures("clashed")
def test_admin_overview_lists_each_owner_and_each_link_opens_its_own_stream(admin: TestClient) -> None:
    page = admin.get("/ui/")
    assert page.status_code == 200
    links = _stream_links(page.text, SHARED.video_id)
    assert sorted(_owner_of(link) or "" for link in links) == ["101", "102", "none"]
    for link in links:
        opened = admin.get(link)
        assert opened.status_code == 200 and _shows(opened.text, OWNERS[_owner_of(link) or ""]), link
        assert f"brand_id={_owner_of(link)}&amp;phase=" in opened.text  # its own phase links keep the owner
    # The liver pages name the owner too (haruto's page lists brand 102's copy in its streams, phases and outliers).
    liver = admin.get("/ui/livers/liver_haruto")
    assert {_owner_of(link) for link in _stream_links(liver.text, SHARED.video_id)} == {"102"}  # rows, phases


@pytest.mark.usefixtures("clashed")
def test_admin_search_and_similar_links_name_the_hit_owner(admin: TestClient) -> None:
    text = SHARED.phases[1].speech_text[:40]
    for owner, record in OWNERS.items():  # the three hold the same texts: one liver at a time
        page = admin.get("/ui/search", params={"q": text, "liver_id": record.liver_id})
        links = _stream_links(page.text, SHARED.video_id)
        assert links and {_owner_of(link) for link in links} == {owner}
        assert _shows(admin.get(links[0]).text, record)
    # "Search with this phase" from brand 102's page searches with that video's phase.
    stream = admin.get(f"/ui/streams/{SHARED.video_id}", params={"brand_id": "102", "phase": 1})
    like = next(link for link in _Page(stream.text).links if link.startswith("/ui/search?"))
    assert _owner_of(like) == "102"
    found = admin.get(like)
    assert found.status_code == 200 and f"/ui/streams/{SHARED.video_id}?brand_id=102&amp;phase=1" in found.text
    similar = [link for link in _Page(stream.text).links if link.startswith("/ui/streams/")]
    assert similar and all(_owner_of(link) in ("101", "102", "none") for link in similar)  # each names its owner
    # Only the video on the page is left out: the other owners' videos with its id are other streams.
    opened = {(urlsplit(link).path, _owner_of(link)) for link in similar}
    shared = f"/ui/streams/{SHARED.video_id}"
    assert (shared, "102") not in opened and {(shared, "101"), (shared, "none")} & opened
    hits = [link for link in _Page(found.text).links if urlsplit(link).path == shared and "#selected" in link]
    assert hits and all(_owner_of(link) != "102" for link in hits)


@pytest.mark.usefixtures("clashed")
def test_an_ambiguous_id_without_owner_gets_a_page_listing_the_owners(admin: TestClient) -> None:
    page = admin.get(f"/ui/streams/{SHARED.video_id}", params={"phase": 2})
    assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")
    assert "複数のブランドに登録されています" in page.text
    links = _stream_links(page.text, SHARED.video_id)
    assert [_owner_of(link) for link in links] == ["none", "101", "102"]
    for owner, record in OWNERS.items():
        text = {"none": "ブランドなし", "101": "ブランド 101", "102": "ブランド 102"}[owner]
        assert f"{text} ・ {record.liver_name} ・ {record.stream_date}" in page.text
    for link in links:
        assert parse_qs(urlsplit(link).query)["phase"] == ["2"]  # the rest of the address is kept
        opened = admin.get(link)
        assert opened.status_code == 200 and _shows(opened.text, OWNERS[_owner_of(link) or ""])
    like = admin.get("/ui/search", params={"video_id": SHARED.video_id, "phase": 1})
    assert like.status_code == 409 and len(_stream_links(like.text, SHARED.video_id)) == 0
    assert sorted(_owner_of(link) or "" for link in _Page(like.text).links if "/ui/search?" in link) == [
        "101",
        "102",
        "none",
    ]
    # Other errors stay pages too: a malformed owner, an owner holding no such video.
    bad = admin.get(f"/ui/streams/{SHARED.video_id}", params={"brand_id": "abc"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    absent = admin.get(f"/ui/streams/{SHARED.video_id}", params={"brand_id": "103"})
    assert absent.status_code == 404 and "見つかりません" in absent.text
    api = admin.get(f"/api/v1/external/videos/{SHARED.video_id}", headers={"X-API-Key": OPS_KEY})
    assert api.status_code == 409 and api.json()["error"]["code"] == "ambiguous_video_id"  # the API keeps its JSON


def test_the_owners_page_links_an_id_with_spaces_percent_and_japanese(admin: TestClient, ctx: AppContext) -> None:
    odd = "配信 100% 限定"
    with ctx.knowledge() as kb:
        for brand in (101, 102):
            kb.ingest(SHARED.model_copy(update={"video_id": odd, "brand_id": brand}))
    page = admin.get(f"/ui/streams/{quote(odd)}", params={"phase": 1})
    assert page.status_code == 409
    links = _stream_links(page.text, quote(odd))
    assert [_owner_of(link) for link in links] == ["101", "102"]
    for link in links:
        opened = admin.get(link)
        assert opened.status_code == 200 and f"{odd} ・ ブランド {_owner_of(link)} ・" in opened.text


@pytest.mark.usefixtures("clashed")
def test_admin_rating_goes_to_the_video_on_the_page(admin: TestClient, ctx: AppContext) -> None:
    def quality(owner: int | None) -> float:
        with ctx.knowledge() as kb:
            found = kb.client.retrieve(kb.store.phases, [point_id(SHARED.video_id, 1, owner)], with_payload=True)
        return float((found[0].payload or {})["quality_score"])

    before = {owner: quality(owner) for owner in (101, 102, None)}
    page = admin.get(f"/ui/streams/{SHARED.video_id}", params={"brand_id": "102", "phase": 1})
    form = _Page(page.text).hidden
    assert form["brand_id"] == "102" and form["video_id"] == SHARED.video_id and form["phase_index"] == "1"
    sent = admin.post("/ui/feedback", data={**form, "rating": "5"}, follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/ui/streams/{SHARED.video_id}?brand_id=102&phase=1&sent=true#feedback"
    after = {owner: quality(owner) for owner in (101, 102, None)}
    assert after[102] > before[102] and after[101] == before[101] and after[None] == before[None]
    unnamed = {k: v for k, v in form.items() if k != "brand_id"}
    refused = admin.post("/ui/feedback", data={**unnamed, "rating": "5"})
    assert refused.status_code == 409 and len(_stream_links(refused.text, SHARED.video_id)) == 3
    assert {owner: quality(owner) for owner in (101, 102, None)} == after


SCOPED_PAGES = [
    "/ui/",
    f"/ui/streams/{SHARED.video_id}",
    f"/ui/streams/{SHARED.video_id}?phase=2",
    f"/ui/streams/{SHARED.video_id}?brand_id=101",
    f"/ui/livers/{SHARED.liver_id}",
    f"/ui/search?video_id={SHARED.video_id}&phase=1",
    "/ui/search?q=%E4%BF%9D%E6%B9%BF&phase_type=product_demo",
    # without a type: the inferred one comes from the brand's own phases only
    "/ui/search?q=%E4%BF%9D%E6%B9%BF",
    "/ui/export/streams.csv",
    "/ui/export/phases.csv",
    f"/ui/streams/{SHARED.video_id}?brand_id=102",  # another brand's: not found
    f"/ui/streams/{SHARED.video_id}?brand_id=none",
    f"/ui/search?video_id={SHARED.video_id}&phase=1&brand_id=102",
]


def test_a_brand_scoped_session_is_unaffected_by_other_owners_of_its_ids(scoped: TestClient, ctx: AppContext) -> None:
    def pages() -> list[tuple[int, bytes]]:
        return [(r.status_code, r.content) for r in (scoped.get(path) for path in SCOPED_PAGES)]

    def rate(brand: str | None, video_id: str = SHARED.video_id) -> tuple[int, bytes]:
        page = scoped.get(f"/ui/streams/{SHARED.video_id}?phase=3")
        form = {**_Page(page.text).hidden, "rating": "4", "video_id": video_id}
        sent = scoped.post(
            "/ui/feedback", data={**form, **({"brand_id": brand} if brand else {})}, follow_redirects=False
        )
        return sent.status_code, sent.content

    _drop_clashes(ctx)
    alone = pages()
    assert [status for status, _ in alone] == [200] * 10 + [404] * 3
    _store_clashes(ctx)
    assert pages() == alone
    # No link of a scoped page names an owner; naming another brand is the 404 of an id nobody holds.
    assert all(_owner_of(link) is None for _, body in alone for link in _Page(body.decode("utf-8-sig")).links)
    free = scoped.get("/ui/streams/no-such-video")
    assert (free.status_code, free.content) == alone[-3] == alone[-2]
    assert rate("102") == rate("none") == rate(None, "no-such-video") and rate("102")[0] == 404
    assert rate(None)[0] == rate("101")[0] == 303


@pytest.mark.usefixtures("clashed")
def test_in_a_browser_the_owners_page_is_accessible_and_its_link_rates_that_video(
    browser: webdriver.Chrome, ctx: AppContext
) -> None:
    """The one browser test here: axe-core on the new page, and a real form post from the page
    an owner link opens (the rating goes to brand 102's video, nobody else's)."""
    with serve(ctx) as base_url:
        sign_in(browser, base_url, OPS_KEY, f"/ui/streams/{SHARED.video_id}?phase=1")
        assert "配信を選んでください" in browser.title
        browser.execute_script(AXE.read_text(encoding="utf-8"))
        result = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done({passes: r.passes.length,"
            " serious: r.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)}));"
        )
        assert result["passes"] > 10 and result["serious"] == []
        shot(browser, "ambiguous")
        browser.find_element(By.CSS_SELECTOR, "#owners a[href*='brand_id=102']").click()
        settle(browser)
        with ctx.knowledge() as kb:
            phase = point_id(SHARED.video_id, 1, 102)
            before = kb.client.retrieve(kb.store.phases, [phase], with_payload=["feedback_count"])[0].payload or {}
        page = browser.find_element(By.TAG_NAME, "html")
        browser.find_element(By.ID, "send-feedback").click()
        WebDriverWait(browser, 60).until(staleness_of(page))
        settle(browser)
        assert "評価を受け付けました" in browser.page_source and "brand_id=102" in browser.current_url
        with ctx.knowledge() as kb:
            after = kb.client.retrieve(kb.store.phases, [phase], with_payload=["feedback_count"])[0].payload or {}
        assert after["feedback_count"] == (before.get("feedback_count") or 0) + 1
